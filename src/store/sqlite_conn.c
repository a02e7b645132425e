/* SQLite connections of the store: one writer (writes serialize anyway, and
 * BEGIN IMMEDIATE under a mutex avoids SQLITE_BUSY upgrades) and a pool of
 * readers that run in parallel thanks to WAL. Each connection caches its
 * prepared statements by SQL text. */
#include "store/sqlite_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The database holds key hashes, sessions and logs: owner-only, as is
 * store.key. Created 0600 before SQLite opens it (SQLite gives the -wal
 * and -shm files the database's mode); files left 0644 by older versions
 * are tightened. */
static void owner_only(const char *path)
{
    if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5)) return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[4096];
    struct stat st;
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffix[i]) >= sizeof p) return;
        if (!lstat(p, &st) && S_ISREG(st.st_mode) && (st.st_mode & 077))
            chmod(p, st.st_mode & 0700);
    }
}

int bs_sq_fail(sqlite3 *db, int rc, const char *what, bs_err *err)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int prim = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        /* "UNIQUE constraint failed: api_keys.api_key, ..." -> name the fields */
        const char *p = strstr(msg, "failed: ");
        return bs_err_set(err, BS_ECONFLICT, "%s: duplicate value for unique %s", what,
                          p ? p + 8 : "key");
    }
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return bs_err_set(err, BS_EBUSY, "%s: database is locked (%s)", what, msg);
    if (prim == SQLITE_NOMEM) return bs_err_set(err, BS_ENOMEM, "%s: out of memory", what);
    if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB)
        return bs_err_set(err, BS_EFORMAT, "%s: database file is damaged (%s)", what, msg);
    return bs_err_set(err, BS_ESTORE, "%s: sqlite: %s", what, msg);
}

int bs_sq_exec(bs_sq_conn *c, const char *sql, bs_err *err)
{
    char *emsg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &emsg);
    if (rc != SQLITE_OK) {
        int r = bs_sq_fail(c->db, sqlite3_extended_errcode(c->db), "sqlite", err);
        sqlite3_free(emsg);
        return r;
    }
    return 0;
}

int bs_sq_conn_open(bs_sq_conn *c, const char *path, bool reader, int busy_ms, bs_err *err)
{
    memset(c, 0, sizeof *c);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (!reader) owner_only(path);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        bs_err_set(err, BS_ESTORE, "%s: cannot open database: %s", path,
                   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return err ? err->code : BS_ESTORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, busy_ms);
    /* WAL: readers never block the writer nor each other. synchronous=NORMAL
     * keeps every commit across a process crash; only a power loss may drop
     * the last commits (documented in docs/store.md). */
    /* Caches sized for a million logs: index pages stay in memory instead of
     * costing a read() each. Readers map the file; the writer does not (it
     * would remap at every growth of the file). */
    rc = bs_sq_exec(
        c,
        reader ? "PRAGMA query_only=1; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;"
                 " PRAGMA mmap_size=268435456; PRAGMA temp_store=MEMORY;"
               : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
        err);
    if (rc) {
        bs_err_prefix(err, "%s", path);
        bs_sq_conn_close(c);
    }
    return rc;
}

void bs_sq_conn_close(bs_sq_conn *c)
{
    if (!c->db) return;
    for (int i = 0; i < BS_SQ_CACHE; i++) {
        sqlite3_finalize(c->st[i]);
        free(c->sql[i]);
    }
    sqlite3_close(c->db);
    memset(c, 0, sizeof *c);
}

sqlite3_stmt *bs_sq_prepare(bs_sq_conn *c, const char *sql, bs_err *err)
{
    int victim = 0;
    for (int i = 0; i < BS_SQ_CACHE; i++) {
        if (c->sql[i] && !strcmp(c->sql[i], sql)) {
            c->used[i] = ++c->tick;
            sqlite3_reset(c->st[i]);
            sqlite3_clear_bindings(c->st[i]);
            return c->st[i];
        }
        if (c->used[i] < c->used[victim]) victim = i;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        bs_sq_fail(c->db, sqlite3_extended_errcode(c->db), "sqlite prepare", err);
        return NULL;
    }
    char *copy = strdup(sql);
    if (!copy) {
        sqlite3_finalize(st);
        bs_err_set(err, BS_ENOMEM, "sqlite: out of memory");
        return NULL;
    }
    sqlite3_finalize(c->st[victim]);
    free(c->sql[victim]);
    c->st[victim] = st;
    c->sql[victim] = copy;
    c->used[victim] = ++c->tick;
    return st;
}

bs_sq_conn *bs_sq_reader(bs_sq *q)
{
    pthread_mutex_lock(&q->rlock);
    for (;;) {
        for (int i = 0; i < q->nreaders; i++)
            if (!q->rbusy[i]) {
                q->rbusy[i] = true;
                pthread_mutex_unlock(&q->rlock);
                return &q->readers[i];
            }
        pthread_cond_wait(&q->rcond, &q->rlock);
    }
}

void bs_sq_reader_put(bs_sq *q, bs_sq_conn *c)
{
    pthread_mutex_lock(&q->rlock);
    q->rbusy[c - q->readers] = false;
    pthread_cond_signal(&q->rcond);
    pthread_mutex_unlock(&q->rlock);
}

bs_sq_conn *bs_sq_write_begin(bs_sq *q, bs_err *err)
{
    pthread_mutex_lock(&q->wlock);
    if (bs_sq_exec(&q->writer, "BEGIN IMMEDIATE", err)) {
        pthread_mutex_unlock(&q->wlock);
        return NULL;
    }
    return &q->writer;
}

int bs_sq_write_end(bs_sq *q, bs_sq_conn *c, int rc, bs_err *err)
{
    if (rc == 0) {
        rc = bs_sq_exec(c, "COMMIT", err);
        if (rc) bs_sq_exec(c, "ROLLBACK", NULL);
    } else {
        bs_sq_exec(c, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&q->wlock);
    return rc;
}
