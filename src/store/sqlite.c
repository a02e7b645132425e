/* The SQLite engine of the store (the default): generic document operations
 * over the tables of sqlite_schema.c. Every write runs in one BEGIN IMMEDIATE
 * transaction on the writer connection; reads use the reader pool. */
#include "store/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

void bs_store_sqlite_trace(bs_store *s, void (*fn)(void *ud, const char *sql), void *ud)
{
    if (strcmp(s->eng->name, "sqlite")) return;
    BS_SQ(s)->trace = fn;
    BS_SQ(s)->trace_ud = ud;
}

void bs_sq_trace(bs_sq *q, const char *sql)
{
    if (q->trace) q->trace(q->trace_ud, sql);
}

int bs_sq_step_fail(sqlite3_stmt *st, int rc, bs_coll c, bs_err *err)
{
    sqlite3 *db = sqlite3_db_handle(st);
    int r = bs_sq_fail(db, rc == SQLITE_ERROR ? sqlite3_extended_errcode(db) : rc,
                       bs_store_colls[c].name, err);
    sqlite3_reset(st);
    return r;
}

static int build_select(bs_buf *b, bs_sq *q, bs_coll c, const bs_query *qq, const char *fts,
                        bool count, bs_sq_binds *bv, bs_err *err)
{
    if (fts && !qq->nall && !qq->nany && (count || qq->sort_text_score)) {
        /* Text alone: FTS5 ranks and cuts to the page by itself (its rank
         * column is bm25), and only that page is joined to the tasks. */
        if (count) {
            bs_buf_puts(b, "SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH ?");
            return 0;
        }
        bs_buf_printf(
            b,
            "SELECT %s FROM (SELECT rowid AS r, rank AS k FROM tasks_fts WHERE tasks_fts "
            "MATCH ? ORDER BY rank LIMIT ? OFFSET ?) f JOIN custom_tasks t ON t.rowid = f.r "
            "ORDER BY f.k",
            q->select_cols[c]);
        return 0;
    }
    bs_buf_printf(b, "SELECT %s FROM \"%s\" t", count ? "count(*)" : q->select_cols[c],
                  bs_store_colls[c].name);
    if (fts) {
        bs_buf_puts(b, " JOIN tasks_fts ON tasks_fts.rowid = t.rowid");
        /* the MATCH goes first so its placeholder is number 1 */
        bs_buf_puts(b, " WHERE tasks_fts MATCH ?");
    }
    bs_buf b2;
    bs_buf_init(&b2);
    int rc = bs_sq_where(&b2, c, qq, bv, err);
    if (!rc && b2.len) {
        /* bs_sq_where starts with " WHERE "; after MATCH it must be AND */
        bs_buf_puts(b, fts ? " AND " : " WHERE ");
        bs_buf_puts(b, b2.data + 7);
    }
    bs_buf_free(&b2);
    if (rc || count) return rc;
    if (fts && qq->sort_text_score)
        bs_buf_puts(b, " ORDER BY bm25(tasks_fts)");
    else if (qq->sort) {
        if (!bs_store_field(c, qq->sort)) return bs_err_set(err, BS_EINTERNAL, "bad sort field");
        bs_buf_printf(b, " ORDER BY t.\"%s\" %s", qq->sort, qq->desc ? "DESC" : "ASC");
    } else
        bs_buf_puts(b, " ORDER BY t.rowid");
    bs_buf_puts(b, " LIMIT ? OFFSET ?");
    return 0;
}

static int run_find(bs_sq_conn *conn, bs_coll c, bs_sq *q, const bs_query *qq, json_t *out,
                    int64_t *total, bs_err *err)
{
    char *fts = NULL;
    if (qq->text) {
        fts = bs_sq_fts_query(qq->text);
        if (!fts) { /* no words: nothing matches, as with $text */
            if (total) *total = 0;
            return 0;
        }
    }
    int rc = 0;
    for (int pass = 0; pass < (total ? 2 : 1) && !rc; pass++) {
        bool count = pass == 1;
        bs_buf b;
        bs_buf_init(&b);
        bs_sq_binds bv = {.n = 0};
        rc = build_select(&b, q, c, qq, fts, count, &bv, err);
        if (!rc && b.oom) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        if (!rc) bs_sq_trace(q, b.data);
        sqlite3_stmt *st = rc ? NULL : bs_sq_prepare(conn, b.data, err);
        bs_buf_free(&b);
        if (!rc && !st) rc = err ? err->code : BS_ESTORE;
        if (rc) break;
        int k = 1;
        if (fts) sqlite3_bind_text(st, k++, fts, -1, SQLITE_TRANSIENT);
        int brc = bs_sq_bind_all(st, &bv, k);
        k += bv.n;
        if (!count) {
            sqlite3_bind_int64(st, k++, qq->limit > 0 ? qq->limit : -1);
            sqlite3_bind_int64(st, k++, qq->offset > 0 ? qq->offset : 0);
        }
        if (brc != SQLITE_OK) {
            rc = bs_sq_step_fail(st, brc, c, err);
            break;
        }
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            if (count) {
                *total = sqlite3_column_int64(st, 0);
                continue;
            }
            json_t *doc = bs_sq_row(st, c, 0);
            if (!doc || json_array_append_new(out, doc)) {
                rc = bs_err_set(err, BS_ENOMEM, "out of memory");
                break;
            }
        }
        if (!rc && s != SQLITE_DONE) rc = bs_sq_step_fail(st, s, c, err);
        sqlite3_reset(st);
    }
    free(fts);
    return rc;
}

static int sq_find(bs_store *s, bs_coll c, const bs_query *qq, json_t **out, int64_t *total,
                   bs_err *err)
{
    bs_sq *q = BS_SQ(s);
    json_t *arr = json_array();
    if (!arr) return bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_sq_conn *conn = bs_sq_reader(q);
    /* one read transaction: the page and its total come from one snapshot */
    int rc = total ? bs_sq_exec(conn, "BEGIN", err) : 0;
    if (!rc) rc = run_find(conn, c, q, qq, arr, total, err);
    if (total) bs_sq_exec(conn, rc ? "ROLLBACK" : "COMMIT", NULL);
    bs_sq_reader_put(q, conn);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int insert_docs(bs_sq_conn *w, bs_coll c, json_t *const *docs, size_t n, bool replace,
                       bs_err *err)
{
    const bs_coll_desc *d = &bs_store_colls[c];
    bs_buf b;
    bs_buf_init(&b);
    bs_buf_printf(&b, "INSERT INTO \"%s\" (", d->name);
    for (int f = 0; f < d->nfields; f++)
        bs_buf_printf(&b, "%s\"%s\"", f ? "," : "", d->fields[f].name);
    bs_buf_puts(&b, ") VALUES (");
    for (int f = 0; f < d->nfields; f++) bs_buf_puts(&b, f ? ",?" : "?");
    bs_buf_putc(&b, ')');
    if (replace) {
        /* an upsert (not REPLACE) so that update triggers keep FTS exact */
        bs_buf_puts(&b, " ON CONFLICT(\"_id\") DO UPDATE SET ");
        for (int f = 1; f < d->nfields; f++)
            bs_buf_printf(&b, "%s\"%s\"=excluded.\"%s\"", f > 1 ? "," : "", d->fields[f].name,
                          d->fields[f].name);
    }
    sqlite3_stmt *st = b.oom ? NULL : bs_sq_prepare(w, b.data, err);
    bs_buf_free(&b);
    if (!st) return err && err->code ? err->code : BS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        for (int f = 0; f < d->nfields; f++) {
            int rc = bs_sq_bind(st, f + 1, json_object_get(docs[i], d->fields[f].name),
                                d->fields[f].type);
            if (rc != SQLITE_OK) return bs_sq_step_fail(st, rc, c, err);
        }
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) return bs_sq_step_fail(st, rc, c, err);
    }
    sqlite3_reset(st);
    return 0;
}

static int sq_insert(bs_store *s, bs_coll c, json_t *const *docs, size_t n, bool replace,
                     bs_err *err)
{
    bs_sq_conn *w = bs_sq_write_begin(BS_SQ(s), err);
    if (!w) return err ? err->code : BS_ESTORE;
    return bs_sq_write_end(BS_SQ(s), w, insert_docs(w, c, docs, n, replace, err), err);
}

/* SET list for update: top-level replacements, plus sets and numeric
 * increments inside JSON sub-documents ("usage_stats.total_requests"),
 * folded into one json_set() per column because SQLite keeps only the last
 * assignment of a column. */
static int bind_push(bs_sq_binds *bv, const json_t *v, bs_ftype t, bs_err *err)
{
    if (bv->n >= 64) return bs_err_set(err, BS_ELIMIT, "update has too many fields");
    bv->val[bv->n] = v;
    bv->type[bv->n++] = t;
    return 0;
}

static bs_ftype scalar_type(const json_t *v)
{
    return json_is_integer(v)  ? BS_F_INT
           : json_is_real(v)   ? BS_F_NUM
           : json_is_string(v) ? BS_F_STR
                               : BS_F_JSON;
}

static int sub_assign(bs_buf *b, const char *col, size_t cl, const json_t *set, const json_t *inc,
                      bs_sq_binds *bv, bs_err *err)
{
    bs_buf_printf(b, "\"%.*s\" = json_set(coalesce(\"%.*s\", '{}')", (int)cl, col, (int)cl, col);
    const json_t *objs[2] = {set, inc};
    for (int w = 0; w < 2; w++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)objs[w], k, v)
        {
            if (strncmp(k, col, cl) || k[cl] != '.') continue;
            const char *sub = k + cl + 1;
            int rc;
            if (w == 1) {
                bs_buf_printf(b, ", '$.%s', coalesce(json_extract(\"%.*s\", '$.%s'), 0) + ?", sub,
                              (int)cl, col, sub);
                rc = bind_push(bv, v, json_is_integer(v) ? BS_F_INT : BS_F_NUM, err);
            } else {
                bs_ftype t = scalar_type(v);
                bs_buf_printf(b, t == BS_F_JSON ? ", '$.%s', json(?)" : ", '$.%s', ?", sub);
                rc = bind_push(bv, v, t, err);
            }
            if (rc) return rc;
        }
    }
    bs_buf_putc(b, ')');
    return 0;
}

static int build_set(bs_buf *b, bs_coll c, const json_t *set, const json_t *inc, bs_sq_binds *bv,
                     bs_err *err)
{
    int n = 0, rc;
    const char *cols[32];
    size_t lens[32];
    int ncols = 0;
    const json_t *objs[2] = {set, inc};
    for (int w = 0; w < 2; w++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)objs[w], k, v)
        {
            const char *dot = strchr(k, '.');
            size_t cl = dot ? (size_t)(dot - k) : strlen(k);
            char col[64];
            if (cl >= sizeof col) return bs_err_set(err, BS_EINTERNAL, "bad update field %s", k);
            memcpy(col, k, cl);
            col[cl] = 0;
            const bs_field *f = bs_store_field(c, col);
            if (!f || !strcmp(col, "_id"))
                return bs_err_set(err, BS_EINTERNAL, "cannot update %s", k);
            if (dot) {
                bool seen = false;
                for (int i = 0; i < ncols; i++)
                    if (lens[i] == cl && !strncmp(cols[i], k, cl)) seen = true;
                if (!seen && ncols < 32) cols[ncols] = k, lens[ncols++] = cl;
                continue;
            }
            if (w == 0) {
                bs_buf_printf(b, "%s\"%s\" = ?", n++ ? ", " : "", col);
                rc = bind_push(bv, v, f->type, err);
            } else {
                bs_buf_printf(b, "%s\"%s\" = coalesce(\"%s\", 0) + ?", n++ ? ", " : "", col, col);
                rc = bind_push(bv, v, json_is_integer(v) ? BS_F_INT : BS_F_NUM, err);
            }
            if (rc) return rc;
        }
    }
    for (int i = 0; i < ncols; i++) {
        if (n++) bs_buf_puts(b, ", ");
        if ((rc = sub_assign(b, cols[i], lens[i], set, inc, bv, err))) return rc;
    }
    return n ? 0 : bs_err_set(err, BS_EINTERNAL, "empty update");
}

/* Runs the UPDATE or DELETE built in b (freed here) on the writer
 * connection; *changes (optional) gets the number of rows it touched. */
static int run_write(bs_store *s, bs_coll c, bs_buf *b, bs_sq_binds *bv, int64_t *changes,
                     bs_err *err)
{
    if (b->oom) {
        bs_buf_free(b);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    bs_sq_conn *w = bs_sq_write_begin(BS_SQ(s), err);
    if (!w) {
        bs_buf_free(b);
        return err ? err->code : BS_ESTORE;
    }
    bs_sq_trace(BS_SQ(s), b->data);
    sqlite3_stmt *st = bs_sq_prepare(w, b->data, err);
    bs_buf_free(b);
    int rc;
    if (!st)
        rc = err ? err->code : BS_ESTORE;
    else if ((rc = bs_sq_bind_all(st, bv, 1)) != SQLITE_OK)
        rc = bs_sq_step_fail(st, rc, c, err);
    else if ((rc = sqlite3_step(st)) != SQLITE_DONE)
        rc = bs_sq_step_fail(st, rc, c, err);
    else {
        rc = 0;
        if (changes) *changes = sqlite3_changes64(w->db);
        sqlite3_reset(st);
    }
    return bs_sq_write_end(BS_SQ(s), w, rc, err);
}

static int sq_update(bs_store *s, bs_coll c, const bs_query *qq, const json_t *set,
                     const json_t *inc, int64_t *matched, bs_err *err)
{
    bs_buf b;
    bs_buf_init(&b);
    bs_sq_binds bv = {.n = 0};
    bs_buf_printf(&b, "UPDATE \"%s\" AS t SET ", bs_store_colls[c].name);
    int rc = build_set(&b, c, set, inc, &bv, err);
    if (!rc) rc = bs_sq_where(&b, c, qq, &bv, err);
    if (rc) {
        bs_buf_free(&b);
        return rc;
    }
    return run_write(s, c, &b, &bv, matched, err);
}

static int sq_remove(bs_store *s, bs_coll c, const bs_query *qq, int64_t *removed, bs_err *err)
{
    bs_buf b;
    bs_buf_init(&b);
    bs_sq_binds bv = {.n = 0};
    bs_buf_printf(&b, "DELETE FROM \"%s\" AS t", bs_store_colls[c].name);
    int rc = bs_sq_where(&b, c, qq, &bv, err);
    if (rc) {
        bs_buf_free(&b);
        return rc;
    }
    return run_write(s, c, &b, &bv, removed, err);
}

/* Runs a read query built by the caller: binds bv from 1 then the extra
 * integer, and calls row() for each row. */
int bs_sq_read_rows(bs_store *s, bs_coll c, const char *sql, const bs_sq_binds *bv, int64_t extra,
                    bs_sq_row_fn row, void *ud, bs_err *err)
{
    bs_sq *q = BS_SQ(s);
    bs_sq_conn *conn = bs_sq_reader(q);
    int rc = 0;
    bs_sq_trace(q, sql);
    sqlite3_stmt *st = bs_sq_prepare(conn, sql, err);
    if (!st)
        rc = err ? err->code : BS_ESTORE;
    else if ((rc = bs_sq_bind_all(st, bv, 1)) != SQLITE_OK)
        rc = bs_sq_step_fail(st, rc, c, err);
    else {
        if (extra) sqlite3_bind_int64(st, bv->n + 1, extra);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            if ((rc = row(st, ud))) break;
        if (!rc && r != SQLITE_DONE) rc = bs_sq_step_fail(st, r, c, err);
        sqlite3_reset(st);
    }
    bs_sq_reader_put(q, conn);
    return rc;
}

static int sq_ping(bs_store *s, bs_err *err)
{
    bs_sq *q = BS_SQ(s);
    bs_sq_conn *c = bs_sq_reader(q);
    int rc = bs_sq_exec(c, "SELECT count(*) FROM system_settings", err);
    bs_sq_reader_put(q, c);
    return rc;
}

static void sq_close(bs_store *s)
{
    bs_sq *q = BS_SQ(s);
    if (!q) return;
    for (int i = 0; i < q->nreaders; i++) bs_sq_conn_close(&q->readers[i]);
    bs_sq_conn_close(&q->writer);
    for (int i = 0; i < BS_NCOLL; i++) free(q->select_cols[i]);
    pthread_mutex_destroy(&q->wlock);
    pthread_mutex_destroy(&q->rlock);
    pthread_cond_destroy(&q->rcond);
    free(q->readers);
    free(q->rbusy);
    free(q->path);
    free(q);
    s->impl = NULL;
}

static const bs_engine sqlite_engine = {
    .name = "sqlite",
    .close = sq_close,
    .ping = sq_ping,
    .insert = sq_insert,
    .find = sq_find,
    .update = sq_update,
    .remove = sq_remove,
    .group_count = bs_sq_group_count,
    .sum = bs_sq_sum,
    .task_exec = bs_sq_task_exec,
    .session_push = bs_sq_session_push,
    .log_scan = bs_sq_log_scan,
    .backup = bs_sq_backup,
    .restore = bs_sq_restore,
};

int bs_store_sqlite_open(bs_store *s, const char *path, const bs_store_opts *opts, bs_err *err)
{
    bs_sq *q = calloc(1, sizeof *q);
    if (!q) return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->impl = q;
    s->eng = &sqlite_engine;
    pthread_mutex_init(&q->wlock, NULL);
    pthread_mutex_init(&q->rlock, NULL);
    pthread_cond_init(&q->rcond, NULL);
    q->busy_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    q->nreaders = opts && opts->readers > 0 ? opts->readers : 4;
    q->path = strdup(path);
    q->readers = calloc((size_t)q->nreaders, sizeof *q->readers);
    q->rbusy = calloc((size_t)q->nreaders, sizeof *q->rbusy);
    if (!q->path || !q->readers || !q->rbusy) return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (int i = 0; i < BS_NCOLL; i++) {
        bs_buf b;
        bs_buf_init(&b);
        for (int f = 0; f < bs_store_colls[i].nfields; f++)
            bs_buf_printf(&b, "%st.\"%s\"", f ? ", " : "", bs_store_colls[i].fields[f].name);
        if (b.oom) return bs_err_set(err, BS_ENOMEM, "out of memory");
        q->select_cols[i] = bs_buf_steal(&b, NULL);
    }
    int rc = bs_sq_conn_open(&q->writer, path, false, q->busy_ms, err);
    if (rc) return rc;
    bs_sq_conn *w = bs_sq_write_begin(q, err);
    if (!w) return err ? err->code : BS_ESTORE;
    if ((rc = bs_sq_write_end(q, w, bs_sq_schema(w, err), err))) return rc;
    for (int i = 0; i < q->nreaders; i++)
        if ((rc = bs_sq_conn_open(&q->readers[i], path, true, q->busy_ms, err))) return rc;
    return 0;
}
