/* The original product's model cache routes (docs/compat.md): its bodies
 * ({"model_id"}, ?author=&model=) and its bare answers (lists and objects
 * keyed by model id, {"message"}, FastAPI's {"detail"}). Each runs our own
 * code (same checks, same background jobs) and reshapes its data, never
 * our rendered answer. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hub/hub.h"
#include "hub/registry.h"
#include "server/context.h"
#include "server/downloads.h"
#include "server/handlers/compat.h"
#include "server/handlers/handlers.h"

/* GET /models/available: [{id, name, description, tags, downloads, likes}]. */
void bs_handle_compat_models_available(bs_request *req, bs_response *res)
{
    res->detail_errors = 1;
    json_t *models = bs_models_available_list(req, res);
    if (!models) return;
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "model_name"));
        if (!id) continue;
        const char *slash = strchr(id, '/');
        char desc[400];
        if (slash)
            snprintf(desc, sizeof desc, "A %s model by %.*s.",
                     json_string_value(json_object_get(m, "task_type"))
                         ? json_string_value(json_object_get(m, "task_type"))
                         : "text-classification",
                     (int)(slash - id), id);
        else
            snprintf(desc, sizeof desc, "A model.");
        json_t *tags = json_object_get(m, "tags"), *dl = json_object_get(m, "downloads"),
               *likes = json_object_get(m, "likes");
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:O, s:O, s:O}", "id", id, "name",
                                             slash ? slash + 1 : id, "description", desc, "tags",
                                             json_is_array(tags) ? tags : json_null(), "downloads",
                                             json_is_integer(dl) ? dl : json_null(), "likes",
                                             json_is_integer(likes) ? likes : json_null()));
    }
    json_decref(models);
    bs_reply_json(res, 200, out);
}

/* Files listed in the folder's manifest. */
static json_int_t file_count(bs_request *req, const char *name)
{
    char dir[PATH_MAX];
    bs_err e = {0};
    if (bs_hub_model_path(bs_hub_models_dir(req->server->serving->hub), name, dir, sizeof dir, &e))
        return 0;
    json_t *files = bs_models_manifest_files(dir);
    json_int_t n = (json_int_t)json_array_size(files);
    json_decref(files);
    return n;
}

/* Our listing (bs_models_listing), or NULL after FastAPI's {"detail"}. */
static json_t *listing(bs_request *req, bs_response *res, const char *only)
{
    json_t *models = bs_models_listing(req, res, only);
    if (!models) bs_compat_detail_only(res);
    return models;
}

/* GET /models/downloaded: {id: {status, size, timestamp, progress, ...}}. */
void bs_handle_compat_models_downloaded(bs_request *req, bs_response *res)
{
    json_t *models = listing(req, res, NULL);
    if (!models) return;
    json_t *out = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "model_name"));
        const char *st = json_string_value(json_object_get(m, "state"));
        if (!id || !st || !strcmp(st, "not_cached")) continue;
        int done = strcmp(st, "downloading") != 0;
        json_int_t bytes = json_integer_value(json_object_get(m, "file_size"));
        json_int_t mb = (bytes + 512 * 1024) / (1024 * 1024);
        json_int_t files = done ? file_count(req, id) : 0;
        json_t *date = json_object_get(m, "download_date");
        json_object_set_new(out, id,
                            json_pack("{s:s, s:I, s:O, s:i, s:I, s:I, s:I, s:I}", "status",
                                      done ? "completed" : "downloading", "size", mb, "timestamp",
                                      json_is_string(date) ? date : json_null(), "progress",
                                      done ? 100 : 0, "files_downloaded", files, "total_files",
                                      files, "downloaded_size_mb", mb, "total_size_mb", mb));
    }
    json_decref(models);
    bs_reply_json(res, 200, out);
}

/* GET /models/loaded: [id, ...]. */
void bs_handle_compat_models_loaded(bs_request *req, bs_response *res)
{
    json_t *models = listing(req, res, "loaded");
    if (!models) return;
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) json_array_append(out, json_object_get(m, "model_name"));
    json_decref(models);
    bs_reply_json(res, 200, out);
}

/* GET /models/loading: {id: {status, timestamp, progress, error_message?}}
 * of the models being loaded, loaded, or whose load failed. */
void bs_handle_compat_models_loading(bs_request *req, bs_response *res)
{
    json_t *models = listing(req, res, NULL);
    if (!models) return;
    json_t *out = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "model_name"));
        const char *st = json_string_value(json_object_get(m, "state"));
        if (!id || !st) continue;
        const char *status = !strcmp(st, "loading")  ? "loading"
                             : !strcmp(st, "loaded") ? "completed"
                             : !strcmp(st, "failed") ? "failed"
                                                     : NULL;
        if (!status) continue;
        json_t *o = json_pack("{s:s, s:n, s:i}", "status", status, "timestamp", "progress",
                              !strcmp(status, "completed") ? 100 : 0);
        if (!strcmp(status, "failed"))
            json_object_set_new(o, "error_message", json_string("the model could not be loaded"));
        json_object_set_new(out, id, o);
    }
    json_decref(models);
    bs_reply_json(res, 200, out);
}

/* The model_id of the body, or NULL after the original's 400. */
static const char *model_id(bs_request *req, bs_response *res)
{
    json_t *id = json_object_get(req->json, "model_id");
    bs_err e = {0};
    if (!json_is_string(id) || !json_string_length(id)) {
        bs_reply_json(res, 400,
                      json_pack("{s:s}", "detail", "model_id must be a non-empty string"));
        return NULL;
    }
    if (bs_hub_name_check(json_string_value(id), &e)) {
        bs_reply_json(res, 400, json_pack("{s:s}", "detail", e.msg));
        return NULL;
    }
    return json_string_value(id);
}

/* Replaces the body with ours: {"model_name": id}. */
static void as_ours(bs_request *req, const char *id)
{
    json_t *ours = json_pack("{s:s}", "model_name", id);
    json_decref(req->json);
    req->json = ours;
}

/* POST /models/download {"model_id"} -> {"message"} (in the background). */
void bs_handle_compat_models_download(bs_request *req, bs_response *res)
{
    char id[BS_HUB_NAME_MAX * 2];
    const char *v = model_id(req, res);
    if (!v) return;
    snprintf(id, sizeof id, "%s", v);
    json_t *doc = NULL;
    bs_err e = {0};
    int cached = !bs_hub_info(req->server->serving->hub, id, NULL, &doc, &e) &&
                 json_is_true(json_object_get(doc, "is_cached"));
    json_decref(doc);
    if (cached || bs_downloads_running(req->server->models, id)) {
        bs_compat_message(res, 200, "Model %s already downloaded or is downloading.", id);
        return;
    }
    as_ours(req, id);
    bs_handle_models_download(req, res);
    if (res->status == 409)
        bs_compat_message(res, 200, "Model %s already downloaded or is downloading.", id);
    else if (res->status < 300)
        bs_compat_message(res, 200, "Started downloading %s", id);
    else
        bs_compat_detail_only(res);
}

/* POST /models/load {"model_id"} -> {"message"} (in the background). */
void bs_handle_compat_models_load(bs_request *req, bs_response *res)
{
    char id[BS_HUB_NAME_MAX * 2];
    const char *v = model_id(req, res);
    if (!v) return;
    snprintf(id, sizeof id, "%s", v);
    as_ours(req, id);
    bs_handle_models_load(req, res);
    if (res->status == 200)
        bs_compat_message(res, 200, "Model %s is already loaded.", id);
    else if (res->status == 202)
        bs_compat_message(res, 200, "Started loading %s in the background", id);
    else if (res->status == 404)
        bs_reply_json(res, 400,
                      json_pack("{s:s}", "detail",
                                "Model is not downloaded, not ready, and not found in cache."));
    else
        bs_compat_detail_only(res);
}

/* DELETE /models/downloaded?author=&model= -> {"message"}, or 404. */
void bs_handle_compat_models_delete(bs_request *req, bs_response *res)
{
    char id[BS_HUB_NAME_MAX * 2];
    snprintf(id, sizeof id, "%s/%s", bs_request_query(req, "author"),
             bs_request_query(req, "model"));
    bs_models_delete_named(req, res, id);
    if (res->status < 300)
        bs_compat_message(res, 200, "Deleted %s from memory and/or HuggingFace cache", id);
    else if (res->status == 404)
        bs_reply_json(res, 404, json_pack("{s:s}", "detail", "Model not found in memory or cache"));
    else
        bs_compat_detail_only(res);
}
