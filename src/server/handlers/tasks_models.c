/* How the task endpoints get a model by name: the server's model cache
 * (hub) says whether the name exists and where its folder is; the server's
 * registry loads it lazily (503 + Retry-After meanwhile), counts the
 * requests using it and unloads it by LRU; each loaded model comes with its
 * batcher. Access counts of model_cache are written off the request path
 * (server/serving.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/registry.h"
#include "server/context.h"
#include "server/handlers/tasks.h"
#include "util/log.h"

/* Whether the store still holds a cached document for name. */
static int model_registered(bs_serving *s, const char *name)
{
    json_t *doc = NULL;
    int ok = !bs_hub_info(s->hub, name, NULL, &doc, NULL) &&
             json_is_true(json_object_get(doc, "is_cached"));
    json_decref(doc);
    return ok;
}

int bs_tasks_acquire(bs_request *req, bs_response *res, const char *model_name, bs_task_model *tm,
                     bs_err *err)
{
    return bs_tasks_acquire_at(req, res, model_name, -1, tm, err);
}

int bs_tasks_acquire_at(bs_request *req, bs_response *res, const char *model_name, int precision,
                        bs_task_model *tm, bs_err *err)
{
    memset(tm, 0, sizeof *tm);
    bs_serving *s = req->server->serving;
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
    bs_serving_apply_settings(s);
    void *handle = NULL;
    int retry = 1;
    rc = bs_registry_acquire_opt(s->reg, model_name, dir, precision, false, &handle, &retry, err);
    if (rc == BS_EBUSY) {
        bs_err_set(err, BS_EBUSY, "model %s is being loaded", model_name);
        bs_response_header(res, "Retry-After", "%d", retry > 0 ? retry : 1);
        bs_reply_error(res, 503, "Model loading", "model %s is being loaded; retry in %d s",
                       model_name, retry > 0 ? retry : 1);
        return rc;
    }
    if (rc && (access(dir, F_OK) || !model_registered(s, model_name))) {
        /* Deleted while it loaded (issue 17 L6): gone, not broken. */
        bs_reply_error(res, 404, "Model not found", "model %s was removed from the cache",
                       model_name);
        bs_err_set(err, BS_ENOTFOUND, "model %s was removed while it loaded", model_name);
        return BS_ENOTFOUND;
    }
    if (rc == BS_EIO || rc == BS_ENOTFOUND) {
        /* Files vanished under the loader (a re-import moved the folder):
         * the failed load was cleared, the next request loads it again. */
        bs_response_header(res, "Retry-After", "1");
        bs_reply_error(res, 503, "Model loading",
                       "model %s changed while it loaded; retry in 1 s (%s)", model_name, err->msg);
        return BS_EBUSY;
    }
    if (rc) {
        bs_err_prefix(err, "model %s cannot be loaded", model_name);
        /* A folder the server cannot use (bad weights, config, tokenizer)
         * is 422; only the server's own failures are 500. */
        int unusable =
            rc == BS_EFORMAT || rc == BS_EUNSUPPORTED || rc == BS_ERANGE || rc == BS_EUNPROCESSABLE;
        bs_reply_error(res, unusable ? 422 : 500, "Model cannot be loaded", "%s", err->msg);
        return rc;
    }
    tm->m = handle;
    return 0;
}

void bs_tasks_release(bs_request *req, bs_task_model *tm)
{
    if (!tm->m) return;
    bs_serving *s = req->server->serving;
    bs_registry_release(s->reg, tm->name);
    tm->m = NULL;
    bs_serving_touch(s, tm->name);
}

void bs_tasks_batch_stats(bs_request *req, bs_batch_stats *out)
{
    bs_batch_group_stats(req->server->serving->group, out);
}

void bs_tasks_pin(bs_request *req, const char *model_name)
{
    bs_registry_pin(req->server->serving->reg, model_name, true);
}

int bs_tasks_unload(bs_request *req, const char *model_name, bool *deferred, bs_err *err)
{
    return bs_registry_unload(req->server->serving->reg, model_name, deferred, err);
}

json_t *bs_tasks_model_list(bs_request *req, bs_response *res)
{
    bs_err err = {0};
    bs_serving *s = req->server->serving;
    json_t *docs = NULL;
    if (bs_hub_list(s->hub, &docs, &err)) {
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
        bs_model_state st = bs_registry_state(s->reg, name, NULL);
        json_object_set_new(o, "state", json_string(bs_model_state_name(st)));
        /* Loaded: the precision it runs in; loading: the one asked, else the default. */
        int prec = bs_registry_option(s->reg, name, NULL);
        if (prec < 0 && st == BS_MODEL_LOADING) prec = bs_serving_default_precision(req->server);
        if (prec >= 0 && (st == BS_MODEL_LOADED || st == BS_MODEL_LOADING))
            json_object_set_new(o, "precision", json_string(bs_precision_name((bs_precision)prec)));
        json_array_append_new(out, o);
    }
    json_decref(docs);
    return out;
}
