/* The C side of the differential tokenizer test: loads one tokenizer.json,
 * then answers one JSON request per stdin line with one JSON line:
 *   {"t": text, "p": pair|null, "ml": max_length (0 = none), "st": stride,
 *    "s": "longest_first"|"only_first"|"only_second", "left": bool}
 *   → {"e": [{"ids": [...], "off": [[s, e], ...]}, ...windows...],
 *      "d": [decoded skipping special tokens, decoded with them]} or {"err": msg}
 * Windows follow tokenizers 0.23 (the reference the test compares with). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"

static json_t *enc_json(const bs_encoding *e)
{
    json_t *ids = json_array(), *off = json_array();
    for (size_t i = 0; i < e->len; i++) {
        json_array_append_new(ids, json_integer(e->ids[i]));
        json_array_append_new(
            off, json_pack("[II]", (json_int_t)e->offsets[i].start, (json_int_t)e->offsets[i].end));
    }
    return json_pack("{soso}", "ids", ids, "off", off);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tok_driver TOKENIZER_JSON\n");
        return 2;
    }
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load(argv[1], &tok, &err)) {
        fprintf(stderr, "tok_driver: %s\n", err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *rq = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je), *out;
        if (!rq) {
            fprintf(stderr, "tok_driver: bad request: %s\n", je.text);
            return 1;
        }
        bs_encode_opts o;
        bs_encode_opts_default(&o);
        json_t *t = json_object_get(rq, "t"), *p = json_object_get(rq, "p");
        json_int_t ml = json_integer_value(json_object_get(rq, "ml"));
        if (ml > 0) {
            const char *s = json_string_value(json_object_get(rq, "s"));
            o.truncation.strategy = !strcmp(s, "only_first")    ? BS_TRUNC_ONLY_FIRST
                                    : !strcmp(s, "only_second") ? BS_TRUNC_ONLY_SECOND
                                                                : BS_TRUNC_LONGEST_FIRST;
            o.truncation.max_length = (size_t)ml;
            o.truncation.stride = (size_t)json_integer_value(json_object_get(rq, "st"));
            o.truncation.direction =
                json_is_true(json_object_get(rq, "left")) ? BS_DIR_LEFT : BS_DIR_RIGHT;
        }
        bs_encoding *e;
        int rc = bs_tokenizer_encode(tok, json_string_value(t), json_string_length(t),
                                     json_is_string(p) ? json_string_value(p) : NULL,
                                     json_is_string(p) ? json_string_length(p) : 0, &o, &e, &err);
        if (rc) {
            out = json_pack("{ss}", "err", err.msg);
        } else {
            json_t *arr = json_array();
            json_array_append_new(arr, enc_json(e));
            for (size_t i = 0; i < e->n_overflowing; i++)
                json_array_append_new(arr, enc_json(&e->overflowing[i]));
            json_t *d = json_array();
            for (int skip = 1; skip >= 0; skip--) {
                char *txt;
                size_t tl = 0;
                if (bs_tokenizer_decode_len(tok, e->ids, e->len, skip, &txt, &tl, &err)) {
                    txt = strdup("<decode error>");
                    tl = strlen(txt);
                }
                json_array_append_new(d, json_stringn(txt, tl));
                free(txt);
            }
            out = json_pack("{soso}", "e", arr, "d", d);
            bs_encoding_free(e);
        }
        char *s = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
        json_decref(out);
        json_decref(rq);
    }
    free(line);
    bs_tokenizer_free(tok);
    return 0;
}
