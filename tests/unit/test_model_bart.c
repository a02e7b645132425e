/* model (BART): encoder output and teacher-forced decoder logits of
 * tests/fixtures/models/tiny-bart/expected.json, KV-cache decoding step by
 * step against the full teacher-forced pass, and beam reordering of the cache. */
#include "testutil.h"

#include "bertstudio/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bart_fx {
    bs_model *m;
    json_t *j;
    int n, S, len[8];
    int32_t ids[8][256];
    int32_t dec[8][8];
    int n_dec;
} bart_fx;

static int setup(void **state)
{
    bart_fx *f = calloc(1, sizeof *f);
    bs_err err = {0};
    bs_model_opts o = {.n_threads = 2};
    int rc = bs_model_load(bs_test_fixture("models/tiny-bart"), &o, &f->m, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    json_error_t je;
    f->j = json_load_file(bs_test_fixture("models/tiny-bart/expected.json"), 0, &je);
    assert_non_null(f->j);
    json_t *ids = json_object_get(f->j, "input_ids"),
           *mask = json_object_get(f->j, "attention_mask");
    json_t *dec = json_object_get(f->j, "decoder_input_ids");
    f->n = (int)json_array_size(ids);
    f->S = (int)json_array_size(json_array_get(ids, 0));
    f->n_dec = (int)json_array_size(json_array_get(dec, 0));
    for (int r = 0; r < f->n; r++) {
        for (int i = 0; i < f->S; i++) {
            f->ids[r][i] = (int32_t)json_integer_value(json_array_get(json_array_get(ids, r), i));
            if (json_integer_value(json_array_get(json_array_get(mask, r), i)) == 1)
                f->len[r] = i + 1;
        }
        for (int i = 0; i < f->n_dec; i++)
            f->dec[r][i] = (int32_t)json_integer_value(json_array_get(json_array_get(dec, r), i));
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    bart_fx *f = *state;
    json_decref(f->j);
    bs_model_free(f->m);
    free(f);
    return 0;
}

static bs_encoder_state *encode(bart_fx *f)
{
    bs_seq seqs[8];
    for (int r = 0; r < f->n; r++) seqs[r] = (bs_seq){f->ids[r], NULL, f->len[r]};
    bs_batch b = {seqs, f->n};
    bs_encoder_state *st = NULL;
    bs_err err = {0};
    int rc = bs_model_encode(f->m, &b, &st, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return st;
}

static void test_info(void **state)
{
    bart_fx *f = *state;
    assert_string_equal(bs_model_type(f->m), "bart");
    assert_int_equal(bs_model_head(f->m), BS_HEAD_SEQ2SEQ_LM);
    assert_int_equal(bs_model_vocab_size(f->m), 50265);
    assert_int_equal(bs_model_max_seq_len(f->m), 128);
    assert_non_null(strstr(bs_model_config_json(f->m), "task_specific_params"));
    assert_non_null(strstr(bs_model_generation_config_json(f->m), "forced_bos_token_id"));
}

static void test_encoder(void **state)
{
    bart_fx *f = *state;
    bs_encoder_state *st = encode(f);
    int32_t T;
    const float *h = bs_encoder_state_hidden(st, &T);
    json_t *exp = json_object_get(f->j, "encoder_last_hidden_state");
    int H = bs_model_hidden_size(f->m), t = 0;
    double d = 0;
    for (int r = 0; r < f->n; r++)
        for (int p = 0; p < f->len[r]; p++, t++)
            for (int k = 0; k < H; k++) {
                double e =
                    json_number_value(json_array_get(json_array_get(json_array_get(exp, r), p), k));
                d = fmax(d, fabs(h[(size_t)t * H + k] - e));
            }
    assert_int_equal(T, t);
    printf("  encoder max abs diff %.3g\n", d);
    assert_true(d <= 1e-4);

    /* bs_model_forward's last_hidden_state is the same encoder output. */
    bs_seq seqs[8];
    for (int r = 0; r < f->n; r++) seqs[r] = (bs_seq){f->ids[r], NULL, f->len[r]};
    bs_batch b = {seqs, f->n};
    bs_model_outputs o;
    bs_model_outputs_init(&o);
    o.want = BS_OUT_HIDDEN;
    assert_int_equal(bs_model_forward(f->m, &b, &o, NULL), 0);
    for (size_t i = 0; i < (size_t)T * H; i++)
        assert_true(fabsf(o.last_hidden_state[i] - h[i]) <= 1e-6f);
    bs_model_outputs_release(&o);
    bs_encoder_state_free(st);
}

/* Teacher-forced logits [n][n_dec][V] in one decode call. */
static float *teacher_forced(bart_fx *f, bs_encoder_state *st)
{
    int V = bs_model_vocab_size(f->m);
    int32_t rows[8], toks[64];
    for (int r = 0; r < f->n; r++) {
        rows[r] = r;
        for (int i = 0; i < f->n_dec; i++) toks[r * f->n_dec + i] = f->dec[r][i];
    }
    bs_kv_cache *c = NULL;
    assert_int_equal(bs_kv_cache_new(f->m, st, rows, f->n, 16, &c, NULL), 0);
    float *lg = malloc((size_t)f->n * f->n_dec * V * sizeof *lg);
    bs_err err = {0};
    int rc = bs_model_decode(f->m, c, toks, f->n_dec, lg, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(bs_kv_cache_len(c), f->n_dec);
    bs_kv_cache_free(c);
    return lg;
}

static void test_decoder_teacher_forced(void **state)
{
    bart_fx *f = *state;
    bs_encoder_state *st = encode(f);
    float *lg = teacher_forced(f, st);
    int V = bs_model_vocab_size(f->m);
    json_t *exp = json_object_get(f->j, "decoder_logits");
    double d = 0;
    for (int r = 0; r < f->n; r++)
        for (int i = 0; i < f->n_dec; i++) {
            json_t *row = json_array_get(json_array_get(exp, r), i);
            assert_int_equal((int)json_array_size(row), V);
            for (int v = 0; v < V; v++)
                d = fmax(d, fabs(lg[((size_t)r * f->n_dec + i) * V + v] -
                                 json_number_value(json_array_get(row, v))));
        }
    printf("  decoder logits max abs diff %.3g\n", d);
    assert_true(d <= 1e-4);
    free(lg);
    bs_encoder_state_free(st);
}

static void test_kv_cache_steps(void **state)
{
    bart_fx *f = *state;
    bs_encoder_state *st = encode(f);
    float *full = teacher_forced(f, st);
    int V = bs_model_vocab_size(f->m);
    int32_t rows[8];
    for (int r = 0; r < f->n; r++) rows[r] = r;
    bs_kv_cache *c = NULL;
    assert_int_equal(bs_kv_cache_new(f->m, st, rows, f->n, f->n_dec, &c, NULL), 0);
    float *lg = malloc((size_t)f->n * V * sizeof *lg);
    double d = 0;
    for (int i = 0; i < f->n_dec; i++) {
        int32_t toks[8];
        for (int r = 0; r < f->n; r++) toks[r] = f->dec[r][i];
        assert_int_equal(bs_model_decode_step(f->m, c, toks, lg, NULL), 0);
        for (int r = 0; r < f->n; r++)
            for (int v = 0; v < V; v++)
                d = fmax(d, fabs(lg[(size_t)r * V + v] - full[((size_t)r * f->n_dec + i) * V + v]));
    }
    printf("  step-by-step vs teacher-forced max abs diff %.3g\n", d);
    assert_true(d <= 1e-5);
    /* The cache is full: one more token is a clear error, not an overflow. */
    bs_err err = {0};
    int32_t toks[8] = {0};
    assert_int_equal(bs_model_decode_step(f->m, c, toks, lg, &err), BS_ERANGE);
    assert_non_null(strstr(err.msg, "max_len"));
    bs_kv_cache_free(c);
    free(lg);
    free(full);
    bs_encoder_state_free(st);
}

/* Beam-style reorder: after step 1, rows swap (and one is duplicated); the
 * next step must give what the source rows would have given. */
static void test_kv_cache_reorder(void **state)
{
    bart_fx *f = *state;
    assert_true(f->n >= 2);
    bs_encoder_state *st = encode(f);
    float *full = teacher_forced(f, st);
    int V = bs_model_vocab_size(f->m);
    int32_t rows[3] = {0, 1, 1};
    bs_kv_cache *c = NULL;
    assert_int_equal(bs_kv_cache_new(f->m, st, rows, 3, 8, &c, NULL), 0);
    float *lg = malloc(3 * (size_t)V * sizeof *lg);
    int32_t t0[3] = {f->dec[0][0], f->dec[1][0], f->dec[1][0]};
    assert_int_equal(bs_model_decode_step(f->m, c, t0, lg, NULL), 0);
    int32_t src[3] = {2, 0, 0};
    assert_int_equal(bs_kv_cache_reorder(c, src, 3, NULL), 0);
    int32_t t1[3] = {f->dec[1][1], f->dec[0][1], f->dec[0][1]};
    assert_int_equal(bs_model_decode_step(f->m, c, t1, lg, NULL), 0);
    int from[3] = {1, 0, 0};
    double d = 0;
    for (int r = 0; r < 3; r++)
        for (int v = 0; v < V; v++)
            d = fmax(d,
                     fabs(lg[(size_t)r * V + v] - full[((size_t)from[r] * f->n_dec + 1) * V + v]));
    assert_true(d <= 1e-5);
    /* Dropping rows. */
    int32_t keep[1] = {1};
    assert_int_equal(bs_kv_cache_reorder(c, keep, 1, NULL), 0);
    assert_int_equal(bs_kv_cache_rows(c), 1);
    int32_t t2[1] = {f->dec[0][2]};
    assert_int_equal(bs_model_decode_step(f->m, c, t2, lg, NULL), 0);
    d = 0;
    for (int v = 0; v < V; v++) d = fmax(d, fabs(lg[v] - full[((size_t)0 * f->n_dec + 2) * V + v]));
    assert_true(d <= 1e-5);
    bs_err err = {0};
    int32_t bad[1] = {5};
    assert_int_equal(bs_kv_cache_reorder(c, bad, 1, &err), BS_EINVAL);
    bs_kv_cache_free(c);
    free(lg);
    free(full);
    bs_encoder_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_decoder_teacher_forced),
        cmocka_unit_test(test_kv_cache_steps),
        cmocka_unit_test(test_kv_cache_reorder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
