/* Every case of tests/fixtures/tokenizers/<name>/cases.jsonl (expected outputs
 * of HuggingFace tokenizers 0.23.2) must be reproduced exactly: ids, type ids,
 * masks, tokens, offsets (code points and bytes), word and sequence ids,
 * decoded text, the overflowing windows and errors. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"
#include "testutil.h"

static const char *const names[] = {
    "bert-base-uncased", "bert-base-cased", "bert-base-chinese", "bert-base-multilingual-cased",
    "roberta-base",      "bart-large-cnn",  "albert-base-v2"};

static int cmp_ints(json_t *exp, const int32_t *v, const uint8_t *u, size_t n, int null_neg)
{
    if (!json_is_array(exp) || json_array_size(exp) != n) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(exp, i);
        long long got = v ? v[i] : u[i];
        if (json_is_null(e)) {
            if (!null_neg || got != -1) return (int)i;
        } else if (!json_is_integer(e) || json_integer_value(e) != got) {
            return (int)i;
        }
    }
    return -2;
}

static int cmp_spans(json_t *exp, const bs_span *s, size_t n)
{
    if (!json_is_array(exp) || json_array_size(exp) != n) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(exp, i);
        if ((size_t)json_integer_value(json_array_get(e, 0)) != s[i].start ||
            (size_t)json_integer_value(json_array_get(e, 1)) != s[i].end)
            return (int)i;
    }
    return -2;
}

static int cmp_tokens(json_t *exp, char **t, size_t n)
{
    if (!json_is_array(exp) || json_array_size(exp) != n) return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(json_array_get(exp, i)), t[i])) return (int)i;
    return -2;
}

/* Compares one encoding; writes what differs into why. */
static int cmp_encoding(const bs_tokenizer *tok, json_t *x, const bs_encoding *e, char *why,
                        size_t wl)
{
    int r;
#define CHECK(expr, field)                                                                         \
    if ((r = (expr)) != -2) {                                                                      \
        snprintf(why, wl, "%s differs at %d (len %zu vs %zu)", field, r, e->len,                   \
                 json_array_size(json_object_get(x, field)));                                      \
        return 1;                                                                                  \
    }
    CHECK(cmp_ints(json_object_get(x, "ids"), e->ids, NULL, e->len, 0), "ids");
    CHECK(cmp_tokens(json_object_get(x, "tokens"), e->tokens, e->len), "tokens");
    CHECK(cmp_ints(json_object_get(x, "type_ids"), e->type_ids, NULL, e->len, 0), "type_ids");
    CHECK(cmp_ints(json_object_get(x, "attention_mask"), NULL, e->attention_mask, e->len, 0),
          "attention_mask");
    CHECK(cmp_ints(json_object_get(x, "special_tokens_mask"), NULL, e->special_tokens_mask, e->len,
                   0),
          "special_tokens_mask");
    CHECK(cmp_ints(json_object_get(x, "word_ids"), e->word_ids, NULL, e->len, 1), "word_ids");
    CHECK(cmp_ints(json_object_get(x, "sequence_ids"), e->sequence_ids, NULL, e->len, 1),
          "sequence_ids");
    CHECK(cmp_spans(json_object_get(x, "offsets"), e->offsets, e->len), "offsets");
    CHECK(cmp_spans(json_object_get(x, "byte_offsets"), e->byte_offsets, e->len), "byte_offsets");
#undef CHECK
    for (int skip = 1; skip >= 0; skip--) {
        char *d = NULL;
        bs_err err;
        if (bs_tokenizer_decode(tok, e->ids, e->len, skip, &d, &err)) {
            snprintf(why, wl, "decode failed: %s", err.msg);
            return 1;
        }
        const char *want =
            json_string_value(json_object_get(x, skip ? "decoded" : "decoded_with_special"));
        int bad = !want || strcmp(want, d);
        if (bad)
            snprintf(why, wl, "%s: got \"%.200s\" want \"%.200s\"",
                     skip ? "decoded" : "decoded_with_special", d, want ? want : "");
        free(d);
        if (bad) return 1;
    }
    return 0;
}

static void opts_from(json_t *in, bs_encode_opts *o)
{
    bs_encode_opts_default(o);
    o->add_special_tokens = json_is_true(json_object_get(in, "add_special_tokens"));
    json_t *t = json_object_get(in, "truncation");
    if (json_is_object(t)) {
        const char *s = json_string_value(json_object_get(t, "strategy"));
        o->truncation.strategy = !strcmp(s, "longest_first") ? BS_TRUNC_LONGEST_FIRST
                                 : !strcmp(s, "only_first")  ? BS_TRUNC_ONLY_FIRST
                                                             : BS_TRUNC_ONLY_SECOND;
        o->truncation.max_length = (size_t)json_integer_value(json_object_get(t, "max_length"));
        o->truncation.stride = (size_t)json_integer_value(json_object_get(t, "stride"));
        o->truncation.direction =
            !strcmp(json_string_value(json_object_get(t, "direction")), "left") ? BS_DIR_LEFT
                                                                                : BS_DIR_RIGHT;
    }
    json_t *p = json_object_get(in, "padding");
    if (json_is_object(p)) {
        const char *s = json_string_value(json_object_get(p, "strategy"));
        o->padding.strategy = !strcmp(s, "longest") ? BS_PAD_LONGEST : BS_PAD_MAX_LENGTH;
        json_t *ml = json_object_get(p, "max_length"),
               *m = json_object_get(p, "pad_to_multiple_of");
        o->padding.max_length = json_is_integer(ml) ? (size_t)json_integer_value(ml) : 0;
        o->padding.pad_to_multiple_of = json_is_integer(m) ? (size_t)json_integer_value(m) : 0;
        o->padding.direction = !strcmp(json_string_value(json_object_get(p, "direction")), "left")
                                   ? BS_DIR_LEFT
                                   : BS_DIR_RIGHT;
    }
}

/* Runs one case; 0 = exact match. */
static int run_case(const bs_tokenizer *tok, json_t *c, char *why, size_t wl)
{
    json_t *in = json_object_get(c, "input"), *ex = json_object_get(c, "expected");
    bs_encode_opts o;
    opts_from(in, &o);
    json_t *texts = json_object_get(in, "texts"), *pairs = json_object_get(in, "text_pairs");
    size_t n = texts ? json_array_size(texts) : 1;
    const char **tv = calloc(n, sizeof *tv), **pv = calloc(n, sizeof *pv);
    size_t *tl = calloc(n, sizeof *tl), *pl = calloc(n, sizeof *pl);
    for (size_t i = 0; i < n; i++) {
        json_t *t = texts ? json_array_get(texts, i) : json_object_get(in, "text");
        json_t *p =
            texts ? (pairs ? json_array_get(pairs, i) : NULL) : json_object_get(in, "text_pair");
        tv[i] = json_string_value(t);
        tl[i] = json_string_length(t);
        pv[i] = p ? json_string_value(p) : NULL;
        pl[i] = p ? json_string_length(p) : 0;
    }
    bs_encoding **encs = NULL;
    bs_err err = {0};
    int rc = bs_tokenizer_encode_batch(tok, n, tv, tl, pv, pl, &o, &encs, &err);
    int bad = 0;
    if (json_object_get(ex, "error")) {
        if (!rc) {
            snprintf(why, wl, "expected an error (%s)",
                     json_string_value(json_object_get(ex, "error")));
            bad = 1;
            bs_encoding_batch_free(encs, n);
        }
        goto out;
    }
    if (rc) {
        snprintf(why, wl, "unexpected error: %s", err.msg);
        bad = 1;
        goto out;
    }
    json_t *xe = json_object_get(ex, "encodings"),
           *map = json_object_get(ex, "overflow_to_sample_mapping");
    size_t k = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        for (size_t w = 0; w <= encs[i]->n_overflowing && !bad; w++, k++) {
            const bs_encoding *e = w ? &encs[i]->overflowing[w - 1] : encs[i];
            if (k >= json_array_size(xe)) {
                snprintf(why, wl, "too many encodings (%zu+)", k + 1);
                bad = 1;
                break;
            }
            if ((size_t)json_integer_value(json_array_get(map, k)) != i) {
                snprintf(why, wl, "overflow_to_sample_mapping differs at %zu", k);
                bad = 1;
                break;
            }
            char w2[600];
            if (cmp_encoding(tok, json_array_get(xe, k), e, w2, sizeof w2)) {
                snprintf(why, wl, "encoding %zu: %s", k, w2);
                bad = 1;
            }
        }
    }
    if (!bad && k != json_array_size(xe)) {
        snprintf(why, wl, "got %zu encodings, want %zu", k, json_array_size(xe));
        bad = 1;
    }
    json_t *plain = json_object_get(ex, "plain");
    if (!bad && plain) {
        bs_encoding *e;
        bs_encode_opts po;
        bs_encode_opts_default(&po);
        po.add_special_tokens = 0;
        if (bs_tokenizer_encode(tok, tv[0], tl[0], NULL, 0, &po, &e, &err)) {
            snprintf(why, wl, "plain: error %s", err.msg);
            bad = 1;
        } else {
            if (cmp_tokens(json_object_get(plain, "tokens"), e->tokens, e->len) != -2 ||
                cmp_spans(json_object_get(plain, "offsets"), e->offsets, e->len) != -2) {
                snprintf(why, wl, "plain tokens/offsets differ");
                bad = 1;
            }
            bs_encoding_free(e);
        }
    }
    bs_encoding_batch_free(encs, n);
out:
    free(tv);
    free(pv);
    free(tl);
    free(pl);
    return bad;
}

/* Runs all cases of fixture `name` on tok; returns the number of failures. */
static size_t run_all(const bs_tokenizer *tok, const char *name, const char *label, size_t *count)
{
    size_t len;
    char *text = bs_test_read_file(bs_test_fixture("tokenizers/%s/cases.jsonl", name), &len);
    assert_non_null(text);
    size_t pass = 0, n = 0, shown = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *c = json_loads(line, JSON_ALLOW_NUL, &je);
        assert_non_null(c);
        char why[800] = "";
        n++;
        if (!run_case(tok, c, why, sizeof why))
            pass++;
        else if (shown++ < 8 || getenv("BS_TOK_VERBOSE"))
            printf("FAIL %s %s: %s\n", label, json_string_value(json_object_get(c, "id")), why);
        json_decref(c);
    }
    printf("%s: %zu/%zu cases pass\n", label, pass, n);
    free(text);
    *count = n;
    return n - pass;
}

static void test_cases(void **state)
{
    (void)state;
    const char *only = getenv("BS_TOK_ONLY");
    size_t total = 0, failed = 0;
    for (size_t t = 0; t < sizeof names / sizeof *names; t++) {
        if (only && strcmp(only, names[t])) continue;
        bs_tokenizer *tok;
        bs_err err;
        int rc = bs_tokenizer_load(bs_test_fixture("tokenizers/%s", names[t]), &tok, &err);
        if (rc) fail_msg("%s: %s", names[t], err.msg);
        size_t n;
        failed += run_all(tok, names[t], names[t], &n);
        total += n;
        bs_tokenizer_free(tok);
    }
    printf("all tokenizers: %zu/%zu cases pass\n", total - failed, total);
    assert_int_equal(failed, 0);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *b = bs_test_read_file(from, &len);
    assert_non_null(b);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    free(b);
}

/* The same cases through the older files: a folder with only vocab.txt (and
 * the tokenizer_config.json transformers would read) or vocab.json +
 * merges.txt must give the same outputs as tokenizer.json. */
static void test_legacy_cases(void **state)
{
    (void)state;
    static const struct {
        const char *name, *config;
    } legacy[] = {
        {"bert-base-uncased", "{\"do_lower_case\": true, \"model_max_length\": 512}"},
        {"bert-base-cased", "{\"do_lower_case\": false}"},
        {"bert-base-chinese", "{\"do_lower_case\": false}"},
        {"bert-base-multilingual-cased", "{\"do_lower_case\": false}"},
        {"roberta-base", "{\"model_max_length\": 512}"},
        {"bart-large-cnn", "{\"model_max_length\": 1024, \"clean_up_tokenization_spaces\": false}"},
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof legacy / sizeof *legacy; i++) {
        char dir[1024], to[1200], label[200];
        snprintf(dir, sizeof dir, "%s", bs_test_tmpdir(legacy[i].name));
        int wp = i < 4;
        const char *files[] = {wp ? "vocab.txt" : "vocab.json", wp ? NULL : "merges.txt"};
        for (int k = 0; k < 2; k++) {
            if (!files[k]) continue;
            snprintf(to, sizeof to, "%s/%s", dir, files[k]);
            copy_file(bs_test_fixture("tokenizers/%s/%s", legacy[i].name, files[k]), to);
        }
        snprintf(to, sizeof to, "%s/tokenizer_config.json", dir);
        FILE *f = fopen(to, "w");
        assert_non_null(f);
        fputs(legacy[i].config, f);
        fclose(f);
        bs_tokenizer *tok;
        bs_err err;
        if (bs_tokenizer_load(dir, &tok, &err)) fail_msg("%s: %s", dir, err.msg);
        assert_int_equal(bs_tokenizer_model_kind(tok), wp ? BS_MODEL_WORDPIECE : BS_MODEL_BPE);
        assert_int_equal(bs_tokenizer_model_max_length(tok), i == 5               ? 1024
                                                             : (i == 0 || i == 4) ? 512
                                                                                  : 0);
        assert_int_equal(bs_tokenizer_clean_up_tokenization_spaces(tok), i != 5);
        snprintf(label, sizeof label, "%s (legacy files)", legacy[i].name);
        size_t n;
        failed += run_all(tok, legacy[i].name, label, &n);
        bs_tokenizer_free(tok);
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cases),
                                       cmocka_unit_test(test_legacy_cases)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
