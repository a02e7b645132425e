/* How the task endpoints get a model by name: the model cache (hub) says
 * whether the name exists and where its folder is; the registry loads it
 * lazily (503 + Retry-After meanwhile), counts the requests using it and
 * unloads it by LRU; each loaded model comes with its batcher.
 *
 * The server does not (yet) hold a hub and registry of its own, so this file
 * keeps one per process, created on the first task request; access counts
 * of model_cache are accumulated here and written by a small background
 * thread, never on the request path. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/registry.h"
#include "server/context.h"
#include "server/handlers/tasks.h"
#include "util/log.h"

typedef struct serving {
    bs_server *srv;
    bs_hub *hub;
    bs_registry *reg;
    bs_batch_group *group;
    /* pending access counts, model name -> integer */
    pthread_mutex_t touch_mu;
    pthread_cond_t touch_cv;
    json_t *touches;
    int stopping;
    pthread_t toucher;
} serving;

static pthread_mutex_t serving_mu = PTHREAD_MUTEX_INITIALIZER;
static serving *the_serving;

static void write_touches(serving *s, json_t *batch)
{
    const char *name;
    json_t *n;
    json_object_foreach(batch, name, n)
    {
        for (json_int_t i = 0; i < json_integer_value(n); i++) {
            bs_err err = {0};
            if (bs_store_models_touch(s->srv->store, name, NULL, &err)) {
                bs_log_warn("tasks", "model_cache access count of %s: %s", name, err.msg);
                break;
            }
        }
    }
}

/* Writes the pending access counts, at most about once a second. */
static void *toucher_main(void *arg)
{
    serving *s = arg;
    pthread_mutex_lock(&s->touch_mu);
    for (;;) {
        while (json_object_size(s->touches) == 0 && !s->stopping)
            pthread_cond_wait(&s->touch_cv, &s->touch_mu);
        json_t *batch = s->touches;
        s->touches = json_object();
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->touch_mu);
        write_touches(s, batch);
        json_decref(batch);
        if (stopping) return NULL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_mutex_lock(&s->touch_mu);
        /* Coalesce: let a second's worth of accesses gather (stop ends the wait). */
        while (!s->stopping && pthread_cond_timedwait(&s->touch_cv, &s->touch_mu, &ts) == 0) {
        }
    }
}

static void stop_hook(void *ud)
{
    bs_tasks_shutdown(ud);
}

static serving *get_serving(bs_server *srv, bs_err *err)
{
    pthread_mutex_lock(&serving_mu);
    serving *s = the_serving;
    if (s) {
        pthread_mutex_unlock(&serving_mu);
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->srv = srv;
    bs_hub_opts ho = {.data_dir = srv->data_dir, .store = srv->store};
    if (bs_hub_open(&ho, &s->hub, err)) goto fail;
    bs_batcher_opts bo = {
        .max_batch_tokens = (size_t)bs_settings_int(srv->settings, "max_batch_tokens"),
        .max_queue = 256,
        .window_us = 500,
    };
    s->group = bs_batch_group_new(&bo);
    if (!s->group) goto oom;
    bs_registry_opts ro = {
        .max_loaded = (size_t)bs_settings_int(srv->settings, "max_loaded_models"),
        .load = bs_batch_model_load,
        .free = bs_batch_model_free,
        .ud = s->group,
        .retry_after_s = 1,
    };
    if (bs_registry_new(&ro, &s->reg, err)) goto fail;
    pthread_mutex_init(&s->touch_mu, NULL);
    pthread_cond_init(&s->touch_cv, NULL);
    s->touches = json_object();
    if (!s->touches || pthread_create(&s->toucher, NULL, toucher_main, s)) goto oom;
    the_serving = s;
    pthread_mutex_unlock(&serving_mu);
    if (bs_server_on_stop(srv, stop_hook, srv))
        bs_log_warn("tasks",
                    "no room for the task endpoints' stop hook: models are not freed at shutdown");
    if (bs_server_metrics_hook(srv, bs_tasks_metrics_hook, srv))
        bs_log_warn("tasks", "no room for the batcher's metrics hook");
    return s;
oom:
    bs_err_set(err, BS_ENOMEM, "out of memory");
fail:
    /* Left for the next request to retry; the parts made so far are freed. */
    if (s) {
        bs_registry_free(s->reg);
        bs_batch_group_free(s->group);
        bs_hub_close(s->hub);
        json_decref(s->touches);
        free(s);
    }
    pthread_mutex_unlock(&serving_mu);
    return NULL;
}

/* The settings may change at any time: apply them before each acquire. */
static void apply_settings(serving *s)
{
    bs_settings *st = s->srv->settings;
    bs_registry_set_max_loaded(s->reg, (size_t)bs_settings_int(st, "max_loaded_models"));
    bs_batch_group_set_max_tokens(s->group, (size_t)bs_settings_int(st, "max_batch_tokens"));
}

int bs_tasks_acquire(bs_request *req, bs_response *res, const char *model_name, bs_task_model *tm,
                     bs_err *err)
{
    memset(tm, 0, sizeof *tm);
    serving *s = get_serving(req->server, err);
    if (!s) {
        bs_tasks_reply_err(req, res, err);
        return err->code;
    }
    int rc = bs_hub_name_check(model_name, err);
    if (rc) {
        bs_reply_error(res, 400, "Invalid model_name", "model_name: %s", err->msg);
        return rc;
    }
    snprintf(tm->name, sizeof tm->name, "%s", model_name);
    char dir[4096];
    if ((rc = bs_hub_model_path(bs_hub_models_dir(s->hub), model_name, dir, sizeof dir, err))) {
        bs_tasks_reply_err(req, res, err);
        return rc;
    }
    /* A loaded model skips the store read; but if its folder is gone (DELETE
     * /models/{name} while it was loaded), it is unloaded (after its
     * in-flight requests) and treated as unknown. */
    int loaded = bs_registry_state(s->reg, model_name, NULL) == BS_MODEL_LOADED;
    if (loaded && access(dir, F_OK)) {
        bs_registry_unload(s->reg, model_name, NULL, NULL);
        loaded = 0;
    }
    if (!loaded) {
        json_t *doc = NULL;
        rc = bs_hub_info(s->hub, model_name, NULL, &doc, err);
        int cached = !rc && json_is_true(json_object_get(doc, "is_cached")) && !access(dir, F_OK);
        json_decref(doc);
        if (rc == BS_ENOTFOUND || (!rc && !cached)) {
            bs_reply_error(res, 404, "Model not found",
                           "model %s is not in the local cache; download it first with POST "
                           "/models/download {\"model_name\": \"%s\"}",
                           model_name, model_name);
            bs_err_set(err, BS_ENOTFOUND, "model %s is not in the local cache", model_name);
            return BS_ENOTFOUND;
        }
        if (rc) {
            bs_tasks_reply_err(req, res, err);
            return rc;
        }
    }
    apply_settings(s);
    void *handle = NULL;
    int retry = 1;
    rc = bs_registry_acquire(s->reg, model_name, dir, false, &handle, &retry, err);
    if (rc == BS_EBUSY) {
        bs_err_set(err, BS_EBUSY, "model %s is being loaded", model_name);
        bs_response_header(res, "Retry-After", "%d", retry > 0 ? retry : 1);
        bs_reply_error(res, 503, "Model loading", "model %s is being loaded; retry in %d s",
                       model_name, retry > 0 ? retry : 1);
        return rc;
    }
    if (rc) {
        bs_err_prefix(err, "model %s cannot be loaded", model_name);
        bs_reply_error(res, 500, "Model cannot be loaded", "%s", err->msg);
        return rc;
    }
    tm->m = handle;
    return 0;
}

void bs_tasks_release(bs_request *req, bs_task_model *tm)
{
    serving *s = the_serving;
    if (!tm->m || !s) return;
    (void)req;
    bs_registry_release(s->reg, tm->name);
    tm->m = NULL;
    pthread_mutex_lock(&s->touch_mu);
    json_t *n = json_object_get(s->touches, tm->name);
    json_object_set_new(s->touches, tm->name, json_integer(json_integer_value(n) + 1));
    if (json_object_size(s->touches) == 1) pthread_cond_signal(&s->touch_cv);
    pthread_mutex_unlock(&s->touch_mu);
}

void bs_tasks_batch_stats(bs_request *req, bs_batch_stats *out)
{
    memset(out, 0, sizeof *out);
    bs_err err = {0};
    serving *s = get_serving(req->server, &err);
    if (s) bs_batch_group_stats(s->group, out);
}

void bs_tasks_metrics_hook(bs_buf *out, void *ud)
{
    (void)ud;
    /* Under serving_mu, so that a shutdown cannot free the group meanwhile. */
    pthread_mutex_lock(&serving_mu);
    if (the_serving) bs_batch_group_metrics(the_serving->group, out);
    pthread_mutex_unlock(&serving_mu);
}

int bs_tasks_unload(bs_request *req, const char *model_name, bool *deferred, bs_err *err)
{
    serving *s = get_serving(req->server, err);
    if (!s) return err->code;
    return bs_registry_unload(s->reg, model_name, deferred, err);
}

json_t *bs_tasks_model_list(bs_request *req, bs_response *res)
{
    bs_err err = {0};
    serving *s = get_serving(req->server, &err);
    json_t *docs = NULL;
    if (!s || bs_hub_list(s->hub, &docs, &err)) {
        bs_tasks_reply_err(req, res, &err);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "model_name"));
        if (!name || !json_is_true(json_object_get(d, "is_cached"))) continue;
        json_t *o = json_deep_copy(d);
        json_object_set_new(
            o, "state", json_string(bs_model_state_name(bs_registry_state(s->reg, name, NULL))));
        json_array_append_new(out, o);
    }
    json_decref(docs);
    return out;
}

void bs_tasks_shutdown(bs_server *srv)
{
    pthread_mutex_lock(&serving_mu);
    serving *s = the_serving;
    if (!s || s->srv != srv) {
        pthread_mutex_unlock(&serving_mu);
        return;
    }
    the_serving = NULL;
    pthread_mutex_unlock(&serving_mu);
    pthread_mutex_lock(&s->touch_mu);
    s->stopping = 1;
    pthread_cond_signal(&s->touch_cv);
    pthread_mutex_unlock(&s->touch_mu);
    pthread_join(s->toucher, NULL);
    bs_registry_free(s->reg);
    bs_batch_group_free(s->group);
    bs_hub_close(s->hub);
    json_decref(s->touches);
    pthread_cond_destroy(&s->touch_cv);
    pthread_mutex_destroy(&s->touch_mu);
    free(s);
}
