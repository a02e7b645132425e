/* `bertstudio tokenize`: encodes texts with a model folder's tokenizer and
 * prints the encodings as JSON, either from arguments (one line per input)
 * or from a /tokenize-shaped request on stdin (--json). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"
#include "cli/cli.h"

static void usage(void)
{
    printf(
        "usage: bertstudio tokenize --model DIR [--pair TEXT2] [--max-length N] [--stride N]\n"
        "                           [--truncation longest_first|only_first|only_second] TEXT...\n"
        "       bertstudio tokenize --model DIR --json < request.json\n\n"
        "Prints, per input, {\"input_ids\", \"token_type_ids\", \"attention_mask\", \"tokens\",\n"
        "\"offsets\"} (offsets in code points of the input; with --max-length and --stride the\n"
        "rest of the text comes back under \"overflowing\", windows covering all of it).\n"
        "--json reads {\"text\": string or list, \"text_pair\", \"max_length\", \"stride\"} from\n"
        "stdin and prints {\"results\": [...]}.\n");
}

static json_t *enc_json(const bs_encoding *e, int with_windows)
{
    json_t *ids = json_array(), *tt = json_array(), *am = json_array(), *tk = json_array(),
           *off = json_array();
    for (size_t i = 0; i < e->len; i++) {
        json_array_append_new(ids, json_integer(e->ids[i]));
        json_array_append_new(tt, json_integer(e->type_ids[i]));
        json_array_append_new(am, json_integer(e->attention_mask[i]));
        json_array_append_new(tk, json_string(e->tokens[i]));
        json_array_append_new(
            off, json_pack("[II]", (json_int_t)e->offsets[i].start, (json_int_t)e->offsets[i].end));
    }
    json_t *o = json_pack("{sososososo}", "input_ids", ids, "token_type_ids", tt, "attention_mask",
                          am, "tokens", tk, "offsets", off);
    if (with_windows && e->n_overflowing) {
        json_t *w = json_array();
        for (size_t i = 0; i < e->n_overflowing; i++)
            json_array_append_new(w, enc_json(&e->overflowing[i], 0));
        json_object_set_new(o, "overflowing", w);
    }
    return o;
}

/* A length flag: 0..1000000. */
static int parse_size(const char *s, size_t *out)
{
    long v = bs_cli_parse_count(s, 0, 1000000);
    if (v < 0) return -1;
    *out = (size_t)v;
    return 0;
}

static int encode_print(const bs_tokenizer *tok, const char *text, size_t tl, const char *pair,
                        size_t pl, const bs_encode_opts *o, json_t *results)
{
    bs_encoding *e;
    bs_err err;
    if (bs_tokenizer_encode(tok, text, tl, pair, pl, o, &e, &err)) {
        fprintf(stderr, "bertstudio: tokenize: %s\n", err.msg);
        return err.code == BS_ENOMEM ? 1 : 2;
    }
    json_t *j = enc_json(e, 1);
    bs_encoding_free(e);
    if (results) {
        json_array_append_new(results, j);
    } else {
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
    }
    return 0;
}

static int from_json(const bs_tokenizer *tok, bs_encode_opts *o)
{
    json_error_t je;
    json_t *rq = json_loadf(stdin, JSON_ALLOW_NUL, &je);
    if (!json_is_object(rq)) {
        json_decref(rq);
        return bs_cli_usage_error("tokenize --json: stdin is not a JSON object (%s)", je.text);
    }
    int rc = 0;
    json_t *text = json_object_get(rq, "text"), *pair = json_object_get(rq, "text_pair");
    json_t *ml = json_object_get(rq, "max_length"), *st = json_object_get(rq, "stride");
    int list = json_is_array(text);
    size_t n = list ? json_array_size(text) : 1;
    if (!json_is_string(text) && !(list && n > 0)) {
        rc = bs_cli_usage_error(
            "tokenize --json: text must be a string or a non-empty list of strings");
        goto out;
    }
    if (pair && !json_is_null(pair) &&
        !(list ? json_is_array(pair) && json_array_size(pair) == n : json_is_string(pair))) {
        rc = bs_cli_usage_error(
            "tokenize --json: text_pair must match text (a string, or a list of the same length)");
        goto out;
    }
    if (ml && !json_is_null(ml)) {
        if (!json_is_integer(ml) || json_integer_value(ml) < 1 ||
            json_integer_value(ml) > 1000000) {
            rc = bs_cli_usage_error("tokenize --json: max_length must be a positive integer");
            goto out;
        }
        o->truncation.strategy = BS_TRUNC_LONGEST_FIRST;
        o->truncation.max_length = (size_t)json_integer_value(ml);
    }
    if (st && !json_is_null(st)) {
        if (!json_is_integer(st) || json_integer_value(st) < 0 ||
            json_integer_value(st) > 1000000) {
            rc = bs_cli_usage_error("tokenize --json: stride must be a non-negative integer");
            goto out;
        }
        o->truncation.stride = (size_t)json_integer_value(st);
    }
    json_t *results = json_array();
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *t = list ? json_array_get(text, i) : text;
        json_t *p = pair && !json_is_null(pair) ? (list ? json_array_get(pair, i) : pair) : NULL;
        if (!json_is_string(t) || (p && !json_is_string(p))) {
            rc = bs_cli_usage_error("tokenize --json: text[%zu] and text_pair[%zu] must be strings",
                                    i, i);
            break;
        }
        rc = encode_print(tok, json_string_value(t), json_string_length(t),
                          p ? json_string_value(p) : NULL, p ? json_string_length(p) : 0, o,
                          results);
    }
    if (!rc) {
        json_t *out = json_pack("{so}", "results", results);
        char *s = json_dumps(out, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(out);
    } else {
        json_decref(results);
    }
out:
    json_decref(rq);
    return rc;
}

int bs_cli_tokenize(int argc, char **argv)
{
    const char *model = NULL, *pair = NULL, *strategy = NULL;
    int json_mode = 0, first_text = 0;
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.truncation.full_coverage_windows = 1;
    size_t max_len = 0, stride = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--model") && has)
            model = argv[++i];
        else if (!strcmp(a, "--pair") && has)
            pair = argv[++i];
        else if (!strcmp(a, "--truncation") && has)
            strategy = argv[++i];
        else if (!strcmp(a, "--max-length") && has) {
            if (parse_size(argv[++i], &max_len) || !max_len)
                return bs_cli_usage_error("tokenize: --max-length needs a positive integer");
        } else if (!strcmp(a, "--stride") && has) {
            if (parse_size(argv[++i], &stride))
                return bs_cli_usage_error("tokenize: --stride needs a non-negative integer");
        } else if (!strcmp(a, "--json"))
            json_mode = 1;
        else if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (a[0] == '-' && a[1] == '-')
            return bs_cli_usage_error("tokenize: unknown option %s (see --help)", a);
        else {
            first_text = i;
            break;
        }
    }
    if (!model) return bs_cli_usage_error("tokenize: --model DIR is required (see --help)");
    if (!json_mode && (!first_text || first_text >= argc))
        return bs_cli_usage_error("tokenize: give at least one TEXT (or --json)");
    if (max_len) {
        o.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
        o.truncation.max_length = max_len;
        o.truncation.stride = stride;
    }
    if (strategy) {
        if (!strcmp(strategy, "longest_first"))
            o.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
        else if (!strcmp(strategy, "only_first"))
            o.truncation.strategy = BS_TRUNC_ONLY_FIRST;
        else if (!strcmp(strategy, "only_second"))
            o.truncation.strategy = BS_TRUNC_ONLY_SECOND;
        else
            return bs_cli_usage_error(
                "tokenize: --truncation must be longest_first, only_first or only_second");
        if (!max_len) return bs_cli_usage_error("tokenize: --truncation needs --max-length");
    }
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load(model, &tok, &err)) {
        fprintf(stderr, "bertstudio: tokenize: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (json_mode) {
        rc = from_json(tok, &o);
    } else {
        for (int i = first_text; i < argc && !rc; i++)
            rc = encode_print(tok, argv[i], strlen(argv[i]), pair, pair ? strlen(pair) : 0, &o,
                              NULL);
    }
    bs_tokenizer_free(tok);
    return rc;
}
