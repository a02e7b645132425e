/* model (BartForSequenceClassification): no reference fixture exists, so the
 * test builds a classification folder from tests/fixtures/models/tiny-bart
 * (its weights + a pseudo-random classification_head) and checks the logits
 * against an independent composition of pieces already verified against
 * transformers: bs_model_encode + teacher-forced decoding through the KV
 * cache on shift_tokens_right(ids), the last eos row, then dense/tanh/out_proj
 * by plain loops here. Plus batch invariance, errors and the wrong head shape. */
#include "testutil.h"

#include "bertstudio/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { H = 32, NL = 3, EOS = 2, DEC_START = 2 };

/* Head weights written into the folder, kept for the composition. */
static float dense_w[H * H], dense_b[H], out_w[NL * H], out_b[NL];

static float lcg(uint32_t *s, float scale)
{
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f - 0.5f) * 2.0f * scale;
}

static void make_head(void)
{
    uint32_t s = 12345;
    for (int i = 0; i < H * H; i++) dense_w[i] = lcg(&s, 0.3f);
    for (int i = 0; i < H; i++) dense_b[i] = lcg(&s, 0.1f);
    for (int i = 0; i < NL * H; i++) out_w[i] = lcg(&s, 0.5f);
    for (int i = 0; i < NL; i++) out_b[i] = lcg(&s, 0.1f);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes dir/model.safetensors: tiny-bart's tensors (header re-serialised,
 * data copied) followed by the classification head. out_rows is the first
 * dimension written for out_proj.weight (NL, or a wrong value). */
static void write_weights(const char *dir, int out_rows, int with_head)
{
    size_t len = 0;
    unsigned char *src = (unsigned char *)bs_test_read_file(
        bs_test_fixture("models/tiny-bart/model.safetensors"), &len);
    assert_non_null(src);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)src[i] << (8 * i);
    assert_true(8 + hlen <= len);
    json_error_t je;
    json_t *hdr = json_loadb((const char *)src + 8, (size_t)hlen, 0, &je);
    assert_non_null(hdr);
    size_t data_len = len - 8 - (size_t)hlen;
    assert_int_equal(data_len % 4, 0);

    struct {
        const char *name;
        const float *data;
        int d0, d1;
    } add[] = {
        {"classification_head.dense.weight", dense_w, H, H},
        {"classification_head.dense.bias", dense_b, H, 0},
        {"classification_head.out_proj.weight", out_w, out_rows, H},
        {"classification_head.out_proj.bias", out_b, NL, 0},
    };
    size_t n_add = with_head ? sizeof add / sizeof add[0] : 0;
    size_t off = data_len;
    for (size_t i = 0; i < n_add; i++) {
        size_t n = (size_t)add[i].d0 * (size_t)(add[i].d1 ? add[i].d1 : 1);
        json_t *shape =
            add[i].d1 ? json_pack("[i, i]", add[i].d0, add[i].d1) : json_pack("[i]", add[i].d0);
        json_object_set_new(hdr, add[i].name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + n * 4)));
        off += n * 4;
    }
    char *h = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(h);
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char len8[8];
    put_u64(len8, padded);
    assert_int_equal(fwrite(len8, 1, 8, f), 8);
    assert_int_equal(fwrite(h, 1, hl, f), hl);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    assert_int_equal(fwrite(src + 8 + hlen, 1, data_len, f), data_len);
    for (size_t i = 0; i < n_add; i++) {
        /* a wrong out_rows still needs that many floats on disk: zeros past NL rows */
        size_t n = (size_t)add[i].d0 * (size_t)(add[i].d1 ? add[i].d1 : 1);
        size_t have = i == 2 && out_rows > NL ? (size_t)NL * H : n;
        assert_int_equal(fwrite(add[i].data, 4, have, f), have);
        for (size_t k = have; k < n; k++) assert_int_equal(fwrite(&(float){0}, 4, 1, f), 1);
    }
    assert_int_equal(fclose(f), 0);
    free(h);
    json_decref(hdr);
    free(src);
}

/* tiny-bart's config.json as a 3-label classifier; `over` (stolen, may be
 * NULL) replaces keys. */
static void write_config(const char *dir, json_t *over)
{
    json_error_t je;
    json_t *cfg = json_load_file(bs_test_fixture("models/tiny-bart/config.json"), 0, &je);
    assert_non_null(cfg);
    json_object_set_new(cfg, "architectures", json_pack("[s]", "BartForSequenceClassification"));
    json_object_set_new(
        cfg, "id2label",
        json_pack("{s:s, s:s, s:s}", "0", "contradiction", "1", "neutral", "2", "entailment"));
    json_object_set_new(
        cfg, "label2id",
        json_pack("{s:i, s:i, s:i}", "contradiction", 0, "neutral", 1, "entailment", 2));
    json_object_del(cfg, "task_specific_params");
    if (over) json_object_update(cfg, over);
    json_decref(over);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);
}

static const char *make_folder(const char *tag, int out_rows, int with_head, json_t *over)
{
    const char *dir = bs_test_tmpdir(tag);
    write_config(dir, over);
    write_weights(dir, out_rows, with_head);
    return dir;
}

static int setup(void **state)
{
    make_head();
    bs_model *m = NULL;
    bs_err err = {0};
    bs_model_opts o = {.n_threads = 2};
    int rc = bs_model_load(make_folder("bartcls", NL, 1, NULL), &o, &m, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    bs_model_free(*state);
    return 0;
}

/* Inputs: a single sentence, a sentence pair (<s> A </s></s> B </s>), an eos
 * that is not the last token plus an earlier eos, and a longer sequence. */
static const int32_t in_single[] = {0, 713, 16, 10, 1296, 4, 2};
static const int32_t in_pair[] = {0, 133, 4758, 16, 15, 5, 6545, 2, 2, 133, 4758, 16, 1375, 2};
static const int32_t in_mid[] = {0, 31414, 2, 232, 2, 5, 7, 9};
static int32_t in_long[60];

static void fill_long(void)
{
    uint32_t s = 7;
    in_long[0] = 0;
    for (int i = 1; i < 59; i++) {
        s = s * 1103515245u + 12345u;
        in_long[i] = 3 + (int32_t)((s >> 8) % 50000u);
    }
    in_long[59] = EOS;
}

static int last_eos(const int32_t *ids, int n)
{
    int p = -1;
    for (int i = 0; i < n; i++)
        if (ids[i] == EOS) p = i;
    return p;
}

/* The composition: encoder state, KV-cache decoding of shift_tokens_right,
 * the decoder row at position p, head by plain loops (double accumulation). */
static void composed_logits(const bs_model *m, const int32_t *ids, int n, int p, double *logits)
{
    bs_seq seq = {ids, NULL, n};
    bs_batch b = {&seq, 1};
    bs_encoder_state *st = NULL;
    bs_kv_cache *c = NULL;
    bs_err err = {0};
    assert_int_equal(bs_model_encode(m, &b, &st, &err), 0);
    int32_t row = 0;
    assert_int_equal(bs_kv_cache_new(m, st, &row, 1, n, &c, &err), 0);
    int32_t *dec = malloc((size_t)n * sizeof *dec);
    float *hid = malloc((size_t)n * H * sizeof *hid);
    assert_non_null(dec);
    assert_non_null(hid);
    dec[0] = DEC_START;
    for (int i = 1; i < n; i++) dec[i] = ids[i - 1];
    int rc = bs_model_decode_hidden(m, c, dec, n, hid, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(p >= 0 && p < n);
    const float *h = hid + (size_t)p * H;
    double t[H];
    for (int o = 0; o < H; o++) {
        double a = dense_b[o];
        for (int i = 0; i < H; i++) a += (double)dense_w[o * H + i] * h[i];
        t[o] = tanh(a);
    }
    for (int l = 0; l < NL; l++) {
        double a = out_b[l];
        for (int i = 0; i < H; i++) a += (double)out_w[l * H + i] * t[i];
        logits[l] = a;
    }
    free(dec);
    free(hid);
    bs_kv_cache_free(c);
    bs_encoder_state_free(st);
}

static void assert_close(const float *got, const double *want, const char *what)
{
    for (int l = 0; l < NL; l++)
        if (fabs((double)got[l] - want[l]) > 1e-5) {
            fprintf(stderr, "%s: label %d: %.8f vs %.8f\n", what, l, got[l], want[l]);
            fail();
        }
}

static void test_info(void **state)
{
    bs_model *m = *state;
    assert_string_equal(bs_model_architecture(m), "BartForSequenceClassification");
    assert_int_equal(bs_model_head(m), BS_HEAD_SEQ_CLS);
    assert_int_equal(bs_model_num_labels(m), NL);
    assert_string_equal(bs_model_label(m, 0), "contradiction");
    assert_string_equal(bs_model_label(m, 2), "entailment");
    assert_null(bs_model_label(m, 3));
    assert_null(bs_model_problem_type(m));
    assert_int_equal(bs_model_has_pooler(m), 0);
}

static void test_matches_composition(void **state)
{
    bs_model *m = *state;
    fill_long();
    struct {
        const int32_t *ids;
        int n;
        const char *name;
    } cases[] = {{in_single, 7, "single"},
                 {in_pair, 14, "pair"},
                 {in_mid, 8, "eos not last"},
                 {in_long, 60, "long"}};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_LOGITS;
    double first[NL] = {0};
    int differs = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bs_seq seq = {cases[k].ids, NULL, cases[k].n};
        bs_batch b = {&seq, 1};
        bs_err err = {0};
        int rc = bs_model_forward(m, &b, &out, &err);
        if (rc) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(out.n_labels, NL);
        assert_non_null(out.logits);
        double want[NL];
        composed_logits(m, cases[k].ids, cases[k].n, last_eos(cases[k].ids, cases[k].n), want);
        assert_close(out.logits, want, cases[k].name);
        if (k == 0)
            memcpy(first, want, sizeof first);
        else
            for (int l = 0; l < NL; l++) differs |= fabs(want[l] - first[l]) > 1e-3;
    }
    /* the head and the pooled row really depend on the input */
    assert_true(differs);
    bs_model_outputs_release(&out);
}

/* transformers pools the LAST eos: in in_mid (eos at 2 and 4) the row of
 * the first eos gives other logits, so matching the composition above at
 * position 4 is a real check of the choice. */
static void test_last_eos_not_first(void **state)
{
    bs_model *m = *state;
    bs_seq seq = {in_mid, NULL, 8};
    bs_batch b = {&seq, 1};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_LOGITS;
    bs_err err = {0};
    assert_int_equal(bs_model_forward(m, &b, &out, &err), 0);
    double first[NL];
    composed_logits(m, in_mid, 8, 2, first);
    int differs = 0;
    for (int l = 0; l < NL; l++) differs |= fabs(out.logits[l] - first[l]) > 1e-3;
    assert_true(differs);
    bs_model_outputs_release(&out);
}

static void test_batch_invariance(void **state)
{
    bs_model *m = *state;
    fill_long();
    bs_seq seqs[4] = {
        {in_pair, NULL, 14}, {in_long, NULL, 60}, {in_single, NULL, 7}, {in_mid, NULL, 8}};
    bs_model_outputs out, one;
    bs_model_outputs_init(&out);
    bs_model_outputs_init(&one);
    out.want = one.want = BS_OUT_LOGITS | BS_OUT_HIDDEN;
    bs_batch b = {seqs, 4};
    bs_err err = {0};
    assert_int_equal(bs_model_forward(m, &b, &out, &err), 0);
    assert_int_equal(out.n_seqs, 4);
    assert_int_equal(out.total_tokens, 14 + 60 + 7 + 8);
    assert_non_null(out.last_hidden_state); /* the encoder's, as documented */
    for (int s = 0; s < 4; s++) {
        bs_batch b1 = {&seqs[s], 1};
        assert_int_equal(bs_model_forward(m, &b1, &one, &err), 0);
        for (int l = 0; l < NL; l++)
            assert_true(fabsf(out.logits[s * NL + l] - one.logits[l]) <= 1e-5f);
    }
    bs_model_outputs_release(&out);
    bs_model_outputs_release(&one);
}

static void test_no_eos_is_an_error(void **state)
{
    bs_model *m = *state;
    static const int32_t no_eos[] = {0, 713, 16, 10};
    bs_seq seqs[2] = {{in_single, NULL, 7}, {no_eos, NULL, 4}};
    bs_batch b = {seqs, 2};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_LOGITS;
    bs_err err = {0};
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_EINVAL);
    assert_non_null(strstr(err.msg, "sequence 1"));
    assert_non_null(strstr(err.msg, "no eos token (id 2)"));
    /* the encoder alone needs no eos */
    out.want = BS_OUT_HIDDEN;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), 0);
    bs_model_outputs_release(&out);
}

static void test_decode_needs_lm_head(void **state)
{
    bs_model *m = *state;
    bs_seq seq = {in_single, NULL, 7};
    bs_batch b = {&seq, 1};
    bs_encoder_state *st = NULL;
    bs_kv_cache *c = NULL;
    bs_err err = {0};
    assert_int_equal(bs_model_encode(m, &b, &st, &err), 0);
    int32_t row = 0, tok = DEC_START;
    assert_int_equal(bs_kv_cache_new(m, st, &row, 1, 4, &c, &err), 0);
    float logits[4];
    assert_int_equal(bs_model_decode(m, c, &tok, 1, logits, &err), BS_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "no language-model head"));
    assert_int_equal(bs_kv_cache_len(c), 0);
    bs_kv_cache_free(c);
    bs_encoder_state_free(st);
}

static void expect_load_error(const char *dir, int code, const char *const *needles)
{
    bs_model *m = NULL;
    bs_err err = {0};
    bs_model_opts o = {.n_threads = 1};
    assert_int_equal(bs_model_load(dir, &o, &m, &err), code);
    assert_null(m);
    for (int i = 0; needles[i]; i++)
        if (!strstr(err.msg, needles[i])) {
            fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, needles[i]);
            fail();
        }
}

static void test_wrong_head_shape(void **state)
{
    (void)state;
    static const char *const shape[] = {"classification_head.out_proj.weight", "[4, 32]", "[3, 32]",
                                        NULL};
    expect_load_error(make_folder("bartcls-shape", 4, 1, NULL), BS_EFORMAT, shape);
    static const char *const missing[] = {"classification_head.dense.weight",
                                          "BartForSequenceClassification", NULL};
    expect_load_error(make_folder("bartcls-nohead", NL, 0, NULL), BS_EFORMAT, missing);
}

static void test_bad_special_ids(void **state)
{
    (void)state;
    static const char *const range[] = {"eos_token_id 50265", "vocab_size 50265", NULL};
    expect_load_error(make_folder("bartcls-eos", NL, 1, json_pack("{s:i}", "eos_token_id", 50265)),
                      BS_ERANGE, range);
    static const char *const type[] = {"decoder_start_token_id", "integer", NULL};
    expect_load_error(
        make_folder("bartcls-start", NL, 1, json_pack("{s:s}", "decoder_start_token_id", "2")),
        BS_EFORMAT, type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_matches_composition),
        cmocka_unit_test(test_last_eos_not_first),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_no_eos_is_an_error),
        cmocka_unit_test(test_decode_needs_lm_head),
        cmocka_unit_test(test_wrong_head_shape),
        cmocka_unit_test(test_bad_special_ids),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
