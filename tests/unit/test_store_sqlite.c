/* SQLite-specific checks of the store: every query pattern of the seed uses
 * its index (EXPLAIN QUERY PLAN), acknowledged writes survive SIGKILL with an
 * intact database, and several threads and processes share one file. */
#include "testutil.h"

#include "store/sqlite_int.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bs_err E;
#define OK(call)                                                                                   \
    do {                                                                                           \
        memset(&E, 0, sizeof E);                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_) fail_msg("%s -> %d (%s)", #call, rc_, E.msg);                                     \
    } while (0)

typedef struct fixture {
    char dir[512];
    char db[600];
    bs_store *s;
    char last[4096]; /* SQL of the last query the engine prepared */
} fixture;

static void capture(void *ud, const char *sql)
{
    fixture *f = ud;
    snprintf(f->last, sizeof f->last, "%s", sql);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", bs_test_tmpdir("store-sqlite"));
    snprintf(f->db, sizeof f->db, "%s/bertstudio.db", f->dir);
    bs_err err;
    if (bs_store_open(f->db, NULL, &f->s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bs_store_close(f->s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

/* The plan of the last captured query, one detail per line. */
static char *plan_of(fixture *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[4200];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", f->last);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("cannot explain %s: %s", f->last, sqlite3_errmsg(db));
    bs_buf b;
    bs_buf_init(&b);
    while (sqlite3_step(st) == SQLITE_ROW) bs_buf_printf(&b, "%s\n", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return bs_buf_steal(&b, NULL);
}

static void expect_plan(fixture *f, const char *index, bool sorted_by_index)
{
    char *plan = plan_of(f);
    if (!strstr(plan, index)) fail_msg("query\n  %s\ndoes not use %s:\n%s", f->last, index, plan);
    if (sorted_by_index && strstr(plan, "TEMP B-TREE FOR ORDER BY"))
        fail_msg("query\n  %s\nsorts in a temp b-tree:\n%s", f->last, plan);
    free(plan);
}

static void query_plans(void **state)
{
    fixture *f = *state;
    bs_store *s = f->s;
    json_t *t = json_pack("{s:s,s:s,s:s,s:[s]}", "name", "n", "model_name", "m", "function_code",
                          "f", "tags", "nlp");
    OK(bs_store_tasks_insert(s, t, NULL, &E));
    json_decref(t);
    bs_store_sqlite_trace(s, capture, f);
    json_t *out = NULL;

    /* seed 1: a session's tasks newest first */
    OK(bs_store_tasks_find(s, &(bs_task_query){.created_by = "sess"}, &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "custom_tasks_created_by_created_at", true);
    /* a key's tasks across sessions */
    OK(bs_store_tasks_find(s, &(bs_task_query){.owner_api_key_id = "65a4f0c2e4b0a1a2b3c4d5e6"},
                           &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "custom_tasks_api_key_id_created_at", true);
    /* seed 2: text search by relevance */
    OK(bs_store_tasks_find(s, &(bs_task_query){.search = "sentiment analysis"}, &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "VIRTUAL TABLE INDEX", false);
    /* seed 3: tags $in + model */
    const char *tags[] = {"nlp", "classification"};
    OK(bs_store_tasks_find(s, &(bs_task_query){.tags = tags, .ntags = 2, .model_name = "m"}, &out,
                           NULL, &E));
    json_decref(out);
    expect_plan(f, "custom_tasks_tags_model_name", false);
    /* seed 4: popular public tasks */
    OK(bs_store_tasks_popular(s, 10, &out, &E));
    json_decref(out);
    expect_plan(f, "custom_tasks_is_public_usage_count", true);
    /* visibility: own OR public, each branch on an index */
    OK(bs_store_tasks_find(s, &(bs_task_query){.viewer_api_key_id = "65a4f0c2e4b0a1a2b3c4d5e6"},
                           &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "MULTI-INDEX OR", false);
    /* newest tasks overall */
    OK(bs_store_tasks_find(s, &(bs_task_query){0}, &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "custom_tasks_created_at", true);

    /* seed 5: analytics since a date, and by task type */
    OK(bs_store_logs_stats(s, &(bs_log_query){.since_ms = 1}, BS_LOG_GROUP_TASK_TYPE, &out, &E));
    json_decref(out);
    expect_plan(f, "execution_logs_timestamp", false);
    OK(bs_store_logs_stats(s, &(bs_log_query){.task_type = "ner", .since_ms = 1},
                           BS_LOG_GROUP_MODEL_NAME, &out, &E));
    json_decref(out);
    expect_plan(f, "execution_logs_task_type_model_name_timestamp", false);
    OK(bs_store_logs_find(s, &(bs_log_query){.session_id = "x"}, &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "execution_logs_session_id_timestamp", true);
    OK(bs_store_logs_find(s, &(bs_log_query){0}, &out, NULL, &E));
    json_decref(out);
    expect_plan(f, "execution_logs_timestamp", true);
    int64_t n;
    OK(bs_store_logs_sweep(s, 90, &n, &E));
    expect_plan(f, "execution_logs_timestamp", false);

    /* keys, sessions, models, settings lookups */
    bs_store_keys_find_by_secret(s, "ak_x", &out, NULL);
    expect_plan(f, "api_keys_api_key", false);
    bs_store_sessions_get_by_secret(s, "sess_x", &out, NULL);
    expect_plan(f, "user_sessions_session_id", false);
    OK(bs_store_sessions_sweep(s, 30, &n, &E));
    expect_plan(f, "user_sessions_expires_at", false);
    OK(bs_store_sessions_list(s, true, 0, 0, &out, &E));
    json_decref(out);
    expect_plan(f, "user_sessions_is_active_last_activity", true);
    bs_store_models_get(s, "m", "ner", &out, NULL);
    expect_plan(f, "model_cache_model_name_task_type", false);
    OK(bs_store_models_list(s, &out, &E));
    json_decref(out);
    expect_plan(f, "model_cache_last_accessed", true);
    bs_store_settings_get(s, "k", &out, NULL);
    expect_plan(f, "system_settings_setting_key", false);
    bs_store_sqlite_trace(s, NULL, NULL);
}

/* The child inserts tasks and reports each acknowledged _id through a pipe
 * until it is killed; every reported id must be there after reopening. */
static void crash_safety(void **state)
{
    fixture *f = *state;
    bs_store_close(f->s);
    f->s = NULL;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        bs_store *s = NULL;
        if (bs_store_open(f->db, NULL, &s, NULL)) _exit(3);
        for (int i = 0;; i++) {
            char name[32];
            snprintf(name, sizeof name, "task %d", i);
            json_t *d = json_pack("{s:s,s:s,s:s,s:[s]}", "name", name, "model_name", "m",
                                  "function_code", "f", "tags", i % 2 ? "odd" : "even");
            json_t *out = NULL;
            if (bs_store_tasks_insert(s, d, &out, NULL)) _exit(4);
            char line[26];
            snprintf(line, sizeof line, "%s\n", json_string_value(json_object_get(out, "_id")));
            if (write(fd[1], line, 25) != 25) _exit(5);
            json_decref(out);
            json_decref(d);
        }
    }
    close(fd[1]);
    char *acks = malloc(1 << 20);
    size_t len = 0;
    bool killed = false;
    for (;;) {
        ssize_t r = read(fd[0], acks + len, (1 << 20) - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        if (!killed && len >= 300 * 25) {
            kill(pid, SIGKILL); /* in the middle of the stream of writes */
            killed = true;
        }
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    size_t nacks = len / 25;
    assert_true(nacks >= 300);

    assert_int_equal(bs_store_open(f->db, NULL, &f->s, &E), 0);
    for (size_t i = 0; i < nacks; i++) {
        char id[25];
        memcpy(id, acks + 25 * i, 24);
        id[24] = 0;
        json_t *doc = NULL;
        if (bs_store_tasks_get(f->s, id, &doc, &E))
            fail_msg("acknowledged task %zu (%s) lost: %s", i, id, E.msg);
        json_decref(doc);
    }
    free(acks);
    int64_t n = 0;
    OK(bs_store_count(f->s, "custom_tasks", &n, &E));
    assert_true(n >= (int64_t)nacks);
    /* the database, the text index and the tags index are intact and agree */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO tasks_fts(tasks_fts) VALUES('integrity-check')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM custom_tasks_tags", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), n);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static json_t *log_doc(int i)
{
    return json_pack("{s:s,s:s,s:f,s:s}", "task_type", i % 2 ? "ner" : "qa", "model_name", "m",
                     "execution_time", (double)i, "status", "success");
}

typedef struct worker {
    bs_store *s;
    int failures;
} worker;

static void *thread_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 100; i++) {
        json_t *d = log_doc(i);
        bs_err err;
        if (bs_store_logs_insert(w->s, d, NULL, &err)) w->failures++;
        json_decref(d);
        json_t *out = NULL;
        if (bs_store_logs_find(w->s, &(bs_log_query){.limit = 5}, &out, NULL, &err)) w->failures++;
        json_decref(out);
    }
    return NULL;
}

/* Many threads on one store, and several processes on one file. */
static void shared_use(void **state)
{
    fixture *f = *state;
    pthread_t th[6];
    worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker){.s = f->s};
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    int64_t n = 0;
    OK(bs_store_count(f->s, "execution_logs", &n, &E));
    assert_int_equal(n, 600);
    /* SQLite connections must not cross fork(): close, fork, reopen */
    bs_store_close(f->s);
    f->s = NULL;
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            bs_store *s = NULL;
            if (bs_store_open(f->db, NULL, &s, NULL)) _exit(3);
            for (int i = 0; i < 50; i++) {
                json_t *b[2] = {log_doc(i), log_doc(i + 1)};
                bs_err err;
                if (bs_store_logs_insert_many(s, b, 2, &err)) {
                    fprintf(stderr, "writer %d: %s\n", k, err.msg);
                    _exit(4);
                }
                json_decref(b[0]);
                json_decref(b[1]);
            }
            bs_store_close(s);
            _exit(0);
        }
    }
    /* the parent keeps writing meanwhile */
    OK(bs_store_open(f->db, NULL, &f->s, &E));
    for (int i = 0; i < 50; i++) {
        json_t *d = log_doc(i);
        OK(bs_store_logs_insert(f->s, d, NULL, &E));
        json_decref(d);
    }
    for (int k = 0; k < 3; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("writer process %d: status %d", k, status);
    }
    OK(bs_store_count(f->s, "execution_logs", &n, &E));
    assert_int_equal(n, 600 + 3 * 100 + 50);
}

/* The store key lives beside the database and makes hashes stable across
 * reopen; a different data dir means different hashes. */
static void secret_key_file(void **state)
{
    fixture *f = *state;
    char *secret = NULL;
    json_t *k = json_pack("{s:s}", "name", "k");
    OK(bs_store_keys_create(f->s, k, &secret, NULL, &E));
    json_decref(k);
    bs_store_close(f->s);
    OK(bs_store_open(f->db, NULL, &f->s, &E));
    json_t *out = NULL;
    OK(bs_store_keys_find_by_secret(f->s, secret, &out, &E));
    json_decref(out);
    char keyfile[700];
    snprintf(keyfile, sizeof keyfile, "%s/store.key", f->dir);
    struct stat st;
    assert_int_equal(stat(keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    bs_store_close(f->s);
    char other[600];
    snprintf(other, sizeof other, "%s/other", f->dir);
    bs_store_opts o = {.data_dir = other};
    OK(bs_store_open(f->db, &o, &f->s, &E));
    assert_int_equal(bs_store_keys_find_by_secret(f->s, secret, &out, &E), BS_ENOTFOUND);
    free(secret);
}

static int64_t sql_int(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Dates are native INTEGER milliseconds, ids 24-hex text, sub-documents
 * valid JSON: what other SQLite tools see. */
static void native_types(void **state)
{
    fixture *f = *state;
    json_t *t = json_pack("{s:s,s:s,s:s,s:s}", "name", "n", "model_name", "m", "function_code", "f",
                          "created_at", "2024-01-15T10:30:00.123Z");
    OK(bs_store_tasks_insert(f->s, t, NULL, &E));
    json_decref(t);
    assert_int_equal(sql_int(f->db, "SELECT created_at FROM custom_tasks"), 1705314600123LL);
    assert_int_equal(sql_int(f->db, "SELECT typeof(updated_at) = 'integer' FROM custom_tasks"), 1);
    assert_int_equal(
        sql_int(f->db, "SELECT length(_id) = 24 AND _id NOT GLOB '*[^0-9a-f]*' FROM custom_tasks"),
        1);
    assert_int_equal(
        sql_int(f->db, "SELECT json_valid(execution_stats) AND json_valid(tags) FROM custom_tasks"),
        1);
    assert_int_equal(sql_int(f->db, "SELECT typeof(is_public) = 'integer' FROM custom_tasks"), 1);
}

/* Nothing secret or personal reaches the files: not the API key or session
 * secret, not the input text (log_input_text off), not the full IP. */
static bool file_contains(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = bs_test_read_file(path, &len);
    if (!data) return false;
    bool found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static void secrets_not_on_disk(void **state)
{
    fixture *f = *state;
    char *key = NULL, *sess = NULL;
    json_t *doc = NULL, *k = json_pack("{s:s}", "name", "k");
    OK(bs_store_keys_create(f->s, k, &key, &doc, &E));
    json_decref(k);
    OK(bs_store_sessions_create(f->s, json_string_value(json_object_get(doc, "_id")), 60000,
                                "203.0.113.77", "ua", &sess, NULL, &E));
    json_t *l =
        json_pack("{s:s,s:s,s:f,s:s,s:s,s:s,s:s}", "task_type", "qa", "model_name", "m",
                  "execution_time", 0.1, "status", "success", "input_text",
                  "my very private question", "ip_address", "203.0.113.77", "user_agent", "ua");
    OK(bs_store_logs_insert(f->s, l, NULL, &E));
    json_decref(l);
    json_decref(doc);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    const char *files[] = {f->db, wal};
    for (int i = 0; i < 2; i++) {
        assert_false(file_contains(files[i], key));
        assert_false(file_contains(files[i], key + 3));
        assert_false(file_contains(files[i], sess));
        assert_false(file_contains(files[i], "my very private question"));
        assert_false(file_contains(files[i], "203.0.113.77"));
    }
    /* while the anonymized address and the key's display prefix are there */
    assert_true(file_contains(f->db, "203.0.113.0") || file_contains(wal, "203.0.113.0"));
    char prefix[9];
    memcpy(prefix, key, 8);
    prefix[8] = 0;
    assert_true(file_contains(f->db, prefix) || file_contains(wal, prefix));
    free(key);
    free(sess);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(crash_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_use, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(native_types, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_not_on_disk, setup, teardown),
    };
    return cmocka_run_group_tests_name("store sqlite", tests, NULL, NULL);
}
