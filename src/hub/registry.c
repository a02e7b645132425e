/* Loaded models by name: lazy background loading, reference counts that keep
 * a model alive while requests use it, and least-recently-used unloading to
 * stay within max_loaded_models. The loaded thing itself is opaque. */
#include "hub/registry.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/time.h"

typedef struct entry {
    struct entry *next;
    char name[256];
    char dir[PATH_MAX];
    bs_model_state state;
    void *handle;
    int refs;
    uint64_t last_used; /* registry tick of the last acquire: the LRU order */
    int64_t last_used_ms, load_ms;
    /* Loaded but not yet acquired: kept until this time so that the client
     * whose request started the load finds it on its retry (else two
     * clients over capacity evict each other's fresh model forever). */
    int64_t fresh_until_ms;
    bool pinned; /* loaded on request (POST /models/{name}/load): no LRU */
    bool unload_pending;
    /* The load option asked for (-1: the loader's default) and the one the
     * loaded handle was made with. reload_pending: another option was asked
     * while requests used the handle; it is loaded again once they end,
     * and acquirers wait as for a load meanwhile. */
    int option, option_used;
    bool reload_pending;
    int err_code;
    char err_msg[sizeof(((bs_err *)0)->msg)];
} entry;

struct bs_registry {
    bs_registry_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* load finished, loader exited */
    entry *list;
    uint64_t tick;
    int loaders;
    bool closing;
};

/* A handle to free after the lock is dropped. */
typedef struct victim {
    void *handle;
} victim;

typedef struct loader_arg {
    bs_registry *reg;
    entry *e;
    int option;
} loader_arg;

static int start_load(bs_registry *r, entry *e, const char *dir, bs_err *err);

const char *bs_model_state_name(bs_model_state s)
{
    switch (s) {
    case BS_MODEL_LOADING:
        return "loading";
    case BS_MODEL_LOADED:
        return "loaded";
    case BS_MODEL_FAILED:
        return "failed";
    default:
        return "not_loaded";
    }
}

int bs_registry_new(const bs_registry_opts *opts, bs_registry **out, bs_err *err)
{
    if (!opts || !opts->load || !opts->free)
        return bs_err_set(err, BS_EINVAL, "registry: load and free callbacks are required");
    bs_registry *r = calloc(1, sizeof *r);
    if (!r) return bs_err_set(err, BS_ENOMEM, "out of memory");
    r->o = *opts;
    if (r->o.retry_after_s <= 0) r->o.retry_after_s = 1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    return 0;
}

static entry *find(bs_registry *r, const char *name)
{
    for (entry *e = r->list; e; e = e->next)
        if (!strcmp(e->name, name)) return e;
    return NULL;
}

static void unlink_entry(bs_registry *r, entry *e)
{
    for (entry **p = &r->list; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            return;
        }
}

/* Takes e's handle into *v and forgets e (caller frees the handle unlocked). */
static void drop(bs_registry *r, entry *e, victim *v)
{
    v->handle = e->handle;
    unlink_entry(r, e);
    free(e);
}

/* Whether the LRU may unload e now: idle, not pinned, not waiting for
 * the client that asked for it. */
static bool evictable(const entry *e, int64_t now_ms)
{
    return e->state == BS_MODEL_LOADED && e->refs == 0 && !e->pinned && e->fresh_until_ms <= now_ms;
}

/* Idle loaded models over capacity, least recently used first, excluding
 * keep. Returns how many handles were put in v (at most cap_v). */
static size_t over_capacity(bs_registry *r, const entry *keep, size_t extra, victim *v,
                            size_t cap_v)
{
    size_t n = 0;
    if (!r->o.max_loaded) return 0;
    int64_t now = bs_time_now_ms();
    for (;;) {
        size_t loaded = extra;
        entry *lru = NULL;
        for (entry *e = r->list; e; e = e->next) {
            if (e->state != BS_MODEL_LOADED) continue;
            loaded++;
            if (e != keep && evictable(e, now) && (!lru || e->last_used < lru->last_used)) lru = e;
        }
        if (loaded <= r->o.max_loaded || !lru || n == cap_v) return n;
        drop(r, lru, &v[n++]);
    }
}

static void free_victims(bs_registry *r, victim *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].handle) r->o.free(v[i].handle, r->o.ud);
}

/* With the lock held, e loaded and idle: takes its handle into *v (the
 * caller frees it unlocked) and loads e again with e->option. A loader
 * thread that cannot start leaves e not loaded: the next acquire retries. */
static void reload(bs_registry *r, entry *e, victim *v)
{
    v->handle = e->handle;
    e->handle = NULL;
    e->reload_pending = false;
    e->state = BS_MODEL_NOT_LOADED;
    start_load(r, e, e->dir, NULL);
}

static void *loader(void *p)
{
    loader_arg *a = p;
    bs_registry *r = a->reg;
    entry *e = a->e;
    int option = a->option;
    free(a);
    bs_err err = {0};
    void *h = NULL;
    int64_t t0 = bs_time_mono_ns();
    struct stat before, after;
    int had = !stat(e->dir, &before);
    int rc = r->o.load(e->name, e->dir, &option, r->o.ud, &h, &err);
    /* A folder replaced or removed during the load (re-import, delete)
     * explains any failure: report it as such (BS_EIO, transient), not as
     * a broken model. */
    if (rc && had &&
        (stat(e->dir, &after) || after.st_ino != before.st_ino || after.st_dev != before.st_dev ||
         after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
         after.st_ctim.tv_nsec != before.st_ctim.tv_nsec)) {
        rc = BS_EIO;
        bs_err_set(&err, BS_EIO, "the model folder changed while it loaded");
    }
    victim v[16] = {{0}};
    size_t nv = 0;
    pthread_mutex_lock(&r->mu);
    if (!rc && !e->unload_pending) {
        /* Make room before the new model shows as loaded, so that whoever
         * waits on it sees the capacity already respected. */
        nv = over_capacity(r, e, 1, v, 16);
        pthread_mutex_unlock(&r->mu);
        free_victims(r, v, nv);
        memset(v, 0, sizeof v);
        nv = 0;
        pthread_mutex_lock(&r->mu);
    }
    e->load_ms = (bs_time_mono_ns() - t0) / 1000000;
    if (rc) {
        e->state = BS_MODEL_FAILED;
        e->err_code = rc;
        snprintf(e->err_msg, sizeof e->err_msg, "%s", err.msg[0] ? err.msg : bs_strerror(rc));
        if (e->unload_pending) drop(r, e, &v[nv++]);
    } else {
        e->state = BS_MODEL_LOADED;
        e->handle = h;
        e->option_used = option;
        /* Used at its load time: a model nobody has acquired yet must not
         * look older than every model in use. */
        e->last_used = ++r->tick;
        e->last_used_ms = bs_time_now_ms();
        e->fresh_until_ms = e->last_used_ms + 4000LL * r->o.retry_after_s;
        if (e->unload_pending && e->refs == 0)
            drop(r, e, &v[nv++]);
        else if (e->reload_pending && e->option >= 0 && e->option != option)
            reload(r, e, &v[nv++]); /* another option was asked while it loaded */
        else
            e->reload_pending = false;
    }
    r->loaders--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    free_victims(r, v, nv);
    return NULL;
}

/* With the lock held: starts loading e on a detached thread. */
static int start_load(bs_registry *r, entry *e, const char *dir, bs_err *err)
{
    if (r->closing) return bs_err_set(err, BS_EBUSY, "the registry is shutting down");
    if (dir != e->dir) snprintf(e->dir, sizeof e->dir, "%s", dir); /* reload: its own dir */
    loader_arg *a = malloc(sizeof *a);
    if (!a) return bs_err_set(err, BS_ENOMEM, "out of memory");
    a->reg = r;
    a->e = e;
    a->option = e->option;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    e->state = BS_MODEL_LOADING;
    e->unload_pending = false;
    r->loaders++;
    int prc = pthread_create(&t, &attr, loader, a);
    pthread_attr_destroy(&attr);
    if (prc) {
        r->loaders--;
        e->state = BS_MODEL_NOT_LOADED;
        free(a);
        return bs_err_set(err, BS_ENOMEM, "cannot start a loader thread for %s", e->name);
    }
    return 0;
}

static entry *find_or_add(bs_registry *r, const char *name, bs_err *err)
{
    entry *e = find(r, name);
    if (e) return e;
    if (strlen(name) >= sizeof e->name) {
        bs_err_set(err, BS_EINVAL, "model name too long");
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        bs_err_set(err, BS_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->option = e->option_used = -1;
    e->next = r->list;
    r->list = e;
    return e;
}

/* With the lock held: asks for name with option (-1: any). A loaded
 * model made with another option is loaded again: now when idle (its
 * handle goes to *v), else once its requests end. */
static void ask_option(bs_registry *r, entry *e, int option, victim *v)
{
    if (option < 0) return;
    e->option = option;
    if (e->state == BS_MODEL_LOADED && e->option_used != option && !e->unload_pending) {
        if (e->refs == 0)
            reload(r, e, v);
        else
            e->reload_pending = true;
    } else if (e->state == BS_MODEL_LOADED) {
        e->reload_pending = false; /* asked back for the option it has */
    } else if (e->state == BS_MODEL_LOADING) {
        e->reload_pending = true; /* checked when that load completes */
    }
}

/* With the lock held: drives name towards LOADED with option (-1: any).
 * acquire: take a reference. */
static int get(bs_registry *r, const char *name, const char *dir, int option, bool wait,
               bool acquire, void **handle, int *retry, victim *v, bs_err *err)
{
    entry *e = find_or_add(r, name, err);
    if (!e) return err ? err->code : BS_ENOMEM;
    if (e->state != BS_MODEL_FAILED) ask_option(r, e, option, v);
    for (;;) {
        switch (e->state) {
        case BS_MODEL_LOADED:
            if (e->reload_pending) break; /* wait as for a load */
            if (acquire) {
                e->refs++;
                *handle = e->handle;
            }
            /* Whoever waited for it, or acquires it, got it. */
            if (acquire || wait) e->fresh_until_ms = 0;
            e->last_used = ++r->tick;
            e->last_used_ms = bs_time_now_ms();
            return 0;
        case BS_MODEL_FAILED: {
            int code = e->err_code;
            bs_err_set(err, code, "loading %s failed: %s", name, e->err_msg);
            unlink_entry(r, e);
            free(e);
            return code;
        }
        case BS_MODEL_NOT_LOADED: {
            int rc = start_load(r, e, dir, err);
            if (rc) {
                unlink_entry(r, e);
                free(e);
                return rc;
            }
            break;
        }
        case BS_MODEL_LOADING:
            break;
        }
        if (!wait) {
            if (retry) *retry = r->o.retry_after_s;
            return bs_err_set(err, BS_EBUSY, "model %s is loading; retry in %d s", name,
                              r->o.retry_after_s);
        }
        pthread_cond_wait(&r->cv, &r->mu);
        /* Unloaded or evicted meanwhile: load it again. */
        if (!(e = find_or_add(r, name, err))) return err ? err->code : BS_ENOMEM;
    }
}

int bs_registry_acquire_opt(bs_registry *r, const char *name, const char *dir, int option,
                            bool wait, void **handle, int *retry_after_s, bs_err *err)
{
    victim v = {0};
    pthread_mutex_lock(&r->mu);
    int rc = get(r, name, dir, option, wait, true, handle, retry_after_s, &v, err);
    pthread_mutex_unlock(&r->mu);
    free_victims(r, &v, 1);
    return rc;
}

int bs_registry_acquire(bs_registry *r, const char *name, const char *dir, bool wait, void **handle,
                        int *retry_after_s, bs_err *err)
{
    return bs_registry_acquire_opt(r, name, dir, -1, wait, handle, retry_after_s, err);
}

int bs_registry_load_opt(bs_registry *r, const char *name, const char *dir, int option, bool wait,
                         bs_err *err)
{
    victim v = {0};
    pthread_mutex_lock(&r->mu);
    int rc = get(r, name, dir, option, wait, false, NULL, NULL, &v, err);
    pthread_mutex_unlock(&r->mu);
    free_victims(r, &v, 1);
    return rc;
}

int bs_registry_load(bs_registry *r, const char *name, const char *dir, bool wait, bs_err *err)
{
    return bs_registry_load_opt(r, name, dir, -1, wait, err);
}

int bs_registry_pin(bs_registry *r, const char *name, bool pinned)
{
    int rc = 0;
    victim v[16] = {{0}};
    size_t nv = 0;
    pthread_mutex_lock(&r->mu);
    entry *e = find(r, name);
    if (!e || e->state == BS_MODEL_NOT_LOADED || e->state == BS_MODEL_FAILED)
        rc = BS_ENOTFOUND;
    else if (e->pinned != pinned) {
        e->pinned = pinned;
        if (!pinned) nv = over_capacity(r, NULL, 0, v, 16);
    }
    pthread_mutex_unlock(&r->mu);
    free_victims(r, v, nv);
    return rc;
}

void bs_registry_release(bs_registry *r, const char *name)
{
    victim v[16] = {{0}};
    size_t nv = 0;
    pthread_mutex_lock(&r->mu);
    entry *e = find(r, name);
    if (e && e->refs > 0) {
        e->refs--;
        if (e->refs == 0 && e->unload_pending && e->state == BS_MODEL_LOADED)
            drop(r, e, &v[nv++]);
        else if (e->refs == 0 && e->reload_pending && e->state == BS_MODEL_LOADED)
            reload(r, e, &v[nv++]);
        else
            nv += over_capacity(r, NULL, 0, v + nv, 16 - nv);
    }
    pthread_mutex_unlock(&r->mu);
    free_victims(r, v, nv);
}

int bs_registry_unload(bs_registry *r, const char *name, bool *deferred, bs_err *err)
{
    victim v = {0};
    int rc = 0;
    if (deferred) *deferred = false;
    pthread_mutex_lock(&r->mu);
    entry *e = find(r, name);
    if (!e || e->state == BS_MODEL_NOT_LOADED) {
        rc = bs_err_set(err, BS_ENOTFOUND, "model %s is not loaded", name);
    } else if (e->state == BS_MODEL_FAILED) {
        unlink_entry(r, e);
        free(e);
    } else if (e->state == BS_MODEL_LOADED && e->refs == 0) {
        drop(r, e, &v);
    } else {
        e->unload_pending = true;
        if (deferred) *deferred = true;
    }
    pthread_mutex_unlock(&r->mu);
    free_victims(r, &v, 1);
    return rc;
}

void bs_registry_set_max_loaded(bs_registry *r, size_t max_loaded)
{
    victim v[64] = {{0}};
    pthread_mutex_lock(&r->mu);
    r->o.max_loaded = max_loaded;
    size_t nv = over_capacity(r, NULL, 0, v, 64);
    pthread_mutex_unlock(&r->mu);
    free_victims(r, v, nv);
}

bs_model_state bs_registry_state(bs_registry *r, const char *name, int *in_flight)
{
    pthread_mutex_lock(&r->mu);
    entry *e = find(r, name);
    bs_model_state s = e ? e->state : BS_MODEL_NOT_LOADED;
    if (s == BS_MODEL_LOADED && e->reload_pending) s = BS_MODEL_LOADING;
    if (in_flight) *in_flight = e ? e->refs : 0;
    pthread_mutex_unlock(&r->mu);
    return s;
}

int bs_registry_option(bs_registry *r, const char *name, bool *asked)
{
    pthread_mutex_lock(&r->mu);
    entry *e = find(r, name);
    int o = !e                                                  ? -1
            : e->state == BS_MODEL_LOADED && !e->reload_pending ? e->option_used
                                                                : e->option;
    if (asked) *asked = e && e->option >= 0;
    pthread_mutex_unlock(&r->mu);
    return o;
}

static int by_recent(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "tick"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "tick"));
    return x > y ? -1 : x < y;
}

json_t *bs_registry_list(bs_registry *r)
{
    json_t *items[512];
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (entry *e = r->list; e && n < 512; e = e->next) {
        bs_model_state st =
            e->state == BS_MODEL_LOADED && e->reload_pending ? BS_MODEL_LOADING : e->state;
        int option = st == BS_MODEL_LOADED ? e->option_used : e->option;
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I}", "model_name", e->name, "state",
                              bs_model_state_name(st), "option", option, "in_flight", e->refs,
                              "last_used_ms", (json_int_t)e->last_used_ms, "load_ms",
                              (json_int_t)e->load_ms, "tick", (json_int_t)e->last_used);
        if (!o) continue;
        if (e->state == BS_MODEL_FAILED) json_object_set_new(o, "error", json_string(e->err_msg));
        items[n++] = o;
    }
    pthread_mutex_unlock(&r->mu);
    qsort(items, n, sizeof *items, by_recent);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_object_del(items[i], "tick");
        json_array_append_new(arr, items[i]);
    }
    return arr;
}

void bs_registry_free(bs_registry *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->closing = true;
    while (r->loaders > 0) pthread_cond_wait(&r->cv, &r->mu);
    entry *e = r->list;
    r->list = NULL;
    pthread_mutex_unlock(&r->mu);
    while (e) {
        entry *next = e->next;
        if (e->state == BS_MODEL_LOADED && e->handle) r->o.free(e->handle, r->o.ud);
        free(e);
        e = next;
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
