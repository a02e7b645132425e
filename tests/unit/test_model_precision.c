/* model: the reduced precisions against f32 on the fixture models. fp16 (and
 * bf16 where the CPU runs it) must keep embeddings within cosine 0.9995 of
 * f32's, int8 (dynamic quantization) within 0.99, and all leave the
 * classifier's argmax unchanged on the fixture inputs and on >= 99% of 1,000
 * random ones; the measured figures are printed. Runs under every kernel
 * path (ctest's BS_CPU reruns). */
#include "testutil.h"

#include "bertstudio/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bs_model *load(const char *name, bs_precision p)
{
    bs_model *m = NULL;
    bs_err err = {0};
    bs_model_opts opts = {.n_threads = 2, .precision = p};
    int rc = bs_model_load(bs_test_fixture("models/%s", name), &opts, &m, &err);
    if (rc) fprintf(stderr, "%s: %s\n", name, err.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* n random sequences of 1..max_len tokens (ids past the first 100, which
 * hold the specials, and the model's own vocabulary) */
static void random_batch(unsigned *s, int vocab, int n, int max_len, int32_t *ids, bs_seq *seqs)
{
    int off = 0;
    for (int i = 0; i < n; i++) {
        *s = *s * 1103515245u + 12345u;
        int len = 1 + (int)((*s >> 8) % (unsigned)max_len);
        seqs[i] = (bs_seq){ids + off, NULL, len};
        for (int t = 0; t < len; t++) {
            *s = *s * 1103515245u + 12345u;
            ids[off + t] = 100 + (int32_t)((*s >> 8) % (unsigned)(vocab - 100));
        }
        off += len;
    }
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa * bb) + 1e-30);
}

enum { N_SEQS = 1000, PER_BATCH = 50, MAX_LEN = 24 };

/* Mean-pooled embeddings (what the embeddings task returns) and every
 * token's hidden state of `name` in precision p against f32. */
static void embeddings_agree(const char *name, bs_precision p)
{
    bs_model *a = load(name, BS_PRECISION_F32), *b = load(name, p);
    int H = bs_model_hidden_size(a), V = bs_model_vocab_size(a);
    static int32_t ids[PER_BATCH * MAX_LEN];
    bs_seq seqs[PER_BATCH];
    unsigned s = 5;
    double worst_pool = 1, worst_tok = 1;
    bs_model_outputs oa, ob;
    bs_model_outputs_init(&oa);
    bs_model_outputs_init(&ob);
    oa.want = ob.want = BS_OUT_HIDDEN;
    for (int done = 0; done < 200; done += PER_BATCH) {
        random_batch(&s, V, PER_BATCH, MAX_LEN, ids, seqs);
        bs_batch batch = {seqs, PER_BATCH};
        assert_int_equal(bs_model_forward(a, &batch, &oa, NULL), 0);
        assert_int_equal(bs_model_forward(b, &batch, &ob, NULL), 0);
        int t = 0;
        for (int i = 0; i < PER_BATCH; i++) {
            float ma[1024] = {0}, mb[1024] = {0};
            assert_true(H <= 1024);
            for (int k = 0; k < seqs[i].len; k++, t++) {
                const float *ha = oa.last_hidden_state + (size_t)t * H,
                            *hb = ob.last_hidden_state + (size_t)t * H;
                worst_tok = fmin(worst_tok, cosine(ha, hb, H));
                for (int h = 0; h < H; h++) ma[h] += ha[h], mb[h] += hb[h];
            }
            worst_pool = fmin(worst_pool, cosine(ma, mb, H));
        }
    }
    printf("  %s %s vs f32: embeddings cosine >= 1 - %.2g (tokens >= 1 - %.2g), 200 random "
           "inputs\n",
           name, bs_precision_name(p), 1 - worst_pool, 1 - worst_tok);
    /* int8: ONNX Runtime's dynamic quantization is good to ~1e-2 */
    assert_true(worst_pool >= (p == BS_PRECISION_INT8 ? 0.99 : 0.9995));
    bs_model_outputs_release(&oa);
    bs_model_outputs_release(&ob);
    bs_model_free(a);
    bs_model_free(b);
}

static int argmax(const float *x, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return k;
}

/* Sequence classification: argmax per input, 1,000 random inputs. */
static void argmax_agrees(const char *name, bs_precision p)
{
    bs_model *a = load(name, BS_PRECISION_F32), *b = load(name, p);
    int V = bs_model_vocab_size(a);
    static int32_t ids[PER_BATCH * MAX_LEN];
    bs_seq seqs[PER_BATCH];
    unsigned s = 9;
    int same = 0;
    bs_model_outputs oa, ob;
    bs_model_outputs_init(&oa);
    bs_model_outputs_init(&ob);
    oa.want = ob.want = BS_OUT_LOGITS;
    for (int done = 0; done < N_SEQS; done += PER_BATCH) {
        random_batch(&s, V, PER_BATCH, MAX_LEN, ids, seqs);
        bs_batch batch = {seqs, PER_BATCH};
        assert_int_equal(bs_model_forward(a, &batch, &oa, NULL), 0);
        assert_int_equal(bs_model_forward(b, &batch, &ob, NULL), 0);
        int L = oa.n_labels;
        for (int i = 0; i < PER_BATCH; i++)
            same += argmax(oa.logits + (size_t)i * L, L) == argmax(ob.logits + (size_t)i * L, L);
    }
    printf("  %s %s vs f32: argmax unchanged on %d of %d random inputs\n", name,
           bs_precision_name(p), same, N_SEQS);
    assert_true(same >= N_SEQS * 99 / 100);
    /* and on every input of the fixture (expected.json) */
    char path[4200];
    snprintf(path, sizeof path, "%s/expected.json", bs_test_fixture("models/%s", name));
    json_t *cases = json_load_file(path, 0, NULL);
    assert_non_null(cases);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *rows = json_object_get(json_array_get(cases, c), "input_ids");
        json_t *mask = json_object_get(json_array_get(cases, c), "attention_mask");
        int n = (int)json_array_size(rows), off = 0;
        assert_true(n <= PER_BATCH);
        for (int r = 0; r < n; r++) {
            int len = 0;
            for (size_t t = 0; t < json_array_size(json_array_get(rows, r)); t++)
                if (json_integer_value(json_array_get(json_array_get(mask, r), t))) {
                    assert_true(off < PER_BATCH * MAX_LEN);
                    ids[off + len++] =
                        (int32_t)json_integer_value(json_array_get(json_array_get(rows, r), t));
                }
            seqs[r] = (bs_seq){ids + off, NULL, len};
            off += len;
        }
        bs_batch batch = {seqs, n};
        assert_int_equal(bs_model_forward(a, &batch, &oa, NULL), 0);
        assert_int_equal(bs_model_forward(b, &batch, &ob, NULL), 0);
        int L = oa.n_labels;
        for (int i = 0; i < n; i++)
            assert_int_equal(argmax(oa.logits + (size_t)i * L, L),
                             argmax(ob.logits + (size_t)i * L, L));
    }
    json_decref(cases);
    bs_model_outputs_release(&oa);
    bs_model_outputs_release(&ob);
    bs_model_free(a);
    bs_model_free(b);
}

static void test_reduced_precisions(void **state)
{
    (void)state;
    const bs_precision ps[] = {BS_PRECISION_FP16, BS_PRECISION_BF16, BS_PRECISION_INT8};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        if (!bs_precision_supported(ps[i])) {
            printf("  %s: not supported on this CPU / kernel path, not run\n",
                   bs_precision_name(ps[i]));
            continue;
        }
        embeddings_agree("tiny-bert-embeddings", ps[i]);
        embeddings_agree("tiny-roberta-mlm", ps[i]);
        argmax_agrees("tiny-bert-classification", ps[i]);
        argmax_agrees("tiny-distilbert-classification", ps[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduced_precisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
