/* Hostile input: invalid UTF-8 text, malformed or hostile tokenizer.json
 * files (each refused with a message naming the component and field), and
 * megabyte-long words, which must finish quickly in every model. Also
 * concurrent encodes on one shared tokenizer. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bertstudio/tokenizer.h"
#include "testutil.h"

static bs_tokenizer *load(const char *name)
{
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load(bs_test_fixture("tokenizers/%s", name), &tok, &err))
        fail_msg("%s", err.msg);
    return tok;
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("bert-base-uncased");
    static const char *const bad[] = {"abc\xff",      "\xc3",     "x\xe2\x82",
                                      "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bs_encoding *e = NULL;
        bs_err err;
        assert_int_equal(bs_tokenizer_encode(tok, bad[i], strlen(bad[i]), NULL, 0, NULL, &e, &err),
                         BS_EUTF8);
        assert_null(e);
        assert_non_null(strstr(err.msg, "UTF-8"));
        assert_int_equal(bs_tokenizer_encode(tok, "ok", 2, bad[i], strlen(bad[i]), NULL, &e, &err),
                         BS_EUTF8);
        assert_non_null(strstr(err.msg, "text_pair"));
    }
    /* embedded NUL is valid UTF-8 and must not crash or truncate */
    bs_encoding *e;
    bs_err err;
    assert_int_equal(bs_tokenizer_encode(tok, "a\0b", 3, NULL, 0, NULL, &e, &err), 0);
    assert_int_equal(e->len, 3); /* the normalizer drops NUL: [CLS] ab [SEP] */
    assert_int_equal(e->offsets[1].end, 3);
    bs_encoding_free(e);
    bs_tokenizer_free(tok);
}

static const char *const base_wp =
    "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0,\"a\":1,\"##"
    "b\":2}},"
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"added_tokens\":[]}";

static void expect_load_error(const char *json, int code, const char *needle)
{
    bs_tokenizer *tok = NULL;
    bs_err err = {0};
    int rc = bs_tokenizer_load_json(json, strlen(json), &tok, &err);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("json %.120s: got %d \"%s\", want %d containing \"%s\"", json, rc, err.msg, code,
                 needle);
    assert_null(tok);
}

static void test_bad_json(void **state)
{
    (void)state;
    bs_tokenizer *tok;
    bs_err err;
    assert_int_equal(bs_tokenizer_load_json(base_wp, strlen(base_wp), &tok, &err), 0);
    bs_encoding *e;
    assert_int_equal(bs_tokenizer_encode(tok, "ab a", 4, NULL, 0, NULL, &e, &err), 0);
    assert_int_equal(e->len, 3);
    assert_int_equal(e->ids[1], 2);
    bs_encoding_free(e);
    bs_tokenizer_free(tok);

    expect_load_error("", BS_EFORMAT, "tokenizer.json");
    expect_load_error("[1,2]", BS_EFORMAT, "top level");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":1", BS_EFORMAT,
                      "tokenizer.json");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":[1]}}", BS_EFORMAT,
                      "model WordPiece: field vocab");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":\"x\"}}}", BS_EFORMAT,
                      "model WordPiece: id of token \"a\"");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":99999999999}}}",
                      BS_EFORMAT, "out of range");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":-1}}}", BS_EFORMAT,
                      "out of range");
    expect_load_error(
        "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{},\"max_input_chars_per_word\":1e300}}",
        BS_EFORMAT, "max_input_chars_per_word");
    expect_load_error("{\"model\":{\"type\":\"Magic\"}}", BS_EUNSUPPORTED,
                      "model: unknown type Magic");
    expect_load_error(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
        BS_EFORMAT, "merged token \"ab\"");
    expect_load_error(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"ab\":1},\"merges\":[\"a b\"]}}",
        BS_EFORMAT, "token \"b\" is not in the vocabulary");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a\"]}}",
                      BS_EFORMAT, "merges[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}}",
                      BS_EFORMAT, "field merges");
    expect_load_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}", BS_EFORMAT,
                      "model Unigram: vocab[0]");
    expect_load_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",-1.0]],\"unk_id\":5}}",
                      BS_EFORMAT, "unk_id");
    static const char wp[] = "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[UNK]\":0}}";
    char j[1024];
    snprintf(j, sizeof j, "{%s,\"normalizer\":{\"type\":\"Bogus\"}}", wp);
    expect_load_error(j, BS_EUNSUPPORTED, "normalizer: unknown type Bogus");
    snprintf(j, sizeof j, "{%s,\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":\"yes\"}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "normalizer BertNormalizer: field lowercase");
    snprintf(j, sizeof j,
             "{%s,\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAAA\"}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "normalizer Precompiled");
    snprintf(j, sizeof j,
             "{%s,\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"!!\"}}", wp);
    expect_load_error(j, BS_EFORMAT, "normalizer Precompiled");
    snprintf(j, sizeof j,
             "{%s,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":"
             "\"Isolated\"}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "pre_tokenizer Split: pattern");
    snprintf(j, sizeof j,
             "{%s,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},"
             "\"behavior\":\"Sideways\"}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "unknown behavior");
    snprintf(j, sizeof j, "{%s,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "pre_tokenizer Metaspace: replacement");
    snprintf(
        j, sizeof j,
        "{%s,\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{"
        "\"id\":\"[X]\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{}}}",
        wp);
    expect_load_error(j, BS_EFORMAT, "special token [X] is not in special_tokens");
    snprintf(j, sizeof j,
             "{%s,\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</"
             "s>\",-2],\"cls\":[\"<s>\",0]}}",
             wp);
    expect_load_error(j, BS_EFORMAT, "post_processor RobertaProcessing: field sep");
    snprintf(j, sizeof j, "{%s,\"decoder\":{\"type\":\"Nope\"}}", wp);
    expect_load_error(j, BS_EUNSUPPORTED, "decoder: unknown type Nope");
    snprintf(j, sizeof j, "{%s,\"added_tokens\":[{\"id\":4294967296,\"content\":\"x\"}]}", wp);
    expect_load_error(j, BS_EFORMAT, "added_tokens[0]");
    snprintf(j, sizeof j, "{%s,\"added_tokens\":[{\"id\":1}]}", wp);
    expect_load_error(j, BS_EFORMAT, "added_tokens[0]");
    /* deep nesting */
    char deep[4096] = "";
    strcat(deep, "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}},\"normalizer\":");
    for (int i = 0; i < 20; i++) strcat(deep, "{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 20; i++) strcat(deep, "]}");
    strcat(deep, "}");
    expect_load_error(deep, BS_EFORMAT, "nested too deeply");
    /* missing folder */
    assert_int_equal(bs_tokenizer_load("/nonexistent/model", &tok, &err), BS_ENOTFOUND);
    const char *empty = bs_test_tmpdir("tok-empty");
    assert_int_equal(bs_tokenizer_load(empty, &tok, &err), BS_ENOTFOUND);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A 1 MB word (and a 1 MB text) through every model: linear time (128 KB
 * under the sanitizers). */
static void test_long_words(void **state)
{
    (void)state;
    static const char *const names[] = {"bert-base-uncased", "roberta-base", "albert-base-v2",
                                        "bert-base-chinese"};
#if defined(__SANITIZE_ADDRESS__)
    size_t n = 1 << 17; /* sanitizers make every allocation slow: a smaller text */
#else
    size_t n = 1 << 20;
#endif
    char *word = malloc(n + 1), *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        word[i] = (char)('a' + (i * 7 % 26));
        text[i] = i % 6 == 5 ? ' ' : (char)('a' + (i * 7 % 26));
    }
    word[n] = text[n] = 0;
    for (size_t t = 0; t < 4; t++) {
        bs_tokenizer *tok = load(names[t]);
        for (int k = 0; k < 2; k++) {
            double t0 = now();
            bs_encoding *e;
            bs_err err;
            assert_int_equal(bs_tokenizer_encode(tok, k ? text : word, n, NULL, 0, NULL, &e, &err),
                             0);
            double dt = now() - t0;
            printf("%s: %zu KB %s -> %zu tokens in %.2f s\n", names[t], n >> 10,
                   k ? "text" : "word", e->len, dt);
            assert_true(dt < 20.0);
            assert_true(e->len >= 3);
            bs_encoding_free(e);
        }
        bs_tokenizer_free(tok);
    }
    free(word);
    free(text);
}

typedef struct job {
    const bs_tokenizer *tok;
    const char *const *texts;
    size_t n;
    uint32_t *sums;
    int ok;
} job;

static uint32_t digest(const bs_encoding *e)
{
    uint32_t h = (uint32_t)e->len;
    for (size_t i = 0; i < e->len; i++)
        h = h * 31 + (uint32_t)e->ids[i] + (uint32_t)e->offsets[i].start;
    return h;
}

static void *worker(void *arg)
{
    job *j = arg;
    j->ok = 1;
    for (int rep = 0; rep < 20; rep++)
        for (size_t i = 0; i < j->n; i++) {
            bs_encoding *e;
            bs_err err;
            if (bs_tokenizer_encode(j->tok, j->texts[i], strlen(j->texts[i]), NULL, 0, NULL, &e,
                                    &err)) {
                j->ok = 0;
                continue;
            }
            if (digest(e) != j->sums[i]) j->ok = 0;
            bs_encoding_free(e);
        }
    return NULL;
}

/* Many threads on one tokenizer (the BPE cache is shared) give the same
 * results as one thread. */
static void test_concurrent(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "Hello, world!",         "The quick brown fox jumps over the lazy dog.",
        "naïve café 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  "日本語のテキスト",
        "<mask> is a  test\t\n", "supercalifragilisticexpialidocious antidisestablishmentarianism"};
    size_t n = sizeof texts / sizeof *texts;
    static const char *const names[] = {"roberta-base", "bert-base-cased", "albert-base-v2"};
    for (size_t t = 0; t < 3; t++) {
        bs_tokenizer *tok = load(names[t]);
        uint32_t sums[8];
        for (size_t i = 0; i < n; i++) {
            bs_encoding *e;
            bs_err err;
            assert_int_equal(
                bs_tokenizer_encode(tok, texts[i], strlen(texts[i]), NULL, 0, NULL, &e, &err), 0);
            sums[i] = digest(e);
            bs_encoding_free(e);
        }
        pthread_t th[8];
        job jobs[8];
        for (int k = 0; k < 8; k++) {
            jobs[k] = (job){tok, texts, n, sums, 0};
            pthread_create(&th[k], NULL, worker, &jobs[k]);
        }
        for (int k = 0; k < 8; k++) {
            pthread_join(th[k], NULL);
            assert_true(jobs[k].ok);
        }
        bs_tokenizer_free(tok);
    }
}

/* Queries used by the pipelines. */
static void test_queries(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("bert-base-uncased");
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_CLS), 101);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_SEP), 102);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_PAD), 0);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_MASK), 103);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_UNK), 100);
    assert_string_equal(bs_tokenizer_special_token(tok, BS_SPECIAL_MASK), "[MASK]");
    assert_int_equal(bs_tokenizer_token_to_id(tok, "hello", 5), 7592);
    assert_string_equal(bs_tokenizer_id_to_token(tok, 7592), "hello");
    assert_int_equal(bs_tokenizer_vocab_size(tok), 30522);
    assert_true(bs_tokenizer_is_special(tok, 101));
    assert_false(bs_tokenizer_is_special(tok, 7592));
    assert_string_equal(bs_tokenizer_continuing_subword_prefix(tok), "##");
    assert_int_equal(bs_tokenizer_model_kind(tok), BS_MODEL_WORDPIECE);
    assert_int_equal(bs_tokenizer_num_special_tokens(tok, 0), 2);
    assert_int_equal(bs_tokenizer_num_special_tokens(tok, 1), 3);
    assert_int_equal(bs_tokenizer_model_max_length(tok), 512);
    bs_tokenizer_free(tok);
    tok = load("roberta-base");
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_CLS), 0);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_EOS), 2);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_PAD), 1);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_MASK), 50264);
    assert_null(bs_tokenizer_continuing_subword_prefix(tok));
    assert_int_equal(bs_tokenizer_num_special_tokens(tok, 1), 4);
    assert_int_equal(bs_tokenizer_token_to_id(tok, "\xc4\xa0hello", 7), 20760);
    bs_tokenizer_free(tok);
    tok = load("albert-base-v2");
    assert_int_equal(bs_tokenizer_model_kind(tok), BS_MODEL_UNIGRAM);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_MASK), 4);
    assert_int_equal(bs_tokenizer_token_to_id(tok, "\xe2\x96\x81the", 6), 14);
    bs_tokenizer_free(tok);
}

/* tokenizer_config.json: transformers' 1e30 "no limit" is no limit; the
 * cleanup flag and special tokens are read; a tokenizer.json path works. */
static void test_configs(void **state)
{
    (void)state;
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s", bs_test_tmpdir("tok-config"));
    size_t len;
    char *json =
        bs_test_read_file(bs_test_fixture("tokenizers/bert-base-uncased/tokenizer.json"), &len);
    assert_non_null(json);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(json, 1, len, f);
    fclose(f);
    free(json);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    f = fopen(path, "w");
    fputs("{\"model_max_length\": 1e30, \"clean_up_tokenization_spaces\": false, "
          "\"mask_token\": {\"content\": \"[UNK]\"}}",
          f);
    fclose(f);
    bs_tokenizer *tok;
    bs_err err;
    assert_int_equal(bs_tokenizer_load(dir, &tok, &err), 0);
    assert_int_equal(bs_tokenizer_model_max_length(tok), 0);
    assert_int_equal(bs_tokenizer_clean_up_tokenization_spaces(tok), 0);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_MASK), 100);
    bs_tokenizer_free(tok);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(bs_tokenizer_load(path, &tok, &err), 0);
    assert_int_equal(bs_tokenizer_special_id(tok, BS_SPECIAL_MASK), 100);
    bs_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_long_words),   cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_queries),      cmocka_unit_test(test_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
