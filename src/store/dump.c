/* Portable JSON lines: export/import of every collection (also the way to
 * migrate between SQLite and MongoDB), and the generic whole-store dump used
 * as MongoDB's backup format. Documents are written as stored (hashes, not
 * secrets), dates in ISO-8601, so both engines read them back identically. */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Calls fn for every document of c in _id order, a page at a time. */
typedef int (*doc_fn)(void *ud, bs_coll c, json_t *doc);
static int each_doc(bs_store *s, bs_coll c, doc_fn fn, void *ud, bs_err *err)
{
    json_t *last = NULL;
    int rc = 0;
    for (;;) {
        bs_query q = {.sort = "_id", .limit = 1000};
        if (last) bs_query_add(&q, "_id", BS_Q_GT, last);
        json_t *page = NULL;
        rc = s->eng->find(s, c, &q, &page, NULL, err);
        if (rc) break;
        size_t i, n = json_array_size(page);
        json_t *d;
        json_array_foreach(page, i, d)
        {
            if ((rc = fn(ud, c, d))) break;
        }
        json_decref(last);
        last = n ? json_incref(json_object_get(json_array_get(page, n - 1), "_id")) : NULL;
        json_decref(page);
        if (rc || n < 1000) break;
    }
    json_decref(last);
    return rc;
}

typedef struct writer {
    FILE *f;
    bool tagged; /* {"collection": ..., "doc": ...} lines (backup) */
    int64_t n;
} writer;

static int write_doc(void *ud, bs_coll c, json_t *doc)
{
    writer *w = ud;
    json_t *line = w->tagged
                       ? json_pack("{s:s,s:O}", "collection", bs_store_colls[c].name, "doc", doc)
                       : json_incref(doc);
    int rc = line && json_dumpf(line, w->f, JSON_COMPACT | JSON_SORT_KEYS) == 0 &&
                     fputc('\n', w->f) != EOF
                 ? 0
                 : BS_EIO;
    json_decref(line);
    w->n++;
    return rc;
}

int bs_store_export(bs_store *s, const char *dir, json_t **counts, bs_err *err)
{
    if (mkdir(dir, 0755) && errno != EEXIST)
        return bs_err_set(err, BS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    json_t *cnt = json_object();
    int rc = 0;
    for (int c = 0; c < BS_NCOLL && !rc; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, bs_store_colls[c].name);
        writer w = {.f = fopen(path, "w")};
        if (!w.f) {
            rc = bs_err_set(err, BS_EIO, "%s: cannot create: %s", path, strerror(errno));
            break;
        }
        rc = each_doc(s, (bs_coll)c, write_doc, &w, err);
        if (fclose(w.f) && !rc) rc = BS_EIO;
        if (rc == BS_EIO) bs_err_set(err, rc, "%s: write failed", path);
        json_object_set_new(cnt, bs_store_colls[c].name, json_integer(w.n));
    }
    if (!rc && counts) *counts = json_incref(cnt);
    json_decref(cnt);
    return rc;
}

/* Reads JSON lines into the store in batches; tagged lines carry their
 * collection, untagged ones belong to c. */
static int load_lines(bs_store *s, FILE *f, const char *path, bool tagged, bs_coll c, json_t *cnt,
                      bs_err *err)
{
    enum { BATCH = 500 };
    json_t *batch[BATCH];
    size_t nb = 0;
    bs_coll bc = c;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len <= 1) continue;
        json_error_t je;
        json_t *v = json_loadb(line, (size_t)len, 0, &je);
        json_t *doc = v;
        bs_coll dc = c;
        if (v && tagged) {
            const char *cn = json_string_value(json_object_get(v, "collection"));
            int k = cn ? bs_store_coll_by_name(cn) : -1;
            doc = json_object_get(v, "doc");
            dc = (bs_coll)k;
            if (k < 0 || !json_is_object(doc)) doc = NULL;
        }
        if (!doc) {
            rc = bs_err_set(err, BS_EFORMAT, "%s:%ld: not a document line%s%s", path, lineno,
                            v ? "" : ": ", v ? "" : je.text);
        } else {
            json_incref(doc);
            bs_store_strip_nulls(doc);
            if ((rc = bs_store_validate(dc, doc, err)) ||
                (rc =
                     bs_store_check_id("_id", json_string_value(json_object_get(doc, "_id")), err)))
                bs_err_prefix(err, "%s:%ld", path, lineno);
        }
        json_decref(v);
        if (!rc && nb && dc != bc) { /* flush on collection change */
            rc = s->eng->insert(s, bc, batch, nb, true, err);
            while (nb) json_decref(batch[--nb]);
        }
        if (rc) {
            if (doc) json_decref(doc);
            break;
        }
        bc = dc;
        batch[nb++] = doc;
        const char *name = bs_store_colls[dc].name;
        json_object_set_new(cnt, name,
                            json_integer(json_integer_value(json_object_get(cnt, name)) + 1));
        if (nb == BATCH) {
            rc = s->eng->insert(s, bc, batch, nb, true, err);
            while (nb) json_decref(batch[--nb]);
        }
    }
    if (!rc && nb) rc = s->eng->insert(s, bc, batch, nb, true, err);
    while (nb) json_decref(batch[--nb]);
    free(line);
    return rc;
}

int bs_store_import(bs_store *s, const char *dir, json_t **counts, bs_err *err)
{
    /* absent collection files are fine, an absent directory is a typo */
    struct stat st;
    if (stat(dir, &st))
        return bs_err_set(err, errno == ENOENT ? BS_ENOTFOUND : BS_EIO, "%s: %s", dir,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode)) return bs_err_set(err, BS_EINVAL, "%s: not a directory", dir);
    json_t *cnt = json_object();
    int rc = 0;
    for (int c = 0; c < BS_NCOLL && !rc; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, bs_store_colls[c].name);
        FILE *f = fopen(path, "r");
        if (!f) {
            if (errno == ENOENT) continue;
            rc = bs_err_set(err, BS_EIO, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        json_object_set_new(cnt, bs_store_colls[c].name, json_integer(0));
        rc = load_lines(s, f, path, false, (bs_coll)c, cnt, err);
        fclose(f);
    }
    if (!rc && counts) *counts = json_incref(cnt);
    json_decref(cnt);
    return rc;
}

int bs_store_dump_file(bs_store *s, const char *path, bs_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    writer w = {.f = fopen(tmp, "w"), .tagged = true};
    if (!w.f) return bs_err_set(err, BS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = 0;
    for (int c = 0; c < BS_NCOLL && !rc; c++) rc = each_doc(s, (bs_coll)c, write_doc, &w, err);
    if (fclose(w.f) && !rc) rc = BS_EIO;
    if (rc == BS_EIO) bs_err_set(err, rc, "%s: write failed", tmp);
    if (!rc && rename(tmp, path))
        rc = bs_err_set(err, BS_EIO, "%s: cannot rename: %s", path, strerror(errno));
    if (rc) remove(tmp);
    return rc;
}

int bs_store_load_file(bs_store *s, const char *path, bs_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return bs_err_set(err, BS_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = 0;
    for (int c = 0; c < BS_NCOLL && !rc; c++) {
        bs_query all = {0};
        rc = s->eng->remove(s, (bs_coll)c, &all, NULL, err);
    }
    json_t *cnt = json_object();
    if (!rc) rc = load_lines(s, f, path, true, BS_COLL_TASKS, cnt, err);
    json_decref(cnt);
    fclose(f);
    return rc;
}

int bs_store_backup(bs_store *s, const char *path, bs_err *err)
{
    if (!path || !*path) return bs_err_set(err, BS_EINVAL, "backup: no file name");
    return s->eng->backup(s, path, err);
}

int bs_store_restore(bs_store *s, const char *path, bs_err *err)
{
    if (!path || !*path) return bs_err_set(err, BS_EINVAL, "restore: no file name");
    return s->eng->restore(s, path, err);
}
