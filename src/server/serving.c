/* The server's model serving: one hub and one registry (with the batchers
 * of the loaded models) per server, and a small thread that writes the
 * model_cache access counts gathered on the request path, at most about
 * once a second. */
#include <stdlib.h>
#include <string.h>

#include "server/context.h"
#include "server/serving.h"
#include "util/log.h"

int bs_serving_default_precision(const bs_server *srv)
{
    /* The setting when set, else serve --precision (BERTSTUDIO_PRECISION). */
    json_t *v = bs_settings_value(srv->settings, "default_precision");
    int p = bs_precision_parse(json_string_value(v));
    json_decref(v);
    return p >= 0 ? p : srv->opts.precision;
}

static void write_touches(bs_serving *s, json_t *batch)
{
    const char *name;
    json_t *n;
    json_object_foreach(batch, name, n)
    {
        for (json_int_t i = 0; i < json_integer_value(n); i++) {
            bs_err err = {0};
            if (bs_store_models_touch(s->srv->store, name, NULL, &err)) {
                bs_log_warn("serving", "model_cache access count of %s: %s", name, err.msg);
                break;
            }
        }
    }
}

static void *toucher_main(void *arg)
{
    bs_serving *s = arg;
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

/* bs_hub_opts.in_use: a model loaded (or loading) is never evicted by the
 * disk cap. */
static bool in_use(const char *name, void *ud)
{
    bs_serving *s = ud;
    if (!s->reg) return false;
    bs_model_state st = bs_registry_state(s->reg, name, NULL);
    return st == BS_MODEL_LOADED || st == BS_MODEL_LOADING;
}

/* The batcher's counters, and what every model computes with: the kernel
 * path as an info metric (fixed names from the engine, nothing to escape). */
static void serving_metrics(bs_buf *out, void *ud)
{
    bs_serving *s = ud;
    bs_batch_stats st;
    bs_batch_group_stats(s->group, &st);
    bs_metrics_batch(&st, out);
    bs_kernels_info k;
    bs_kernels_get(&k, NULL);
    bs_buf_printf(out,
                  "# HELP bertstudio_engine_info The kernels every model runs (the load log's "
                  "path and int8 kernel).\n"
                  "# TYPE bertstudio_engine_info gauge\n"
                  "bertstudio_engine_info{kernels=\"%s\",int8_kernel=\"%s\"} 1\n"
                  "# HELP bertstudio_compute_threads Compute threads that every model shares.\n"
                  "# TYPE bertstudio_compute_threads gauge\n"
                  "bertstudio_compute_threads %d\n",
                  k.path, k.int8, bs_ctx_n_threads(s->engine));
}

int bs_serving_new(bs_server *srv, bs_serving **out, bs_err *err)
{
    *out = NULL;
    bs_serving *s = calloc(1, sizeof *s);
    if (!s) return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->srv = srv;
    pthread_mutex_init(&s->touch_mu, NULL);
    pthread_cond_init(&s->touch_cv, NULL);
    int rc = 0;
    bs_hub_opts ho = {
        .data_dir = srv->data_dir, .store = srv->store, .in_use = in_use, .in_use_ud = s};
    rc = bs_hub_open(&ho, &s->hub, err);
    /* One compute thread per core for all models together: a second model
     * loaded starts no threads of its own. */
    if (!rc) rc = bs_ctx_new(NULL, &s->engine, err);
    bs_batcher_opts bo = {
        .max_batch_tokens = (size_t)bs_settings_int(srv->settings, "max_batch_tokens"),
        .max_queue = (size_t)bs_settings_int(srv->settings, "batch_max_queue"),
        .window_us = 500,
        .precision = bs_serving_default_precision(srv),
        .engine = s->engine,
    };
    if (!rc && !(s->group = bs_batch_group_new(&bo)))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_registry_opts ro = {
        .max_loaded = (size_t)bs_settings_int(srv->settings, "max_loaded_models"),
        .load = bs_batch_model_load,
        .free = bs_batch_model_free,
        .ud = s->group,
        .retry_after_s = 1,
    };
    if (!rc) rc = bs_registry_new(&ro, &s->reg, err);
    if (!rc && !(s->touches = json_object())) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!rc) {
        if (pthread_create(&s->toucher, NULL, toucher_main, s))
            rc = bs_err_set(err, BS_ENOMEM, "cannot start the model access counter thread");
        else
            s->toucher_running = 1;
    }
    if (!rc && bs_server_metrics_hook(srv, serving_metrics, s))
        bs_log_warn("serving", "no room for the batchers' metrics hook");
    if (rc) {
        bs_serving_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bs_serving_free(bs_serving *s)
{
    if (!s) return;
    if (s->toucher_running) {
        pthread_mutex_lock(&s->touch_mu);
        s->stopping = 1;
        pthread_cond_signal(&s->touch_cv);
        pthread_mutex_unlock(&s->touch_mu);
        pthread_join(s->toucher, NULL);
    }
    bs_registry *reg = s->reg;
    s->reg = NULL; /* in_use() of the hub now answers false */
    bs_registry_free(reg);
    bs_batch_group_free(s->group);
    bs_ctx_free(s->engine); /* after the registry has freed every model */
    bs_hub_close(s->hub);
    json_decref(s->touches);
    pthread_cond_destroy(&s->touch_cv);
    pthread_mutex_destroy(&s->touch_mu);
    free(s);
}

void bs_serving_touch(bs_serving *s, const char *name)
{
    pthread_mutex_lock(&s->touch_mu);
    json_t *n = json_object_get(s->touches, name);
    json_object_set_new(s->touches, name, json_integer(json_integer_value(n) + 1));
    if (json_object_size(s->touches) == 1) pthread_cond_signal(&s->touch_cv);
    pthread_mutex_unlock(&s->touch_mu);
}

void bs_serving_apply_settings(bs_serving *s)
{
    bs_settings *st = s->srv->settings;
    bs_registry_set_max_loaded(s->reg, (size_t)bs_settings_int(st, "max_loaded_models"));
    bs_batch_group_set_max_tokens(s->group, (size_t)bs_settings_int(st, "max_batch_tokens"));
    bs_batch_group_set_max_queue(s->group, (size_t)bs_settings_int(st, "batch_max_queue"));
    bs_batch_group_set_precision(s->group, bs_serving_default_precision(s->srv));
}
