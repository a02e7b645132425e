/* The MongoDB engine of the store (the seed's primary database): a client
 * pool with retryable writes, majority write concern for api_keys and
 * custom_tasks, the seed's $jsonSchema validators and indexes (plus TTL
 * retention) created at open, and the store's operations as driver calls. */
#include "store/mongo_int.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct bs_mg {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    mongoc_write_concern_t *majority;
    char *db;
} bs_mg;

#define MG(s) ((bs_mg *)(s)->impl)

static const char *cname(bs_coll c)
{
    return bs_store_colls[c].name;
}

int bs_mg_fail(const bson_error_t *e, const char *what, bs_err *err)
{
    if (e->code == 11000 || strstr(e->message, "E11000")) {
        /* "... dup key: { api_key: "..." }": name the field, not the value */
        const char *p = strstr(e->message, "dup key: { ");
        char field[64] = "key";
        if (p) {
            p += 11;
            size_t n = strcspn(p, ": ");
            if (n && n < sizeof field) {
                memcpy(field, p, n);
                field[n] = 0;
            }
        }
        return bs_err_set(err, BS_ECONFLICT, "%s: duplicate value for unique %s", what, field);
    }
    if (e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM)
        return bs_err_set(err, BS_ESTORE, "%s: MongoDB unreachable: %s", what, e->message);
    if (e->code == 121) /* DocumentValidationFailure: the server-side validator */
        return bs_err_set(err, BS_EINVAL, "%s: document failed the collection validator", what);
    return bs_err_set(err, BS_ESTORE, "%s: mongodb: %s", what, e->message);
}

static mongoc_collection_t *coll_of(bs_mg *m, mongoc_client_t *cl, bs_coll c)
{
    mongoc_collection_t *co = mongoc_client_get_collection(cl, m->db, cname(c));
    /* the credentials and users' work must survive a primary failover */
    if (c == BS_COLL_KEYS || c == BS_COLL_TASKS)
        mongoc_collection_set_write_concern(co, m->majority);
    return co;
}

/* One pooled client and collection for the duration of an operation. */
typedef struct op {
    bs_mg *m;
    mongoc_client_t *cl;
    mongoc_collection_t *co;
} op;

static op op_begin(bs_store *s, bs_coll c)
{
    op o = {.m = MG(s)};
    o.cl = mongoc_client_pool_pop(o.m->pool);
    o.co = coll_of(o.m, o.cl, c);
    return o;
}

static void op_end(op *o)
{
    mongoc_collection_destroy(o->co);
    mongoc_client_pool_push(o->m->pool, o->cl);
}

static int mg_find(bs_store *s, bs_coll c, const bs_query *q, json_t **out, int64_t *total,
                   bs_err *err)
{
    json_t *arr = json_array();
    if (!arr) return bs_err_set(err, BS_ENOMEM, "out of memory");
    if (q->text) {
        char *w = bs_mg_text(q->text);
        if (!w) { /* no words: nothing matches */
            if (total) *total = 0;
            *out = arr;
            return 0;
        }
        free(w);
    }
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj, score;
    int rc = bs_mg_filter(c, q, &filter, err);
    if (!rc) {
        bson_append_document_begin(&opts, "sort", -1, &sort);
        if (q->text && q->sort_text_score) {
            bson_append_document_begin(&sort, "score", -1, &score);
            bson_append_utf8(&score, "$meta", -1, "textScore", -1);
            bson_append_document_end(&sort, &score);
        } else {
            bson_append_int32(&sort, q->sort ? q->sort : "_id", -1, q->sort && q->desc ? -1 : 1);
        }
        bson_append_document_end(&opts, &sort);
        if (q->text && q->sort_text_score) {
            bson_append_document_begin(&opts, "projection", -1, &proj);
            bson_append_document_begin(&proj, "score", -1, &score);
            bson_append_utf8(&score, "$meta", -1, "textScore", -1);
            bson_append_document_end(&proj, &score);
            bson_append_document_end(&opts, &proj);
        }
        if (q->limit > 0) bson_append_int64(&opts, "limit", -1, q->limit);
        if (q->offset > 0) bson_append_int64(&opts, "skip", -1, q->offset);
    }
    op o = op_begin(s, c);
    bson_error_t e;
    if (!rc) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(o.co, &filter, &opts, NULL);
        const bson_t *doc;
        while (mongoc_cursor_next(cur, &doc)) json_array_append_new(arr, bs_mg_to_json(c, doc));
        if (mongoc_cursor_error(cur, &e)) rc = bs_mg_fail(&e, cname(c), err);
        mongoc_cursor_destroy(cur);
    }
    if (!rc && total) {
        int64_t n = mongoc_collection_count_documents(o.co, &filter, NULL, NULL, NULL, &e);
        if (n < 0)
            rc = bs_mg_fail(&e, cname(c), err);
        else
            *total = n;
    }
    op_end(&o);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int mg_insert(bs_store *s, bs_coll c, json_t *const *docs, size_t n, bool replace,
                     bs_err *err)
{
    bson_t **b = calloc(n, sizeof *b);
    if (!b) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        b[i] = bson_new();
        if (!bs_mg_from_json(c, docs[i], b[i]))
            rc = bs_err_set(err, BS_EINVAL, "%s: document %zu cannot be stored", cname(c), i);
    }
    op o = op_begin(s, c);
    bson_error_t e;
    if (!rc && !replace) {
        /* ordered: stops at the first failure (validation ran before) */
        if (!mongoc_collection_insert_many(o.co, (const bson_t **)b, n, NULL, NULL, &e))
            rc = bs_mg_fail(&e, cname(c), err);
    } else if (!rc) {
        mongoc_bulk_operation_t *bulk =
            mongoc_collection_create_bulk_operation_with_opts(o.co, NULL);
        bson_t uopts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&uopts, "upsert", true);
        for (size_t i = 0; i < n && !rc; i++) {
            bson_t sel = BSON_INITIALIZER;
            bs_mg_append(&sel, "_id", json_object_get(docs[i], "_id"), BS_F_OID);
            if (!mongoc_bulk_operation_replace_one_with_opts(bulk, &sel, b[i], &uopts, &e))
                rc = bs_mg_fail(&e, cname(c), err);
            bson_destroy(&sel);
        }
        if (!rc && !mongoc_bulk_operation_execute(bulk, NULL, &e))
            rc = bs_mg_fail(&e, cname(c), err);
        mongoc_bulk_operation_destroy(bulk);
        bson_destroy(&uopts);
    }
    op_end(&o);
    for (size_t i = 0; i < n; i++) bson_destroy(b[i]);
    free(b);
    return rc;
}

static int64_t reply_count(const bson_t *reply, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

static int mg_update(bs_store *s, bs_coll c, const bs_query *q, const json_t *set,
                     const json_t *inc, int64_t *matched, bs_err *err)
{
    bson_t filter = BSON_INITIALIZER, upd = BSON_INITIALIZER, part;
    int rc = bs_mg_filter(c, q, &filter, err);
    const char *k;
    json_t *v;
    bool ok = true;
    /* $set for values, $unset for nulls, $inc for counters */
    for (int pass = 0; pass < 3 && !rc; pass++) {
        const json_t *src = pass == 2 ? inc : set;
        int members = 0;
        json_object_foreach((json_t *)src, k, v) members +=
            pass == 2 || (pass == 1) == json_is_null(v);
        if (!members) continue;
        bson_append_document_begin(&upd,
                                   pass == 0   ? "$set"
                                   : pass == 1 ? "$unset"
                                               : "$inc",
                                   -1, &part);
        json_object_foreach((json_t *)src, k, v)
        {
            if (pass < 2 && (pass == 1) != json_is_null(v)) continue;
            const bs_field *f = strchr(k, '.') ? NULL : bs_store_field(c, k);
            if (pass == 1)
                ok = ok && bson_append_utf8(&part, k, -1, "", 0);
            else if (pass == 2)
                ok = ok && bs_mg_append(&part, k, v, json_is_integer(v) ? BS_F_INT : BS_F_NUM);
            else
                ok = ok && bs_mg_append(&part, k, v, f ? (int)f->type : -1);
        }
        bson_append_document_end(&upd, &part);
    }
    if (!rc && !ok)
        rc = bs_err_set(err, BS_EINVAL, "%s: update has a value that cannot be stored", cname(c));
    if (!rc) {
        op o = op_begin(s, c);
        bson_t reply;
        bson_error_t e;
        if (!mongoc_collection_update_many(o.co, &filter, &upd, NULL, &reply, &e))
            rc = bs_mg_fail(&e, cname(c), err);
        else if (matched)
            *matched = reply_count(&reply, "matchedCount");
        bson_destroy(&reply);
        op_end(&o);
    }
    bson_destroy(&filter);
    bson_destroy(&upd);
    return rc;
}

static int mg_remove(bs_store *s, bs_coll c, const bs_query *q, int64_t *removed, bs_err *err)
{
    bson_t filter = BSON_INITIALIZER;
    int rc = bs_mg_filter(c, q, &filter, err);
    if (!rc) {
        op o = op_begin(s, c);
        bson_t reply;
        bson_error_t e;
        if (!mongoc_collection_delete_many(o.co, &filter, NULL, &reply, &e))
            rc = bs_mg_fail(&e, cname(c), err);
        else if (removed)
            *removed = reply_count(&reply, "deletedCount");
        bson_destroy(&reply);
        op_end(&o);
    }
    bson_destroy(&filter);
    return rc;
}

/* Runs an aggregation whose first stage is {$match: q}; stages is JSON text
 * of the remaining stages. row() sees every result. */
typedef int (*agg_row)(const bson_t *doc, void *ud);
static int aggregate(bs_store *s, bs_coll c, const bs_query *q, const char *stages, agg_row row,
                     void *ud, bs_err *err)
{
    bson_error_t e;
    bson_t *rest = bson_new_from_json((const uint8_t *)stages, -1, &e);
    if (!rest) return bs_err_set(err, BS_EINTERNAL, "aggregation stages: %s", e.message);
    bson_t pipeline = BSON_INITIALIZER, arr, stage, match;
    bson_append_array_begin(&pipeline, "pipeline", -1, &arr);
    bson_append_document_begin(&arr, "0", -1, &stage);
    bson_append_document_begin(&stage, "$match", -1, &match);
    int rc = bs_mg_filter(c, q, &match, err);
    bson_append_document_end(&stage, &match);
    bson_append_document_end(&arr, &stage);
    bson_iter_t it;
    int i = 1;
    if (bson_iter_init(&it, rest))
        while (bson_iter_next(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            bson_t st;
            bson_init_static(&st, data, len);
            char kb[16];
            const char *key;
            bson_uint32_to_string((uint32_t)i++, &key, kb, sizeof kb);
            bson_append_document(&arr, key, -1, &st);
        }
    bson_append_array_end(&pipeline, &arr);
    bson_destroy(rest);
    if (!rc) {
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "allowDiskUse", true); /* 1M logs sorted for percentiles */
        op o = op_begin(s, c);
        mongoc_cursor_t *cur =
            mongoc_collection_aggregate(o.co, MONGOC_QUERY_NONE, &pipeline, &opts, NULL);
        const bson_t *doc;
        while (!rc && mongoc_cursor_next(cur, &doc)) rc = row(doc, ud);
        if (!rc && mongoc_cursor_error(cur, &e)) rc = bs_mg_fail(&e, cname(c), err);
        mongoc_cursor_destroy(cur);
        op_end(&o);
        bson_destroy(&opts);
    }
    bson_destroy(&pipeline);
    return rc;
}

static int group_row(const bson_t *doc, void *ud)
{
    bson_iter_t it;
    json_t *e = json_object();
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
        json_object_set_new(e, "value", json_string(bson_iter_utf8(&it, NULL)));
    json_object_set_new(e, "count", json_integer(reply_count(doc, "count")));
    return json_array_append_new(ud, e) ? BS_ENOMEM : 0;
}

static int mg_group_count(bs_store *s, bs_coll c, const bs_query *q, const char *field,
                          int64_t limit, json_t **out, bs_err *err)
{
    if (!bs_store_field(c, field)) return bs_err_set(err, BS_EINTERNAL, "group on unknown field");
    char stages[512];
    snprintf(stages, sizeof stages,
             "{\"0\": %s, \"1\": {\"$group\": {\"_id\": \"$%s\", \"count\": {\"$sum\": 1}}},"
             " \"2\": {\"$sort\": {\"count\": -1, \"_id\": 1}}, \"3\": {\"$limit\": %lld}}",
             !strcmp(field, "tags") ? "{\"$unwind\": \"$tags\"}" : "{\"$match\": {}}", field,
             (long long)(limit > 0 ? limit : 1000000));
    json_t *arr = json_array();
    int rc = aggregate(s, c, q, stages, group_row, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int sum_row(const bson_t *doc, void *ud)
{
    *(int64_t *)ud = reply_count(doc, "s");
    return 0;
}

static int mg_sum(bs_store *s, bs_coll c, const bs_query *q, const char *field, int64_t *out,
                  bs_err *err)
{
    if (!bs_store_field(c, field)) return bs_err_set(err, BS_EINTERNAL, "sum of unknown field");
    char stages[256];
    snprintf(stages, sizeof stages,
             "{\"0\": {\"$group\": {\"_id\": null, \"s\": {\"$sum\": \"$%s\"}}}}", field);
    *out = 0;
    return aggregate(s, c, q, stages, sum_row, out, err);
}

/* One update (document or pipeline) on one document by _id; BS_ENOTFOUND
 * when it does not exist. */
static int update_by_id(bs_store *s, bs_coll c, const char *id, const bson_t *upd, bs_err *err)
{
    bson_t sel = BSON_INITIALIZER;
    json_t *idv = json_string(id);
    int rc =
        bs_mg_append(&sel, "_id", idv, BS_F_OID) ? 0 : bs_err_set(err, BS_EINVAL, "bad id %s", id);
    json_decref(idv);
    if (!rc) {
        op o = op_begin(s, c);
        bson_t reply;
        bson_error_t e;
        if (!mongoc_collection_update_one(o.co, &sel, upd, NULL, &reply, &e))
            rc = bs_mg_fail(&e, cname(c), err);
        else if (!reply_count(&reply, "matchedCount"))
            rc = bs_err_set(err, BS_ENOTFOUND, "%s: no document with _id %s", cname(c), id);
        bson_destroy(&reply);
        op_end(&o);
    }
    bson_destroy(&sel);
    return rc;
}

static int mg_task_exec(bs_store *s, const char *id, double secs, bool ok, bs_err *err)
{
    /* An update pipeline (keys "0", "1", ... make it an array): the running
     * averages are computed by the server from the stored values, so
     * concurrent executions never lose one. */
    char text[1400];
    snprintf(
        text, sizeof text,
        "{\"0\": {\"$set\": {\"_n\": {\"$ifNull\": [\"$execution_stats.total_executions\", 0]},"
        "  \"_a\": {\"$ifNull\": [\"$execution_stats.avg_execution_time\", 0]},"
        "  \"_r\": {\"$ifNull\": [\"$execution_stats.success_rate\", 0]}}},"
        " \"1\": {\"$set\": {\"usage_count\": {\"$add\": [{\"$ifNull\": [\"$usage_count\", 0]}, "
        "1]},"
        "  \"execution_stats\": {"
        "   \"avg_execution_time\": {\"$divide\": [{\"$add\": [{\"$multiply\": [\"$_a\", "
        "\"$_n\"]}, %.17g]},"
        "     {\"$add\": [\"$_n\", 1]}]},"
        "   \"success_rate\": {\"$divide\": [{\"$add\": [{\"$multiply\": [\"$_r\", \"$_n\"]}, %d]},"
        "     {\"$add\": [\"$_n\", 1]}]},"
        "   \"total_executions\": {\"$toLong\": {\"$add\": [\"$_n\", 1]}}}}},"
        " \"2\": {\"$unset\": [\"_n\", \"_a\", \"_r\"]}}",
        secs, ok ? 1 : 0);
    bson_error_t e;
    bson_t *upd = bson_new_from_json((const uint8_t *)text, -1, &e);
    if (!upd) return bs_err_set(err, BS_EINTERNAL, "task execution update: %s", e.message);
    int rc = update_by_id(s, BS_COLL_TASKS, id, upd, err);
    bson_destroy(upd);
    return rc;
}

static int mg_session_push(bs_store *s, const char *id, const json_t *entry, int cap, bs_err *err)
{
    bson_t upd = BSON_INITIALIZER, push, field;
    bson_append_document_begin(&upd, "$push", -1, &push);
    bson_append_document_begin(&push, "activity_log", -1, &field);
    json_t *each = json_pack("[O]", entry);
    bool ok = bs_mg_append_activity(&field, "$each", each);
    json_decref(each);
    bson_append_int32(&field, "$slice", -1, -cap); /* keep the last cap entries */
    bson_append_document_end(&push, &field);
    bson_append_document_end(&upd, &push);
    int rc = ok ? update_by_id(s, BS_COLL_SESSIONS, id, &upd, err)
                : bs_err_set(err, BS_EINVAL, "user_sessions: activity entry cannot be stored");
    bson_destroy(&upd);
    return rc;
}

typedef struct scan_ctx {
    bs_scan_fn cb;
    void *ud;
} scan_ctx;

static int scan_row(const bson_t *doc, void *ud)
{
    scan_ctx *x = ud;
    bson_iter_t it;
    const char *g = "";
    double t = 0;
    bool ok = false;
    if (bson_iter_init_find(&it, doc, "g") && BSON_ITER_HOLDS_UTF8(&it))
        g = bson_iter_utf8(&it, NULL);
    if (bson_iter_init_find(&it, doc, "t") && BSON_ITER_HOLDS_NUMBER(&it))
        t = bson_iter_as_double(&it);
    if (bson_iter_init_find(&it, doc, "ok")) ok = bson_iter_as_bool(&it);
    return x->cb(x->ud, g, t, ok);
}

static int mg_log_scan(bs_store *s, const bs_query *q, bs_log_group g, bs_scan_fn cb, void *ud,
                       bs_err *err)
{
    static const char *const gexpr[] = {
        "\"$task_type\"", "\"$model_name\"",
        "{\"$dateToString\": {\"format\": \"%Y-%m-%d\", \"date\": \"$timestamp\"}}"};
    char stages[512];
    snprintf(stages, sizeof stages,
             "{\"0\": {\"$project\": {\"_id\": 0, \"g\": %s, \"t\": \"$execution_time\","
             " \"ok\": {\"$eq\": [\"$status\", \"success\"]}}}}",
             gexpr[g]);
    scan_ctx x = {cb, ud};
    return aggregate(s, BS_COLL_LOGS, q, stages, scan_row, &x, err);
}

static int mg_ping(bs_store *s, bs_err *err)
{
    bs_mg *m = MG(s);
    mongoc_client_t *cl = mongoc_client_pool_pop(m->pool);
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bson_error_t e;
    int rc = mongoc_client_command_simple(cl, "admin", &cmd, NULL, &reply, &e)
                 ? 0
                 : bs_mg_fail(&e, "ping", err);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    mongoc_client_pool_push(m->pool, cl);
    return rc;
}

static void mg_close(bs_store *s)
{
    bs_mg *m = MG(s);
    if (!m) return;
    if (m->pool) mongoc_client_pool_destroy(m->pool);
    mongoc_uri_destroy(m->uri);
    mongoc_write_concern_destroy(m->majority);
    free(m->db);
    free(m);
    s->impl = NULL;
}

static const bs_engine mongo_engine = {
    .name = "mongodb",
    .close = mg_close,
    .ping = mg_ping,
    .insert = mg_insert,
    .find = mg_find,
    .update = mg_update,
    .remove = mg_remove,
    .group_count = mg_group_count,
    .sum = mg_sum,
    .task_exec = mg_task_exec,
    .session_push = mg_session_push,
    .log_scan = mg_log_scan,
    .backup = bs_store_dump_file,
    .restore = bs_store_load_file,
};

/* The driver's own log goes through ours, warnings and errors only: its
 * debug chatter (every failed heartbeat) would drown the server's log. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        bs_log_error("store", "mongoc %s: %s", domain, message);
    else if (level == MONGOC_LOG_LEVEL_WARNING)
        bs_log_warn("store", "mongoc %s: %s", domain, message);
}

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;
static void init_driver(void)
{
    mongoc_init();
    mongoc_log_set_handler(driver_log, NULL);
}

int bs_store_mongo_open(bs_store *s, const char *uri_text, const bs_store_opts *opts, bs_err *err)
{
    pthread_once(&mongoc_once, init_driver);
    bs_mg *m = calloc(1, sizeof *m);
    if (!m) return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->impl = m;
    s->eng = &mongo_engine;
    bson_error_t e;
    m->uri = mongoc_uri_new_with_error(uri_text, &e);
    if (!m->uri) return bs_err_set(err, BS_EINVAL, "store URI: %s", e.message);
    if (!mongoc_uri_has_option(m->uri, MONGOC_URI_RETRYWRITES))
        mongoc_uri_set_option_as_bool(m->uri, MONGOC_URI_RETRYWRITES, true);
    /* /health/db must answer quickly when the server is gone */
    if (!mongoc_uri_has_option(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    const char *db = opts && opts->mongo_db ? opts->mongo_db : mongoc_uri_get_database(m->uri);
    m->db = strdup(db && *db ? db : "bertstudio");
    m->majority = mongoc_write_concern_new();
    mongoc_write_concern_set_w(m->majority, MONGOC_WRITE_CONCERN_W_MAJORITY);
    m->pool = mongoc_client_pool_new(m->uri);
    if (!m->db || !m->pool)
        return bs_err_set(err, BS_ESTORE, "cannot create the MongoDB client pool");
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(m->pool, "bertstudio");
    mongoc_client_t *cl = mongoc_client_pool_pop(m->pool);
    mongoc_database_t *dbh = mongoc_client_get_database(cl, m->db);
    int rc = 0;
    rc = bs_mg_setup(s, dbh, err);
    mongoc_database_destroy(dbh);
    mongoc_client_pool_push(m->pool, cl);
    return rc;
}
