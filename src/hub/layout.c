/* One model, one folder: who owns a flat folder name (so that a second name
 * mapping to it is refused, not merged), and the move of data dirs laid out
 * the old way (models/org/name, where models/org could itself be a model
 * whose removal took every org/... model with it) to models/org--name. */
#include "hub/internal.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bs_hub_folder_owner(bs_hub *hub, const char *name, char *owner, size_t len, bs_err *err)
{
    owner[0] = 0;
    bs_store *store = bs_hub_store(hub);
    if (!store) return 0;
    char mine[2 * BS_HUB_NAME_MAX + 2], theirs[2 * BS_HUB_NAME_MAX + 2];
    if (bs_hub_name_folder(name, mine, sizeof mine))
        return bs_err_set(err, BS_ERANGE, "model name %s is too long", name);
    json_t *docs = NULL;
    int rc = bs_store_models_list(store, &docs, err);
    if (rc) return rc;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *other = json_string_value(json_object_get(d, "model_name"));
        if (!other || !strcmp(other, name)) continue;
        if (!bs_hub_name_folder(other, theirs, sizeof theirs) && !strcmp(mine, theirs)) {
            snprintf(owner, len, "%s", other);
            break;
        }
    }
    json_decref(docs);
    return 0;
}

/* Moves one model's folder from models/org/name to models/org--name and
 * points its documents there. */
static int migrate_one(bs_hub *hub, const char *name, json_t *docs, bs_err *err)
{
    const char *root = bs_hub_models_dir(hub);
    char old[PATH_MAX], now[PATH_MAX];
    if ((size_t)snprintf(old, sizeof old, "%s/%s", root, name) >= sizeof old) return 0;
    int rc = bs_hub_model_path(root, name, now, sizeof now, err);
    if (rc) return rc;
    struct stat st;
    if (lstat(old, &st) || !S_ISDIR(st.st_mode)) return 0; /* nothing there to move */
    if (!lstat(now, &st))
        return bs_err_set(err, BS_ECONFLICT, "both %s and %s exist; move one away", old, now);
    if (rename(old, now))
        return bs_err_set(err, BS_EIO, "cannot move %s to %s: %s", old, now, strerror(errno));
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *n = json_string_value(json_object_get(d, "model_name"));
        if (!n || strcmp(n, name)) continue;
        json_t *copy = json_deep_copy(d);
        json_object_set_new(copy, "local_path", json_string(now));
        rc = bs_store_models_upsert(bs_hub_store(hub), copy, NULL, err);
        json_decref(copy);
        if (rc) return rc;
    }
    /* The org folder goes once empty (rmdir fails harmlessly otherwise: it
     * may be a single-segment model's own folder). */
    *strrchr(old, '/') = 0;
    rmdir(old);
    bs_log_info("hub", "model %s moved to %s", name, now);
    return 0;
}

int bs_hub_migrate_layout(bs_hub *hub, bs_err *err)
{
    if (!bs_hub_store(hub)) return 0;
    json_t *docs = NULL;
    int rc = bs_store_models_list(bs_hub_store(hub), &docs, err);
    if (rc) return rc;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "model_name"));
        if (!name || !strchr(name, '/') || bs_hub_name_check(name, NULL)) continue;
        bs_err e = {0};
        /* One model that cannot move must not keep the others or the server
         * from starting: it is reported and stays where it was. */
        if (migrate_one(hub, name, docs, &e))
            bs_log_warn("hub", "model %s not moved to the one-folder layout: %s", name, e.msg);
    }
    json_decref(docs);
    return 0;
}
