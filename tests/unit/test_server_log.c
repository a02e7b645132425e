/* server: the asynchronous execution logger and the batched key usage,
 * against a real (SQLite) store in a temporary directory. */
#include "testutil.h"

#include "server/context.h"
#include "server/execlog.h"
#include "server/usage.h"
#include "store/store.h"
#include "util/time.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bs_store *open_store(const char *tag)
{
    char uri[1024];
    const char *dir = bs_test_tmpdir(tag);
    snprintf(uri, sizeof uri, "%s/t.db", dir);
    bs_store_opts so = {.data_dir = dir};
    bs_store *s = NULL;
    bs_err err = {0};
    if (bs_store_open(uri, &so, &s, &err)) fail_msg("store: %s", err.msg);
    return s;
}

static void test_log_execution(void **state)
{
    bs_store *store = open_store("server-log");
    struct bs_server srv = {.store = store};
    bs_err err = {0};
    assert_int_equal(bs_logq_start(store, 64, &srv.logq, &err), 0);
    bs_request req = {.server = &srv, .method = "POST", .path = "/tasks/ner"};
    snprintf(req.client_ip, sizeof req.client_ip, "10.1.2.3");
    snprintf(req.auth.api_key_id, sizeof req.auth.api_key_id, "0123456789abcdef01234567");
    for (int i = 0; i < 40; i++) {
        bs_exec_record rec = {.task_type = i % 4 ? "ner" : "classification",
                              .model_name = "bert-tiny",
                              .input_text = "Hello Paris",
                              .execution_time = 0.01 * (i + 1),
                              .success = i != 0,
                              .error_message = i == 0 ? "model not loaded" : NULL,
                              .result_size = 100,
                              .memory_usage = -1};
        bs_server_log_execution(&req, &rec);
    }
    bs_logq_flush(srv.logq);
    assert_int_equal(bs_logq_depth(srv.logq), 0);
    assert_int_equal(bs_logq_dropped(srv.logq), 0);
    bs_log_query q = {.task_type = "ner"};
    json_t *logs = NULL;
    int64_t total = 0;
    assert_int_equal(bs_store_logs_find(store, &q, &logs, &total, &err), 0);
    assert_int_equal(total, 30);
    json_t *first = json_array_get(logs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "model_name")), "bert-tiny");
    assert_string_equal(json_string_value(json_object_get(first, "api_key_id")),
                        "0123456789abcdef01234567");
    assert_string_equal(json_string_value(json_object_get(first, "ip_address")), "10.1.2.0");
    /* log_input_text is off by default: the text itself is not kept. */
    assert_null(json_object_get(first, "input_text"));
    assert_int_equal(json_integer_value(json_object_get(first, "input_length")), 11);
    json_decref(logs);
    json_t *groups = NULL;
    bs_log_query all = {0};
    assert_int_equal(bs_store_logs_stats(store, &all, BS_LOG_GROUP_TASK_TYPE, &groups, &err), 0);
    assert_int_equal(json_array_size(groups), 2);
    json_t *cls = json_array_get(groups, 0);
    assert_string_equal(json_string_value(json_object_get(cls, "_id")), "classification");
    assert_int_equal(json_integer_value(json_object_get(cls, "count")), 10);
    assert_true(json_number_value(json_object_get(cls, "success_rate")) > 0.89 &&
                json_number_value(json_object_get(cls, "success_rate")) < 0.91);
    json_decref(groups);
    /* Entries queued at stop are written, not lost. */
    bs_exec_record last = {.task_type = "qa",
                           .model_name = "m",
                           .execution_time = 1,
                           .success = 1,
                           .result_size = -1,
                           .memory_usage = -1};
    bs_server_log_execution(&req, &last);
    bs_logq_stop(srv.logq);
    bs_log_query qa = {.task_type = "qa"};
    assert_int_equal(bs_store_logs_find(store, &qa, &logs, &total, &err), 0);
    assert_int_equal(total, 1);
    json_decref(logs);
    bs_store_close(store);
}

static void test_session_activity_through_queue(void **state)
{
    bs_store *store = open_store("server-activity");
    bs_err err = {0};
    json_t *fields = json_pack("{s:s}", "name", "k"), *key = NULL, *sess = NULL;
    char *secret = NULL, *ssecret = NULL;
    assert_int_equal(bs_store_keys_create(store, fields, &secret, &key, &err), 0);
    const char *kid = json_string_value(json_object_get(key, "_id"));
    assert_int_equal(
        bs_store_sessions_create(store, kid, 3600000, "127.0.0.1", NULL, &ssecret, &sess, &err), 0);
    bs_logq *q = NULL;
    assert_int_equal(bs_logq_start(store, 512, &q, &err), 0);
    const char *sid = json_string_value(json_object_get(sess, "_id"));
    for (int i = 0; i < 120; i++) bs_logq_push_activity(q, sid, "patch", "/api-keys/{id}", NULL);
    bs_logq_flush(q);
    json_t *got = NULL;
    assert_int_equal(bs_store_sessions_get(store, sid, &got, &err), 0);
    assert_int_equal(json_array_size(json_object_get(got, "activity_log")), 100);
    json_decref(got);
    bs_logq_stop(q);
    free(secret);
    free(ssecret);
    json_decref(fields);
    json_decref(key);
    json_decref(sess);
    bs_store_close(store);
}

static void test_usage_batches(void **state)
{
    bs_store *store = open_store("server-usage");
    bs_err err = {0};
    json_t *fields = json_pack("{s:s}", "name", "counted"), *key = NULL;
    char *secret = NULL;
    assert_int_equal(bs_store_keys_create(store, fields, &secret, &key, &err), 0);
    const char *id = json_string_value(json_object_get(key, "_id"));
    bs_usage *u = bs_usage_new();
    int64_t now = bs_store_now(store);
    for (int i = 0; i < 7; i++) bs_usage_record(u, id, "192.168.1.100", now);
    bs_usage_record(u, "ffffffffffffffffffffffff", "1.2.3.4", now); /* unknown: skipped */
    assert_int_equal(bs_usage_flush(u, store, &err), 0);
    assert_int_equal(bs_usage_flush(u, store, &err), 0); /* nothing pending: no change */
    json_t *got = NULL;
    assert_int_equal(bs_store_keys_get(store, id, &got, &err), 0);
    json_t *stats = json_object_get(got, "usage_stats");
    assert_int_equal(json_integer_value(json_object_get(stats, "total_requests")), 7);
    assert_string_equal(json_string_value(json_object_get(stats, "last_request_ip")),
                        "192.168.1.0");
    json_decref(got);
    bs_usage_free(u);
    free(secret);
    json_decref(fields);
    json_decref(key);
    bs_store_close(store);
}

/* The retention sweep deletes what the settings say, and only that. */
static void test_sweep(void **state)
{
    bs_store *store = open_store("server-sweep");
    struct bs_server srv = {.store = store, .settings = bs_settings_new()};
    bs_err err = {0};
    int64_t day = 86400000, now = bs_store_now(store);
    char ts[32];
    for (int i = 0; i < 5; i++) {
        int64_t age = i < 3 ? 100 * day : 10 * day; /* 3 beyond 90 days, 2 within */
        json_t *doc = json_pack("{s:s, s:s, s:f, s:s, s:s}", "task_type", "ner", "model_name", "m",
                                "execution_time", 0.1, "status", "success", "timestamp",
                                bs_time_iso8601(now - age, ts, sizeof ts));
        assert_int_equal(bs_store_logs_insert(store, doc, NULL, &err), 0);
        json_decref(doc);
    }
    int64_t logs = -1, sessions = -1;
    assert_int_equal(bs_server_sweep(&srv, &logs, &sessions, &err), 0);
    assert_int_equal(logs, 3);
    assert_int_equal(sessions, 0);
    /* A shorter retention, as PUT /settings would set it, applies at once. */
    json_t *v = json_integer(5);
    assert_int_equal(
        bs_store_settings_put(store, "log_retention_days", v, "integer", NULL, "test", NULL, &err),
        0);
    json_decref(v);
    assert_int_equal(bs_settings_refresh(srv.settings, store, &err), 0);
    assert_int_equal(bs_server_sweep(&srv, &logs, &sessions, &err), 0);
    assert_int_equal(logs, 2);
    bs_settings_free(srv.settings);
    bs_store_close(store);
}

/* A full queue drops (and counts) instead of blocking the caller: the
 * writer is held up by another connection's write lock on the database. */
static void test_queue_overflow_never_blocks(void **state)
{
    char uri[1024];
    const char *dir = bs_test_tmpdir("server-overflow");
    snprintf(uri, sizeof uri, "%s/t.db", dir);
    bs_store_opts so = {.data_dir = dir, .busy_timeout_ms = 20000};
    bs_store *store = NULL;
    bs_err err = {0};
    assert_int_equal(bs_store_open(uri, &so, &store, &err), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(uri, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct bs_server srv = {.store = store};
    assert_int_equal(bs_logq_start(store, 2, &srv.logq, &err), 0);
    bs_request req = {.server = &srv, .method = "POST", .path = "/tasks/ner"};
    bs_exec_record rec = {.task_type = "ner",
                          .model_name = "m",
                          .execution_time = 0.1,
                          .success = 1,
                          .result_size = -1,
                          .memory_usage = -1};
    for (int i = 0; i < 10; i++) bs_server_log_execution(&req, &rec);
    uint64_t dropped = bs_logq_dropped(srv.logq);
    /* At most one batch in the writer's hands and two waiting. */
    assert_true(dropped >= 6 && dropped <= 8);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    bs_logq_flush(srv.logq);
    assert_int_equal(bs_logq_write_errors(srv.logq), 0);
    int64_t n = 0;
    assert_int_equal(bs_store_count(store, "execution_logs", &n, &err), 0);
    assert_int_equal((uint64_t)n + dropped, 10);
    bs_logq_stop(srv.logq);
    bs_store_close(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_execution),
        cmocka_unit_test(test_session_activity_through_queue),
        cmocka_unit_test(test_usage_batches),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_queue_overflow_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
