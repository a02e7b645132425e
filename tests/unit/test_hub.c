/* Model cache: name and path safety, checksums and the manifest, the files a
 * model needs, task types from architectures, and the eviction order. */
#include "testutil.h"

#include "hub/hub.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_names(void **state)
{
    (void)state;
    const char *ok[] = {"bert-base-uncased", "org/name", "demo/tiny-bert-ner", "A_b-9/x_Y", NULL};
    for (int i = 0; ok[i]; i++) assert_int_equal(bs_hub_name_check(ok[i], NULL), 0);
    const char *bad[] = {"",    "../etc", "a/../b", "..",  "/abs",   "a//b", "a/", "a/b/c",
                         "a b", "a\\b",   "%2e%2e", "a.b", "name\n", "ü",    NULL};
    for (int i = 0; bad[i]; i++) {
        bs_err e = {0};
        assert_int_equal(bs_hub_name_check(bad[i], &e), BS_EINVAL);
        assert_true(strlen(e.msg) > 0);
    }
    char longname[260];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(bs_hub_name_check(longname, NULL), BS_EINVAL);
    assert_int_equal(bs_hub_name_check(NULL, NULL), BS_EINVAL);

    assert_int_equal(bs_hub_revision_check("main", NULL), 0);
    assert_int_equal(bs_hub_revision_check("refs/pr/1", NULL), 0);
    assert_int_equal(bs_hub_revision_check("v1.0", NULL), 0);
    assert_int_equal(bs_hub_revision_check("../x", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("a/../../b", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("a b", NULL), BS_EINVAL);
    /* The Hub's rule: a 40-hex commit, or a branch or tag git accepts. */
    assert_int_equal(bs_hub_revision_check("0123456789abcdef0123456789abcdef01234567", NULL), 0);
    assert_int_equal(bs_hub_revision_check("main\nforged log line", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("main/", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("a//b", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("a/.hidden", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("v1.", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("x.lock", NULL), BS_EINVAL);
    assert_int_equal(bs_hub_revision_check("x.lock/y", NULL), BS_EINVAL);
}

static void test_model_path(void **state)
{
    (void)state;
    const char *root = bs_test_tmpdir("hub_path");
    char models[1024], p[4096], outside[1024], link[1200];
    snprintf(models, sizeof models, "%s/models", root);
    snprintf(outside, sizeof outside, "%s/outside", root);
    assert_int_equal(mkdir(models, 0755), 0);
    assert_int_equal(mkdir(outside, 0755), 0);

    assert_int_equal(bs_hub_model_path(models, "org/name", p, sizeof p, NULL), 0);
    char want[2048];
    snprintf(want, sizeof want, "%s/org--name", models);
    assert_string_equal(p, want);
    /* One flat folder per model: "X" and "X/y" never nest. */
    assert_int_equal(bs_hub_model_path(models, "org", p, sizeof p, NULL), 0);
    snprintf(want, sizeof want, "%s/org", models);
    assert_string_equal(p, want);
    char flat[16];
    assert_int_equal(bs_hub_name_folder("a/b", flat, sizeof flat), 0);
    assert_string_equal(flat, "a--b");
    assert_int_equal(bs_hub_name_folder("abcdefg/hijklmn", flat, sizeof flat), BS_ERANGE);
    assert_int_equal(bs_hub_model_path(models, "../outside", p, sizeof p, NULL), BS_EINVAL);

    /* A symlinked model folder leading outside is refused. */
    snprintf(link, sizeof link, "%s/evil", models);
    assert_int_equal(symlink(outside, link), 0);
    bs_err e = {0};
    assert_int_equal(bs_hub_model_path(models, "evil", p, sizeof p, &e), BS_EPERM);
    assert_non_null(strstr(e.msg, "outside"));
    snprintf(link, sizeof link, "%s/evil--x", models);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(bs_hub_model_path(models, "evil/x", p, sizeof p, NULL), BS_EPERM);
    /* A symlink that stays inside is fine. */
    char in_target[1200], in_link[1200];
    snprintf(in_target, sizeof in_target, "%s/real", models);
    snprintf(in_link, sizeof in_link, "%s/alias--m", models);
    assert_int_equal(mkdir(in_target, 0755), 0);
    assert_int_equal(symlink(in_target, in_link), 0);
    assert_int_equal(bs_hub_model_path(models, "alias/m", p, sizeof p, NULL), 0);
    /* Too small a buffer. */
    char small[8];
    assert_int_equal(bs_hub_model_path(models, "org/name", small, sizeof small, NULL), BS_ERANGE);
}

static void hex_of(const void *data, size_t n, char out[65])
{
    unsigned char d[32];
    crypto_hash_sha256(d, data, n);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_checksum_manifest(void **state)
{
    (void)state;
    const char *dir = bs_test_tmpdir("hub_sum");
    char p[2048], hex[65];
    int64_t size;
    snprintf(p, sizeof p, "%s/b.txt", dir);
    write_file(p, "abc");
    /* FIPS 180-2 test vector. */
    assert_int_equal(bs_hub_sha256_file(p, hex, &size, NULL), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    snprintf(p, sizeof p, "%s/a.json", dir);
    write_file(p, "");
    snprintf(p, sizeof p, "%s/1_Pooling", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/1_Pooling/config.json", dir);
    write_file(p, "{}");

    char sum[72];
    int64_t total = 0;
    assert_int_equal(bs_hub_manifest_write(dir, sum, &total, NULL), 0);
    assert_int_equal(total, 5);
    /* The manifest is sha256sum(1)'s format, sorted by path. */
    char ha[65], hb[65], hc[65], expect[1024];
    hex_of("", 0, ha);
    hex_of("abc", 3, hb);
    hex_of("{}", 2, hc);
    snprintf(expect, sizeof expect, "%s  1_Pooling/config.json\n%s  a.json\n%s  b.txt\n", hc, ha,
             hb);
    snprintf(p, sizeof p, "%s/%s", dir, BS_HUB_MANIFEST);
    size_t len;
    char *text = bs_test_read_file(p, &len);
    assert_non_null(text);
    assert_string_equal(text, expect);
    /* The checksum is the manifest's own sha256. */
    char hm[65], want[80];
    hex_of(text, len, hm);
    snprintf(want, sizeof want, "sha256:%s", hm);
    assert_string_equal(sum, want);
    free(text);

    char again[72];
    assert_int_equal(bs_hub_manifest_verify(dir, again, NULL), 0);
    assert_string_equal(again, sum);
    /* One changed byte is caught and the file named. */
    snprintf(p, sizeof p, "%s/b.txt", dir);
    write_file(p, "abd");
    bs_err e = {0};
    assert_int_equal(bs_hub_manifest_verify(dir, NULL, &e), BS_EFORMAT);
    assert_non_null(strstr(e.msg, "b.txt"));
    /* So is a missing file. */
    write_file(p, "abc");
    assert_int_equal(bs_hub_manifest_verify(dir, NULL, NULL), 0);
    snprintf(p, sizeof p, "%s/a.json", dir);
    unlink(p);
    assert_int_equal(bs_hub_manifest_verify(dir, NULL, &e), BS_EFORMAT);
    assert_non_null(strstr(e.msg, "a.json"));
}

static void test_files_wanted(void **state)
{
    (void)state;
    const char *yes[] = {"config.json",
                         "model.safetensors",
                         "model-00001-of-00002.safetensors",
                         "model.safetensors.index.json",
                         "tokenizer.json",
                         "vocab.txt",
                         "merges.txt",
                         "vocab.json",
                         "1_Pooling/config.json",
                         "modules.json",
                         "generation_config.json",
                         "special_tokens_map.json",
                         NULL};
    const char *no[] = {"pytorch_model.bin",
                        "README.md",
                        "onnx/model.safetensors",
                        "2_Dense/config.json",
                        ".safetensors",
                        "tf_model.h5",
                        "",
                        NULL};
    for (int i = 0; yes[i]; i++) assert_true(bs_hub_file_wanted(yes[i]));
    for (int i = 0; no[i]; i++) assert_false(bs_hub_file_wanted(no[i]));
}

static const char *task_of(const char *fixture, bool st)
{
    json_t *cfg = json_load_file(bs_test_fixture("models/%s/config.json", fixture), 0, NULL);
    assert_non_null(cfg);
    static char out[32];
    snprintf(out, sizeof out, "%s", bs_hub_task_type(cfg, st));
    json_decref(cfg);
    return out;
}

static void test_task_types(void **state)
{
    (void)state;
    assert_string_equal(task_of("tiny-bert-classification", false), "classification");
    assert_string_equal(task_of("tiny-bert-ner", false), "ner");
    assert_string_equal(task_of("tiny-bert-qa", false), "qa");
    assert_string_equal(task_of("tiny-roberta-mlm", false), "fill-mask");
    assert_string_equal(task_of("tiny-bart", false), "summarization");
    assert_string_equal(task_of("tiny-bert-embeddings", true), "embeddings");
    assert_string_equal(task_of("tiny-electra-base", false), "features");
}

static void test_describe(void **state)
{
    (void)state;
    json_t *doc = NULL;
    const char *dir = bs_test_fixture("models/tiny-bert-embeddings");
    char d[1024];
    snprintf(d, sizeof d, "%s", dir);
    assert_int_equal(bs_hub_describe(d, "demo/x", NULL, "file:///x", NULL, "sha256:00", 10,
                                     1700000000000, &doc, NULL),
                     0);
    assert_string_equal(json_string_value(json_object_get(doc, "task_type")), "embeddings");
    assert_string_equal(json_string_value(json_object_get(doc, "model_type")),
                        "sentence-transformers");
    json_t *mc = json_object_get(doc, "model_config");
    assert_int_equal(json_integer_value(json_object_get(mc, "vocab_size")), 2999);
    assert_int_equal(json_integer_value(json_object_get(mc, "hidden_size")), 32);
    assert_int_equal(json_integer_value(json_object_get(mc, "num_attention_heads")), 4);
    assert_int_equal(json_integer_value(json_object_get(mc, "max_position_embeddings")), 128);
    assert_string_equal(json_string_value(json_object_get(doc, "download_date")),
                        "2023-11-14T22:13:20.000Z");
    assert_true(json_is_true(json_object_get(doc, "is_cached")));
    assert_string_equal(json_string_value(json_object_get(doc, "cache_priority")), "normal");
    json_decref(doc);
}

static json_t *entry(const char *name, const char *task, int64_t size, const char *last, int count,
                     const char *prio, bool cached)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:i, s:s, s:b}", "model_name", name, "task_type", task,
                     "file_size", (json_int_t)size, "last_accessed", last, "access_count", count,
                     "cache_priority", prio, "is_cached", cached);
}

static void test_eviction_order(void **state)
{
    (void)state;
    json_t *e = json_array();
    json_array_append_new(e,
                          entry("old", "ner", 100, "2024-01-01T00:00:00.000Z", 50, "normal", true));
    json_array_append_new(e,
                          entry("new", "ner", 100, "2024-03-01T00:00:00.000Z", 1, "normal", true));
    json_array_append_new(
        e, entry("tie-few", "qa", 100, "2024-02-01T00:00:00.000Z", 1, "normal", true));
    json_array_append_new(
        e, entry("tie-many", "qa", 100, "2024-02-01T00:00:00.000Z", 9, "normal", true));
    json_array_append_new(e, entry("vip", "qa", 100, "2023-01-01T00:00:00.000Z", 0, "high", true));
    json_array_append_new(e,
                          entry("cheap", "qa", 100, "2024-06-01T00:00:00.000Z", 99, "low", true));
    json_array_append_new(e, entry("gone", "qa", 900, "2020-01-01T00:00:00.000Z", 0, "low", false));
    /* Two entries of one model share a folder: its bytes count once and
     * its most recent access counts. */
    json_array_append_new(
        e, entry("multi", "ner", 100, "2023-06-01T00:00:00.000Z", 1, "normal", true));
    json_array_append_new(
        e, entry("multi", "features", 100, "2024-04-01T00:00:00.000Z", 1, "normal", true));

    json_t *v = NULL;
    /* 7 models x 100 bytes cached; a cap of 0 evicts them all in order. */
    assert_int_equal(bs_hub_eviction_plan(e, 0, NULL, 0, &v, NULL), 0);
    const char *order[] = {"cheap", "old", "tie-few", "tie-many", "new", "multi", "vip"};
    assert_int_equal(json_array_size(v), 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(json_string_value(json_array_get(v, i)), order[i]);
    json_decref(v);
    /* A cap of 450 needs 3 evictions; a kept model is skipped. */
    const char *keep[] = {"old"};
    assert_int_equal(bs_hub_eviction_plan(e, 450, keep, 1, &v, NULL), 0);
    assert_int_equal(json_array_size(v), 3);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "cheap");
    assert_string_equal(json_string_value(json_array_get(v, 1)), "tie-few");
    assert_string_equal(json_string_value(json_array_get(v, 2)), "tie-many");
    json_decref(v);
    /* Under the cap: nothing. */
    assert_int_equal(bs_hub_eviction_plan(e, 700, NULL, 0, &v, NULL), 0);
    assert_int_equal(json_array_size(v), 0);
    json_decref(v);
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_model_path),
        cmocka_unit_test(test_checksum_manifest),
        cmocka_unit_test(test_files_wanted),
        cmocka_unit_test(test_task_types),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_eviction_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
