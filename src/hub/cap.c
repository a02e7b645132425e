/* Enforcing the disk cap (setting model_cache_max_bytes) on the real cache:
 * the plan of evict.c applied to the store's documents and the folders. */
#include "hub/internal.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

int bs_hub_enforce_cap(bs_hub *hub, const char *const *keep, size_t nkeep, json_t **evicted,
                       bs_err *err)
{
    bs_store *st = bs_hub_store(hub);
    int64_t cap = st ? bs_store_settings_int(st, "model_cache_max_bytes", 10737418240LL) : 0;
    if (evicted) *evicted = NULL;
    if (cap <= 0) return 0;
    json_t *entries = NULL, *victims = NULL;
    int rc = bs_store_models_list(st, &entries, err);
    /* Keep what the caller asked plus every model in use. */
    size_t n = json_array_size(entries), nk = 0, i;
    const char **all = rc ? NULL : calloc(nkeep + n + 1, sizeof *all);
    if (!rc && !all) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t k = 0; !rc && k < nkeep; k++) all[nk++] = keep[k];
    json_t *v;
    json_array_foreach(rc ? NULL : entries, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "model_name"));
        if (name && bs_hub_in_use(hub, name)) all[nk++] = name;
    }
    if (!rc) rc = bs_hub_eviction_plan(entries, cap, all, nk, &victims, err);
    free(all);
    json_array_foreach(rc ? NULL : victims, i, v)
    {
        const char *name = json_string_value(v);
        char path[4096];
        if (bs_hub_model_path(bs_hub_models_dir(hub), name, path, sizeof path, err)) continue;
        /* The document stays (is_cached false) so its usage history survives
         * a later download. */
        size_t j;
        json_t *e;
        json_array_foreach(entries, j, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "model_name")), name)) continue;
            json_t *doc = json_deep_copy(e);
            json_object_set_new(doc, "is_cached", json_false());
            bs_err e2;
            if (bs_store_models_upsert(st, doc, NULL, &e2))
                bs_log_warn("hub", "evict %s: %s", name, e2.msg);
            json_decref(doc);
        }
        bs_hub_rmtree(path, NULL);
        bs_log_info("hub", "evicted %s (cache over model_cache_max_bytes %lld)", name,
                    (long long)cap);
    }
    json_decref(entries);
    if (evicted && !rc)
        *evicted = victims;
    else
        json_decref(victims);
    return rc;
}
