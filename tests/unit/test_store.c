/* Conformance suite of the store, written against store.h only and run for
 * each engine: SQLite always, MongoDB when BERTSTUDIO_TEST_MONGODB_URI is set.
 * Covers CRUD, every validation rule, unique indexes, the seed's query
 * patterns with their orderings, retention with an injected clock, privacy,
 * purge, export/import and backup under concurrent writes. */
#include "testutil.h"

#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0  1705314600000LL /* 2024-01-15T10:30:00.000Z */
#define DAY 86400000LL

typedef struct tctx {
    bs_store *s;
    int64_t now;
    char dir[512];
    char uri[600];
    bool mongo;
} tctx;

static const char *mongo_uri;
static int mongo_seq;

static int64_t test_clock(void *ud)
{
    return ((tctx *)ud)->now;
}

static bs_err E;

/* Documents built inline for a call are borrowed by the store: collected
 * here and released after each test. */
static json_t *garbage[512];
static int ngarbage;
static json_t *J(json_t *v)
{
    assert_true(ngarbage < 512);
    garbage[ngarbage++] = v;
    return v;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        memset(&E, 0, sizeof E);                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_) fail_msg("%s -> %d (%s)", #call, rc_, E.msg);                                     \
    } while (0)

/* The call fails with code and its message mentions `what`. */
#define FAILS(code, what, call)                                                                    \
    do {                                                                                           \
        memset(&E, 0, sizeof E);                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_ != (code)) fail_msg("%s -> %d (%s), expected %d", #call, rc_, E.msg, code);        \
        if (!strstr(E.msg, what)) fail_msg("%s: message '%s' lacks '%s'", #call, E.msg, what);     \
    } while (0)

static int open_store(tctx *t)
{
    bs_store_opts o = {.data_dir = t->dir, .clock = test_clock, .clock_ud = t};
    char db[64];
    if (t->mongo) {
        snprintf(db, sizeof db, "bs_test_%d_%d", (int)getpid(), mongo_seq);
        o.mongo_db = db;
    }
    bs_err err = {0};
    int rc = bs_store_open(t->uri, &o, &t->s, &err);
    if (rc) fprintf(stderr, "open %s: %s\n", t->uri, err.msg);
    return rc;
}

static int setup_engine(void **state, bool mongo)
{
    tctx *t = calloc(1, sizeof *t);
    t->now = T0;
    t->mongo = mongo;
    snprintf(t->dir, sizeof t->dir, "%s", bs_test_tmpdir("store"));
    if (mongo) {
        mongo_seq++;
        snprintf(t->uri, sizeof t->uri, "%s", mongo_uri);
    } else {
        snprintf(t->uri, sizeof t->uri, "sqlite://%s/bertstudio.db", t->dir);
    }
    if (open_store(t)) return -1;
    *state = t;
    return 0;
}
static int setup_sqlite(void **state)
{
    return setup_engine(state, false);
}
static int setup_mongo(void **state)
{
    return setup_engine(state, true);
}

static int teardown(void **state)
{
    tctx *t = *state;
    if (t->mongo && t->s) {
        /* leave the test database empty: restore an empty dump */
        char path[600];
        snprintf(path, sizeof path, "%s/empty.jsonl", t->dir);
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        bs_store_restore(t->s, path, NULL);
    }
    bs_store_close(t->s);
    while (ngarbage) json_decref(garbage[--ngarbage]);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", t->dir);
    free(t);
    return 0;
}

static json_t *task_doc(const char *name, const char *desc, const char *model, const char *key_id)
{
    json_t *d = json_pack("{s:s,s:s,s:s}", "name", name, "model_name", model, "function_code",
                          "def custom_function(text):\n    return {}");
    if (desc) json_object_set_new(d, "description", json_string(desc));
    if (key_id) json_object_set_new(d, "api_key_id", json_string(key_id));
    return d;
}

static char *insert_task(tctx *t, json_t *d)
{
    json_t *out = NULL;
    OK(bs_store_tasks_insert(t->s, d, &out, &E));
    json_decref(d);
    char *id = strdup(json_string_value(json_object_get(out, "_id")));
    json_decref(out);
    return id;
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}
static json_int_t iget(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* ───────────────────────────── custom_tasks ─────────────────────────── */

static void tasks_crud(void **state)
{
    tctx *t = *state;
    json_t *d = task_doc("Sentiment", "Custom sentiment analysis", "distilbert-base-uncased", NULL);
    json_object_set_new(d, "tags", json_pack("[s,s]", "sentiment", "nlp"));
    json_object_set_new(d, "model_config", json_pack("{s:i,s:b}", "max_length", 512, "padding", 1));
    json_object_set_new(d, "created_by", json_string("sessionhash"));
    json_t *out = NULL;
    OK(bs_store_tasks_insert(t->s, d, &out, &E));
    const char *id = sget(out, "_id");
    assert_int_equal(strlen(id), 24);
    assert_string_equal(sget(out, "created_at"), "2024-01-15T10:30:00.000Z");
    assert_string_equal(sget(out, "updated_at"), "2024-01-15T10:30:00.000Z");
    assert_int_equal(iget(out, "usage_count"), 0);
    assert_true(json_is_false(json_object_get(out, "is_public")));
    assert_int_equal(iget(json_object_get(out, "execution_stats"), "total_executions"), 0);

    json_t *got = NULL;
    OK(bs_store_tasks_get(t->s, id, &got, &E));
    assert_true(json_equal(got, out)); /* every field round-trips through the engine */
    json_decref(got);

    t->now += 60000;
    json_t *patch =
        json_pack("{s:s,s:b,s:[s]}", "name", "Sentiment v2", "is_public", 1, "tags", "x");
    OK(bs_store_tasks_update(t->s, id, patch, &got, &E));
    assert_string_equal(sget(got, "name"), "Sentiment v2");
    assert_string_equal(sget(got, "updated_at"), "2024-01-15T10:31:00.000Z");
    assert_string_equal(sget(got, "created_at"), "2024-01-15T10:30:00.000Z");
    json_decref(got);
    OK(bs_store_tasks_get(t->s, id, &got, &E));
    assert_true(json_is_true(json_object_get(got, "is_public")));
    assert_int_equal(json_array_size(json_object_get(got, "tags")), 1);
    json_decref(got);
    json_decref(patch);

    FAILS(BS_EINVAL, "name",
          bs_store_tasks_update(t->s, id, J(json_pack("{s:s}", "name", "")), NULL, &E));
    FAILS(BS_EINVAL, "usage_count",
          bs_store_tasks_update(t->s, id, J(json_pack("{s:i}", "usage_count", 5)), NULL, &E));

    OK(bs_store_tasks_delete(t->s, id, &E));
    FAILS(BS_ENOTFOUND, "custom_tasks", bs_store_tasks_get(t->s, id, &got, &E));
    FAILS(BS_ENOTFOUND, "custom_tasks", bs_store_tasks_delete(t->s, id, &E));
    FAILS(BS_EINVAL, "24-hex", bs_store_tasks_get(t->s, "nope", &got, &E));
    json_decref(out);
    json_decref(d);
}

static void expect_task_invalid(tctx *t, json_t *d, const char *what)
{
    FAILS(BS_EINVAL, what, bs_store_tasks_insert(t->s, d, NULL, &E));
    json_decref(d);
}

static void tasks_validation(void **state)
{
    tctx *t = *state;
    char big[600];
    memset(big, 'a', sizeof big);
    big[101] = 0;
    expect_task_invalid(t, task_doc("", NULL, "bert", NULL), "'name' must be 1..100");
    expect_task_invalid(t, task_doc(big, NULL, "bert", NULL), "'name' must be 1..100");
    big[101] = 'a';
    big[100] = 0;
    char *id = insert_task(t, task_doc(big, NULL, "bert", NULL)); /* 100 is fine */
    free(id);
    /* lengths are in characters, not bytes: 100 x "é" is valid */
    char accents[201];
    for (int i = 0; i < 100; i++) memcpy(accents + 2 * i, "\xc3\xa9", 2);
    accents[200] = 0;
    id = insert_task(t, task_doc(accents, NULL, "bert", NULL));
    free(id);
    big[501] = 0;
    big[100] = 'a';
    expect_task_invalid(t, task_doc("n", big, "bert", NULL), "'description' must be 0..500");
    json_t *d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "tags",
                        json_pack("[s,s,s,s,s,s,s,s,s,s,s]", "1", "2", "3", "4", "5", "6", "7", "8",
                                  "9", "10", "11"));
    expect_task_invalid(t, d, "'tags' must have at most 10");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "tags", json_pack("[s,i]", "a", 3));
    expect_task_invalid(t, d, "'tags' must be an array of strings");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "tags", json_string("a"));
    expect_task_invalid(t, d, "'tags'");
    expect_task_invalid(t, task_doc("n", NULL, "bert base", NULL), "'model_name' must match");
    expect_task_invalid(t, task_doc("n", NULL, "bert;drop", NULL), "'model_name' must match");
    id = insert_task(t, task_doc("n", NULL, "org/My_model-2", NULL));
    free(id);
    d = task_doc("n", NULL, "bert", NULL);
    json_object_del(d, "function_code");
    expect_task_invalid(t, d, "'function_code' is required");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_del(d, "name");
    expect_task_invalid(t, d, "'name' is required");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_del(d, "model_name");
    expect_task_invalid(t, d, "'model_name' is required");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "nmae", json_string("typo"));
    expect_task_invalid(t, d, "unknown field 'nmae'");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "usage_count", json_string("3"));
    expect_task_invalid(t, d, "'usage_count' must be an integer");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "created_at", json_string("yesterday"));
    expect_task_invalid(t, d, "'created_at' must be an ISO-8601");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "api_key_id", json_string("xyz"));
    expect_task_invalid(t, d, "'api_key_id' must be a 24-hex");
    d = task_doc("n", NULL, "bert", NULL);
    json_object_set_new(d, "model_config", json_string("x"));
    expect_task_invalid(t, d, "'model_config' must be an object");
    int64_t n = 0;
    OK(bs_store_count(t->s, "custom_tasks", &n, &E));
    assert_int_equal(n, 3);
}

/* Seed query 1: a session's tasks, newest first; and a key's tasks across
 * its sessions. */
static void tasks_by_owner(void **state)
{
    tctx *t = *state;
    const char *key = "65a4f0c2e4b0a1a2b3c4d5e6", *other = "65a4f0c2e4b0a1a2b3c4d5e7";
    char *ids[4];
    const char *sess[4] = {"s1", "s2", "s1", "s3"};
    const char *owner[4] = {key, key, key, other};
    for (int i = 0; i < 4; i++) {
        json_t *d = task_doc("task", NULL, "bert", owner[i]);
        json_object_set_new(d, "created_by", json_string(sess[i]));
        ids[i] = insert_task(t, d);
        t->now += 1000;
    }
    json_t *out = NULL;
    int64_t total = 0;
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.created_by = "s1"}, &out, &total, &E));
    assert_int_equal(total, 2);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[2]);
    assert_string_equal(sget(json_array_get(out, 1), "_id"), ids[0]);
    json_decref(out);
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.owner_api_key_id = key}, &out, &total, &E));
    assert_int_equal(total, 3);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[2]);
    assert_string_equal(sget(json_array_get(out, 2), "_id"), ids[0]);
    json_decref(out);
    /* visibility: the other key sees only its own task until one is public */
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.viewer_api_key_id = other}, &out, &total, &E));
    assert_int_equal(total, 1);
    json_decref(out);
    OK(bs_store_tasks_update(t->s, ids[1], J(json_pack("{s:b}", "is_public", 1)), NULL, &E));
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.viewer_api_key_id = other}, &out, &total, &E));
    assert_int_equal(total, 2);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[3]);
    assert_string_equal(sget(json_array_get(out, 1), "_id"), ids[1]);
    json_decref(out);
    /* pagination */
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.limit = 2, .offset = 1}, &out, &total, &E));
    assert_int_equal(total, 4);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[2]);
    json_decref(out);
    for (int i = 0; i < 4; i++) free(ids[i]);
}

/* Seed query 2: text search on name + description by relevance. */
static void tasks_text_search(void **state)
{
    tctx *t = *state;
    char *a = insert_task(
        t, task_doc("Sentiment analysis", "sentiment analysis of sentiment", "bert", NULL));
    char *b =
        insert_task(t, task_doc("Named entities", "finds entities; no feelings", "bert", NULL));
    char *c = insert_task(t, task_doc("Review scorer", "uses sentiment", "bert", NULL));
    char *d = insert_task(t, task_doc("Summaries", "analysis of long documents", "bert", NULL));
    json_t *out = NULL;
    int64_t total = 0;
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "sentiment analysis"}, &out, &total,
                           &E));
    assert_int_equal(total, 3);                                  /* any of the words, like $text */
    assert_string_equal(sget(json_array_get(out, 0), "_id"), a); /* both words, several times */
    json_decref(out);
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "ENTITIES"}, &out, &total, &E));
    assert_int_equal(total, 1);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), b);
    json_decref(out);
    /* operators in user text are plain words, never syntax */
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "\"sentiment\" OR NEAR( * -"}, &out,
                           &total, &E));
    assert_true(total >= 2);
    json_decref(out);
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "!!!"}, &out, &total, &E));
    assert_int_equal(total, 0);
    json_decref(out);
    /* the text index follows updates and deletes */
    OK(bs_store_tasks_update(t->s, c, J(json_pack("{s:s}", "description", "stars only")), NULL,
                             &E));
    OK(bs_store_tasks_delete(t->s, a, &E));
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "sentiment"}, &out, &total, &E));
    assert_int_equal(total, 0);
    json_decref(out);
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "analysis"}, &out, &total, &E));
    assert_int_equal(total, 1);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), d);
    json_decref(out);
    free(a), free(b), free(c), free(d);
}

/* Seed query 3 (tags $in + model) and 4 (popular public tasks). */
static void tasks_tags_and_popular(void **state)
{
    tctx *t = *state;
    struct {
        const char *tags[3];
        const char *model;
        int pub, usage;
    } spec[] = {
        {{"nlp", "classification"}, "distilbert-base-uncased", 1, 5},
        {{"nlp"}, "bert-base-uncased", 1, 50},
        {{"vision"}, "distilbert-base-uncased", 1, 7},
        {{"classification", "x"}, "distilbert-base-uncased", 0, 100},
        {{0}, "distilbert-base-uncased", 1, 1},
    };
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        json_t *d = task_doc("t", NULL, spec[i].model, NULL);
        json_t *tags = json_array();
        for (int k = 0; k < 3 && spec[i].tags[k]; k++)
            json_array_append_new(tags, json_string(spec[i].tags[k]));
        json_object_set_new(d, "tags", tags);
        json_object_set_new(d, "is_public", json_boolean(spec[i].pub));
        ids[i] = insert_task(t, d);
        for (int u = 0; u < spec[i].usage; u++)
            OK(bs_store_tasks_record_execution(t->s, ids[i], 0.1, u % 2 == 0, &E));
        t->now += 1000;
    }
    const char *tags[] = {"nlp", "classification"};
    json_t *out = NULL;
    int64_t total = 0;
    OK(bs_store_tasks_find(
        t->s, &(bs_task_query){.tags = tags, .ntags = 2, .model_name = "distilbert-base-uncased"},
        &out, &total, &E));
    assert_int_equal(total, 2); /* ids 0 and 3: each once even with two matching tags */
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[3]);
    assert_string_equal(sget(json_array_get(out, 1), "_id"), ids[0]);
    json_decref(out);
    OK(bs_store_tasks_find(
        t->s, &(bs_task_query){.tags = tags, .ntags = 1, .sort = BS_TASK_SORT_USAGE_COUNT}, &out,
        &total, &E));
    assert_int_equal(total, 2);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[1]);
    json_decref(out);
    OK(bs_store_tasks_popular(t->s, 3, &out, &E));
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), ids[1]); /* 50; 100 is private */
    assert_string_equal(sget(json_array_get(out, 1), "_id"), ids[2]); /* 7 */
    assert_string_equal(sget(json_array_get(out, 2), "_id"), ids[0]); /* 5 */
    assert_int_equal(iget(json_array_get(out, 0), "usage_count"), 50);
    json_t *es = json_object_get(json_array_get(out, 0), "execution_stats");
    assert_int_equal(iget(es, "total_executions"), 50);
    assert_float_equal(json_number_value(json_object_get(es, "success_rate")), 0.5, 1e-9);
    assert_float_equal(json_number_value(json_object_get(es, "avg_execution_time")), 0.1, 1e-9);
    json_decref(out);
    OK(bs_store_tasks_stats(t->s, NULL, &out, &E));
    assert_int_equal(iget(out, "total_tasks"), 5);
    assert_int_equal(iget(out, "public_tasks"), 4);
    assert_int_equal(iget(out, "total_usage"), 163);
    json_t *m0 = json_array_get(json_object_get(out, "models"), 0);
    assert_string_equal(sget(m0, "model_name"), "distilbert-base-uncased");
    assert_int_equal(iget(m0, "count"), 4);
    json_t *t0 = json_array_get(json_object_get(out, "tags"), 0);
    assert_int_equal(iget(t0, "count"), 2); /* classification and nlp: 2 each */
    json_decref(out);
    FAILS(BS_ENOTFOUND, "custom_tasks",
          bs_store_tasks_record_execution(t->s, "65a4f0c2e4b0a1a2b3c4d5e6", 1, true, &E));
    for (int i = 0; i < 5; i++) free(ids[i]);
}

/* ─────────────────────────────── api_keys ───────────────────────────── */

static void keys_lifecycle(void **state)
{
    tctx *t = *state;
    char *secret = NULL;
    json_t *doc = NULL;
    OK(bs_store_keys_create(
        t->s,
        J(json_pack("{s:s,s:[s,s]}", "name", "Dev", "permissions", "tasks:execute", "admin:read")),
        &secret, &doc, &E));
    assert_int_equal(strlen(secret), 46);
    assert_memory_equal(secret, "ak_", 3);
    assert_null(json_object_get(doc, "api_key")); /* never the hash */
    assert_int_equal(strncmp(sget(doc, "key_prefix"), secret, 8), 0);
    assert_int_equal(iget(json_object_get(doc, "rate_limits"), "requests_per_minute"), 100);
    const char *id = sget(doc, "_id");
    json_t *found = NULL;
    OK(bs_store_keys_find_by_secret(t->s, secret, &found, &E));
    assert_string_equal(sget(found, "_id"), id);
    assert_null(json_object_get(found, "api_key"));
    json_decref(found);
    /* the secret is nowhere in the stored document */
    OK(bs_store_keys_get(t->s, id, &found, &E));
    char *dump = json_dumps(found, 0);
    assert_null(strstr(dump, secret + 8));
    free(dump);
    json_decref(found);
    char wrong[64];
    snprintf(wrong, sizeof wrong, "%s", secret);
    wrong[10] ^= 1;
    FAILS(BS_ENOTFOUND, "unknown API key", bs_store_keys_find_by_secret(t->s, wrong, &found, &E));
    FAILS(BS_ENOTFOUND, "unknown API key", bs_store_keys_find_by_secret(t->s, "", &found, &E));

    FAILS(BS_EINVAL, "permissions[1]",
          bs_store_keys_update(
              t->s, id, J(json_pack("{s:[s,s]}", "permissions", "tasks:save", "root")), NULL, &E));
    FAILS(BS_EINVAL, "rate_limits.requests_per_minute must be a positive",
          bs_store_keys_update(t->s, id,
                               J(json_pack("{s:{s:i}}", "rate_limits", "requests_per_minute", 0)),
                               NULL, &E));
    FAILS(BS_EINVAL, "rate_limits.burst",
          bs_store_keys_update(t->s, id, J(json_pack("{s:{s:i}}", "rate_limits", "burst", 3)), NULL,
                               &E));
    FAILS(BS_EINVAL, "'api_key' cannot be set",
          bs_store_keys_update(t->s, id, J(json_pack("{s:s}", "api_key", "x")), NULL, &E));
    char longdesc[502];
    memset(longdesc, 'd', 501);
    longdesc[501] = 0;
    FAILS(BS_EINVAL, "'description' must be 0..500",
          bs_store_keys_update(t->s, id, J(json_pack("{s:s}", "description", longdesc)), NULL, &E));
    FAILS(BS_EINVAL, "rate_limits.requests_per_hour must be a positive",
          bs_store_keys_update(
              t->s, id, J(json_pack("{s:{s:s}}", "rate_limits", "requests_per_hour", "many")), NULL,
              &E));
    char *none = (char *)"sentinel";
    FAILS(BS_EINVAL, "'name' is required",
          bs_store_keys_create(t->s, J(json_pack("{}")), &none, NULL, &E));
    assert_null(none); /* no secret for a refused key */
    json_t *upd = NULL;
    OK(bs_store_keys_update(
        t->s, id, J(json_pack("{s:b,s:[s]}", "is_active", 0, "permissions", "admin:write")), &upd,
        &E));
    assert_true(json_is_false(json_object_get(upd, "is_active")));
    json_decref(upd);
    /* the secret still finds an inactive key: the server decides */
    OK(bs_store_keys_find_by_secret(t->s, secret, &found, &E));
    assert_true(json_is_false(json_object_get(found, "is_active")));
    json_decref(found);

    /* usage flush: counters add up, requests_today restarts on a new UTC day */
    bs_key_usage u = {
        .api_key_id = id, .requests = 5, .last_used_ms = T0, .last_request_ip = "192.168.1.100"};
    OK(bs_store_keys_record_usage(t->s, &u, 1, &E));
    u.requests = 3;
    u.last_used_ms = T0 + 3600000;
    OK(bs_store_keys_record_usage(t->s, &u, 1, &E));
    OK(bs_store_keys_get(t->s, id, &found, &E));
    json_t *us = json_object_get(found, "usage_stats");
    assert_int_equal(iget(us, "total_requests"), 8);
    assert_int_equal(iget(us, "requests_today"), 8);
    assert_string_equal(sget(us, "last_request_ip"), "192.168.1.0");
    assert_string_equal(sget(found, "last_used"), "2024-01-15T11:30:00.000Z");
    json_decref(found);
    bs_key_usage batch[2] = {
        {.api_key_id = id, .requests = 2, .last_used_ms = T0 + DAY},
        {.api_key_id = "65a4f0c2e4b0a1a2b3c4d5e6", .requests = 1, .last_used_ms = T0}};
    OK(bs_store_keys_record_usage(t->s, batch, 2, &E)); /* unknown ids are skipped */
    OK(bs_store_keys_get(t->s, id, &found, &E));
    us = json_object_get(found, "usage_stats");
    assert_int_equal(iget(us, "total_requests"), 10);
    assert_int_equal(iget(us, "requests_today"), 2);
    json_decref(found);

    char *s2 = NULL;
    t->now += 1000;
    OK(bs_store_keys_create(t->s, J(json_pack("{s:s}", "name", "Second")), &s2, NULL, &E));
    json_t *list = NULL;
    OK(bs_store_keys_list(t->s, 0, 0, &list, &E));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(sget(json_array_get(list, 0), "name"), "Second");
    assert_null(json_object_get(json_array_get(list, 0), "api_key"));
    json_decref(list);
    OK(bs_store_keys_delete(t->s, id, &E));
    FAILS(BS_ENOTFOUND, "unknown API key", bs_store_keys_find_by_secret(t->s, secret, &found, &E));
    FAILS(BS_ENOTFOUND, "api_keys", bs_store_keys_delete(t->s, id, &E));
    free(secret);
    free(s2);
    json_decref(doc);
}

/* ───────────────────────────── user_sessions ────────────────────────── */

static void sessions_lifecycle(void **state)
{
    tctx *t = *state;
    const char *key = "65a4f0c2e4b0a1a2b3c4d5e6";
    char *secret = NULL;
    json_t *doc = NULL;
    OK(bs_store_sessions_create(t->s, key, 3600000, "2001:db8:85a3:1:2:8a2e:370:7334",
                                "Mozilla/5.0", &secret, &doc, &E));
    assert_memory_equal(secret, "sess_", 5);
    assert_int_equal(strlen(secret), 37);
    assert_int_equal(strlen(sget(doc, "session_id")), 64);
    assert_null(strstr(sget(doc, "session_id"), secret + 5));
    assert_string_equal(sget(doc, "ip_address"), "2001:db8:85a3::");
    assert_string_equal(sget(doc, "expires_at"), "2024-01-15T11:30:00.000Z");
    const char *id = sget(doc, "_id");
    json_t *got = NULL;
    OK(bs_store_sessions_get_by_secret(t->s, secret, &got, &E));
    assert_string_equal(sget(got, "_id"), id);
    assert_string_equal(sget(got, "api_key_id"), key);
    json_decref(got);
    FAILS(BS_ENOTFOUND, "unknown session",
          bs_store_sessions_get_by_secret(t->s, "sess_nope", &got, &E));

    t->now += 600000;
    OK(bs_store_sessions_touch(t->s, id, 3600000, &E));
    for (int i = 0; i < 120; i++) {
        char ep[32];
        snprintf(ep, sizeof ep, "/tasks/%d", i);
        OK(bs_store_sessions_log_activity(t->s, id, "task_execution", ep,
                                          i == 119 ? "65a4f0c2e4b0a1a2b3c4d5e7" : NULL, &E));
    }
    OK(bs_store_sessions_get(t->s, id, &got, &E));
    assert_string_equal(sget(got, "last_activity"), "2024-01-15T10:40:00.000Z");
    assert_string_equal(sget(got, "expires_at"), "2024-01-15T11:40:00.000Z");
    json_t *log = json_object_get(got, "activity_log");
    assert_int_equal(json_array_size(log), 100); /* the last 100 */
    assert_string_equal(sget(json_array_get(log, 0), "endpoint"), "/tasks/20");
    assert_string_equal(sget(json_array_get(log, 99), "endpoint"), "/tasks/119");
    assert_string_equal(sget(json_array_get(log, 99), "task_id"), "65a4f0c2e4b0a1a2b3c4d5e7");
    json_decref(got);

    char *s2 = NULL;
    t->now += 1000;
    OK(bs_store_sessions_create(t->s, key, 1000, "10.1.2.3", NULL, &s2, NULL, &E));
    OK(bs_store_sessions_end(t->s, id, &E));
    json_t *list = NULL;
    OK(bs_store_sessions_list(t->s, true, 0, 0, &list, &E));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(sget(json_array_get(list, 0), "ip_address"), "10.1.2.0");
    json_decref(list);
    OK(bs_store_sessions_list(t->s, false, 0, 0, &list, &E));
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    /* retention: 30 days after expires_at by default, or the setting */
    int64_t removed = -1;
    t->now = T0 + 30 * DAY;
    OK(bs_store_sessions_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 0);
    t->now = T0 + 30 * DAY + 3600000;
    OK(bs_store_sessions_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 1); /* the short one expired at 10:40:02, the other at 11:40 */
    OK(bs_store_settings_put(t->s, "session_retention_days", J(json_integer(1)), "integer", NULL,
                             "test", NULL, &E));
    t->now = T0 + 2 * DAY;
    OK(bs_store_sessions_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 1); /* one day after 11:40 on day 0 */
    free(s2);
    OK(bs_store_sessions_create(t->s, key, 1000, NULL, NULL, &s2, NULL, &E));
    free(s2);
    t->now += DAY + 2000;
    OK(bs_store_sessions_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 1);
    FAILS(BS_EINVAL, "ttl", bs_store_sessions_create(t->s, key, 0, NULL, NULL, &s2, NULL, &E));
    free(secret);
    json_decref(doc);
}

/* ────────────────────────────── model_cache ─────────────────────────── */

static void models_cache(void **state)
{
    tctx *t = *state;
    json_t *out = NULL;
    OK(bs_store_models_upsert(
        t->s,
        J(json_pack("{s:s,s:s,s:s,s:I,s:{s:i}}", "model_name", "distilbert-base-uncased",
                    "task_type", "classification", "model_type", "transformers", "file_size",
                    (json_int_t)267884032, "model_config", "hidden_size", 768)),
        &out, &E));
    const char *id = sget(out, "_id");
    t->now += 1000;
    OK(bs_store_models_upsert(t->s,
                              J(json_pack("{s:s,s:s,s:s}", "model_name", "bert-base-uncased",
                                          "task_type", "ner", "cache_priority", "high")),
                              NULL, &E));
    t->now += 1000;
    OK(bs_store_models_touch(t->s, "distilbert-base-uncased", "classification", &E));
    OK(bs_store_models_touch(t->s, "distilbert-base-uncased", NULL, &E));
    json_t *upd = NULL;
    OK(bs_store_models_upsert(t->s,
                              J(json_pack("{s:s,s:s,s:s}", "model_name", "distilbert-base-uncased",
                                          "task_type", "classification", "local_path", "/m/d")),
                              &upd, &E));
    assert_string_equal(sget(upd, "_id"), id); /* same entry, kept id and counters */
    assert_int_equal(iget(upd, "access_count"), 2);
    assert_int_equal(iget(upd, "file_size"), 267884032);
    assert_string_equal(sget(upd, "local_path"), "/m/d");
    json_decref(upd);
    json_t *list = NULL;
    OK(bs_store_models_list(t->s, &list, &E));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(sget(json_array_get(list, 0), "model_name"),
                        "bert-base-uncased"); /* LRU first */
    json_decref(list);
    json_t *got = NULL;
    OK(bs_store_models_get(t->s, "distilbert-base-uncased", NULL, &got, &E));
    assert_string_equal(sget(got, "last_accessed"), "2024-01-15T10:30:02.000Z");
    json_decref(got);
    FAILS(BS_EINVAL, "'model_name' must match",
          bs_store_models_upsert(
              t->s, J(json_pack("{s:s,s:s}", "model_name", "../etc", "task_type", "x")), NULL, &E));
    FAILS(BS_EINVAL, "cache_priority",
          bs_store_models_upsert(t->s,
                                 J(json_pack("{s:s,s:s,s:s}", "model_name", "a", "task_type", "x",
                                             "cache_priority", "urgent")),
                                 NULL, &E));
    FAILS(BS_EINVAL, "'file_size' must be >= 0",
          bs_store_models_upsert(
              t->s,
              J(json_pack("{s:s,s:s,s:i}", "model_name", "a", "task_type", "x", "file_size", -1)),
              NULL, &E));
    int64_t removed = 0;
    OK(bs_store_models_delete(t->s, "distilbert-base-uncased", NULL, &removed, &E));
    assert_int_equal(removed, 1);
    FAILS(BS_ENOTFOUND, "model_cache",
          bs_store_models_get(t->s, "distilbert-base-uncased", "classification", &got, &E));
    FAILS(BS_ENOTFOUND, "model_cache",
          bs_store_models_touch(t->s, "distilbert-base-uncased", NULL, &E));
    json_decref(out);
}

/* ───────────────────────────── execution_logs ───────────────────────── */

static json_t *log_doc(const char *type, const char *model, double secs, bool ok)
{
    return json_pack("{s:s,s:s,s:f,s:s}", "task_type", type, "model_name", model, "execution_time",
                     secs, "status", ok ? "success" : "error");
}

static void logs_privacy(void **state)
{
    tctx *t = *state;
    json_t *d = log_doc("classification", "bert", 0.125, true);
    json_object_set_new(d, "input_text", json_string("This is a great product! \xc3\xa9"));
    json_object_set_new(d, "ip_address", json_string("192.168.1.100"));
    json_object_set_new(d, "session_id", json_string("abc"));
    char id[25];
    OK(bs_store_logs_insert(t->s, d, id, &E));
    json_t *out = NULL;
    OK(bs_store_logs_find(t->s, &(bs_log_query){0}, &out, NULL, &E));
    json_t *l = json_array_get(out, 0);
    assert_string_equal(sget(l, "_id"), id);
    assert_null(json_object_get(l, "input_text"));
    assert_int_equal(iget(l, "input_length"), 26); /* code points */
    assert_int_equal(strlen(sget(l, "input_hash")), 64);
    assert_string_equal(sget(l, "ip_address"), "192.168.1.0");
    assert_string_equal(sget(l, "timestamp"), "2024-01-15T10:30:00.000Z");
    char hash1[65];
    snprintf(hash1, sizeof hash1, "%s", sget(l, "input_hash"));
    json_decref(out);
    OK(bs_store_settings_put(t->s, "log_input_text", json_true(), "boolean", "keep inputs", "admin",
                             NULL, &E));
    t->now += 1000;
    json_object_set_new(d, "ip_address", json_string("not an ip"));
    OK(bs_store_logs_insert(t->s, d, NULL, &E));
    OK(bs_store_logs_find(t->s, &(bs_log_query){.limit = 1}, &out, NULL, &E));
    l = json_array_get(out, 0);
    assert_string_equal(sget(l, "input_text"), "This is a great product! \xc3\xa9");
    assert_null(json_object_get(l, "ip_address"));
    json_decref(out);
    json_decref(d);
    FAILS(BS_EINVAL, "'status' must be",
          bs_store_logs_insert(t->s,
                               J(json_pack("{s:s,s:s,s:f,s:s}", "task_type", "a", "model_name", "b",
                                           "execution_time", 1.0, "status", "ok")),
                               NULL, &E));
    FAILS(BS_EINVAL, "'execution_time' is required",
          bs_store_logs_insert(
              t->s,
              J(json_pack("{s:s,s:s,s:s}", "task_type", "a", "model_name", "b", "status", "error")),
              NULL, &E));
    FAILS(BS_EINVAL, "'execution_time' must be >= 0",
          bs_store_logs_insert(t->s, J(log_doc("a", "b", -1, true)), NULL, &E));
    /* a batch is all or nothing */
    json_t *batch[3] = {log_doc("a", "b", 1, true), log_doc("a", "b", 1, true),
                        json_pack("{s:s}", "task_type", "a")};
    FAILS(BS_EINVAL, "log 3 of 3", bs_store_logs_insert_many(t->s, batch, 3, &E));
    int64_t n = 0;
    OK(bs_store_count(t->s, "execution_logs", &n, &E));
    assert_int_equal(n, 2);
    OK(bs_store_logs_insert_many(t->s, batch, 2, &E));
    OK(bs_store_count(t->s, "execution_logs", &n, &E));
    assert_int_equal(n, 4);
    for (int i = 0; i < 3; i++) json_decref(batch[i]);
}

static void logs_find_stats_sweep(void **state)
{
    tctx *t = *state;
    /* 20 classification logs on day 0 (times 0.01..0.20, every 4th an error),
     * 5 ner logs on day 1, 1 old log 100 days earlier */
    for (int i = 1; i <= 20; i++) {
        json_t *d = log_doc("classification", i % 2 ? "bert" : "distilbert", i / 100.0, i % 4 != 0);
        json_object_set_new(d, "session_id", json_string(i <= 10 ? "sA" : "sB"));
        OK(bs_store_logs_insert(t->s, d, NULL, &E));
        json_decref(d);
        t->now += 1000;
    }
    t->now = T0 + DAY;
    for (int i = 1; i <= 5; i++) {
        json_t *d = log_doc("ner", "bert", i, true);
        OK(bs_store_logs_insert(t->s, d, NULL, &E));
        json_decref(d);
        t->now += 1000;
    }
    json_t *old = log_doc("ner", "bert", 9, false);
    json_object_set_new(old, "timestamp", json_string("2023-10-01T00:00:00Z"));
    OK(bs_store_logs_insert(t->s, old, NULL, &E));
    json_decref(old);

    json_t *out = NULL;
    int64_t total = 0;
    OK(bs_store_logs_find(
        t->s, &(bs_log_query){.task_type = "classification", .model_name = "bert", .limit = 3},
        &out, &total, &E));
    assert_int_equal(total, 10);
    assert_int_equal(json_array_size(out), 3);
    assert_float_equal(json_number_value(json_object_get(json_array_get(out, 0), "execution_time")),
                       0.19, 1e-9);
    json_decref(out);
    OK(bs_store_logs_find(
        t->s, &(bs_log_query){.session_id = "sA", .since_ms = T0 + 5000, .until_ms = T0 + 8000},
        &out, &total, &E));
    assert_int_equal(total, 3); /* logs 6, 7, 8 */
    json_decref(out);

    OK(bs_store_logs_stats(t->s, &(bs_log_query){.since_ms = T0 - DAY}, BS_LOG_GROUP_TASK_TYPE,
                           &out, &E));
    assert_int_equal(json_array_size(out), 2);
    json_t *g = json_array_get(out, 0);
    assert_string_equal(sget(g, "_id"), "classification");
    assert_int_equal(iget(g, "count"), 20);
    assert_float_equal(json_number_value(json_object_get(g, "avg_execution_time")), 0.105, 1e-9);
    assert_float_equal(json_number_value(json_object_get(g, "p50_execution_time")), 0.10, 1e-9);
    assert_float_equal(json_number_value(json_object_get(g, "p95_execution_time")), 0.19, 1e-9);
    assert_float_equal(json_number_value(json_object_get(g, "success_rate")), 0.75, 1e-9);
    g = json_array_get(out, 1);
    assert_string_equal(sget(g, "_id"), "ner");
    assert_int_equal(iget(g, "count"), 5); /* the old one is before `since` */
    assert_float_equal(json_number_value(json_object_get(g, "p50_execution_time")), 3, 1e-9);
    assert_float_equal(json_number_value(json_object_get(g, "p95_execution_time")), 5, 1e-9);
    json_decref(out);
    OK(bs_store_logs_stats(t->s, &(bs_log_query){0}, BS_LOG_GROUP_MODEL_NAME, &out, &E));
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), "bert");
    assert_int_equal(iget(json_array_get(out, 0), "count"), 16);
    assert_int_equal(iget(json_array_get(out, 1), "count"), 10);
    json_decref(out);
    OK(bs_store_logs_stats(t->s, &(bs_log_query){0}, BS_LOG_GROUP_DAY, &out, &E));
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(sget(json_array_get(out, 0), "_id"), "2023-10-01");
    assert_string_equal(sget(json_array_get(out, 1), "_id"), "2024-01-15");
    assert_string_equal(sget(json_array_get(out, 2), "_id"), "2024-01-16");
    assert_float_equal(json_number_value(json_object_get(json_array_get(out, 0), "success_rate")),
                       0, 1e-9);
    json_decref(out);
    FAILS(BS_EINVAL, "group_by",
          bs_store_logs_stats(t->s, &(bs_log_query){0}, (bs_log_group)7, &out, &E));

    /* retention: 90 days by default, then the setting */
    int64_t removed = 0;
    OK(bs_store_logs_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 1);
    t->now = T0 + 90 * DAY + 10000;
    OK(bs_store_logs_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 10); /* day-0 logs older than T0+10s */
    OK(bs_store_settings_put(t->s, "log_retention_days", J(json_integer(200)), NULL, NULL, NULL,
                             NULL, &E));
    t->now = T0 + 150 * DAY;
    OK(bs_store_logs_sweep(t->s, 0, &removed, &E));
    assert_int_equal(removed, 0);
    OK(bs_store_logs_sweep(t->s, 30, &removed, &E)); /* explicit argument wins */
    assert_int_equal(removed, 15);
}

/* ──────────────────────────── system_settings ───────────────────────── */

static void settings_typed(void **state)
{
    tctx *t = *state;
    json_t *out = NULL;
    OK(bs_store_settings_put(t->s, "max_custom_tasks_per_user", J(json_integer(50)), "integer",
                             "Maximum number of custom tasks a user can create", "admin", &out,
                             &E));
    assert_string_equal(sget(out, "setting_type"), "integer");
    assert_string_equal(sget(out, "created_at"), "2024-01-15T10:30:00.000Z");
    json_decref(out);
    FAILS(BS_EINVAL, "does not match setting_type integer",
          bs_store_settings_put(t->s, "max_custom_tasks_per_user", J(json_string("many")), NULL,
                                NULL, "x", NULL, &E));
    FAILS(BS_EINVAL, "setting_type must be",
          bs_store_settings_put(t->s, "k", J(json_integer(1)), "int64", NULL, "x", NULL, &E));
    FAILS(BS_EINVAL, "does not match setting_type boolean",
          bs_store_settings_put(t->s, "k", J(json_integer(1)), "boolean", NULL, "x", NULL, &E));
    t->now += 5000;
    OK(bs_store_settings_put(t->s, "max_custom_tasks_per_user", J(json_integer(60)), NULL, NULL,
                             "ops", &out, &E));
    assert_string_equal(sget(out, "description"),
                        "Maximum number of custom tasks a user can create");
    assert_string_equal(sget(out, "updated_by"), "ops");
    assert_string_equal(sget(out, "updated_at"), "2024-01-15T10:30:05.000Z");
    assert_string_equal(sget(out, "created_at"), "2024-01-15T10:30:00.000Z");
    json_decref(out);
    OK(bs_store_settings_put(t->s, "ratio", J(json_integer(2)), "float", NULL, NULL, NULL, &E));
    OK(bs_store_settings_put(t->s, "flags", J(json_pack("{s:[i,i]}", "a", 1, 2)), NULL, NULL, NULL,
                             &out, &E));
    assert_string_equal(sget(out, "setting_type"), "json");
    json_decref(out);
    OK(bs_store_settings_put(t->s, "motd", J(json_string("hi")), NULL, NULL, NULL, NULL, &E));
    assert_int_equal(bs_store_settings_int(t->s, "max_custom_tasks_per_user", 1), 60);
    assert_int_equal(bs_store_settings_int(t->s, "motd", 7), 7);
    assert_true(bs_store_settings_bool(t->s, "absent", true));
    json_t *list = NULL;
    OK(bs_store_settings_list(t->s, &list, &E));
    assert_int_equal(json_array_size(list), 4);
    assert_string_equal(sget(json_array_get(list, 0), "setting_key"), "flags");
    assert_int_equal(
        json_integer_value(json_array_get(
            json_object_get(json_object_get(json_array_get(list, 0), "setting_value"), "a"), 1)),
        2);
    json_decref(list);
    OK(bs_store_settings_delete(t->s, "motd", &E));
    FAILS(BS_ENOTFOUND, "motd", bs_store_settings_get(t->s, "motd", &out, &E));
}

/* ───────────────────── unique indexes, purge, migration ─────────────── */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void unique_conflicts(void **state)
{
    tctx *t = *state;
    char dir[700], path[800];
    struct {
        const char *coll, *a, *b, *field;
    } cases[] = {
        {"api_keys",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d501\",\"api_key\":\"h1\",\"name\":\"a\",\"created_at\":"
         "\"2024-01-10T08:00:00Z\",\"is_active\":true}",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d502\",\"api_key\":\"h1\",\"name\":\"b\",\"created_at\":"
         "\"2024-01-10T08:00:00Z\",\"is_active\":true}",
         "api_key"},
        {"user_sessions",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d503\",\"session_id\":\"x\",\"api_key_id\":"
         "\"65a4f0c2e4b0a1a2b3c4d501\",\"created_at\":\"2024-01-10T08:00:00Z\",\"expires_at\":"
         "\"2024-01-10T09:00:00Z\",\"is_active\":true}",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d504\",\"session_id\":\"x\",\"api_key_id\":"
         "\"65a4f0c2e4b0a1a2b3c4d501\",\"created_at\":\"2024-01-10T08:00:00Z\",\"expires_at\":"
         "\"2024-01-10T09:00:00Z\",\"is_active\":true}",
         "session_id"},
        {"model_cache",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d505\",\"model_name\":\"m\",\"task_type\":\"ner\"}",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d506\",\"model_name\":\"m\",\"task_type\":\"ner\"}",
         "model_name"},
        {"system_settings",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d507\",\"setting_key\":\"k\",\"setting_value\":1,"
         "\"setting_type\":\"integer\",\"created_at\":\"2024-01-10T08:00:00Z\"}",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d508\",\"setting_key\":\"k\",\"setting_value\":2,"
         "\"setting_type\":\"integer\",\"created_at\":\"2024-01-10T08:00:00Z\"}",
         "setting_key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(dir, sizeof dir, "%s/u%zu", t->dir, i);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, cases[i].coll);
        char text[2048];
        snprintf(text, sizeof text, "%s\n%s\n", cases[i].a, cases[i].b);
        write_file(path, text);
        FAILS(BS_ECONFLICT, cases[i].field, bs_store_import(t->s, dir, NULL, &E));
        int64_t n = -1;
        OK(bs_store_count(t->s, cases[i].coll, &n, &E));
        /* SQLite refuses the batch as a whole; MongoDB without a transaction
         * keeps the lines before the conflict (docs/store.md) */
        assert_int_equal(n, t->mongo ? 1 : 0);
        if (t->mongo) {
            snprintf(path, sizeof path, "%s/empty.jsonl", t->dir);
            write_file(path, "");
            OK(bs_store_restore(t->s, path, &E));
        }
    }
    /* import validates like insert does */
    snprintf(dir, sizeof dir, "%s/bad", t->dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/custom_tasks.jsonl", dir);
    write_file(path, "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d509\",\"name\":\"\",\"model_name\":\"m\","
                     "\"function_code\":\"f\",\"created_at\":\"2024-01-10T08:00:00Z\"}\n");
    FAILS(BS_EINVAL, "custom_tasks.jsonl:1", bs_store_import(t->s, dir, NULL, &E));
    write_file(path, "{not json\n");
    FAILS(BS_EFORMAT, "custom_tasks.jsonl:1", bs_store_import(t->s, dir, NULL, &E));
    write_file(path, "{\"name\":\"n\",\"model_name\":\"m\",\"function_code\":\"f\","
                     "\"created_at\":\"2024-01-10T08:00:00Z\"}\n");
    FAILS(BS_EINVAL, "_id", bs_store_import(t->s, dir, NULL, &E)); /* import keeps ids: needs one */
    remove(path);
    /* rules of the other collections that only imports can reach */
    struct {
        const char *coll, *line, *what;
    } bad[] = {
        {"user_sessions",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d503\",\"session_id\":\"x\",\"api_key_id\":"
         "\"65a4f0c2e4b0a1a2b3c4d501\",\"created_at\":\"2024-01-10T08:00:00Z\",\"expires_at\":"
         "\"2024-01-10T09:00:00Z\",\"is_active\":true,\"activity_log\":[{\"endpoint\":\"/x\"}]}",
         "activity_log[0]"},
        {"user_sessions",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d503\",\"session_id\":\"x\",\"created_at\":"
         "\"2024-01-10T08:00:00Z\",\"expires_at\":\"2024-01-10T09:00:00Z\",\"is_active\":true}",
         "'api_key_id' is required"},
        {"api_keys",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d501\",\"api_key\":\"h\",\"name\":\"a\",\"created_at\":"
         "\"2024-01-10T08:00:00Z\",\"is_active\":\"yes\"}",
         "'is_active' must be a boolean"},
        {"system_settings",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d507\",\"setting_key\":\"k\",\"setting_type\":\"integer\","
         "\"created_at\":\"2024-01-10T08:00:00Z\"}",
         "'setting_value' is required"},
        {"execution_logs",
         "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d507\",\"task_type\":\"\",\"model_name\":\"m\","
         "\"execution_time\":1,\"status\":\"error\",\"timestamp\":\"2024-01-10T08:00:00Z\"}",
         "'task_type' must be 1..100"},
        {"model_cache", "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d507\",\"model_name\":\"m\"}",
         "'task_type' is required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, bad[i].coll);
        write_file(path, bad[i].line);
        FAILS(BS_EINVAL, bad[i].what, bs_store_import(t->s, dir, NULL, &E));
        remove(path);
    }
}

/* Everything of one key, and nothing of another. */
static void purge_by_key(void **state)
{
    tctx *t = *state;
    char *ka = NULL, *kb = NULL, *sa1 = NULL, *sa2 = NULL, *sb = NULL;
    json_t *keya = NULL, *keyb = NULL, *sess = NULL;
    OK(bs_store_keys_create(t->s, J(json_pack("{s:s}", "name", "A")), &ka, &keya, &E));
    OK(bs_store_keys_create(t->s, J(json_pack("{s:s}", "name", "B")), &kb, &keyb, &E));
    const char *ida = sget(keya, "_id"), *idb = sget(keyb, "_id");
    char hash_a1[65], hash_a2[65], hash_b[65];
    OK(bs_store_sessions_create(t->s, ida, 1000, NULL, NULL, &sa1, &sess, &E));
    snprintf(hash_a1, sizeof hash_a1, "%s", sget(sess, "session_id"));
    json_decref(sess);
    OK(bs_store_sessions_create(t->s, ida, 1000, NULL, NULL, &sa2, &sess, &E));
    snprintf(hash_a2, sizeof hash_a2, "%s", sget(sess, "session_id"));
    json_decref(sess);
    OK(bs_store_sessions_create(t->s, idb, 1000, NULL, NULL, &sb, &sess, &E));
    snprintf(hash_b, sizeof hash_b, "%s", sget(sess, "session_id"));
    json_decref(sess);
    /* tasks: 2 via api_key_id, 1 via a session only; B has 1 */
    free(insert_task(t, task_doc("a1", NULL, "m", ida)));
    free(insert_task(t, task_doc("a2", NULL, "m", ida)));
    json_t *d = task_doc("a3", NULL, "m", NULL);
    json_object_set_new(d, "created_by", json_string(hash_a2));
    free(insert_task(t, d));
    free(insert_task(t, task_doc("b1", NULL, "m", idb)));
    /* logs: 3 through sessions, 2 through the key, B has 2 */
    const char *ls[] = {hash_a1, hash_a1, hash_a2, NULL, NULL, hash_b, NULL};
    const char *lk[] = {NULL, NULL, NULL, ida, ida, NULL, idb};
    for (int i = 0; i < 7; i++) {
        json_t *l = log_doc("x", "m", 1, true);
        if (ls[i]) json_object_set_new(l, "session_id", json_string(ls[i]));
        if (lk[i]) json_object_set_new(l, "api_key_id", json_string(lk[i]));
        OK(bs_store_logs_insert(t->s, l, NULL, &E));
        json_decref(l);
    }
    bs_purge_counts c = {0};
    OK(bs_store_purge_api_key(t->s, ida, true, &c, &E));
    assert_int_equal(c.sessions, 2);
    assert_int_equal(c.tasks, 3);
    assert_int_equal(c.logs, 5);
    assert_int_equal(c.api_keys, 1);
    int64_t n;
    OK(bs_store_count(t->s, "custom_tasks", &n, &E));
    assert_int_equal(n, 1);
    OK(bs_store_count(t->s, "execution_logs", &n, &E));
    assert_int_equal(n, 2);
    OK(bs_store_count(t->s, "user_sessions", &n, &E));
    assert_int_equal(n, 1);
    OK(bs_store_count(t->s, "api_keys", &n, &E));
    assert_int_equal(n, 1);
    OK(bs_store_purge_api_key(t->s, ida, true, &c, &E)); /* idempotent */
    assert_int_equal(c.tasks + c.logs + c.sessions + c.api_keys, 0);
    free(ka), free(kb), free(sa1), free(sa2), free(sb);
    json_decref(keya);
    json_decref(keyb);
}

static void populate(tctx *t)
{
    char *secret = NULL, *ss = NULL;
    json_t *key = NULL;
    OK(bs_store_keys_create(t->s,
                            J(json_pack("{s:s,s:s}", "name", "K", "description", "d\xc3\xa9v")),
                            &secret, &key, &E));
    OK(bs_store_keys_record_usage(t->s, &(bs_key_usage){sget(key, "_id"), 3, T0, "10.0.0.7"}, 1,
                                  &E));
    OK(bs_store_sessions_create(t->s, sget(key, "_id"), 5000, "10.0.0.8", "ua", &ss, NULL, &E));
    json_t *d = task_doc("Task \xe2\x98\x83", "desc", "org/model", sget(key, "_id"));
    json_object_set_new(d, "tags", json_pack("[s,s]", "a", "b"));
    json_object_set_new(
        d, "model_config",
        json_pack("{s:i,s:b,s:f,s:n}", "max_length", 512, "padding", 1, "temp", 0.5, "none"));
    json_object_set_new(d, "tokenizer_code", json_string("tok = 1\n\t\"quoted\""));
    char *tid = insert_task(t, d);
    OK(bs_store_tasks_record_execution(t->s, tid, 0.25, true, &E));
    OK(bs_store_models_upsert(
        t->s,
        J(json_pack("{s:s,s:s,s:I,s:s}", "model_name", "bert", "task_type", "ner", "file_size",
                    (json_int_t)5000000000LL, "checksum", "sha256:abc")),
        NULL, &E));
    json_t *l = log_doc("ner", "bert", 0.5, false);
    json_object_set_new(l, "task_id", json_string(tid));
    json_object_set_new(l, "error_message", json_string("boom"));
    json_object_set_new(l, "memory_usage", json_real(512.5));
    json_object_set_new(l, "input_text", json_string("secret text"));
    OK(bs_store_logs_insert(t->s, l, NULL, &E));
    json_decref(l);
    OK(bs_store_settings_put(t->s, "cfg", J(json_pack("[i,s,b]", 1, "x", 0)), NULL, "json", "me",
                             NULL, &E));
    free(secret), free(ss), free(tid);
    json_decref(key);
}

static char *slurp(const char *dir, const char *coll)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, coll);
    char *text = bs_test_read_file(path, NULL);
    assert_non_null(text);
    return text;
}

static const char *const colls[] = {"custom_tasks", "api_keys",       "user_sessions",
                                    "model_cache",  "execution_logs", "system_settings"};

static void export_import_round_trip(void **state)
{
    tctx *t = *state;
    populate(t);
    char d1[700], d2[700];
    snprintf(d1, sizeof d1, "%s/export1", t->dir);
    snprintf(d2, sizeof d2, "%s/export2", t->dir);
    json_t *counts = NULL;
    OK(bs_store_export(t->s, d1, &counts, &E));
    for (int i = 0; i < 6; i++) assert_int_equal(iget(counts, colls[i]), 1);
    json_decref(counts);
    /* into a fresh store of the same engine (SQLite also goes to a new file) */
    tctx t2 = *t;
    assert_true(snprintf(t2.dir, sizeof t2.dir, "%s/second", t->dir) < (int)sizeof t2.dir);
    mkdir(t2.dir, 0700);
    if (!t->mongo)
        snprintf(t2.uri, sizeof t2.uri, "%s/bertstudio.db", t2.dir);
    else
        mongo_seq += 1000;
    assert_int_equal(open_store(&t2), 0);
    if (t->mongo) mongo_seq -= 1000;
    OK(bs_store_import(t2.s, d1, &counts, &E));
    assert_int_equal(iget(counts, "execution_logs"), 1);
    json_decref(counts);
    OK(bs_store_import(t2.s, d1, NULL, &E)); /* again: same _ids are replaced, not doubled */
    OK(bs_store_export(t2.s, d2, NULL, &E));
    for (int i = 0; i < 6; i++) {
        char *a = slurp(d1, colls[i]), *b = slurp(d2, colls[i]);
        assert_string_equal(a, b);
        free(a), free(b);
    }
    /* the seed fields survived as values, not only as text */
    char *tasks = slurp(d1, "custom_tasks");
    json_t *doc = json_loads(tasks, 0, NULL);
    assert_int_equal(iget(json_object_get(doc, "model_config"), "max_length"), 512);
    assert_int_equal(json_array_size(json_object_get(doc, "tags")), 2);
    json_t *got = NULL;
    OK(bs_store_tasks_get(t2.s, sget(doc, "_id"), &got, &E));
    assert_true(json_equal(got, doc));
    json_decref(got);
    /* text and tags indexes were rebuilt by the import */
    json_t *found = NULL;
    int64_t total = 0;
    const char *tag = "b";
    OK(bs_store_tasks_find(t2.s, &(bs_task_query){.search = "desc", .tags = &tag, .ntags = 1},
                           &found, &total, &E));
    assert_int_equal(total, 1);
    json_decref(found);
    json_decref(doc);
    free(tasks);
    /* API keys still authenticate after migration: the hash key travels in the data dir */
    if (t->mongo) {
        char path[700];
        snprintf(path, sizeof path, "%s/empty.jsonl", t2.dir);
        write_file(path, "");
        bs_store_restore(t2.s, path, NULL);
    }
    bs_store_close(t2.s);
}

typedef struct writer_ctx {
    bs_store *s;
    _Atomic int stop, batches, failed;
    bs_err err;
} writer_ctx;

static void *writer_main(void *arg)
{
    writer_ctx *w = arg;
    while (!w->stop) {
        json_t *b[2] = {log_doc("pair", "m", 1, true), log_doc("pair", "m", 2, true)};
        if (bs_store_logs_insert_many(w->s, b, 2, &w->err) == 0)
            w->batches++;
        else
            w->failed = 1;
        json_decref(b[0]);
        json_decref(b[1]);
        if (w->failed) break;
    }
    return NULL;
}

/* A backup taken while another thread writes pairs of logs in single
 * transactions holds whole pairs only, and restores to that state. */
static void backup_under_writes(void **state)
{
    tctx *t = *state;
    populate(t);
    writer_ctx w = {.s = t->s};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    while (w.batches < 20 && !w.failed) sched_yield();
    char bk[700];
    snprintf(bk, sizeof bk, "%s/backup.bin", t->dir);
    OK(bs_store_backup(t->s, bk, &E));
    int at_backup = w.batches;
    while (w.batches < at_backup + 10 && !w.failed) sched_yield();
    w.stop = 1;
    pthread_join(th, NULL);
    if (w.failed) fail_msg("writer thread: %s", w.err.msg);
    int64_t before = 0, after = 0;
    OK(bs_store_count(t->s, "execution_logs", &before, &E));
    OK(bs_store_restore(t->s, bk, &E));
    OK(bs_store_count(t->s, "execution_logs", &after, &E));
    assert_true(after < before);
    assert_true(after - 1 >= 2 * 20);
    /* SQLite's backup is one snapshot: whole pairs only. MongoDB's dump is
     * consistent per document (docs/store.md). */
    if (!t->mongo) assert_int_equal((after - 1) % 2, 0); /* populate's one log + whole pairs */
    json_t *st = NULL;
    OK(bs_store_logs_stats(t->s, &(bs_log_query){0}, BS_LOG_GROUP_TASK_TYPE, &st, &E));
    json_t *pair = json_array_get(st, 1);
    assert_string_equal(sget(pair, "_id"), "pair");
    if (!t->mongo)
        assert_float_equal(json_number_value(json_object_get(pair, "avg_execution_time")), 1.5,
                           1e-9);
    json_decref(st);
    /* the rest of the data is there and usable */
    int64_t n = 0;
    OK(bs_store_count(t->s, "custom_tasks", &n, &E));
    assert_int_equal(n, 1);
    json_t *found = NULL;
    int64_t total = 0;
    OK(bs_store_tasks_find(t->s, &(bs_task_query){.search = "desc"}, &found, &total, &E));
    assert_int_equal(total, 1);
    json_decref(found);
    FAILS(BS_EIO, "cannot open", bs_store_restore(t->s, "/nonexistent/backup", &E));
}

static void open_errors(void **state)
{
    (void)state;
    bs_store *s = NULL;
    bs_err err = {0};
    assert_int_equal(bs_store_open("ftp://x", NULL, &s, &err), BS_EINVAL);
    assert_non_null(strstr(err.msg, "unknown scheme"));
    assert_int_equal(bs_store_open("", NULL, &s, &err), BS_EINVAL);
    assert_int_equal(bs_store_open("sqlite://", NULL, &s, &err), BS_EINVAL);
    assert_non_null(strstr(err.msg, "no database file"));
    assert_null(s);
}

static void ping_and_name(void **state)
{
    tctx *t = *state;
    double ms = -1;
    OK(bs_store_ping(t->s, &ms, &E));
    assert_true(ms >= 0);
    assert_string_equal(bs_store_engine_name(t->s), t->mongo ? "mongodb" : "sqlite");
    int64_t n;
    FAILS(BS_EINVAL, "unknown collection", bs_store_count(t->s, "users", &n, &E));
}

#define SUITE(setup)                                                                               \
    {                                                                                              \
        cmocka_unit_test_setup_teardown(tasks_crud, setup, teardown),                              \
            cmocka_unit_test_setup_teardown(tasks_validation, setup, teardown),                    \
            cmocka_unit_test_setup_teardown(tasks_by_owner, setup, teardown),                      \
            cmocka_unit_test_setup_teardown(tasks_text_search, setup, teardown),                   \
            cmocka_unit_test_setup_teardown(tasks_tags_and_popular, setup, teardown),              \
            cmocka_unit_test_setup_teardown(keys_lifecycle, setup, teardown),                      \
            cmocka_unit_test_setup_teardown(sessions_lifecycle, setup, teardown),                  \
            cmocka_unit_test_setup_teardown(models_cache, setup, teardown),                        \
            cmocka_unit_test_setup_teardown(logs_privacy, setup, teardown),                        \
            cmocka_unit_test_setup_teardown(logs_find_stats_sweep, setup, teardown),               \
            cmocka_unit_test_setup_teardown(settings_typed, setup, teardown),                      \
            cmocka_unit_test_setup_teardown(unique_conflicts, setup, teardown),                    \
            cmocka_unit_test_setup_teardown(purge_by_key, setup, teardown),                        \
            cmocka_unit_test_setup_teardown(export_import_round_trip, setup, teardown),            \
            cmocka_unit_test_setup_teardown(backup_under_writes, setup, teardown),                 \
            cmocka_unit_test_setup_teardown(ping_and_name, setup, teardown),                       \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = SUITE(setup_sqlite);
    const struct CMUnitTest common[] = {cmocka_unit_test(open_errors)};
    int fails = cmocka_run_group_tests_name("store common", common, NULL, NULL);
    fails += cmocka_run_group_tests_name("store conformance: sqlite", sqlite_tests, NULL, NULL);
    mongo_uri = getenv("BERTSTUDIO_TEST_MONGODB_URI");
    if (mongo_uri && *mongo_uri) {
        const struct CMUnitTest mongo_tests[] = SUITE(setup_mongo);
        fails += cmocka_run_group_tests_name("store conformance: mongodb", mongo_tests, NULL, NULL);
    } else {
        printf("[  SKIPPED ] store conformance: mongodb (set "
               "BERTSTUDIO_TEST_MONGODB_URI=mongodb://host:27017 "
               "to run it against a real server; see docs/store.md)\n");
    }
    return fails;
}
