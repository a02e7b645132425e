/* The MongoDB engine's translation layer, checked without a server: JSON
 * documents to BSON with native dates and ObjectIds and back, and the
 * store's queries as MongoDB filters. The engine against a live server is
 * covered by test_store's conformance suite (BERTSTUDIO_TEST_MONGODB_URI). */
#include "testutil.h"

#include "store/mongo_int.h"

#include <stdlib.h>
#include <string.h>

static bson_type_t type_of(const bson_t *b, const char *dotted)
{
    bson_iter_t it, sub;
    if (!bson_iter_init(&it, b) || !bson_iter_find_descendant(&it, dotted, &sub))
        return BSON_TYPE_EOD;
    return bson_iter_type(&sub);
}

static void round_trip(bs_coll c, const char *json)
{
    json_t *doc = json_loads(json, 0, NULL);
    assert_non_null(doc);
    bson_t b = BSON_INITIALIZER;
    assert_true(bs_mg_from_json(c, doc, &b));
    json_t *back = bs_mg_to_json(c, &b);
    if (!json_equal(doc, back)) {
        char *x = json_dumps(back, JSON_SORT_KEYS);
        fail_msg("round trip changed %s into %s", json, x);
    }
    json_decref(back);
    json_decref(doc);
    bson_destroy(&b);
}

static void documents(void **state)
{
    (void)state;
    const char *task =
        "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d5e6\",\"name\":\"Sentiment\",\"tags\":[\"a\",\"b\"],"
        "\"model_name\":\"distilbert-base-uncased\",\"function_code\":\"f\","
        "\"created_at\":\"2024-01-15T10:30:00.000Z\",\"usage_count\":25,\"is_public\":false,"
        "\"api_key_id\":\"65a4f0c2e4b0a1a2b3c4d5e7\",\"created_by\":\"abc\","
        "\"execution_stats\":{\"avg_execution_time\":0.125,\"success_rate\":0.96,\"total_"
        "executions\":25},"
        "\"model_config\":{\"max_length\":512,\"padding\":true,\"nested\":{\"x\":null}}}";
    round_trip(BS_COLL_TASKS, task);
    json_t *doc = json_loads(task, 0, NULL);
    bson_t b = BSON_INITIALIZER;
    assert_true(bs_mg_from_json(BS_COLL_TASKS, doc, &b));
    assert_int_equal(type_of(&b, "_id"), BSON_TYPE_OID);
    assert_int_equal(type_of(&b, "api_key_id"), BSON_TYPE_OID);
    assert_int_equal(type_of(&b, "created_at"), BSON_TYPE_DATE_TIME);
    assert_int_equal(type_of(&b, "created_by"), BSON_TYPE_UTF8);
    assert_int_equal(type_of(&b, "usage_count"), BSON_TYPE_INT64);
    assert_int_equal(type_of(&b, "execution_stats.avg_execution_time"), BSON_TYPE_DOUBLE);
    assert_int_equal(type_of(&b, "tags.1"), BSON_TYPE_UTF8);
    bson_destroy(&b);
    json_decref(doc);

    const char *session =
        "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d5e8\",\"session_id\":\"h\",\"api_key_id\":"
        "\"65a4f0c2e4b0a1a2b3c4d5e7\","
        "\"created_at\":\"2024-01-15T09:00:00.000Z\",\"expires_at\":\"2024-01-15T18:00:00.000Z\","
        "\"is_active\":true,\"activity_log\":[{\"action\":\"login\",\"timestamp\":\"2024-01-15T09:"
        "00:00.000Z\","
        "\"endpoint\":\"/auth/"
        "login\"},{\"action\":\"task_execution\",\"timestamp\":\"2024-01-15T14:30:00.000Z\","
        "\"task_id\":\"65a4f0c2e4b0a1a2b3c4d5e6\"}]}";
    round_trip(BS_COLL_SESSIONS, session);
    doc = json_loads(session, 0, NULL);
    bson_init(&b);
    assert_true(bs_mg_from_json(BS_COLL_SESSIONS, doc, &b));
    assert_int_equal(type_of(&b, "activity_log.0.timestamp"), BSON_TYPE_DATE_TIME);
    assert_int_equal(type_of(&b, "activity_log.1.task_id"), BSON_TYPE_OID);
    assert_int_equal(type_of(&b, "expires_at"), BSON_TYPE_DATE_TIME);
    bson_destroy(&b);
    json_decref(doc);

    /* NUM fields are doubles even when written as integers, on the way in
     * and on the way back from documents written by other tools */
    doc =
        json_pack("{s:s,s:s,s:i,s:s,s:s}", "task_type", "ner", "model_name", "m", "execution_time",
                  2, "status", "success", "timestamp", "2024-01-15T14:30:00.000Z");
    bson_init(&b);
    assert_true(bs_mg_from_json(BS_COLL_LOGS, doc, &b));
    assert_int_equal(type_of(&b, "execution_time"), BSON_TYPE_DOUBLE);
    bson_destroy(&b);
    json_decref(doc);
    bson_t *other = BCON_NEW("execution_time", BCON_INT32(3), "result_size", BCON_DOUBLE(7.0),
                             "score", BCON_DOUBLE(1.5), "error_message", BCON_NULL);
    json_t *j = bs_mg_to_json(BS_COLL_LOGS, other);
    assert_true(json_is_real(json_object_get(j, "execution_time")));
    assert_true(json_is_integer(json_object_get(j, "result_size")));
    assert_null(json_object_get(j, "score"));         /* not a field: the text score */
    assert_null(json_object_get(j, "error_message")); /* null = absent, as in SQLite */
    json_decref(j);
    bson_destroy(other);

    round_trip(BS_COLL_SETTINGS,
               "{\"_id\":\"65a4f0c2e4b0a1a2b3c4d5e9\",\"setting_key\":\"k\",\"setting_value\":[1,"
               "\"x\",{\"a\":false}],"
               "\"setting_type\":\"json\",\"created_at\":\"2024-01-01T00:00:00.000Z\"}");
    /* a bad id or date is refused, never stored as text */
    doc = json_pack("{s:s}", "api_key_id", "not-an-id");
    bson_init(&b);
    assert_false(bs_mg_from_json(BS_COLL_TASKS, doc, &b));
    bson_destroy(&b);
    json_decref(doc);
}

static void expect_filter(bs_coll c, const bs_query *q, const char *expected)
{
    bson_t f = BSON_INITIALIZER;
    bs_err err = {0};
    assert_int_equal(bs_mg_filter(c, q, &f, &err), 0);
    char *text = bson_as_relaxed_extended_json(&f, NULL);
    if (strcmp(text, expected)) fail_msg("filter\n  %s\nexpected\n  %s", text, expected);
    bson_free(text);
    bson_destroy(&f);
}

static void filters(void **state)
{
    (void)state;
    json_t *key = json_string("65a4f0c2e4b0a1a2b3c4d5e6"),
           *model = json_string("distilbert-base-uncased");
    json_t *tags = json_pack("[s,s]", "nlp", "classification"),
           *since = json_integer(1705276800000LL);
    json_t *until = json_string("2024-01-16T00:00:00Z");

    expect_filter(BS_COLL_TASKS, &(bs_query){0}, "{ }");
    /* seed 3: tags $in and model */
    bs_query q = {0};
    bs_query_add(&q, "tags", BS_Q_IN, tags);
    bs_query_add(&q, "model_name", BS_Q_EQ, model);
    expect_filter(BS_COLL_TASKS, &q,
                  "{ \"$and\" : [ { \"tags\" : { \"$in\" : [ \"nlp\", \"classification\" ] } }, "
                  "{ \"model_name\" : \"distilbert-base-uncased\" } ] }");
    /* visibility with text search */
    q = (bs_query){.text = "sentiment \"analysis\" -x"};
    bs_query_add_any(&q, "api_key_id", BS_Q_EQ, key);
    bs_query_add_any(&q, "is_public", BS_Q_EQ, json_true());
    expect_filter(
        BS_COLL_TASKS, &q,
        "{ \"$text\" : { \"$search\" : \"sentiment analysis x\" }, \"$and\" : [ { \"$or\" : [ "
        "{ \"api_key_id\" : { \"$oid\" : \"65a4f0c2e4b0a1a2b3c4d5e6\" } }, { \"is_public\" : true "
        "} ] } ] }");
    /* seed 5: a time range on native dates, from ms or ISO */
    q = (bs_query){0};
    bs_query_add(&q, "timestamp", BS_Q_GTE, since);
    bs_query_add(&q, "timestamp", BS_Q_LT, until);
    expect_filter(BS_COLL_LOGS, &q,
                  "{ \"$and\" : [ { \"timestamp\" : { \"$gte\" : { \"$date\" : "
                  "\"2024-01-15T00:00:00Z\" } } }, "
                  "{ \"timestamp\" : { \"$lt\" : { \"$date\" : \"2024-01-16T00:00:00Z\" } } } ] }");
    /* a bad ObjectId in a query is an error, not a silent string match */
    q = (bs_query){0};
    json_t *bad = json_string("xyz");
    bs_query_add(&q, "_id", BS_Q_EQ, bad);
    bson_t f = BSON_INITIALIZER;
    bs_err err = {0};
    assert_int_equal(bs_mg_filter(BS_COLL_TASKS, &q, &f, &err), BS_EINVAL);
    assert_non_null(strstr(err.msg, "_id"));
    bson_destroy(&f);
    assert_null(bs_mg_text("!!! --"));
    json_decref(bad);
    json_decref(key), json_decref(model), json_decref(tags), json_decref(since), json_decref(until);
}

/* Without a server the engine fails fast and says why. */
static void unreachable(void **state)
{
    (void)state;
    char *dir = strdup(bs_test_tmpdir("store-mongo"));
    bs_store_opts o = {.data_dir = dir};
    bs_store *s = NULL;
    bs_err err = {0};
    assert_int_equal(
        bs_store_open("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200", &o, &s, &err),
        BS_ESTORE);
    assert_non_null(strstr(err.msg, "unreachable"));
    assert_null(s);
    assert_int_equal(bs_store_open("mongodb://localhost:notaport", &o, &s, &err), BS_EINVAL);
    assert_non_null(strstr(err.msg, "store URI"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(documents),
        cmocka_unit_test(filters),
        cmocka_unit_test(unreachable),
    };
    return cmocka_run_group_tests_name("store mongodb translation", tests, NULL, NULL);
}
