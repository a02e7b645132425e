/* model: every raw output of the encoder fixtures (tests/fixtures/models/
 * tiny-* expected.json) within the README tolerances, and batch invariance:
 * a sequence alone and inside a mixed-length batch give the same outputs. */
#include "testutil.h"

#include "bertstudio/model.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_case {
    int n;    /* rows */
    int *len; /* real tokens per row (attention_mask 1, right padding) */
    int32_t **ids, **types;
    json_t *j;
} fx_case;

static void case_load(json_t *c, fx_case *fc)
{
    json_t *ids = json_object_get(c, "input_ids"), *tt = json_object_get(c, "token_type_ids"),
           *mask = json_object_get(c, "attention_mask");
    fc->j = c;
    fc->n = (int)json_array_size(ids);
    fc->len = calloc((size_t)fc->n, sizeof *fc->len);
    fc->ids = calloc((size_t)fc->n, sizeof *fc->ids);
    fc->types = calloc((size_t)fc->n, sizeof *fc->types);
    for (int r = 0; r < fc->n; r++) {
        json_t *row = json_array_get(ids, (size_t)r), *mrow = json_array_get(mask, (size_t)r);
        size_t S = json_array_size(row);
        fc->ids[r] = calloc(S, sizeof(int32_t));
        fc->types[r] = calloc(S, sizeof(int32_t));
        for (size_t i = 0; i < S; i++) {
            fc->ids[r][i] = (int32_t)json_integer_value(json_array_get(row, i));
            if (tt)
                fc->types[r][i] =
                    (int32_t)json_integer_value(json_array_get(json_array_get(tt, (size_t)r), i));
            if (json_integer_value(json_array_get(mrow, i)) == 1) fc->len[r] = (int)i + 1;
        }
    }
}

static void case_free(fx_case *fc)
{
    for (int r = 0; r < fc->n; r++) {
        free(fc->ids[r]);
        free(fc->types[r]);
    }
    free(fc->ids);
    free(fc->types);
    free(fc->len);
}

static double num(json_t *a, int i, int j, int k)
{
    json_t *v = json_array_get(a, (size_t)i);
    if (j >= 0) v = json_array_get(v, (size_t)j);
    if (k >= 0) v = json_array_get(v, (size_t)k);
    assert_non_null(v);
    return json_number_value(v);
}

static double maxdiff(double cur, double a, double b)
{
    return fabs(a - b) > cur ? fabs(a - b) : cur;
}

/* Runs rows [r0, r1) of the case as one batch. */
static void run(bs_model *m, fx_case *fc, int r0, int r1, bs_model_outputs *o, int32_t *pos, int np)
{
    bs_seq seqs[16];
    for (int r = r0; r < r1; r++) {
        seqs[r - r0].input_ids = fc->ids[r];
        seqs[r - r0].token_type_ids = fc->types[r];
        seqs[r - r0].len = fc->len[r];
    }
    bs_batch b = {seqs, r1 - r0};
    o->want = BS_OUT_HIDDEN | (bs_model_has_pooler(m) ? BS_OUT_POOLED : 0) |
              (bs_model_head(m) != BS_HEAD_BASE ? BS_OUT_LOGITS : 0);
    o->mlm_positions = pos;
    o->n_mlm_positions = np;
    bs_err err = {0};
    int rc = bs_model_forward(m, &b, o, &err);
    if (rc) fprintf(stderr, "forward: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* The MLM rows to check: logits_positions (when given) inside each row, else all real tokens. */
static int mlm_positions(fx_case *fc, int r0, int r1, int32_t *pos, int *src_row, int *src_j)
{
    json_t *lp = json_object_get(fc->j, "logits_positions");
    int np = 0, base = 0;
    for (int r = r0; r < r1; r++) {
        if (lp) {
            for (size_t j = 0; j < json_array_size(lp); j++) {
                int p = (int)json_integer_value(json_array_get(lp, j));
                if (p >= fc->len[r]) continue;
                pos[np] = base + p;
                src_row[np] = r;
                src_j[np++] = (int)j;
            }
        } else {
            for (int p = 0; p < fc->len[r]; p++) {
                pos[np] = base + p;
                src_row[np] = r;
                src_j[np++] = p;
            }
        }
        base += fc->len[r];
    }
    return np;
}

static void check_model_in(const char *name, double tol, bs_precision prec)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", bs_test_fixture("models/%s", name));
    bs_model *m = NULL;
    bs_err err = {0};
    bs_model_opts opts = {.n_threads = 2, .precision = prec};
    int rc = bs_model_load(dir, &opts, &m, &err);
    if (rc) fprintf(stderr, "%s: %s\n", name, err.msg);
    assert_int_equal(rc, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json_error_t je;
    json_t *cases = json_load_file(path, 0, &je);
    assert_non_null(cases);
    int H = bs_model_hidden_size(m), head = bs_model_head(m);
    double worst = 0, worst_inv = 0;
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        fx_case fc;
        case_load(json_array_get(cases, ci), &fc);
        json_t *outs = json_object_get(fc.j, "outputs");
        int32_t pos[4096];
        int src_row[4096], src_j[4096];
        int np = head == BS_HEAD_MLM ? mlm_positions(&fc, 0, fc.n, pos, src_row, src_j) : 0;
        bs_model_outputs o;
        bs_model_outputs_init(&o);
        run(m, &fc, 0, fc.n, &o, pos, np);
        double d = 0;
        json_t *lhs = json_object_get(outs, "last_hidden_state");
        int t = 0;
        for (int r = 0; r < fc.n; r++)
            for (int p = 0; p < fc.len[r]; p++, t++)
                for (int h = 0; h < H; h++)
                    d = maxdiff(d, o.last_hidden_state[(size_t)t * H + h], num(lhs, r, p, h));
        json_t *po = json_object_get(outs, "pooler_output");
        assert_int_equal(po != NULL, bs_model_has_pooler(m));
        if (po)
            for (int r = 0; r < fc.n; r++)
                for (int h = 0; h < H; h++)
                    d = maxdiff(d, o.pooler_output[(size_t)r * H + h], num(po, r, h, -1));
        json_t *lg = json_object_get(outs, "logits");
        int L = o.n_labels;
        if (head == BS_HEAD_SEQ_CLS) {
            assert_int_equal(L, (int)json_array_size(json_array_get(lg, 0)));
            for (int r = 0; r < fc.n; r++)
                for (int l = 0; l < L; l++)
                    d = maxdiff(d, o.logits[(size_t)r * L + l], num(lg, r, l, -1));
        } else if (head == BS_HEAD_TOKEN_CLS) {
            t = 0;
            for (int r = 0; r < fc.n; r++)
                for (int p = 0; p < fc.len[r]; p++, t++)
                    for (int l = 0; l < L; l++)
                        d = maxdiff(d, o.logits[(size_t)t * L + l], num(lg, r, p, l));
        } else if (head == BS_HEAD_QA) {
            json_t *st = json_object_get(outs, "start_logits"),
                   *en = json_object_get(outs, "end_logits");
            t = 0;
            for (int r = 0; r < fc.n; r++)
                for (int p = 0; p < fc.len[r]; p++, t++) {
                    d = maxdiff(d, o.start_logits[t], num(st, r, p, -1));
                    d = maxdiff(d, o.end_logits[t], num(en, r, p, -1));
                }
        } else if (head == BS_HEAD_MLM) {
            assert_true(np > 0);
            for (int i = 0; i < np; i++)
                for (int v = 0; v < L; v++)
                    d = maxdiff(d, o.logits[(size_t)i * L + v], num(lg, src_row[i], src_j[i], v));
        }
        if (d > tol)
            fprintf(stderr, "%s case %s: max abs diff %g > %g\n", name,
                    json_string_value(json_object_get(fc.j, "id")), d, tol);
        assert_true(d <= tol);
        if (d > worst) worst = d;

        /* Batch invariance: each row alone vs inside the batch. */
        if (fc.n > 1) {
            float maxlogit = 1.0f;
            if (head == BS_HEAD_MLM)
                for (size_t i = 0; i < (size_t)np * L; i++)
                    maxlogit = fmaxf(maxlogit, fabsf(o.logits[i]));
            int base = 0, pbase = 0;
            for (int r = 0; r < fc.n; r++) {
                int32_t p1[4096];
                int sr[4096], sj[4096];
                int n1 = head == BS_HEAD_MLM ? mlm_positions(&fc, r, r + 1, p1, sr, sj) : 0;
                bs_model_outputs a;
                bs_model_outputs_init(&a);
                run(m, &fc, r, r + 1, &a, p1, n1);
                double di = 0;
                for (size_t i = 0; i < (size_t)fc.len[r] * H; i++)
                    di = maxdiff(di, a.last_hidden_state[i],
                                 o.last_hidden_state[(size_t)base * H + i]);
                if (a.pooler_output)
                    for (int h = 0; h < H; h++)
                        di = maxdiff(di, a.pooler_output[h], o.pooler_output[(size_t)r * H + h]);
                if (head == BS_HEAD_SEQ_CLS)
                    for (int l = 0; l < L; l++)
                        di = maxdiff(di, a.logits[l], o.logits[(size_t)r * L + l]);
                if (head == BS_HEAD_TOKEN_CLS)
                    for (size_t i = 0; i < (size_t)fc.len[r] * L; i++)
                        di = maxdiff(di, a.logits[i], o.logits[(size_t)base * L + i]);
                if (head == BS_HEAD_QA)
                    for (int p = 0; p < fc.len[r]; p++) {
                        di = maxdiff(di, a.start_logits[p], o.start_logits[base + p]);
                        di = maxdiff(di, a.end_logits[p], o.end_logits[base + p]);
                    }
                if (head == BS_HEAD_MLM) {
                    for (size_t i = 0; i < (size_t)n1 * L; i++)
                        di = maxdiff(di, a.logits[i] / maxlogit,
                                     o.logits[(size_t)pbase * L + i] / maxlogit);
                    pbase += n1;
                }
                if (di > worst_inv) worst_inv = di;
                assert_true(di <= 1e-5);
                bs_model_outputs_release(&a);
                base += fc.len[r];
            }
        }
        bs_model_outputs_release(&o);
        case_free(&fc);
    }
    printf("  %-32s %s max abs diff %.3g, batch invariance %.3g\n", name, bs_precision_name(prec),
           worst, worst_inv);
    json_decref(cases);
    bs_model_free(m);
}

static void check_model(const char *name, double tol)
{
    check_model_in(name, tol, BS_PRECISION_F32);
}

/* The bf16 precision: the same fixtures within bf16's error (8 significant
 * bits in the dense layers' inputs), batch invariance as exact as in F32. */
static void t_bf16(void **state)
{
    (void)state;
    if (!bs_precision_supported(BS_PRECISION_BF16)) {
        printf("  bf16 precision: this CPU lacks AVX512_BF16, not run\n");
        return;
    }
    /* Hidden states of size ~1 come within ~0.03 (absolute); MLM logits,
     * ~10x larger, within ~0.12. A wrong kernel is off by whole units. */
    static const struct {
        const char *name;
        double tol;
    } fx[] = {{"tiny-bert-classification", 0.05},
              {"tiny-bert-embeddings", 0.05},
              {"tiny-bert-ner", 0.05},
              {"tiny-roberta-mlm", 0.25},
              {"tiny-distilbert-qa", 0.05},
              {"tiny-albert-classification", 0.06},
              {"tiny-electra-discriminator", 0.05},
              {"tiny-bert-classification-bf16", 0.05}};
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++)
        check_model_in(fx[i].name, fx[i].tol, BS_PRECISION_BF16);
}

/* The fp16 precision (f16 weights, f32 activations and sums): the fixtures
 * within the weights' rounding (11 significant bits), on every kernel path. */
static void t_fp16(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        double tol;
    } fx[] = {{"tiny-bert-classification", 0.01},
              {"tiny-bert-embeddings", 0.01},
              {"tiny-bert-ner", 0.01},
              {"tiny-roberta-mlm", 0.05},
              {"tiny-distilbert-qa", 0.01},
              {"tiny-albert-classification", 0.01},
              {"tiny-electra-discriminator", 0.01},
              {"tiny-bert-classification-f16", 0.01}};
    assert_true(bs_precision_supported(BS_PRECISION_FP16));
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++)
        check_model_in(fx[i].name, fx[i].tol, BS_PRECISION_FP16);
}

/* Concurrency: one model, several threads calling forward at once on
 * different batches; each result must equal the same batch run alone. */
struct conc {
    bs_model *m;
    int32_t ids[4][100];
    int len[4];
    float *ref[4];
    int failures;
};

static void conc_run(bs_model *m, const int32_t *ids, int len, bs_model_outputs *o)
{
    bs_seq s = {ids, NULL, len};
    bs_batch b = {&s, 1};
    o->want = BS_OUT_HIDDEN | BS_OUT_LOGITS;
    int32_t pos[1] = {len - 1};
    o->mlm_positions = pos;
    o->n_mlm_positions = 1;
    assert_int_equal(bs_model_forward(m, &b, o, NULL), 0);
}

static void *conc_thread(void *p)
{
    struct conc *c = p;
    static int next;
    int me = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 4;
    bs_model_outputs o;
    bs_model_outputs_init(&o);
    for (int it = 0; it < 30; it++) {
        int k = (me + it) % 4;
        conc_run(c->m, c->ids[k], c->len[k], &o);
        size_t n = (size_t)c->len[k] * 32;
        if (memcmp(o.last_hidden_state, c->ref[k], n * sizeof(float)) != 0)
            __atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
    }
    bs_model_outputs_release(&o);
    return NULL;
}

static void t_concurrent(void **state)
{
    struct conc c = {0};
    bs_model_opts opts = {.n_threads = 2};
    assert_int_equal(bs_model_load(bs_test_fixture("models/tiny-bert-mlm"), &opts, &c.m, NULL), 0);
    for (int k = 0; k < 4; k++) {
        c.len[k] = 10 + 27 * k;
        for (int i = 0; i < c.len[k]; i++) c.ids[k][i] = (int32_t)(5 + (i * 37 + k * 11) % 2900);
        bs_model_outputs o;
        bs_model_outputs_init(&o);
        conc_run(c.m, c.ids[k], c.len[k], &o);
        c.ref[k] = malloc((size_t)c.len[k] * 32 * sizeof(float));
        memcpy(c.ref[k], o.last_hidden_state, (size_t)c.len[k] * 32 * sizeof(float));
        bs_model_outputs_release(&o);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &c), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    assert_int_equal(c.failures, 0);
    for (int k = 0; k < 4; k++) free(c.ref[k]);
    bs_model_free(c.m);
}

#define MODEL_TEST(fn, name, tol)                                                                  \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        check_model(name, tol);                                                                    \
    }
MODEL_TEST(t_bert_cls, "tiny-bert-classification", 1e-4)
MODEL_TEST(t_bert_cls_f16, "tiny-bert-classification-f16", 1e-3)
MODEL_TEST(t_bert_cls_bf16, "tiny-bert-classification-bf16", 1e-3)
MODEL_TEST(t_bert_ner, "tiny-bert-ner", 1e-4)
MODEL_TEST(t_bert_qa, "tiny-bert-qa", 1e-4)
MODEL_TEST(t_bert_mlm, "tiny-bert-mlm", 1e-4)
MODEL_TEST(t_bert_emb, "tiny-bert-embeddings", 1e-4)
MODEL_TEST(t_bert_emb_cls, "tiny-bert-embeddings-cls", 1e-4)
MODEL_TEST(t_roberta_cls, "tiny-roberta-classification", 1e-4)
MODEL_TEST(t_roberta_mlm, "tiny-roberta-mlm", 1e-4)
MODEL_TEST(t_distil_cls, "tiny-distilbert-classification", 1e-4)
MODEL_TEST(t_distil_qa, "tiny-distilbert-qa", 1e-4)
MODEL_TEST(t_distil_mlm, "tiny-distilbert-mlm", 1e-4)
MODEL_TEST(t_albert_cls, "tiny-albert-classification", 1e-4)
MODEL_TEST(t_albert_mlm, "tiny-albert-mlm", 1e-4)
MODEL_TEST(t_electra_disc, "tiny-electra-discriminator", 1e-4)
MODEL_TEST(t_electra_ner, "tiny-electra-ner", 1e-4)
MODEL_TEST(t_electra_base, "tiny-electra-base", 1e-4)
MODEL_TEST(t_electra_mlm, "tiny-electra-mlm", 1e-4)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_bert_cls),      cmocka_unit_test(t_bert_cls_f16),
        cmocka_unit_test(t_bert_cls_bf16), cmocka_unit_test(t_bert_ner),
        cmocka_unit_test(t_bert_qa),       cmocka_unit_test(t_bert_mlm),
        cmocka_unit_test(t_bert_emb),      cmocka_unit_test(t_bert_emb_cls),
        cmocka_unit_test(t_roberta_cls),   cmocka_unit_test(t_roberta_mlm),
        cmocka_unit_test(t_distil_cls),    cmocka_unit_test(t_distil_qa),
        cmocka_unit_test(t_distil_mlm),    cmocka_unit_test(t_albert_cls),
        cmocka_unit_test(t_albert_mlm),    cmocka_unit_test(t_electra_disc),
        cmocka_unit_test(t_electra_ner),   cmocka_unit_test(t_electra_base),
        cmocka_unit_test(t_electra_mlm),   cmocka_unit_test(t_concurrent),
        cmocka_unit_test(t_bf16),          cmocka_unit_test(t_fp16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
