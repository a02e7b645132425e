/* Answer serialisation: compact JSON with every number in the shortest
 * decimal form that reads back to the same value (float32 for model
 * vectors, float64 for scores), instead of jansson's fixed 17 digits, which
 * roughly halves the size of embeddings and features responses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/buf.h"

#define MAX_DEPTH 64

int bs_json_fmt_float(float v, char out[32])
{
    if (!isfinite(v)) return snprintf(out, 32, "null");
    int n = 0;
    for (int p = 1; p <= 9; p++) {
        n = snprintf(out, 32, "%.*g", p, (double)v);
        if (strtof(out, NULL) == v) break;
    }
    return n;
}

int bs_json_fmt_double(double v, char out[32])
{
    if (!isfinite(v)) return snprintf(out, 32, "null");
    int n = 0;
    for (int p = 1; p <= 17; p++) {
        n = snprintf(out, 32, "%.*g", p, v);
        if (strtod(out, NULL) == v) break;
    }
    return n;
}

int bs_json_put_string(bs_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    bs_buf_putc(out, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        bs_buf_append(out, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        bs_buf_puts(out, esc);
    }
    bs_buf_append(out, s + len - run, run);
    return bs_buf_putc(out, '"');
}

static int in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (!strcmp(*list, s)) return 1;
    return 0;
}

static void write_value(const json_t *j, const char *const *float_keys, int as_float, int depth,
                        bs_buf *out)
{
    char num[32];
    if (depth > MAX_DEPTH) {
        bs_buf_puts(out, "null");
        return;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int first = 1;
        bs_buf_putc(out, '{');
        json_object_foreach((json_t *)j, k, v)
        {
            if (!first) bs_buf_putc(out, ',');
            first = 0;
            bs_json_put_string(out, k, strlen(k));
            bs_buf_putc(out, ':');
            write_value(v, float_keys, as_float || in_list(float_keys, k), depth + 1, out);
        }
        bs_buf_putc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        bs_buf_putc(out, '[');
        json_array_foreach(j, i, v)
        {
            if (i) bs_buf_putc(out, ',');
            write_value(v, float_keys, as_float, depth + 1, out);
        }
        bs_buf_putc(out, ']');
        break;
    }
    case JSON_STRING:
        bs_json_put_string(out, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        bs_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL: {
        double d = json_real_value(j);
        int n = as_float ? bs_json_fmt_float((float)d, num) : bs_json_fmt_double(d, num);
        bs_buf_append(out, num, (size_t)n);
        break;
    }
    case JSON_TRUE:
        bs_buf_puts(out, "true");
        break;
    case JSON_FALSE:
        bs_buf_puts(out, "false");
        break;
    default:
        bs_buf_puts(out, "null");
        break;
    }
}

int bs_json_write(const json_t *json, const char *const *float_keys, struct bs_buf *out)
{
    write_value(json, float_keys, 0, 0, out);
    return out->oom ? BS_ENOMEM : 0;
}
