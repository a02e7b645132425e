/* The store's front door: opening by URI, the clock, and the helpers every
 * collection file shares. The rules live in the collection files; the
 * engines (sqlite.c, mongo.c) only translate. */
#include "store/internal.h"
#include "util/time.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

static int64_t wall_clock(void *ud)
{
    (void)ud;
    return bs_time_now_ms();
}

void bs_query_add(bs_query *q, const char *field, bs_qop op, const json_t *val)
{
    if (q->nall < BS_Q_MAX) q->all[q->nall++] = (bs_qcond){field, op, val};
}

void bs_query_add_any(bs_query *q, const char *field, bs_qop op, const json_t *val)
{
    if (q->nany < BS_Q_MAX) q->any[q->nany++] = (bs_qcond){field, op, val};
}

int bs_store_open(const char *uri, const bs_store_opts *opts, bs_store **out, bs_err *err)
{
    *out = NULL;
    if (!uri || !*uri) return bs_err_set(err, BS_EINVAL, "store URI is empty");
    bs_store *s = calloc(1, sizeof *s);
    if (!s) return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->clock = opts && opts->clock ? opts->clock : wall_clock;
    s->clock_ud = opts ? opts->clock_ud : NULL;
    bool mongo = !strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14);
    const char *path = uri;
    if (!strncmp(uri, "sqlite://", 9))
        path = uri + 9;
    else if (!mongo && strstr(uri, "://")) {
        free(s);
        return bs_err_set(err, BS_EINVAL, "store URI '%s': unknown scheme", uri);
    }
    if (!mongo && !*path) {
        free(s);
        return bs_err_set(err, BS_EINVAL, "store URI '%s' names no database file", uri);
    }
    /* the secret lives beside the SQLite file unless told otherwise */
    char dir[4096];
    if (opts && opts->data_dir)
        snprintf(dir, sizeof dir, "%s", opts->data_dir);
    else if (mongo)
        snprintf(dir, sizeof dir, "./data");
    else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", path);
        snprintf(dir, sizeof dir, "%s", dirname(tmp));
    }
    int rc = bs_store_secret_load(dir, s->secret, err);
    if (!rc)
        rc = mongo ? bs_store_mongo_open(s, uri, opts, err)
                   : bs_store_sqlite_open(s, path, opts, err);
    if (rc) {
        bs_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bs_store_close(bs_store *s)
{
    if (!s) return;
    if (s->eng && s->impl) s->eng->close(s);
    free(s);
}

const char *bs_store_engine_name(const bs_store *s)
{
    return s->eng->name;
}

int bs_store_ping(bs_store *s, double *latency_ms, bs_err *err)
{
    int64_t t0 = bs_time_mono_ns();
    int rc = s->eng->ping(s, err);
    if (latency_ms) *latency_ms = (double)(bs_time_mono_ns() - t0) / 1e6;
    return rc;
}

void bs_store_set_clock(bs_store *s, bs_store_clock_fn clock, void *ud)
{
    s->clock = clock ? clock : wall_clock;
    s->clock_ud = clock ? ud : NULL;
}

int64_t bs_store_now(const bs_store *s)
{
    return s->clock(s->clock_ud);
}

json_t *bs_store_date_json(int64_t ms)
{
    char iso[32];
    return json_string(bs_time_iso8601(ms, iso, sizeof iso));
}

json_t *bs_store_now_json(const bs_store *s)
{
    return bs_store_date_json(bs_store_now(s));
}

int bs_store_count(bs_store *s, const char *collection, int64_t *n, bs_err *err)
{
    int c = collection ? bs_store_coll_by_name(collection) : -1;
    if (c < 0)
        return bs_err_set(err, BS_EINVAL, "unknown collection '%s'", collection ? collection : "");
    bs_query q = {.limit = 1};
    json_t *arr = NULL;
    int rc = s->eng->find(s, (bs_coll)c, &q, &arr, n, err);
    json_decref(arr);
    return rc;
}

int bs_store_check_id(const char *what, const char *id, bs_err *err)
{
    if (!bs_store_oid_valid(id))
        return bs_err_set(err, BS_EINVAL, "%s: '%.40s' is not a 24-hex id", what,
                          id ? id : "(null)");
    return 0;
}

int bs_store_find_one(bs_store *s, bs_coll c, const char *field, const char *value, json_t **out,
                      bs_err *err)
{
    json_t *v = json_string(value);
    if (!v) return bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_query q = {.limit = 1};
    bs_query_add(&q, field, BS_Q_EQ, v);
    json_t *arr = NULL;
    int rc = s->eng->find(s, c, &q, &arr, NULL, err);
    json_decref(v);
    if (rc) return rc;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return bs_err_set(err, BS_ENOTFOUND, "%s: no document with %s %s", bs_store_colls[c].name,
                          field, value);
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

int bs_store_sweep_older(bs_store *s, bs_coll c, const char *field, const char *setting,
                         int64_t dflt_days, int64_t days, int64_t *removed, bs_err *err)
{
    if (days <= 0) days = bs_store_settings_int(s, setting, dflt_days);
    if (days <= 0) days = dflt_days;
    json_t *cut = json_integer(bs_store_now(s) - days * 86400000);
    bs_query q = {0};
    bs_query_add(&q, field, BS_Q_LT, cut);
    int64_t n = 0;
    int rc = s->eng->remove(s, c, &q, &n, err);
    json_decref(cut);
    if (removed) *removed = n;
    return rc;
}
