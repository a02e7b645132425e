/* model loading: sharded checkpoints load like single files, and bad input
 * gets a clear error naming the file, the tensor and the expected vs actual
 * value, never a crash. Corrupted copies of a fixture model are written to a
 * temp dir. */
#include "testutil.h"

#include "bertstudio/model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[4096];

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A fresh model folder: the fixture's config.json (optionally edited by
 * replacing `from` with `to`) and model.safetensors (optionally rewritten). */
static const char *make_dir_of(const char *model, const char *tag, const char *from, const char *to)
{
    static char dir[4200];
    static int n;
    snprintf(dir, sizeof dir, "%s/%s-%d", tmp, tag, n++);
    assert_int_equal(mkdir(dir, 0700), 0);
    size_t len;
    char *cfg = bs_test_read_file(bs_test_fixture("models/%s/config.json", model), &len);
    assert_non_null(cfg);
    if (from) {
        char *at = strstr(cfg, from);
        assert_non_null(at);
        char *out = malloc(len + strlen(to) + 1);
        size_t pre = (size_t)(at - cfg);
        memcpy(out, cfg, pre);
        strcpy(out + pre, to);
        strcat(out, at + strlen(from));
        write_file(dir, "config.json", out, strlen(out));
        free(out);
    } else {
        write_file(dir, "config.json", cfg, len);
    }
    free(cfg);
    return dir;
}

static const char *make_dir(const char *tag, const char *from, const char *to)
{
    return make_dir_of("tiny-bert-classification", tag, from, to);
}

static char *weights(size_t *len)
{
    char *w = bs_test_read_file(
        bs_test_fixture("models/tiny-bert-classification/model.safetensors"), len);
    assert_non_null(w);
    return w;
}

/* Writes model.safetensors with the fixture's data and its header edited by fn. */
static void write_edited(const char *dir, void (*fn)(json_t *hdr))
{
    size_t len;
    char *w = weights(&len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)w[i];
    json_t *h = json_loadb(w + 8, hlen, 0, NULL);
    assert_non_null(h);
    fn(h);
    char *text = json_dumps(h, JSON_COMPACT);
    size_t tl = strlen(text), padded = (tl + 7) & ~(size_t)7;
    size_t data = len - 8 - hlen;
    char *out = malloc(8 + padded + data);
    for (int i = 0; i < 8; i++) out[i] = (char)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, text, tl);
    memset(out + 8 + tl, ' ', padded - tl);
    memcpy(out + 8 + padded, w + 8 + hlen, data);
    write_file(dir, "model.safetensors", out, 8 + padded + data);
    free(out);
    free(text);
    json_decref(h);
    free(w);
}

static void copy_weights(const char *dir)
{
    size_t len;
    char *w = weights(&len);
    write_file(dir, "model.safetensors", w, len);
    free(w);
}

static void expect_load_error(const char *dir, int code, const char *const *needles)
{
    bs_model *m = (bs_model *)1;
    bs_err err = {0};
    bs_model_opts o = {.n_threads = 1};
    int rc = bs_model_load(dir, &o, &m, &err);
    printf("  -> %s\n", err.msg);
    assert_int_equal(rc, code);
    assert_null(m);
    for (int i = 0; needles[i]; i++) {
        if (!strstr(err.msg, needles[i]))
            fprintf(stderr, "missing \"%s\" in: %s\n", needles[i], err.msg);
        assert_non_null(strstr(err.msg, needles[i]));
    }
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_missing_files(void **state)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/nothing-here", tmp);
    expect_load_error(dir, BS_ENOTFOUND, NEEDLES("config.json"));
    const char *d = make_dir("noweights", NULL, NULL);
    expect_load_error(d, BS_ENOTFOUND, NEEDLES("model.safetensors"));
    write_file(d, "pytorch_model.bin", "PK", 2);
    expect_load_error(d, BS_EUNSUPPORTED,
                      NEEDLES("pytorch_model.bin", "only safetensors", "safe_serialization"));
}

static void test_truncated(void **state)
{
    const char *d = make_dir("trunc", NULL, NULL);
    size_t len;
    char *w = weights(&len);
    write_file(d, "model.safetensors", w, len / 2);
    expect_load_error(d, BS_EFORMAT, NEEDLES("model.safetensors", "outside the data section"));
    write_file(d, "model.safetensors", w, 100); /* cut inside the header */
    expect_load_error(d, BS_EFORMAT, NEEDLES("model.safetensors", "header length"));
    write_file(d, "model.safetensors", w, 5);
    expect_load_error(d, BS_EFORMAT, NEEDLES("too short"));
    free(w);
}

static void offsets_outside(json_t *h)
{
    json_t *t = json_object_get(h, "classifier.bias");
    json_array_set_new(json_object_get(t, "data_offsets"), 1, json_integer(1 << 30));
}
static void offsets_overlap(json_t *h)
{
    /* classifier.bias (3 floats) moved onto classifier.weight's bytes. */
    json_t *w = json_object_get(json_object_get(h, "classifier.weight"), "data_offsets");
    json_int_t b = json_integer_value(json_array_get(w, 0));
    json_t *o = json_object_get(json_object_get(h, "classifier.bias"), "data_offsets");
    json_array_set_new(o, 0, json_integer(b + 4));
    json_array_set_new(o, 1, json_integer(b + 16));
}
static void offsets_misaligned(json_t *h)
{
    json_t *o = json_object_get(json_object_get(h, "classifier.bias"), "data_offsets");
    json_int_t b = json_integer_value(json_array_get(o, 0));
    json_array_set_new(o, 0, json_integer(b + 1));
    json_array_set_new(o, 1, json_integer(b + 13));
}
static void bad_dtype(json_t *h)
{
    json_object_set_new(json_object_get(h, "classifier.bias"), "dtype", json_string("I32"));
}
static void bad_shape(json_t *h)
{
    json_t *t = json_object_get(h, "bert.pooler.dense.weight");
    json_t *s = json_array();
    json_array_append_new(s, json_integer(16));
    json_array_append_new(s, json_integer(64));
    json_object_set_new(t, "shape", s);
}

static void test_header_offsets(void **state)
{
    const char *d = make_dir("outside", NULL, NULL);
    write_edited(d, offsets_outside);
    expect_load_error(d, BS_EFORMAT,
                      NEEDLES("model.safetensors", "classifier.bias", "outside the data section"));
    d = make_dir("overlap", NULL, NULL);
    write_edited(d, offsets_overlap);
    expect_load_error(d, BS_EFORMAT, NEEDLES("classifier.weight", "classifier.bias", "overlap"));
    d = make_dir("misaligned", NULL, NULL);
    write_edited(d, offsets_misaligned);
    expect_load_error(d, BS_EFORMAT, NEEDLES("classifier.bias", "not aligned"));
    d = make_dir("badjson", NULL, NULL);
    write_file(d, "model.safetensors", "\x08\0\0\0\0\0\0\0{\"a\":1}xyz", 18);
    expect_load_error(d, BS_EFORMAT, NEEDLES("model.safetensors"));
}

static void test_dtype_and_shapes(void **state)
{
    const char *d = make_dir("dtype", NULL, NULL);
    write_edited(d, bad_dtype);
    expect_load_error(d, BS_EUNSUPPORTED, NEEDLES("classifier.bias", "I32", "F32, F16, BF16"));
    d = make_dir("shape", NULL, NULL);
    write_edited(d, bad_shape);
    expect_load_error(d, BS_EFORMAT, NEEDLES("bert.pooler.dense.weight", "[16, 64]", "[32, 32]"));
    d = make_dir("inter", "\"intermediate_size\": 37", "\"intermediate_size\": 40");
    copy_weights(d);
    expect_load_error(d, BS_EFORMAT, NEEDLES("intermediate.dense.weight", "[37, 32]", "[40, 32]"));
    d = make_dir("heads", "\"num_attention_heads\": 4", "\"num_attention_heads\": 5");
    copy_weights(d);
    expect_load_error(d, BS_EFORMAT, NEEDLES("config.json", "32", "5"));
}

static void test_config(void **state)
{
    const char *d = make_dir("type", "\"model_type\": \"bert\"", "\"model_type\": \"gpt9\"");
    copy_weights(d);
    expect_load_error(d, BS_EUNSUPPORTED, NEEDLES("config.json", "gpt9"));
    d = make_dir("act", "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"mish\"");
    copy_weights(d);
    expect_load_error(d, BS_EUNSUPPORTED, NEEDLES("config.json", "mish"));
    d = make_dir("json", "{", "[");
    copy_weights(d);
    expect_load_error(d, BS_EFORMAT, NEEDLES("config.json"));
    d = make_dir("pos", "\"position_embedding_type\": \"absolute\"",
                 "\"position_embedding_type\": \"relative_key\"");
    copy_weights(d);
    expect_load_error(d, BS_EUNSUPPORTED, NEEDLES("relative_key"));
}

/* MLM decoders are tied to the word embeddings unless the config says not:
 * then the checkpoint must store the decoder (the fixture does not). */
static void test_untied_decoder(void **state)
{
    const char *d = make_dir_of("tiny-bert-mlm", "untied", "\"vocab_size\"",
                                "\"tie_word_embeddings\": false, \"vocab_size\"");
    size_t len;
    char *w = bs_test_read_file(bs_test_fixture("models/tiny-bert-mlm/model.safetensors"), &len);
    assert_non_null(w);
    write_file(d, "model.safetensors", w, len);
    free(w);
    expect_load_error(d, BS_EFORMAT, NEEDLES("cls.predictions.decoder.weight", "missing"));
}

static void test_forward_inputs(void **state)
{
    bs_model *m = NULL;
    bs_model_opts o = {.n_threads = 1};
    assert_int_equal(
        bs_model_load(bs_test_fixture("models/tiny-bert-classification"), &o, &m, NULL), 0);
    int32_t ids[200];
    for (int i = 0; i < 200; i++) ids[i] = 5;
    bs_seq s = {ids, NULL, 129};
    bs_batch b = {&s, 1};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_LOGITS;
    bs_err err = {0};
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_ERANGE);
    assert_non_null(strstr(err.msg, "129"));
    assert_non_null(strstr(err.msg, "128"));
    s.len = 128;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), 0);
    ids[7] = 2999;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_ERANGE);
    assert_non_null(strstr(err.msg, "position 7"));
    assert_non_null(strstr(err.msg, "2999"));
    ids[7] = -1;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_ERANGE);
    ids[7] = 5;
    int32_t types[128] = {0};
    types[3] = 2;
    s.token_type_ids = types;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_ERANGE);
    assert_non_null(strstr(err.msg, "token type"));
    s.token_type_ids = NULL;
    s.len = 0;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_EINVAL);
    b.n_seqs = 0;
    assert_int_equal(bs_model_forward(m, &b, &out, &err), BS_EINVAL);
    bs_model_outputs_release(&out);
    bs_model_free(m);
}

/* Splits the fixture into two shards (tensors alternating) plus
 * model.safetensors.index.json; logits must equal the single-file model's. */
static void write_shard(const char *dir, const char *name, json_t *hdr, const char *data,
                        int parity, json_t *map)
{
    json_t *out = json_object();
    size_t off = 0, cap = 1 << 20, used = 0;
    char *buf = malloc(cap);
    const char *key;
    json_t *v;
    int i = 0;
    json_object_foreach(hdr, key, v)
    {
        if (strcmp(key, "__metadata__") == 0 || (i++ & 1) != parity) continue;
        json_t *o = json_object_get(v, "data_offsets");
        size_t b = (size_t)json_integer_value(json_array_get(o, 0)),
               e = (size_t)json_integer_value(json_array_get(o, 1));
        while (used + (e - b) > cap) buf = realloc(buf, cap *= 2);
        memcpy(buf + used, data + b, e - b);
        json_t *t = json_deep_copy(v);
        json_t *no = json_array();
        json_array_append_new(no, json_integer((json_int_t)off));
        json_array_append_new(no, json_integer((json_int_t)(off + (e - b))));
        json_object_set_new(t, "data_offsets", no);
        json_object_set_new(out, key, t);
        json_object_set_new(map, key, json_string(name));
        off += e - b;
        used += e - b;
    }
    char *text = json_dumps(out, JSON_COMPACT);
    size_t tl = strlen(text), padded = (tl + 7) & ~(size_t)7;
    char *file = malloc(8 + padded + used);
    for (int k = 0; k < 8; k++) file[k] = (char)((uint64_t)padded >> (8 * k));
    memcpy(file + 8, text, tl);
    memset(file + 8 + tl, ' ', padded - tl);
    memcpy(file + 8 + padded, buf, used);
    write_file(dir, name, file, 8 + padded + used);
    free(file);
    free(text);
    free(buf);
    json_decref(out);
}

static void logits_of(const char *dir, float *out3)
{
    bs_model *m = NULL;
    bs_model_opts o = {.n_threads = 1};
    bs_err err = {0};
    int rc = bs_model_load(dir, &o, &m, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    int32_t ids[6] = {2, 100, 200, 300, 400, 3};
    bs_seq s = {ids, NULL, 6};
    bs_batch b = {&s, 1};
    bs_model_outputs res;
    bs_model_outputs_init(&res);
    res.want = BS_OUT_LOGITS;
    assert_int_equal(bs_model_forward(m, &b, &res, NULL), 0);
    assert_int_equal(res.n_labels, 3);
    memcpy(out3, res.logits, 3 * sizeof(float));
    bs_model_outputs_release(&res);
    bs_model_free(m);
}

static void test_sharded(void **state)
{
    const char *d = make_dir("sharded", NULL, NULL);
    size_t len;
    char *w = weights(&len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)w[i];
    json_t *h = json_loadb(w + 8, hlen, 0, NULL);
    json_t *index = json_object(), *map = json_object();
    write_shard(d, "model-00001-of-00002.safetensors", h, w + 8 + hlen, 0, map);
    write_shard(d, "model-00002-of-00002.safetensors", h, w + 8 + hlen, 1, map);
    json_object_set_new(index, "weight_map", map);
    char *text = json_dumps(index, 0);
    write_file(d, "model.safetensors.index.json", text, strlen(text));
    free(text);
    json_decref(index);
    json_decref(h);
    free(w);
    float a[3], b[3];
    logits_of(d, a);
    logits_of(bs_test_fixture("models/tiny-bert-classification"), b);
    for (int i = 0; i < 3; i++) assert_true(a[i] == b[i]);
    /* A shard named in the index but absent is an error naming it. */
    char p[4300];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", d);
    assert_int_equal(unlink(p), 0);
    expect_load_error(d, BS_ENOTFOUND, NEEDLES("model-00002-of-00002.safetensors"));
}

/* bs_model_check (the hub's import validation) answers exactly what
 * bs_model_load answers, folder for folder, without loading: the fixture
 * models pass, and each broken folder gets the same code and sentence. */
static void same_as_load(const char *dir)
{
    bs_model *m = NULL;
    bs_err le = {0}, ce = {0};
    bs_model_opts o = {.n_threads = 1};
    int lrc = bs_model_load(dir, &o, &m, &le);
    bs_model_free(m);
    int crc = bs_model_check(dir, &ce);
    assert_int_equal(crc, lrc);
    assert_string_equal(ce.msg, le.msg);
}

static void test_check_agrees_with_load(void **state)
{
    (void)state;
    static const char *const good[] = {"tiny-bert-classification",
                                       "tiny-bert-classification-f16",
                                       "tiny-bert-classification-bf16",
                                       "tiny-roberta-classification",
                                       "tiny-distilbert-qa",
                                       "tiny-albert-mlm",
                                       "tiny-electra-ner",
                                       "tiny-bart"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        bs_err e = {0};
        assert_int_equal(bs_model_check(bs_test_fixture("models/%s", good[i]), &e), 0);
    }
    char nothing[4200];
    snprintf(nothing, sizeof nothing, "%s/check-nothing", tmp);
    same_as_load(nothing);
    const char *d = make_dir("check-noweights", NULL, NULL);
    same_as_load(d);
    void (*edits[])(json_t *) = {offsets_outside, offsets_overlap, offsets_misaligned, bad_dtype,
                                 bad_shape};
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        d = make_dir("check-edit", NULL, NULL);
        write_edited(d, edits[i]);
        same_as_load(d);
    }
    d = make_dir("check-inter", "\"intermediate_size\": 37", "\"intermediate_size\": 40");
    copy_weights(d);
    same_as_load(d);
    d = make_dir("check-type", "\"model_type\": \"bert\"", "\"model_type\": \"gpt9\"");
    copy_weights(d);
    same_as_load(d);
    size_t len;
    char *w = weights(&len);
    d = make_dir("check-trunc", NULL, NULL);
    write_file(d, "model.safetensors", w, len / 2);
    same_as_load(d);
    free(w);
}

int main(void)
{
    const char *t = bs_test_tmpdir("model");
    if (!t) return 1;
    snprintf(tmp, sizeof tmp, "%s", t);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_offsets),
        cmocka_unit_test(test_dtype_and_shapes),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_forward_inputs),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_untied_decoder),
        cmocka_unit_test(test_check_agrees_with_load),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
