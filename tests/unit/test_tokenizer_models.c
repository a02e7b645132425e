/* The tiny models under tests/fixtures/models carry reduced tokenizers; their
 * expected.json records input_ids / token_type_ids / attention_mask from the
 * reference (longest_first truncation to 128, right padding to the longest
 * row). Loading each model folder must reproduce them exactly. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"
#include "testutil.h"

static int same_rows(json_t *exp, bs_encoding **encs, size_t n, int which)
{
    if (!json_is_array(exp) || json_array_size(exp) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(exp, i);
        if (json_array_size(row) != encs[i]->len) return 0;
        for (size_t k = 0; k < encs[i]->len; k++) {
            long long got = which == 0   ? encs[i]->ids[k]
                            : which == 1 ? encs[i]->type_ids[k]
                                         : encs[i]->attention_mask[k];
            if (json_integer_value(json_array_get(row, k)) != got) return 0;
        }
    }
    return 1;
}

static int run(const bs_tokenizer *tok, json_t *texts, json_t *c, const char *label)
{
    size_t n = json_array_size(texts);
    const char **tv = calloc(n, sizeof *tv), **pv = calloc(n, sizeof *pv);
    size_t *tl = calloc(n, sizeof *tl), *pl = calloc(n, sizeof *pl);
    int pairs = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(texts, i);
        json_t *a = json_is_array(r) ? json_array_get(r, 0) : r;
        json_t *b = json_is_array(r) && json_array_size(r) > 1 ? json_array_get(r, 1) : NULL;
        tv[i] = json_string_value(a);
        tl[i] = json_string_length(a);
        pv[i] = b ? json_string_value(b) : NULL;
        pl[i] = b ? json_string_length(b) : 0;
        pairs |= b != NULL;
    }
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
    o.truncation.max_length = 128;
    o.padding.strategy = BS_PAD_LONGEST;
    bs_encoding **encs;
    bs_err err;
    int ok = 0;
    if (bs_tokenizer_encode_batch(tok, n, tv, tl, pairs ? pv : NULL, pl, &o, &encs, &err) == 0) {
        json_t *tt = json_object_get(c, "token_type_ids");
        ok = same_rows(json_object_get(c, "input_ids"), encs, n, 0) &&
             (!tt || same_rows(tt, encs, n, 1)) &&
             same_rows(json_object_get(c, "attention_mask"), encs, n, 2);
        bs_encoding_batch_free(encs, n);
    }
    if (!ok) printf("FAIL %s\n", label);
    free(tv);
    free(pv);
    free(tl);
    free(pl);
    return ok;
}

static void test_models(void **state)
{
    (void)state;
    const char *root = bs_test_fixture("models");
    char rootbuf[1024];
    snprintf(rootbuf, sizeof rootbuf, "%s", root);
    DIR *d = opendir(rootbuf);
    assert_non_null(d);
    struct dirent *de;
    size_t cases = 0, passed = 0, models = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "tiny-", 5)) continue;
        char dir[1400], label[1600];
        snprintf(dir, sizeof dir, "%s/%s", rootbuf, de->d_name);
        size_t len;
        char path[1500];
        snprintf(path, sizeof path, "%s/expected.json", dir);
        char *text = bs_test_read_file(path, &len);
        if (!text) continue;
        bs_tokenizer *tok;
        bs_err err;
        if (bs_tokenizer_load(dir, &tok, &err)) fail_msg("%s: %s", dir, err.msg);
        assert_int_equal(bs_tokenizer_model_max_length(tok), 128);
        models++;
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        if (json_is_object(j)) { /* tiny-bart: one batch */
            snprintf(label, sizeof label, "%s", de->d_name);
            cases++;
            passed += run(tok, json_object_get(j, "texts"), j, label);
        } else {
            size_t i;
            json_t *c;
            json_array_foreach(j, i, c)
            {
                snprintf(label, sizeof label, "%s %s", de->d_name,
                         json_string_value(json_object_get(c, "id")));
                cases++;
                passed += run(tok, json_object_get(c, "texts"), c, label);
            }
        }
        json_decref(j);
        free(text);
        bs_tokenizer_free(tok);
    }
    closedir(d);
    printf("tiny models: %zu/%zu cases pass (%zu models)\n", passed, cases, models);
    assert_true(models >= 19);
    assert_int_equal(passed, cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_models)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
