/* execution_logs: one document per task execution, for monitoring and the
 * analytics of GET /logs/stats. Privacy by default: no input text unless the
 * setting log_input_text is on, and anonymized IP addresses. */
#include "store/internal.h"
#include "util/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Completes and sanitizes one log document (a new copy). */
static int prepare(bs_store *s, const json_t *doc, bool keep_text, json_t **out, bs_err *err)
{
    if (!json_is_object(doc))
        return bs_err_set(err, BS_EINVAL, "execution_logs: document must be an object");
    json_t *d = json_deep_copy(doc);
    if (!d) return bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_store_strip_nulls(d);
    int64_t now = bs_store_now(s);
    char id[25];
    bs_store_oid_new(now, id);
    json_object_set_new(d, "_id", json_string(id));
    if (!json_object_get(d, "timestamp"))
        json_object_set_new(d, "timestamp", bs_store_date_json(now));
    json_t *text = json_object_get(d, "input_text");
    if (json_is_string(text) && !keep_text) {
        const char *t = json_string_value(text);
        size_t n = json_string_length(text);
        char hash[65];
        bs_store_hash(s, t, n, hash);
        json_object_set_new(d, "input_length", json_integer((json_int_t)bs_utf8_count(t, n)));
        json_object_set_new(d, "input_hash", json_string(hash));
        json_object_del(d, "input_text");
    }
    json_t *ip = json_object_get(d, "ip_address");
    if (json_is_string(ip)) {
        char buf[64];
        const char *a = bs_store_anonymize_ip(json_string_value(ip), buf, sizeof buf);
        if (a)
            json_object_set_new(d, "ip_address", json_string(a));
        else
            json_object_del(d, "ip_address"); /* not an address: keep nothing */
    }
    int rc = bs_store_validate(BS_COLL_LOGS, d, err);
    if (rc) {
        json_decref(d);
        return rc;
    }
    *out = d;
    return 0;
}

int bs_store_logs_insert(bs_store *s, const json_t *doc, char id[25], bs_err *err)
{
    json_t *d = NULL;
    int rc = prepare(s, doc, bs_store_settings_bool(s, "log_input_text", false), &d, err);
    if (rc) return rc;
    rc = s->eng->insert(s, BS_COLL_LOGS, &d, 1, false, err);
    if (!rc && id) memcpy(id, json_string_value(json_object_get(d, "_id")), 25);
    json_decref(d);
    return rc;
}

int bs_store_logs_insert_many(bs_store *s, json_t *const *docs, size_t n, bs_err *err)
{
    if (n == 0) return 0;
    json_t **ds = calloc(n, sizeof *ds);
    if (!ds) return bs_err_set(err, BS_ENOMEM, "out of memory");
    bool keep = bs_store_settings_bool(s, "log_input_text", false);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if ((rc = prepare(s, docs[i], keep, &ds[i], err)))
            bs_err_prefix(err, "log %zu of %zu", i + 1, n);
    if (!rc) rc = s->eng->insert(s, BS_COLL_LOGS, ds, n, false, err);
    for (size_t i = 0; i < n; i++) json_decref(ds[i]);
    free(ds);
    return rc;
}

/* The filters of a log query; tmp holds the values the query borrows. */
static int build(const bs_log_query *lq, bs_query *q, json_t **tmp, int *nt, bs_err *err)
{
    const char *fields[] = {"task_type", "model_name", "session_id", "api_key_id", "status"};
    const char *vals[] = {lq->task_type, lq->model_name, lq->session_id, lq->api_key_id,
                          lq->status};
    for (int i = 0; i < 5; i++) {
        if (!vals[i]) continue;
        if (i == 3 && bs_store_check_id("execution_logs: api_key_id", vals[i], err))
            return err->code;
        tmp[*nt] = json_string(vals[i]);
        bs_query_add(q, fields[i], BS_Q_EQ, tmp[(*nt)++]);
    }
    if (lq->since_ms) {
        tmp[*nt] = json_integer(lq->since_ms);
        bs_query_add(q, "timestamp", BS_Q_GTE, tmp[(*nt)++]);
    }
    if (lq->until_ms) {
        tmp[*nt] = json_integer(lq->until_ms);
        bs_query_add(q, "timestamp", BS_Q_LT, tmp[(*nt)++]);
    }
    return 0;
}

int bs_store_logs_find(bs_store *s, const bs_log_query *lq, json_t **out, int64_t *total,
                       bs_err *err)
{
    if (lq->limit < 0 || lq->offset < 0)
        return bs_err_set(err, BS_EINVAL, "execution_logs: limit and offset must be >= 0");
    bs_query q = {.sort = "timestamp", .desc = true};
    q.limit = lq->limit == 0 ? 100 : lq->limit > 1000 ? 1000 : lq->limit;
    q.offset = lq->offset;
    json_t *tmp[8];
    int nt = 0;
    int rc = build(lq, &q, tmp, &nt, err);
    if (!rc) rc = s->eng->find(s, BS_COLL_LOGS, &q, out, total, err);
    for (int i = 0; i < nt; i++) json_decref(tmp[i]);
    return rc;
}

/* Statistics in memory: rows arrive in any order, each group collects its
 * execution times, then sorts them once for the percentiles. */
typedef struct group_acc {
    char *key;
    double *t;
    size_t n, cap, ok;
    double sum;
} group_acc;

typedef struct stats_acc {
    group_acc *g;
    size_t n, cap;
    size_t last; /* consecutive rows often share a group */
} stats_acc;

static double nearest_rank(const double *t, size_t n, double p)
{
    size_t r = (size_t)ceil(p * (double)n);
    return t[r ? r - 1 : 0];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const group_acc *)a)->key, ((const group_acc *)b)->key);
}

static group_acc *find_group(stats_acc *a, const char *key)
{
    if (a->n && !strcmp(a->g[a->last].key, key)) return &a->g[a->last];
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->g[i].key, key)) return &a->g[a->last = i];
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        group_acc *ng = realloc(a->g, cap * sizeof *ng);
        if (!ng) return NULL;
        a->g = ng;
        a->cap = cap;
    }
    group_acc *g = &a->g[a->n];
    *g = (group_acc){.key = strdup(key)};
    if (!g->key) return NULL;
    a->last = a->n++;
    return g;
}

static int stats_row(void *ud, const char *group, double t, bool ok)
{
    group_acc *g = find_group(ud, group);
    if (!g) return BS_ENOMEM;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        double *nt = realloc(g->t, cap * sizeof *nt);
        if (!nt) return BS_ENOMEM;
        g->t = nt;
        g->cap = cap;
    }
    g->t[g->n++] = t;
    g->sum += t;
    g->ok += ok;
    return 0;
}

static json_t *stats_json(stats_acc *a)
{
    json_t *out = json_array();
    if (a->n) qsort(a->g, a->n, sizeof *a->g, cmp_group);
    for (size_t i = 0; out && i < a->n; i++) {
        group_acc *g = &a->g[i];
        qsort(g->t, g->n, sizeof *g->t, cmp_double);
        json_t *e =
            json_pack("{s:s,s:I,s:f,s:f,s:f,s:f}", "_id", g->key, "count", (json_int_t)g->n,
                      "avg_execution_time", g->sum / (double)g->n, "p50_execution_time",
                      nearest_rank(g->t, g->n, 0.50), "p95_execution_time",
                      nearest_rank(g->t, g->n, 0.95), "success_rate", (double)g->ok / (double)g->n);
        if (!e || json_array_append_new(out, e)) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

int bs_store_logs_stats(bs_store *s, const bs_log_query *lq, bs_log_group group, json_t **out,
                        bs_err *err)
{
    if (group < BS_LOG_GROUP_TASK_TYPE || group > BS_LOG_GROUP_DAY)
        return bs_err_set(err, BS_EINVAL,
                          "execution_logs: group_by must be task_type, model_name or day");
    bs_query q = {0};
    json_t *tmp[8];
    int nt = 0;
    stats_acc a = {0};
    int rc = build(lq, &q, tmp, &nt, err);
    if (!rc) rc = s->eng->log_scan(s, &q, group, stats_row, &a, err);
    if (rc == BS_ENOMEM) bs_err_set(err, rc, "execution_logs: out of memory computing statistics");
    if (!rc && !(*out = stats_json(&a))) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    for (int i = 0; i < nt; i++) json_decref(tmp[i]);
    for (size_t i = 0; i < a.n; i++) {
        free(a.g[i].key);
        free(a.g[i].t);
    }
    free(a.g);
    return rc;
}

int bs_store_logs_sweep(bs_store *s, int64_t retention_days, int64_t *removed, bs_err *err)
{
    return bs_store_sweep_older(s, BS_COLL_LOGS, "timestamp", "log_retention_days", 90,
                                retention_days, removed, err);
}
