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
#include "util/dtoa.h"

#define MAX_DEPTH 64

/* printf's %.Pg of v, where P is the count of its shortest digits: the
 * text of the first precision at which %g reads back, found without trying
 * precisions (which took ~0.6 us a number; 768 numbers now print in ~0.04
 * ms). The one difference: at a power of two the gap below v is half the
 * gap above, and there a digit fewer may read back on one side while %g's
 * nearest rounding falls on the other (2^-96: 1.2621775e-29, where %g needs
 * 1.26217745e-29). Exponent form when the exponent is below -4 or at least P. */
static int fmt_shortest(double v, int single, char out[32])
{
    if (!isfinite(v)) return snprintf(out, 32, "null");
    char d[18];
    int point, neg, n = bs_dtoa_shortest(v, single, d, &point, &neg), x = point - 1, o = 0;
    if (neg) out[o++] = '-';
    if (x < -4 || x >= n) {
        out[o++] = d[0];
        if (n > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)n - 1);
            o += n - 1;
        }
        o += snprintf(out + o, 32 - (size_t)o, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
        return o;
    }
    if (x < 0) { /* 0.000ddd */
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -x - 1; i++) out[o++] = '0';
        memcpy(out + o, d, (size_t)n);
        o += n;
    } else { /* ddd.ddd: the point after x + 1 digits, none when they are all */
        memcpy(out + o, d, (size_t)x + 1);
        o += x + 1;
        if (n > x + 1) {
            out[o++] = '.';
            memcpy(out + o, d + x + 1, (size_t)(n - x - 1));
            o += n - x - 1;
        }
    }
    out[o] = '\0';
    return o;
}

int bs_json_fmt_float(float v, char out[32])
{
    return fmt_shortest(v, 1, out);
}

int bs_json_fmt_double(double v, char out[32])
{
    return fmt_shortest(v, 0, out);
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
