/* bs_tokenizer_decode_tokens: the decoder chain on token strings. Decoding a
 * case's tokens must give what the library gave for its ids with no special
 * token skipped (decoded_with_special in cases.jsonl); on strings that are
 * not vocabulary tokens (words already decoded, as transformers' NER decodes
 * a group's words again) it must follow the library's decoders. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"
#include "testutil.h"

static const char *const names[] = {
    "bert-base-uncased", "bert-base-cased", "bert-base-chinese", "bert-base-multilingual-cased",
    "roberta-base",      "bart-large-cnn",  "albert-base-v2"};

static bs_tokenizer *load(const char *name)
{
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load(bs_test_fixture("tokenizers/%s", name), &tok, &err))
        fail_msg("%s: %s", name, err.msg);
    return tok;
}

/* Loads fixture `name`'s tokenizer.json with its "decoder" replaced. */
static bs_tokenizer *load_with_decoder(const char *name, json_t *decoder)
{
    size_t len;
    char *text = bs_test_read_file(bs_test_fixture("tokenizers/%s/tokenizer.json", name), &len);
    assert_non_null(text);
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(root);
    json_object_set_new(root, "decoder", decoder);
    char *dumped = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(dumped);
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load_json(dumped, strlen(dumped), &tok, &err))
        fail_msg("%s: %s", name, err.msg);
    free(dumped);
    return tok;
}

static void expect(const bs_tokenizer *tok, const char *const *tokens, size_t n, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    bs_err err;
    if (bs_tokenizer_decode_tokens(tok, tokens, n, &got, &len, &err)) fail_msg("%s", err.msg);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
}

/* Every encoding of every case: its tokens decode to decoded_with_special. */
static void test_cases_tokens_decode_like_ids(void **state)
{
    (void)state;
    size_t checked = 0, failed = 0;
    for (size_t t = 0; t < sizeof names / sizeof *names; t++) {
        bs_tokenizer *tok = load(names[t]);
        size_t len;
        char *text =
            bs_test_read_file(bs_test_fixture("tokenizers/%s/cases.jsonl", names[t]), &len);
        assert_non_null(text);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *c = json_loads(line, JSON_ALLOW_NUL, NULL);
            assert_non_null(c);
            json_t *encs = json_object_get(json_object_get(c, "expected"), "encodings");
            for (size_t e = 0; e < json_array_size(encs); e++) {
                json_t *x = json_array_get(encs, e), *jt = json_object_get(x, "tokens");
                json_t *ids = json_object_get(x, "ids");
                json_t *want = json_object_get(x, "decoded_with_special");
                size_t n = json_array_size(jt);
                const char **toks = calloc(n ? n : 1, sizeof *toks);
                assert_non_null(toks);
                for (size_t i = 0; i < n; i++) {
                    /* an added token with lstrip/rstrip carries its text
                     * slice (" <mask>"): what decode sees is its content */
                    const char *s = json_string_value(json_array_get(jt, i));
                    int32_t id = (int32_t)json_integer_value(json_array_get(ids, i));
                    toks[i] = bs_tokenizer_token_to_id(tok, s, strlen(s)) == id
                                  ? s
                                  : bs_tokenizer_id_to_token(tok, id);
                    assert_non_null(toks[i]);
                }
                char *got = NULL;
                size_t got_len = 0;
                bs_err err;
                if (bs_tokenizer_decode_tokens(tok, toks, n, &got, &got_len, &err))
                    fail_msg("%s: %s", names[t], err.msg);
                checked++;
                if (got_len != json_string_length(want) ||
                    memcmp(got, json_string_value(want), got_len)) {
                    if (failed++ < 8)
                        printf("FAIL %s %s: got \"%.200s\" want \"%.200s\"\n", names[t],
                               json_string_value(json_object_get(c, "id")), got,
                               json_string_value(want));
                }
                free(got);
                free(toks);
            }
            json_decref(c);
        }
        free(text);
        bs_tokenizer_free(tok);
    }
    printf("decode_tokens: %zu/%zu encodings match\n", checked - failed, checked);
    assert_true(checked > 1000);
    assert_int_equal(failed, 0);
}

/* WordPiece: prefixed pieces glue, others get a space; cleanup is applied
 * to each token on its own, so " do not" across two tokens stays. */
static void test_wordpiece_words(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("bert-base-cased");
    expect(tok, (const char *[]){"playing", "New", "York"}, 3, "playing New York");
    expect(tok, (const char *[]){"Microsoft", ".", "I", "do", "not"}, 5, "Microsoft. I do not");
    expect(tok, (const char *[]){"a", "##b"}, 2, "ab");
    expect(tok, (const char *[]){"##a", "b"}, 2, "##a b");
    expect(tok, (const char *[]){"I do not"}, 1, "I don't");
    expect(tok, (const char *[]){"x", "y do not"}, 2, "x y don't");
    expect(tok, NULL, 0, "");
    bs_tokenizer_free(tok);
}

/* ByteLevel: strings of its alphabet map back to bytes, other strings are
 * taken as their own bytes, and the whole is read as lossy UTF-8. */
static void test_bytelevel_words(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("roberta-base");
    expect(tok, (const char *[]){" New", " Yorkers"}, 2, " New Yorkers");
    /* U+00C3 U+00A9 stand for the two bytes of "é" */
    expect(tok, (const char *[]){"caf\u00c3\u00a9"}, 1, "caf\u00e9");
    /* a decoded "é" (U+00E9) stands for the lone byte 0xE9: invalid -> U+FFFD */
    expect(tok, (const char *[]){"caf\u00e9"}, 1, "caf\ufffd");
    expect(tok, (const char *[]){"\u0120New"}, 1, " New");
    bs_tokenizer_free(tok);
}

/* Metaspace: the replacement becomes a space, except in the first token
 * when a prefix space was prepended (all of that token's replacements go). */
static void test_metaspace_words(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("albert-base-v2");
    expect(tok, (const char *[]){"New", "York"}, 2, "NewYork");
    expect(tok, (const char *[]){"\u2581New", "\u2581York"}, 2, "New York");
    expect(tok, (const char *[]){"a\u2581b\u2581c", "\u2581d"}, 2, "abc d");
    bs_tokenizer_free(tok);
    tok = load_with_decoder("albert-base-v2",
                            json_pack("{s:s, s:s, s:s}", "type", "Metaspace", "replacement",
                                      "\u2581", "prepend_scheme", "never"));
    expect(tok, (const char *[]){"\u2581New"}, 1, " New");
    expect(tok, (const char *[]){"a\u2581b", "\u2581c"}, 2, "a b c");
    bs_tokenizer_free(tok);
}

/* No decoder: the library joins the tokens with spaces. */
static void test_no_decoder(void **state)
{
    (void)state;
    bs_tokenizer *tok = load_with_decoder("bert-base-uncased", json_null());
    expect(tok, (const char *[]){"new", "##york", "!"}, 3, "new ##york !");
    bs_tokenizer_free(tok);
}

static void test_null_token(void **state)
{
    (void)state;
    bs_tokenizer *tok = load("bert-base-uncased");
    char *out = (char *)"untouched";
    bs_err err;
    assert_int_equal(
        bs_tokenizer_decode_tokens(tok, (const char *[]){"a", NULL}, 2, &out, NULL, &err),
        BS_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "token 1"));
    bs_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_tokens_decode_like_ids),
        cmocka_unit_test(test_wordpiece_words),
        cmocka_unit_test(test_bytelevel_words),
        cmocka_unit_test(test_metaspace_words),
        cmocka_unit_test(test_no_decoder),
        cmocka_unit_test(test_null_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
