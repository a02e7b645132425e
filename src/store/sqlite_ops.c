/* The SQLite engine's aggregate reads (group counts, sums, the log scan of
 * the analytics) and its atomic read-modify-writes (task execution stats,
 * the capped session activity log), each in one transaction. */
#include "store/sqlite_int.h"
#include "util/time.h"

#include <stdio.h>
#include <string.h>

static int group_row(sqlite3_stmt *st, void *ud)
{
    json_t *e = json_pack("{s:s?,s:I}", "value", (const char *)sqlite3_column_text(st, 0), "count",
                          (json_int_t)sqlite3_column_int64(st, 1));
    return !e || json_array_append_new(ud, e) ? BS_ENOMEM : 0;
}

int bs_sq_group_count(bs_store *s, bs_coll c, const bs_query *qq, const char *field, int64_t limit,
                      json_t **out, bs_err *err)
{
    bs_buf b;
    bs_buf_init(&b);
    bs_sq_binds bv = {.n = 0};
    if (c == BS_COLL_TASKS && !strcmp(field, "tags"))
        bs_buf_puts(&b, "SELECT g.tag, count(*) FROM custom_tasks_tags g JOIN custom_tasks t ON "
                        "t.rowid = g.task");
    else if (bs_store_field(c, field))
        bs_buf_printf(&b, "SELECT t.\"%s\", count(*) FROM \"%s\" t", field, bs_store_colls[c].name);
    else
        return bs_err_set(err, BS_EINTERNAL, "group on unknown field");
    int rc = bs_sq_where(&b, c, qq, &bv, err);
    bs_buf_puts(&b, " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?");
    json_t *arr = json_array();
    if (!rc && (b.oom || !arr)) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!rc) rc = bs_sq_read_rows(s, c, b.data, &bv, limit > 0 ? limit : -1, group_row, arr, err);
    bs_buf_free(&b);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int sum_row(sqlite3_stmt *st, void *ud)
{
    *(int64_t *)ud = sqlite3_column_int64(st, 0);
    return 0;
}

int bs_sq_sum(bs_store *s, bs_coll c, const bs_query *qq, const char *field, int64_t *out,
              bs_err *err)
{
    if (!bs_store_field(c, field)) return bs_err_set(err, BS_EINTERNAL, "sum of unknown field");
    bs_buf b;
    bs_buf_init(&b);
    bs_sq_binds bv = {.n = 0};
    bs_buf_printf(&b, "SELECT coalesce(sum(t.\"%s\"), 0) FROM \"%s\" t", field,
                  bs_store_colls[c].name);
    int rc = bs_sq_where(&b, c, qq, &bv, err);
    *out = 0;
    if (!rc && b.oom) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!rc) rc = bs_sq_read_rows(s, c, b.data, &bv, 0, sum_row, out, err);
    bs_buf_free(&b);
    return rc;
}

/* Reads one column of one document inside the write transaction. */
static int read_json_col(bs_sq_conn *w, bs_coll c, const char *col, const char *id, json_t **out,
                         int64_t *ival, bs_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT \"%s\"%s FROM \"%s\" WHERE \"_id\" = ?", col,
             ival ? ", usage_count" : "", bs_store_colls[c].name);
    sqlite3_stmt *st = bs_sq_prepare(w, sql, err);
    if (!st) return err ? err->code : BS_ESTORE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return bs_err_set(err, BS_ENOTFOUND, "%s: no document with _id %s", bs_store_colls[c].name,
                          id);
    }
    if (rc != SQLITE_ROW) return bs_sq_step_fail(st, rc, c, err);
    const char *text = (const char *)sqlite3_column_text(st, 0);
    *out = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (ival) *ival = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

static int write_col(bs_sq_conn *w, bs_coll c, const char *sql, const char *id, const json_t *v,
                     int64_t ival, bs_err *err)
{
    sqlite3_stmt *st = bs_sq_prepare(w, sql, err);
    if (!st) return err ? err->code : BS_ESTORE;
    bs_sq_bind(st, 1, v, BS_F_JSON);
    sqlite3_bind_int64(st, 2, ival);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return bs_sq_step_fail(st, rc, c, err);
    sqlite3_reset(st);
    return 0;
}

int bs_sq_task_exec(bs_store *s, const char *id, double secs, bool ok, bs_err *err)
{
    bs_sq_conn *w = bs_sq_write_begin(BS_SQ(s), err);
    if (!w) return err ? err->code : BS_ESTORE;
    json_t *st = NULL;
    int64_t usage = 0;
    int rc = read_json_col(w, BS_COLL_TASKS, "execution_stats", id, &st, &usage, err);
    if (!rc) {
        json_t *ns = json_object();
        int64_t n = json_integer_value(json_object_get(st, "total_executions"));
        double avg = json_number_value(json_object_get(st, "avg_execution_time"));
        double sr = json_number_value(json_object_get(st, "success_rate"));
        json_object_set_new(ns, "avg_execution_time",
                            json_real((avg * (double)n + secs) / (double)(n + 1)));
        json_object_set_new(ns, "success_rate",
                            json_real((sr * (double)n + (ok ? 1 : 0)) / (double)(n + 1)));
        json_object_set_new(ns, "total_executions", json_integer(n + 1));
        rc = write_col(
            w, BS_COLL_TASKS,
            "UPDATE custom_tasks SET execution_stats = ?, usage_count = ? WHERE \"_id\" = ?", id,
            ns, usage + 1, err);
        json_decref(ns);
    }
    json_decref(st);
    return bs_sq_write_end(BS_SQ(s), w, rc, err);
}

int bs_sq_session_push(bs_store *s, const char *id, const json_t *entry, int cap, bs_err *err)
{
    bs_sq_conn *w = bs_sq_write_begin(BS_SQ(s), err);
    if (!w) return err ? err->code : BS_ESTORE;
    json_t *log = NULL;
    int rc = read_json_col(w, BS_COLL_SESSIONS, "activity_log", id, &log, NULL, err);
    if (!rc) {
        if (!json_is_array(log)) {
            json_decref(log);
            log = json_array();
        }
        json_array_append(log, (json_t *)entry);
        while (json_array_size(log) > (size_t)cap) json_array_remove(log, 0);
        rc = write_col(w, BS_COLL_SESSIONS,
                       "UPDATE user_sessions SET activity_log = ?1 WHERE \"_id\" = ?3", id, log, 0,
                       err);
    }
    json_decref(log);
    return bs_sq_write_end(BS_SQ(s), w, rc, err);
}

typedef struct scan_ctx {
    bs_log_group g;
    bs_scan_fn cb;
    void *ud;
    int64_t day; /* the last day number formatted into daystr */
    char daystr[32];
} scan_ctx;

static int scan_row(sqlite3_stmt *st, void *ud)
{
    scan_ctx *x = ud;
    const char *group;
    if (x->g == BS_LOG_GROUP_DAY) {
        int64_t day = sqlite3_column_int64(st, 0);
        if (day != x->day || !x->daystr[0]) {
            bs_time_iso8601(day * 86400000, x->daystr, sizeof x->daystr);
            x->daystr[10] = 0;
            x->day = day;
        }
        group = x->daystr;
    } else {
        group = (const char *)sqlite3_column_text(st, 0);
    }
    return x->cb(x->ud, group ? group : "", sqlite3_column_double(st, 1),
                 sqlite3_column_int(st, 2));
}

int bs_sq_log_scan(bs_store *s, const bs_query *qq, bs_log_group g, bs_scan_fn cb, void *ud,
                   bs_err *err)
{
    /* Unordered: the caller groups and sorts in memory, which beats a
     * temp b-tree over a million rows; the WHERE picks the index (the time
     * range of the seed's "since", or task_type/model_name). */
    static const char *const gexpr[] = {"t.task_type", "t.model_name",
                                        "t.\"timestamp\" / 86400000"};
    bs_buf b;
    bs_buf_init(&b);
    bs_sq_binds bv = {.n = 0};
    bs_buf_printf(&b, "SELECT %s, t.execution_time, t.status = 'success' FROM execution_logs t",
                  gexpr[g]);
    int rc = bs_sq_where(&b, BS_COLL_LOGS, qq, &bv, err);
    if (!rc && b.oom) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    scan_ctx x = {.g = g, .cb = cb, .ud = ud};
    if (!rc) rc = bs_sq_read_rows(s, BS_COLL_LOGS, b.data, &bv, 0, scan_row, &x, err);
    bs_buf_free(&b);
    return rc;
}
