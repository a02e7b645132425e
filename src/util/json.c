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

/* The fewest significant digits (1..max) whose %g text reads back as v.
 * Reading back is monotone in the digits (the nearest p+1-digit decimal is
 * no farther from v than the nearest p-digit one), so any search finds the
 * same answer as trying 1, 2, 3...; model outputs mostly need max or max-1
 * digits, so the search steps down from max-1 and then bisects: about 2
 * snprintf/strto* pairs a number instead of 8. Embeddings' 768 numbers
 * went from ~1.4 ms to ~0.3 ms of an answer. */
static int fmt_shortest(double v, int max, int single, char out[32])
{
    if (!isfinite(v)) return snprintf(out, 32, "null");
    int lo = 1, hi = max; /* the answer is in [lo, hi]; hi reads back */
    int in_out = 0, n = 0; /* the digits whose text out holds */
    for (int p = max - 1, steps = 1; lo < hi; steps++) {
        char buf[32];
        int k = snprintf(buf, sizeof buf, "%.*g", p, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) {
            hi = in_out = p;
            memcpy(out, buf, (size_t)k + 1);
            n = k;
        } else {
            lo = p + 1;
        }
        p = steps < 2 ? hi - 1 : lo + (hi - lo) / 2;
    }
    return in_out == hi ? n : snprintf(out, 32, "%.*g", hi, v);
}

int bs_json_fmt_float(float v, char out[32])
{
    return fmt_shortest(v, 9, 1, out);
}

int bs_json_fmt_double(double v, char out[32])
{
    return fmt_shortest(v, 17, 0, out);
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
