/* Backup and restore of the SQLite engine through SQLite's online backup
 * API: a consistent snapshot while the server keeps writing, and a checked
 * restore into the live database under the writer lock. */
#include "store/sqlite_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int copy_db(sqlite3 *dst, sqlite3 *src, const char *what, bs_err *err)
{
    sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk) return bs_sq_fail(dst, sqlite3_extended_errcode(dst), what, err);
    /* one step: the whole copy reads a single snapshot of the source */
    int rc = sqlite3_backup_step(bk, -1);
    sqlite3_backup_finish(bk);
    if (rc != SQLITE_DONE) return bs_sq_fail(NULL, rc, what, err);
    return 0;
}

int bs_sq_backup(bs_store *s, const char *path, bs_err *err)
{
    bs_sq *q = BS_SQ(s);
    /* written beside the target and renamed: a failed backup never
     * destroys the previous one */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    sqlite3 *dst = NULL;
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int rc = bs_err_set(err, BS_EIO, "%s: cannot create backup: %s", tmp, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return rc;
    }
    bs_sq_conn *c = bs_sq_reader(q);
    int rc = copy_db(dst, c->db, path, err);
    bs_sq_reader_put(q, c);
    /* a backup is one self-contained file: no -wal beside it */
    if (!rc && sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = bs_sq_fail(dst, sqlite3_extended_errcode(dst), path, err);
    sqlite3_close(dst);
    if (!rc && rename(tmp, path))
        rc = bs_err_set(err, BS_EIO, "%s: cannot rename backup: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int bs_sq_restore(bs_store *s, const char *path, bs_err *err)
{
    bs_sq *q = BS_SQ(s);
    sqlite3 *src = NULL;
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = bs_err_set(err, BS_EIO, "%s: cannot open backup: %s", path, sqlite3_errmsg(src));
        sqlite3_close(src);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(src,
                                "SELECT (SELECT integrity_check FROM pragma_integrity_check) = 'ok'"
                                " AND (SELECT count(*) FROM sqlite_master WHERE name IN "
                                "('custom_tasks','api_keys','execution_logs')) = 3",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    int rc = 0;
    if (!ok) rc = bs_err_set(err, BS_EFORMAT, "%s: not an intact BERT Studio SQLite backup", path);
    if (!rc) {
        pthread_mutex_lock(&q->wlock);
        rc = copy_db(q->writer.db, src, path, err);
        if (!rc) rc = bs_sq_schema(&q->writer, err); /* a backup from an older version */
        pthread_mutex_unlock(&q->wlock);
    }
    sqlite3_close(src);
    return rc;
}
