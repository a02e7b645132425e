/* Field tables of request bodies: one linear pass over the body's members
 * and one over the table, so that every rule of an endpoint is data, not
 * code scattered through its handler. */
#include "server/validate.h"
#include "util/utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(bs_ftype_spec t)
{
    switch (t) {
    case BS_T_STRING:
        return "a string";
    case BS_T_INT:
        return "an integer";
    case BS_T_NUMBER:
        return "a number";
    case BS_T_BOOL:
        return "a boolean";
    case BS_T_OBJECT:
        return "an object";
    case BS_T_ARRAY:
        return "an array";
    case BS_T_STRINGS:
        return "an array of strings";
    case BS_T_TEXT:
        return "a string or an array of strings";
    case BS_T_ANY:
        break;
    }
    return "any value";
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static int has_range(const bs_field_spec *f)
{
    return f->max > f->min;
}

static int check_string(const bs_field_spec *f, const json_t *v, const char *what, char *detail,
                        size_t len)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, 0, n)) {
        snprintf(detail, len, "field '%s': %s contains a NUL character", f->name, what);
        return -1;
    }
    if (has_range(f)) {
        size_t cps = bs_utf8_count(s, n);
        if ((double)cps < f->min || (double)cps > f->max) {
            snprintf(detail, len, "field '%s': %s has %zu characters, allowed %.0f to %.0f",
                     f->name, what, cps, f->min, f->max);
            return -1;
        }
    }
    if (f->choices) {
        for (const char *const *c = f->choices; *c; c++)
            if (!strcmp(*c, s)) return 0;
        char list[256] = "";
        size_t used = 0;
        for (const char *const *c = f->choices; *c && used + 2 < sizeof list; c++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *c);
            if (w < 0) break;
            used += (size_t)w;
        }
        snprintf(detail, len, "field '%s': '%.64s' is not one of: %s", f->name, s, list);
        return -1;
    }
    return 0;
}

static int check_strings(const bs_field_spec *f, const json_t *v, char *detail, size_t len)
{
    /* For BS_T_STRINGS the range bounds the item count, checked by the caller. */
    bs_field_spec item_spec = *f;
    if (f->type == BS_T_STRINGS) item_spec.min = item_spec.max = 0;
    f = &item_spec;
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            snprintf(detail, len, "field '%s': item %zu is %s, expected a string", f->name, i,
                     json_kind(item));
            return -1;
        }
        char what[32];
        snprintf(what, sizeof what, "item %zu", i);
        if (check_string(f, item, what, detail, len)) return -1;
    }
    return 0;
}

static int check_field(const bs_field_spec *f, const json_t *v, char *detail, size_t len)
{
    int ok = 0;
    switch (f->type) {
    case BS_T_STRING:
        ok = json_is_string(v);
        break;
    case BS_T_INT:
        ok = json_is_integer(v);
        break;
    case BS_T_NUMBER:
        ok = json_is_number(v);
        break;
    case BS_T_BOOL:
        ok = json_is_boolean(v);
        break;
    case BS_T_OBJECT:
        ok = json_is_object(v);
        break;
    case BS_T_ARRAY:
    case BS_T_STRINGS:
        ok = json_is_array(v);
        break;
    case BS_T_TEXT:
        ok = json_is_string(v) || json_is_array(v);
        break;
    case BS_T_ANY:
        ok = 1;
        break;
    }
    if (!ok) {
        snprintf(detail, len, "field '%s' must be %s, got %s", f->name, type_name(f->type),
                 json_kind(v));
        return -1;
    }
    if (json_is_string(v)) return check_string(f, v, "value", detail, len);
    if (json_is_number(v) && has_range(f)) {
        double x = json_number_value(v);
        if (!isfinite(x) || x < f->min || x > f->max) {
            if (json_is_integer(v))
                snprintf(detail, len, "field '%s': %lld is outside the allowed range %g to %g",
                         f->name, (long long)json_integer_value(v), f->min, f->max);
            else
                snprintf(detail, len, "field '%s': %g is outside the allowed range %g to %g",
                         f->name, x, f->min, f->max);
            return -1;
        }
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (f->type != BS_T_TEXT && has_range(f) && ((double)n < f->min || (double)n > f->max)) {
            snprintf(detail, len, "field '%s' has %zu items, allowed %.0f to %.0f", f->name, n,
                     f->min, f->max);
            return -1;
        }
        if (f->type == BS_T_TEXT && n == 0) {
            snprintf(detail, len, "field '%s' is an empty list", f->name);
            return -1;
        }
        if (f->type == BS_T_STRINGS || f->type == BS_T_TEXT)
            return check_strings(f, v, detail, len);
    }
    return 0;
}

int bs_validate(const json_t *body, const bs_field_spec *fields, char *detail, size_t len)
{
    if (!json_is_object(body)) {
        snprintf(detail, len, "the body must be a JSON object, got %s", json_kind(body));
        return -1;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        const bs_field_spec *f = fields;
        while (f->name && strcmp(f->name, key)) f++;
        if (!f->name) {
            char list[384] = "";
            size_t used = 0;
            for (const bs_field_spec *g = fields; g->name && used + 2 < sizeof list; g++) {
                int w =
                    snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", g->name);
                if (w < 0) break;
                used += (size_t)w;
            }
            snprintf(detail, len, "unknown field '%.64s' (accepted: %s)", key,
                     used ? list : "none");
            return -1;
        }
        if (json_is_null(v)) {
            if (f->flags & BS_NULLABLE) continue;
            if (f->flags & BS_REQUIRED) {
                snprintf(detail, len, "field '%s' is required and may not be null", f->name);
                return -1;
            }
            snprintf(detail, len, "field '%s' may not be null", f->name);
            return -1;
        }
        if (check_field(f, v, detail, len)) return -1;
    }
    for (const bs_field_spec *f = fields; f->name; f++)
        if ((f->flags & BS_REQUIRED) && !json_object_get(body, f->name)) {
            snprintf(detail, len, "field '%s' is required", f->name);
            return -1;
        }
    return 0;
}

int bs_json_depth(const char *text, size_t len, int limit)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
            if (max > limit) return max;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return max;
}
