/* The cache on a real (SQLite) store with an injected clock: imports become
 * documents and folders only when complete and valid, removal, and the disk
 * cap evicting by priority and usage with the store's own usage fields. The
 * folder check is stubbed so that these tests do not depend on the engine. */
#include "testutil.h"

#include "hub/hub.h"
#include "store/store.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct world {
    char dir[1024];
    bs_store *store;
    bs_hub *hub;
    int64_t now;
    int validations;
    int reject;         /* the stub refuses folders while set */
    const char *in_use; /* a model the stub server has loaded */
} world;

static int64_t clock_fn(void *ud)
{
    return ((world *)ud)->now;
}

static int stub_validate(const char *dir, void *ud, bs_err *err)
{
    world *w = ud;
    w->validations++;
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (stat(p, &st)) return bs_err_set(err, BS_ENOTFOUND, "%s: no config.json", dir);
    if (w->reject) return bs_err_set(err, BS_EFORMAT, "%s: weights disagree with config", dir);
    return 0;
}

static bool stub_in_use(const char *name, void *ud)
{
    world *w = ud;
    return w->in_use && !strcmp(w->in_use, name);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "%s", bs_test_tmpdir("hub_cache"));
    w->now = 1700000000000;
    char uri[1200];
    snprintf(uri, sizeof uri, "%s/bertstudio.db", w->dir);
    bs_store_opts so = {.data_dir = w->dir, .clock = clock_fn, .clock_ud = w};
    bs_err e = {0};
    if (bs_store_open(uri, &so, &w->store, &e)) {
        fprintf(stderr, "store: %s\n", e.msg);
        return -1;
    }
    bs_hub_opts ho = {.data_dir = w->dir,
                      .store = w->store,
                      .validate = stub_validate,
                      .validate_ud = w,
                      .in_use = stub_in_use,
                      .in_use_ud = w};
    if (bs_hub_open(&ho, &w->hub, &e)) return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    bs_hub_close(w->hub);
    bs_store_close(w->store);
    free(w);
    return 0;
}

static const char *fixture(const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s", bs_test_fixture("models/%s", name));
    return p;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_import_and_remove(void **state)
{
    world *w = *state;
    json_t *doc = NULL;
    bs_err e = {0};
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-ner"), "org/ner", NULL, NULL, &doc, &e), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "task_type")), "ner");
    assert_string_equal(json_string_value(json_object_get(doc, "download_date")),
                        "2023-11-14T22:13:20.000Z");
    const char *path = json_string_value(json_object_get(doc, "local_path"));
    char want[2048];
    snprintf(want, sizeof want, "%s/org--ner", bs_hub_models_dir(w->hub));
    assert_string_equal(path, want);
    char sum[72];
    assert_int_equal(bs_hub_manifest_verify(path, sum, NULL), 0);
    assert_string_equal(sum, json_string_value(json_object_get(doc, "checksum")));
    /* Only inference files were copied. */
    char p[2200];
    struct stat st;
    snprintf(p, sizeof p, "%s/expected.json", path);
    assert_int_not_equal(stat(p, &st), 0);
    json_decref(doc);

    json_t *got = NULL;
    assert_int_equal(bs_hub_info(w->hub, "org/ner", NULL, &got, NULL), 0);
    json_decref(got);

    /* Issue 17 M3: a model named "org" has a folder of its own; importing
     * and removing it leaves org/ner whole. */
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-qa"), "org", NULL, NULL, NULL, &e),
                     0);
    assert_int_equal(bs_hub_remove(w->hub, "org", NULL), 0);
    assert_int_equal(bs_hub_manifest_verify(want, NULL, NULL), 0);
    /* A name that maps to org/ner's folder is refused, and removing it (it
     * has no document) does not touch that folder. */
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-qa"), "org--ner", NULL, NULL, NULL, &e),
        BS_ECONFLICT);
    assert_non_null(strstr(e.msg, "org/ner"));
    assert_int_equal(bs_hub_remove(w->hub, "org--ner", NULL), BS_ENOTFOUND);
    assert_int_equal(bs_hub_manifest_verify(want, NULL, NULL), 0);
    assert_int_equal(bs_hub_info(w->hub, "org/ner", NULL, &got, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(got, "task_type")), "ner");
    json_decref(got);

    assert_int_equal(bs_hub_remove(w->hub, "org/ner", NULL), 0);
    assert_int_not_equal(stat(want, &st), 0);
    assert_int_equal(bs_hub_info(w->hub, "org/ner", NULL, &got, NULL), BS_ENOTFOUND);
    assert_int_equal(bs_hub_remove(w->hub, "org/ner", NULL), BS_ENOTFOUND);
}

static void test_nothing_half_written(void **state)
{
    world *w = *state;
    bs_err e = {0};
    w->reject = 1;
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-qa"), "qa", NULL, NULL, NULL, &e),
                     BS_EUNPROCESSABLE);
    assert_non_null(strstr(e.msg, "model qa is not usable"));
    json_t *list = NULL;
    assert_int_equal(bs_hub_list(w->hub, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    char p[2048];
    snprintf(p, sizeof p, "%s/.partial", bs_hub_models_dir(w->hub));
    assert_int_equal(count_entries(p), 0);
    snprintf(p, sizeof p, "%s/qa", bs_hub_models_dir(w->hub));
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    /* A re-import over a registered model that fails leaves the old one. */
    w->reject = 0;
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-qa"), "qa", NULL, NULL, NULL, &e), 0);
    w->reject = 1;
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-ner"), "qa", NULL, NULL, NULL, &e),
                     BS_EUNPROCESSABLE);
    json_t *doc = NULL;
    assert_int_equal(bs_hub_info(w->hub, "qa", NULL, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "task_type")), "qa");
    assert_int_equal(
        bs_hub_manifest_verify(json_string_value(json_object_get(doc, "local_path")), NULL, NULL),
        0);
    json_decref(doc);
    /* Bad inputs never reach the file system. */
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-qa"), "../x", NULL, NULL, NULL, NULL),
                     BS_EINVAL);
    assert_int_equal(bs_hub_import(w->hub, "/nonexistent/dir", "x", NULL, NULL, NULL, NULL),
                     BS_ENOTFOUND);
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-qa/config.json"), "x", NULL, NULL, NULL, NULL),
        BS_EINVAL);
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-qa"), "x", "poetry", NULL, NULL, NULL), BS_EINVAL);
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-qa"), "x", NULL, "urgent", NULL, NULL), BS_EINVAL);
}

static int64_t size_of(world *w, const char *name)
{
    json_t *doc = NULL;
    assert_int_equal(bs_hub_info(w->hub, name, NULL, &doc, NULL), 0);
    int64_t n = json_integer_value(json_object_get(doc, "file_size"));
    json_decref(doc);
    return n;
}

static bool cached(world *w, const char *name)
{
    json_t *doc = NULL;
    assert_int_equal(bs_hub_info(w->hub, name, NULL, &doc, NULL), 0);
    bool c = json_is_true(json_object_get(doc, "is_cached"));
    char path[2048];
    snprintf(path, sizeof path, "%s", json_string_value(json_object_get(doc, "local_path")));
    json_decref(doc);
    struct stat st;
    assert_int_equal(c, stat(path, &st) == 0); /* the folder goes with the flag */
    return c;
}

static void test_disk_cap(void **state)
{
    world *w = *state;
    /* a (low priority, used often), b, c (high), d, imported a minute apart. */
    const char *names[] = {"a", "b", "c", "d"};
    const char *prio[] = {"low", "normal", "high", "normal"};
    for (int i = 0; i < 4; i++) {
        w->now += 60000;
        assert_int_equal(
            bs_hub_import(w->hub, fixture("tiny-bert-qa"), names[i], NULL, prio[i], NULL, NULL), 0);
    }
    int64_t one = size_of(w, "a");
    /* Usage: a used a lot and recently; b used once, early; d used late. */
    w->now += 60000;
    assert_int_equal(bs_store_models_touch(w->store, "b", NULL, NULL), 0);
    w->now += 60000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(bs_store_models_touch(w->store, "a", NULL, NULL), 0);
    w->now += 60000;
    assert_int_equal(bs_store_models_touch(w->store, "d", NULL, NULL), 0);

    /* Room for three: the low-priority one goes first, however much used. */
    json_t *v = json_integer(3 * one);
    assert_int_equal(bs_store_settings_put(w->store, "model_cache_max_bytes", v, "integer", NULL,
                                           "test", NULL, NULL),
                     0);
    json_decref(v);
    json_t *evicted = NULL;
    assert_int_equal(bs_hub_enforce_cap(w->hub, NULL, 0, &evicted, NULL), 0);
    assert_int_equal(json_array_size(evicted), 1);
    assert_string_equal(json_string_value(json_array_get(evicted, 0)), "a");
    json_decref(evicted);
    assert_false(cached(w, "a"));
    /* Room for two: of the normal ones, b (used least recently) goes. */
    v = json_integer(2 * one);
    bs_store_settings_put(w->store, "model_cache_max_bytes", v, "integer", NULL, "test", NULL,
                          NULL);
    json_decref(v);
    assert_int_equal(bs_hub_enforce_cap(w->hub, NULL, 0, &evicted, NULL), 0);
    assert_int_equal(json_array_size(evicted), 1);
    assert_string_equal(json_string_value(json_array_get(evicted, 0)), "b");
    json_decref(evicted);
    assert_false(cached(w, "b"));
    /* Room for one: d is in use, so the high-priority c has to go. */
    w->in_use = "d";
    v = json_integer(one);
    bs_store_settings_put(w->store, "model_cache_max_bytes", v, "integer", NULL, "test", NULL,
                          NULL);
    json_decref(v);
    assert_int_equal(bs_hub_enforce_cap(w->hub, NULL, 0, &evicted, NULL), 0);
    assert_int_equal(json_array_size(evicted), 1);
    assert_string_equal(json_string_value(json_array_get(evicted, 0)), "c");
    json_decref(evicted);
    assert_false(cached(w, "c"));
    assert_true(cached(w, "d"));
    /* Unlimited: nothing happens. */
    v = json_integer(0);
    bs_store_settings_put(w->store, "model_cache_max_bytes", v, "integer", NULL, "test", NULL,
                          NULL);
    json_decref(v);
    assert_int_equal(bs_hub_enforce_cap(w->hub, NULL, 0, &evicted, NULL), 0);
    assert_null(evicted);
}

static void test_demo_models(void **state)
{
    world *w = *state;
    int n = -1;
    char fixtures[1024];
    snprintf(fixtures, sizeof fixtures, "%s", bs_test_fixture("models"));
    assert_int_equal(bs_hub_register_demo_models(w->hub, fixtures, &n, NULL), 0);
    int folders = 0;
    DIR *d = opendir(fixtures);
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[2048];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/config.json", fixtures, e->d_name);
        if (!stat(p, &st)) folders++;
    }
    closedir(d);
    assert_int_equal(n, folders);
    json_t *doc = NULL;
    assert_int_equal(bs_hub_info(w->hub, "demo/tiny-bert-ner", NULL, &doc, NULL), 0);
    json_decref(doc);
    /* Only on an empty cache. */
    assert_int_equal(bs_hub_register_demo_models(w->hub, fixtures, &n, NULL), 0);
    assert_int_equal(n, 0);
}

/* A data dir of the old layout (models/org/name, here inside the folder of
 * a model named "org") is moved to models/org--name when the cache opens. */
static void test_old_layout_migrated(void **state)
{
    world *w = *state;
    char root[1024]; /* a copy: the hub that owns the string is closed below */
    snprintf(root, sizeof root, "%s", bs_hub_models_dir(w->hub));
    assert_int_equal(bs_hub_import(w->hub, fixture("tiny-bert-ner"), "org", NULL, NULL, NULL, NULL),
                     0);
    assert_int_equal(
        bs_hub_import(w->hub, fixture("tiny-bert-qa"), "org/qa", NULL, NULL, NULL, NULL), 0);
    char flat[2048], old[2048];
    snprintf(flat, sizeof flat, "%s/org--qa", root);
    snprintf(old, sizeof old, "%s/org/qa", root);
    assert_int_equal(rename(flat, old), 0);
    json_t *doc = NULL;
    assert_int_equal(bs_hub_info(w->hub, "org/qa", NULL, &doc, NULL), 0);
    json_object_set_new(doc, "local_path", json_string(old));
    assert_int_equal(bs_store_models_upsert(w->store, doc, NULL, NULL), 0);
    json_decref(doc);
    bs_hub_close(w->hub);

    bs_hub_opts ho = {
        .data_dir = w->dir, .store = w->store, .validate = stub_validate, .validate_ud = w};
    assert_int_equal(bs_hub_open(&ho, &w->hub, NULL), 0);
    struct stat st;
    assert_int_not_equal(stat(old, &st), 0);
    assert_int_equal(bs_hub_manifest_verify(flat, NULL, NULL), 0);
    assert_int_equal(bs_hub_info(w->hub, "org/qa", NULL, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "local_path")), flat);
    json_decref(doc);
    /* "org" kept its own files, and only them. */
    snprintf(old, sizeof old, "%s/org", root);
    assert_int_equal(bs_hub_manifest_verify(old, NULL, NULL), 0);
    /* Removing "org" now leaves org/qa. */
    assert_int_equal(bs_hub_remove(w->hub, "org", NULL), 0);
    assert_int_equal(bs_hub_manifest_verify(flat, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_half_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_layout_migrated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
