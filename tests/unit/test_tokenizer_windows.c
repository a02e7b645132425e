/* Full-coverage overflowing windows (what the QA pipeline uses): the window
 * rule of tests/fixtures/pipelines/README.md ("QA") checked token by token,
 * and the window counts recorded in pipelines/qa.jsonl. Also checks that the
 * default (tokenizers 0.23) mode keeps the same first window. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"
#include "testutil.h"

/* Checks every window of e against the rule; returns the window count or -1. */
static int check_rule(const bs_tokenizer *tok, const char *q, const char *ctx, size_t max_len,
                      size_t stride, const bs_encoding *e)
{
    bs_encode_opts plain;
    bs_encode_opts_default(&plain);
    plain.add_special_tokens = 0;
    bs_encoding *qe, *ce;
    bs_err err;
    if (bs_tokenizer_encode(tok, q, strlen(q), NULL, 0, &plain, &qe, &err)) return -1;
    if (bs_tokenizer_encode(tok, ctx, strlen(ctx), NULL, 0, &plain, &ce, &err)) return -1;
    size_t C = ce->len, total = qe->len + C + bs_tokenizer_num_special_tokens(tok, 1);
    size_t R = max_len - (total - C);
    int ok = 1, count = 0;
    size_t start = 0;
    for (size_t w = 0; w <= e->n_overflowing && ok; w++) {
        const bs_encoding *x = w ? &e->overflowing[w - 1] : e;
        size_t n = R < C - start ? R : C - start, k = 0;
        for (size_t i = 0; i < x->len; i++) {
            if (x->sequence_ids[i] != 1) continue;
            if (start + k >= C || x->ids[i] != ce->ids[start + k] ||
                x->offsets[i].start != ce->offsets[start + k].start)
                ok = 0;
            k++;
        }
        if (k != n) ok = 0;
        count++;
        if (start + n >= C) {
            if (w != e->n_overflowing) ok = 0; /* the last window reaches the end */
            break;
        }
        start += R - stride;
    }
    bs_encoding_free(qe);
    bs_encoding_free(ce);
    return ok ? count : -1;
}

static void test_qa_windows(void **state)
{
    (void)state;
    size_t len;
    char *text = bs_test_read_file(bs_test_fixture("pipelines/qa.jsonl"), &len);
    assert_non_null(text);
    size_t n = 0, multi = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *c = json_loads(line, 0, NULL);
        assert_non_null(c);
        json_t *rq = json_object_get(c, "request");
        bs_tokenizer *tok;
        bs_err err;
        const char *model = json_string_value(json_object_get(c, "model"));
        if (bs_tokenizer_load(bs_test_fixture("models/%s", model), &tok, &err))
            fail_msg("%s", err.msg);
        size_t mml = bs_tokenizer_model_max_length(tok);
        json_t *v = json_object_get(rq, "max_seq_len");
        size_t max_len =
            json_is_integer(v) ? (size_t)json_integer_value(v) : (mml && mml < 384 ? mml : 384);
        v = json_object_get(rq, "doc_stride");
        size_t stride = json_is_integer(v) ? (size_t)json_integer_value(v)
                                           : (max_len / 2 < 128 ? max_len / 2 : 128);
        const char *q = json_string_value(json_object_get(rq, "question"));
        const char *ctx = json_string_value(json_object_get(rq, "context"));
        bs_encode_opts o;
        bs_encode_opts_default(&o);
        o.truncation.strategy = BS_TRUNC_ONLY_SECOND;
        o.truncation.max_length = max_len;
        o.truncation.stride = stride;
        o.truncation.full_coverage_windows = 1;
        bs_encoding *e, *e023;
        if (bs_tokenizer_encode(tok, q, strlen(q), ctx, strlen(ctx), &o, &e, &err))
            fail_msg("%s: %s", json_string_value(json_object_get(c, "id")), err.msg);
        int windows = check_rule(tok, q, ctx, max_len, stride, e);
        if (windows != (int)json_integer_value(json_object_get(c, "windows")))
            fail_msg("%s: %d windows, want %lld", json_string_value(json_object_get(c, "id")),
                     windows, (long long)json_integer_value(json_object_get(c, "windows")));
        multi += windows > 1;
        o.truncation.full_coverage_windows = 0;
        assert_int_equal(bs_tokenizer_encode(tok, q, strlen(q), ctx, strlen(ctx), &o, &e023, &err),
                         0);
        assert_int_equal(e023->len, e->len);
        assert_memory_equal(e023->ids, e->ids, e->len * sizeof *e->ids);
        assert_true(e023->n_overflowing <= e->n_overflowing);
        bs_encoding_free(e);
        bs_encoding_free(e023);
        bs_tokenizer_free(tok);
        json_decref(c);
        n++;
    }
    free(text);
    printf("qa windows: %zu cases match (%zu with several windows)\n", n, multi);
    assert_true(n >= 20);
    assert_true(multi >= 5);
}

/* A long context on the full tokenizers: the complete set of windows covers
 * every context token, while 0.23 mode stops early. Stride too large errs. */
static void test_full_coverage_long(void **state)
{
    (void)state;
    bs_tokenizer *tok;
    bs_err err;
    assert_int_equal(bs_tokenizer_load(bs_test_fixture("tokenizers/bert-base-uncased"), &tok, &err),
                     0);
    char ctx[20000] = "";
    for (int i = 0; i < 300; i++) strcat(ctx, i % 7 ? "alpha beta gamma " : "Paris, France. ");
    const char *q = "Where is it?";
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.truncation.strategy = BS_TRUNC_ONLY_SECOND;
    o.truncation.max_length = 64;
    o.truncation.stride = 16;
    o.truncation.full_coverage_windows = 1;
    bs_encoding *e, *e023;
    assert_int_equal(bs_tokenizer_encode(tok, q, strlen(q), ctx, strlen(ctx), &o, &e, &err), 0);
    assert_true(check_rule(tok, q, ctx, 64, 16, e) > 10);
    o.truncation.full_coverage_windows = 0;
    assert_int_equal(bs_tokenizer_encode(tok, q, strlen(q), ctx, strlen(ctx), &o, &e023, &err), 0);
    assert_true(e023->n_overflowing < e->n_overflowing);
    bs_encoding_free(e);
    bs_encoding_free(e023);
    o.truncation.stride = 60;
    o.truncation.full_coverage_windows = 1;
    assert_int_equal(bs_tokenizer_encode(tok, q, strlen(q), ctx, strlen(ctx), &o, &e, &err),
                     BS_EINVAL);
    assert_non_null(strstr(err.msg, "stride"));
    bs_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_qa_windows),
                                       cmocka_unit_test(test_full_coverage_long)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
