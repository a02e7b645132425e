/* The registry of loaded models: lazy background loading (BS_EBUSY with a
 * retry hint), failed loads reported once, LRU unloading within
 * max_loaded, and reference counts that keep in-use models alive. The
 * loaded "model" is a small struct from a fake loader the test controls. */
#include "testutil.h"

#include "hub/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate_closed; /* loads block while set */
    int loads, frees;
    char freed[16][32];
    const char *fail_name; /* this name fails to load */
    int default_option;    /* the option of loads that ask for none */
} fake;

typedef struct handle {
    char name[32];
    int option;
} handle;

static int fake_load(const char *name, const char *dir, int *option, void *ud, void **out,
                     bs_err *err)
{
    fake *f = ud;
    if (*option < 0) *option = f->default_option;
    pthread_mutex_lock(&f->mu);
    while (f->gate_closed) pthread_cond_wait(&f->cv, &f->mu);
    f->loads++;
    int fail = f->fail_name && !strcmp(f->fail_name, name);
    pthread_mutex_unlock(&f->mu);
    if (fail) return bs_err_set(err, BS_EFORMAT, "%s/config.json: bad shape", dir);
    handle *h = calloc(1, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    h->option = *option;
    *out = h;
    return 0;
}

static void fake_free(void *p, void *ud)
{
    fake *f = ud;
    handle *h = p;
    pthread_mutex_lock(&f->mu);
    if (f->frees < 16) snprintf(f->freed[f->frees], 32, "%s", h->name);
    f->frees++;
    pthread_mutex_unlock(&f->mu);
    free(h);
}

static bs_registry *make(fake *f, size_t max)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    bs_registry_opts o = {
        .max_loaded = max, .load = fake_load, .free = fake_free, .ud = f, .retry_after_s = 2};
    bs_registry *r = NULL;
    assert_int_equal(bs_registry_new(&o, &r, NULL), 0);
    return r;
}

static void done(bs_registry *r, fake *f)
{
    bs_registry_free(r);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static void gate(fake *f, int closed)
{
    pthread_mutex_lock(&f->mu);
    f->gate_closed = closed;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void test_lazy_load(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 0);
    gate(&f, 1);
    void *h = NULL;
    int retry = 0;
    bs_err e = {0};
    /* First request: loading starts in the background; the caller is told
     * to come back. */
    assert_int_equal(bs_registry_acquire(r, "m", "/models/m", false, &h, &retry, &e), BS_EBUSY);
    assert_int_equal(retry, 2);
    assert_non_null(strstr(e.msg, "loading"));
    int inflight = -1;
    assert_int_equal(bs_registry_state(r, "m", &inflight), BS_MODEL_LOADING);
    assert_int_equal(bs_registry_acquire(r, "m", "/models/m", false, &h, &retry, NULL), BS_EBUSY);
    gate(&f, 0);
    /* Waiting for it (as the CLI does) gets the handle; one load only. */
    assert_int_equal(bs_registry_acquire(r, "m", "/models/m", true, &h, NULL, NULL), 0);
    assert_string_equal(((handle *)h)->name, "m");
    assert_int_equal(f.loads, 1);
    assert_int_equal(bs_registry_state(r, "m", &inflight), BS_MODEL_LOADED);
    assert_int_equal(inflight, 1);
    /* Once loaded, acquire answers at once without waiting. */
    void *h2 = NULL;
    assert_int_equal(bs_registry_acquire(r, "m", "/models/m", false, &h2, NULL, NULL), 0);
    assert_ptr_equal(h, h2);
    bs_registry_state(r, "m", &inflight);
    assert_int_equal(inflight, 2);
    bs_registry_release(r, "m");
    bs_registry_release(r, "m");
    bs_registry_state(r, "m", &inflight);
    assert_int_equal(inflight, 0);
    json_t *list = bs_registry_list(r);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                        "loaded");
    json_decref(list);
    done(r, &f);
    assert_int_equal(f.frees, 1);
}

static void test_failed_load(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 0);
    f.fail_name = "bad";
    void *h = NULL;
    bs_err e = {0};
    assert_int_equal(bs_registry_acquire(r, "bad", "/models/bad", true, &h, NULL, &e), BS_EFORMAT);
    assert_non_null(strstr(e.msg, "/models/bad/config.json: bad shape"));
    /* The failure was reported and cleared: the next request tries again. */
    assert_int_equal(bs_registry_state(r, "bad", NULL), BS_MODEL_NOT_LOADED);
    assert_int_equal(bs_registry_acquire(r, "bad", "/models/bad", true, &h, NULL, NULL),
                     BS_EFORMAT);
    assert_int_equal(f.loads, 2);
    /* Background failure: reported to the next acquire. */
    assert_int_equal(bs_registry_load(r, "bad", "/models/bad", false, NULL), BS_EBUSY);
    assert_int_equal(bs_registry_load(r, "ok", "/models/ok", true, NULL), 0);
    /* The failed load may still be running: wait on it through the API. */
    int rc = bs_registry_acquire(r, "bad", "/models/bad", true, &h, NULL, &e);
    assert_int_equal(rc, BS_EFORMAT);
    assert_int_equal(f.frees, 0);
    done(r, &f);
    assert_int_equal(f.frees, 1); /* "ok" */
}

static void test_lru(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 2);
    assert_int_equal(bs_registry_load(r, "a", "/a", true, NULL), 0);
    assert_int_equal(bs_registry_load(r, "b", "/b", true, NULL), 0);
    /* Use a: b becomes the least recently used. */
    void *h;
    assert_int_equal(bs_registry_acquire(r, "a", "/a", true, &h, NULL, NULL), 0);
    bs_registry_release(r, "a");
    assert_int_equal(bs_registry_load(r, "c", "/c", true, NULL), 0);
    assert_int_equal(f.frees, 1);
    assert_string_equal(f.freed[0], "b");
    assert_int_equal(bs_registry_state(r, "a", NULL), BS_MODEL_LOADED);
    assert_int_equal(bs_registry_state(r, "b", NULL), BS_MODEL_NOT_LOADED);
    assert_int_equal(bs_registry_state(r, "c", NULL), BS_MODEL_LOADED);
    /* Lowering the capacity unloads the LRU at once. */
    bs_registry_set_max_loaded(r, 1);
    assert_int_equal(f.frees, 2);
    assert_string_equal(f.freed[1], "a");
    done(r, &f);
    assert_int_equal(f.frees, 3);
}

static void test_refcount(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 1);
    void *ha, *hb;
    assert_int_equal(bs_registry_acquire(r, "a", "/a", true, &ha, NULL, NULL), 0);
    /* a is in use: loading b goes over capacity rather than free a. */
    assert_int_equal(bs_registry_acquire(r, "b", "/b", true, &hb, NULL, NULL), 0);
    assert_int_equal(f.frees, 0);
    assert_string_equal(((handle *)ha)->name, "a"); /* still valid */
    /* When a's request ends, a (the LRU idle model) goes. */
    bs_registry_release(r, "a");
    assert_int_equal(f.frees, 1);
    assert_string_equal(f.freed[0], "a");
    /* Explicit unload of an in-use model waits for its last release. */
    bool deferred = false;
    assert_int_equal(bs_registry_unload(r, "b", &deferred, NULL), 0);
    assert_true(deferred);
    assert_int_equal(f.frees, 1);
    assert_string_equal(((handle *)hb)->name, "b");
    bs_registry_release(r, "b");
    assert_int_equal(f.frees, 2);
    assert_string_equal(f.freed[1], "b");
    assert_int_equal(bs_registry_unload(r, "b", NULL, NULL), BS_ENOTFOUND);
    /* Idle unload is immediate. */
    assert_int_equal(bs_registry_load(r, "c", "/c", true, NULL), 0);
    assert_int_equal(bs_registry_unload(r, "c", &deferred, NULL), 0);
    assert_false(deferred);
    assert_int_equal(f.frees, 3);
    done(r, &f);
    assert_int_equal(f.frees, 3);
}

static void wait_loaded(bs_registry *r, const char *name)
{
    for (int i = 0; i < 5000 && bs_registry_state(r, name, NULL) != BS_MODEL_LOADED; i++)
        usleep(1000); /* polling a background load */
    assert_int_equal(bs_registry_state(r, name, NULL), BS_MODEL_LOADED);
}

/* Issue 17 M2: a client alternating between x and y (each answered "busy"
 * once) while z was used before. The fresh loads count as used at load
 * time, so z goes, not the load the client is about to retry. */
static void test_fresh_load_counts_as_used(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 2);
    void *h;
    assert_int_equal(bs_registry_acquire(r, "z", "/z", true, &h, NULL, NULL), 0);
    bs_registry_release(r, "z");
    assert_int_equal(bs_registry_acquire(r, "x", "/x", false, &h, NULL, NULL), BS_EBUSY);
    wait_loaded(r, "x");
    assert_int_equal(bs_registry_acquire(r, "y", "/y", false, &h, NULL, NULL), BS_EBUSY);
    wait_loaded(r, "y");
    assert_int_equal(bs_registry_state(r, "z", NULL), BS_MODEL_NOT_LOADED);
    for (int i = 0; i < 4; i++) {
        const char *n = i % 2 ? "y" : "x";
        assert_int_equal(bs_registry_acquire(r, n, "/", false, &h, NULL, NULL), 0);
        bs_registry_release(r, n);
    }
    assert_int_equal(f.loads, 3);
    done(r, &f);
}

/* Three clients, each waiting for its own model, over a capacity of 1:
 * every load stays until its client acquired it once. */
static void test_fresh_load_waits_for_its_client(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 1);
    void *h;
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bs_registry_acquire(r, names[i], "/", false, &h, NULL, NULL), BS_EBUSY);
        wait_loaded(r, names[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bs_registry_acquire(r, names[i], "/", false, &h, NULL, NULL), 0);
        bs_registry_release(r, names[i]);
    }
    /* Acquired once each, they are ordinary LRU entries again. */
    assert_int_equal(f.loads, 3);
    assert_int_equal(f.frees, 2);
    assert_int_equal(bs_registry_state(r, "c", NULL), BS_MODEL_LOADED);
    done(r, &f);
}

/* Loads asked for explicitly stay until unpinned or unloaded. */
static void test_pinned(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 1);
    void *h;
    assert_int_equal(bs_registry_pin(r, "p", true), BS_ENOTFOUND);
    assert_int_equal(bs_registry_load(r, "p", "/p", true, NULL), 0);
    assert_int_equal(bs_registry_pin(r, "p", true), 0);
    assert_int_equal(bs_registry_acquire(r, "q", "/q", true, &h, NULL, NULL), 0);
    bs_registry_release(r, "q");
    assert_int_equal(bs_registry_state(r, "p", NULL), BS_MODEL_LOADED);
    assert_int_equal(bs_registry_state(r, "q", NULL), BS_MODEL_NOT_LOADED);
    bs_registry_set_max_loaded(r, 1);
    assert_int_equal(bs_registry_state(r, "p", NULL), BS_MODEL_LOADED);
    /* Unpinned, it is the LRU's again. */
    assert_int_equal(bs_registry_pin(r, "p", false), 0);
    assert_int_equal(bs_registry_acquire(r, "q", "/q", true, &h, NULL, NULL), 0);
    bs_registry_release(r, "q");
    assert_int_equal(bs_registry_state(r, "p", NULL), BS_MODEL_NOT_LOADED);
    /* Unload clears the pin with the entry. */
    assert_int_equal(bs_registry_load(r, "p", "/p", true, NULL), 0);
    assert_int_equal(bs_registry_pin(r, "p", true), 0);
    assert_int_equal(bs_registry_unload(r, "p", NULL, NULL), 0);
    assert_int_equal(bs_registry_load(r, "p", "/p", true, NULL), 0);
    assert_int_equal(bs_registry_acquire(r, "q", "/q", true, &h, NULL, NULL), 0);
    bs_registry_release(r, "q");
    assert_int_equal(bs_registry_state(r, "p", NULL) == BS_MODEL_LOADED, 0);
    done(r, &f);
}

typedef struct worker_arg {
    bs_registry *r;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    char name[8];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "m%d", i % 5);
        void *h = NULL;
        if (bs_registry_acquire(a->r, name, "/x", true, &h, NULL, NULL)) continue;
        /* The handle must stay valid (not freed) while held. */
        if (!strcmp(((handle *)h)->name, name)) a->ok++;
        bs_registry_release(a->r, name);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 2);
    pthread_t t[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){.r = r};
        pthread_create(&t[i], NULL, worker, &a[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(a[i].ok, 200);
    json_t *list = bs_registry_list(r);
    size_t loaded = 0, i;
    json_t *m;
    json_array_foreach(list, i, m) loaded +=
        !strcmp(json_string_value(json_object_get(m, "state")), "loaded");
    assert_true(loaded <= 2);
    json_decref(list);
    done(r, &f);
    assert_int_equal(f.loads, f.frees);
}

/* A load option (the server's precision): remembered while the model is
 * known; asking for another one loads the model again, at once when idle,
 * else once its requests end (acquirers wait as for a load meanwhile). */
static void test_option_reload(void **state)
{
    (void)state;
    fake f;
    bs_registry *r = make(&f, 0);
    f.default_option = 7;
    void *h = NULL, *h2 = NULL;
    bool asked = true;
    assert_int_equal(bs_registry_acquire_opt(r, "m", "/m", -1, true, &h, NULL, NULL), 0);
    assert_int_equal(((handle *)h)->option, 7); /* the loader's default */
    assert_int_equal(bs_registry_option(r, "m", &asked), 7);
    assert_false(asked);
    /* In use: the reload waits for the release; meanwhile the model is
     * "loading" to acquirers, and the old handle stays valid. */
    int retry = 0;
    assert_int_equal(bs_registry_acquire_opt(r, "m", "/m", 2, false, &h2, &retry, NULL), BS_EBUSY);
    assert_int_equal(retry, 2);
    assert_int_equal(bs_registry_state(r, "m", NULL), BS_MODEL_LOADING);
    assert_int_equal(bs_registry_acquire(r, "m", "/m", false, &h2, NULL, NULL), BS_EBUSY);
    assert_int_equal(f.loads, 1);
    assert_string_equal(((handle *)h)->name, "m");
    assert_int_equal(bs_registry_option(r, "m", &asked), 2);
    assert_true(asked);
    bs_registry_release(r, "m");
    assert_int_equal(bs_registry_acquire_opt(r, "m", "/m", -1, true, &h, NULL, NULL), 0);
    assert_int_equal(((handle *)h)->option, 2);
    assert_int_equal(f.loads, 2);
    assert_int_equal(f.frees, 1);
    json_t *list = bs_registry_list(r);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "option")), 2);
    json_decref(list);
    bs_registry_release(r, "m");
    /* The same option again, or none: no reload. */
    assert_int_equal(bs_registry_acquire_opt(r, "m", "/m", 2, false, &h, NULL, NULL), 0);
    bs_registry_release(r, "m");
    assert_int_equal(bs_registry_acquire(r, "m", "/m", false, &h, NULL, NULL), 0);
    bs_registry_release(r, "m");
    assert_int_equal(f.loads, 2);
    /* Idle: another option reloads at once. */
    assert_int_equal(bs_registry_load_opt(r, "m", "/m", 5, true, NULL), 0);
    assert_int_equal(bs_registry_option(r, "m", NULL), 5);
    assert_int_equal(f.loads, 3);
    /* Asked for another option while loading: loaded again once that load ends. */
    assert_int_equal(bs_registry_unload(r, "m", NULL, NULL), 0);
    gate(&f, 1);
    assert_int_equal(bs_registry_load_opt(r, "m", "/m", 1, false, NULL), BS_EBUSY);
    assert_int_equal(bs_registry_load_opt(r, "m", "/m", 3, false, NULL), BS_EBUSY);
    gate(&f, 0);
    assert_int_equal(bs_registry_acquire(r, "m", "/m", true, &h, NULL, NULL), 0);
    assert_int_equal(((handle *)h)->option, 3);
    assert_int_equal(f.loads, 5);
    bs_registry_release(r, "m");
    /* Unloaded: forgotten; the next load takes the default again. */
    assert_int_equal(bs_registry_unload(r, "m", NULL, NULL), 0);
    assert_int_equal(bs_registry_option(r, "m", NULL), -1);
    assert_int_equal(bs_registry_acquire(r, "m", "/m", true, &h, NULL, NULL), 0);
    assert_int_equal(((handle *)h)->option, 7);
    bs_registry_release(r, "m");
    done(r, &f);
    assert_int_equal(f.loads, f.frees);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_load),
        cmocka_unit_test(test_failed_load),
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_fresh_load_counts_as_used),
        cmocka_unit_test(test_fresh_load_waits_for_its_client),
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_option_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
