/* Private to server/: what serves models, owned by the server (one per
 * bs_server, made at start, freed by bs_server_stop after the last request
 * and before the store closes): the model cache (hub), the registry of
 * loaded models with their batchers, and the writer of model_cache access
 * counts (off the request path). The /models routes and the task routes
 * both use these, so a model loaded through one is the one the other sees. */
#ifndef BS_SERVER_SERVING_H
#define BS_SERVER_SERVING_H

#include <jansson.h>
#include <pthread.h>

#include "batch/batch.h"
#include "hub/hub.h"
#include "hub/registry.h"

struct bs_server;

typedef struct bs_serving {
    struct bs_server *srv;
    bs_hub *hub;
    bs_registry *reg;
    bs_batch_group *group;
    bs_ctx *engine; /* the compute threads every loaded model shares */
    /* pending access counts, model name -> integer */
    pthread_mutex_t touch_mu;
    pthread_cond_t touch_cv;
    json_t *touches;
    int stopping;
    pthread_t toucher;
    int toucher_running;
} bs_serving;

/* Opens the hub on srv->data_dir and srv->store, makes the registry and the
 * batch group (options from srv->settings) and starts the access-count
 * writer. *out is freed with bs_serving_free. */
int bs_serving_new(struct bs_server *srv, bs_serving **out, bs_err *err);
/* Writes the pending access counts, frees every loaded model (each after
 * its queued requests), the registry, the batch group and the hub. No
 * request may use s any more. NULL is fine. */
void bs_serving_free(bs_serving *s);
/* Counts one access of name (written to model_cache within about a second). */
void bs_serving_touch(bs_serving *s, const char *name);
/* Applies the settings that may change at run time (max_loaded_models,
 * max_batch_tokens, batch_max_queue, default_precision). */
void bs_serving_apply_settings(bs_serving *s);
/* The bs_precision of loads that ask for none: the default_precision
 * setting when it names one, else serve --precision. */
int bs_serving_default_precision(const struct bs_server *srv);

#endif
