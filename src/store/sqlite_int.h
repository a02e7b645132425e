/* Private to the SQLite engine: the connection pool (one writer, N readers),
 * the per-connection statement cache and the SQL builders. */
#ifndef BS_STORE_SQLITE_INT_H
#define BS_STORE_SQLITE_INT_H

#include "store/internal.h"
#include "util/buf.h"

#include <pthread.h>
#include <sqlite3.h>

#define BS_SQ_CACHE 48

typedef struct bs_sq_conn {
    sqlite3 *db;
    char *sql[BS_SQ_CACHE];
    sqlite3_stmt *st[BS_SQ_CACHE];
    uint64_t used[BS_SQ_CACHE];
    uint64_t tick;
} bs_sq_conn;

typedef struct bs_sq {
    char *path;
    int busy_ms;
    bs_sq_conn writer;
    pthread_mutex_t wlock;
    bs_sq_conn *readers;
    bool *rbusy;
    int nreaders;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    char *select_cols[BS_NCOLL]; /* t."_id", t."name", ... */
    void (*trace)(void *ud, const char *sql);
    void *trace_ud;
} bs_sq;

/* Tests: fn sees the SQL text of every query the engine prepares (to check
 * its plan with EXPLAIN QUERY PLAN). NULL turns it off. */
void bs_store_sqlite_trace(bs_store *s, void (*fn)(void *ud, const char *sql), void *ud);

/* Opens one connection with the store's pragmas (WAL, busy timeout). */
int bs_sq_conn_open(bs_sq_conn *c, const char *path, bool reader, int busy_ms, bs_err *err);
void bs_sq_conn_close(bs_sq_conn *c);
/* A cached prepared statement, reset and unbound; NULL with err set. */
sqlite3_stmt *bs_sq_prepare(bs_sq_conn *c, const char *sql, bs_err *err);
/* Runs SQL without results (DDL, pragmas). */
int bs_sq_exec(bs_sq_conn *c, const char *sql, bs_err *err);

/* Borrow a reader (blocks while all are in use) and give it back. */
bs_sq_conn *bs_sq_reader(bs_sq *q);
void bs_sq_reader_put(bs_sq *q, bs_sq_conn *c);
/* Takes the writer and opens BEGIN IMMEDIATE; on failure the writer is
 * released and NULL returned. */
bs_sq_conn *bs_sq_write_begin(bs_sq *q, bs_err *err);
/* Commits when rc == 0, else rolls back; releases the writer. Returns rc, or
 * the commit's error. */
int bs_sq_write_end(bs_sq *q, bs_sq_conn *c, int rc, bs_err *err);

/* Maps an SQLite failure to a BS_E* code with a sentence; unique violations
 * become BS_ECONFLICT naming the field. */
int bs_sq_fail(sqlite3 *db, int rc, const char *what, bs_err *err);

/* Creates tables, FTS, triggers and indexes (idempotent). */
int bs_sq_schema(bs_sq_conn *c, bs_err *err);

/* SQL building (sqlite_sql.c). */
typedef struct bs_sq_binds {
    const json_t *val[64];
    bs_ftype type[64];
    int n;
} bs_sq_binds;
/* Appends " WHERE ..." for q (may be empty) collecting the values to bind. */
int bs_sq_where(bs_buf *b, bs_coll c, const bs_query *q, bs_sq_binds *bv, bs_err *err);
/* Binds one JSON value as its field type at position i (1-based). */
int bs_sq_bind(sqlite3_stmt *st, int i, const json_t *v, bs_ftype t);
int bs_sq_bind_all(sqlite3_stmt *st, const bs_sq_binds *bv, int first);
/* Builds the document of the current row, whose columns are the
 * collection's fields in order starting at column `first`. */
json_t *bs_sq_row(sqlite3_stmt *st, bs_coll c, int first);
/* The FTS5 query for free text (words quoted and OR-ed); NULL when the
 * text has no words. Caller frees. */
char *bs_sq_fts_query(const char *text);

#define BS_SQ(s) ((bs_sq *)(s)->impl)

/* Reports the SQL text to the test hook, if any. */
void bs_sq_trace(bs_sq *q, const char *sql);
/* Maps a failed step/bind of st, resets st. */
int bs_sq_step_fail(sqlite3_stmt *st, int rc, bs_coll c, bs_err *err);
/* Runs a read query on a pooled reader: binds bv from 1, then extra (when
 * not 0), and calls row() for each row until it returns non-zero. */
typedef int (*bs_sq_row_fn)(sqlite3_stmt *st, void *ud);
int bs_sq_read_rows(bs_store *s, bs_coll c, const char *sql, const bs_sq_binds *bv, int64_t extra,
                    bs_sq_row_fn row, void *ud, bs_err *err);

/* Engine operations in sqlite_ops.c and sqlite_backup.c (see bs_engine). */
int bs_sq_group_count(bs_store *s, bs_coll c, const bs_query *q, const char *field, int64_t limit,
                      json_t **out, bs_err *err);
int bs_sq_sum(bs_store *s, bs_coll c, const bs_query *q, const char *field, int64_t *out,
              bs_err *err);
int bs_sq_task_exec(bs_store *s, const char *id, double secs, bool ok, bs_err *err);
int bs_sq_session_push(bs_store *s, const char *id, const json_t *entry, int cap, bs_err *err);
int bs_sq_log_scan(bs_store *s, const bs_query *q, bs_log_group g, bs_scan_fn cb, void *ud,
                   bs_err *err);
int bs_sq_backup(bs_store *s, const char *path, bs_err *err);
int bs_sq_restore(bs_store *s, const char *path, bs_err *err);

#endif
