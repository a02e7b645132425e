/*
 * The registry of loaded models: what the task endpoints use to get a model
 * by name. What a loaded model is stays opaque here: the server plugs in
 * load/free callbacks (the pipelines layer's context for a model folder);
 * the registry only decides when to call them.
 *
 *   - Lazy load: bs_registry_acquire on a model that is not loaded starts
 *     loading it on a background thread and returns BS_EBUSY with a retry
 *     hint (the handler answers 503 + Retry-After); once loaded, acquire
 *     returns the handle at once. A failed load is reported (with the
 *     loader's message) to the next acquire, which clears it so that a later
 *     request tries again.
 *   - Reference counting: every successful acquire is paired with one
 *     bs_registry_release. A model with requests in flight is never freed:
 *     unload and LRU eviction of such a model wait for its last release.
 *   - Capacity: at most max_loaded models are held (0 = unlimited); loading
 *     one more unloads the least recently used idle model. A model counts
 *     as used at its load time and when acquired. Not unloaded by the LRU:
 *     models in use, pinned models (loads asked for explicitly, until
 *     unloaded), and a freshly loaded model that nobody acquired yet, for
 *     4 x retry_after_s (so the client that started the load finds it on
 *     its retry: clients rotating over more models than the capacity are
 *     served, slower, instead of evicting each other's loads forever).
 *     When no loaded model may go, the new one is still loaded (capacity is
 *     then exceeded until releases, loads or unpins let models go).
 *
 * Thread safety: every function may be called from any thread. Callbacks
 * run without the registry's lock held.
 */
#ifndef BS_HUB_REGISTRY_H
#define BS_HUB_REGISTRY_H

#include "bertstudio/common.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bs_registry bs_registry;

/* Loads the model folder dir for name; *handle gets what the registry will
 * hand to acquirers. *option: in, the load option asked for (opaque here:
 * the server's precision), -1 for the loader's default; out, the option
 * the handle was made with. Runs on a loader thread. */
typedef int (*bs_registry_load_fn)(const char *name, const char *dir, int *option, void *ud,
                                   void **handle, bs_err *err);
/* Frees a handle made by load (never while acquired). */
typedef void (*bs_registry_free_fn)(void *handle, void *ud);

typedef struct bs_registry_opts {
    size_t max_loaded; /* 0 = unlimited */
    bs_registry_load_fn load;
    bs_registry_free_fn free;
    void *ud;
    /* Seconds a client should wait before retrying while a model loads
     * (Retry-After); 0 = 1. */
    int retry_after_s;
} bs_registry_opts;

int bs_registry_new(const bs_registry_opts *opts, bs_registry **out, bs_err *err);
/* Waits for loader threads, frees every loaded model and the registry.
 * No model may be acquired any more. NULL is fine. */
void bs_registry_free(bs_registry *reg);
/* Changes the capacity (setting max_loaded_models); evicts idle models
 * over it at once. */
void bs_registry_set_max_loaded(bs_registry *reg, size_t max_loaded);

/* Gets the loaded model name (folder dir, used when it must be loaded).
 * 0: *handle is valid until the matching bs_registry_release. BS_EBUSY:
 * the model is loading in the background; *retry_after_s (may be NULL) gets
 * the hint. Any other error: the last background load failed (its message),
 * or the loader thread could not start. wait: load synchronously instead of
 * answering BS_EBUSY (CLI, tests). */
int bs_registry_acquire(bs_registry *reg, const char *name, const char *dir, bool wait,
                        void **handle, int *retry_after_s, bs_err *err);
/* bs_registry_acquire asking for a load option (>= 0; -1: whatever is
 * loaded, else the loader's default). The option is remembered while the
 * model stays known. A model loaded with another option is loaded again:
 * at once when idle, else once its in-flight requests release it; until the
 * new one is loaded, acquires get BS_EBUSY (or wait) as during any load. */
int bs_registry_acquire_opt(bs_registry *reg, const char *name, const char *dir, int option,
                            bool wait, void **handle, int *retry_after_s, bs_err *err);
/* Releases one acquire of name. */
void bs_registry_release(bs_registry *reg, const char *name);

/* Starts loading name in the background (wait false; 0 or BS_EBUSY while
 * it loads) or loads it now (wait true). 0 when already loaded. */
int bs_registry_load(bs_registry *reg, const char *name, const char *dir, bool wait, bs_err *err);
/* bs_registry_load with a load option (as bs_registry_acquire_opt). */
int bs_registry_load_opt(bs_registry *reg, const char *name, const char *dir, int option, bool wait,
                         bs_err *err);
/* Pins (pinned true) or unpins a model that is loaded or loading: a pinned
 * model is never unloaded by the LRU, only by bs_registry_unload.
 * BS_ENOTFOUND when name is neither loaded nor loading. */
int bs_registry_pin(bs_registry *reg, const char *name, bool pinned);
/* Unloads name now when idle, or as soon as its last request releases it
 * (*deferred, may be NULL, is then true). BS_ENOTFOUND when not loaded.
 * A model still loading is unloaded when its load completes. */
int bs_registry_unload(bs_registry *reg, const char *name, bool *deferred, bs_err *err);

typedef enum bs_model_state {
    BS_MODEL_NOT_LOADED = 0,
    BS_MODEL_LOADING,
    BS_MODEL_LOADED,
    BS_MODEL_FAILED,
} bs_model_state;

/* Current state of name, and (may be NULL) its in-flight count. */
bs_model_state bs_registry_state(bs_registry *reg, const char *name, int *in_flight);
/* The option of name: the one its handle was made with when loaded, else
 * the one asked for its load (-1 when none was asked or name is unknown).
 * *asked (may be NULL): whether an option was asked explicitly. */
int bs_registry_option(bs_registry *reg, const char *name, bool *asked);
/* "not_loaded", "loading", "loaded", "failed". */
const char *bs_model_state_name(bs_model_state s);
/* Every known model: [{"model_name", "state", "option" (as
 * bs_registry_option), "in_flight", "last_used_ms", "load_ms", "error"?}],
 * most recently used first. A model being loaded again with another option
 * shows as loading. */
json_t *bs_registry_list(bs_registry *reg);

#endif
