/* The model cache proper: where folders go, how a complete folder becomes a
 * registered model (validate, manifest, atomic rename, store document), and
 * listing, info and removal. Downloads and imports both end in install(). */
#include "hub/download.h"
#include "hub/internal.h"
#include "model/safetensors.h"
#include "util/log.h"
#include "util/time.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct busy_name {
    struct busy_name *next;
    char name[BS_HUB_NAME_MAX + 1];
} busy_name;

struct bs_hub {
    char models_dir[PATH_MAX];
    char partial_dir[PATH_MAX + 16];
    char endpoint[1024];
    char *token;
    bs_store *store;
    int (*validate)(const char *dir, void *ud, bs_err *err);
    void *validate_ud;
    bool (*in_use)(const char *model_name, void *ud);
    void *in_use_ud;
    pthread_mutex_t mu;
    busy_name *busy;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Removes leftovers of imports interrupted by a crash (downloads' partial
 * folders stay: they are resumed). Staging folders carry their process id
 * ("import-<pid>-...", "trash-<pid>-..."): those of a live process are
 * another cache's work in progress and are left alone. */
static void sweep_partial(bs_hub *hub)
{
    DIR *d = opendir(hub->partial_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *p = !strncmp(e->d_name, "import-", 7)  ? e->d_name + 7
                        : !strncmp(e->d_name, "trash-", 6) ? e->d_name + 6
                                                           : NULL;
        if (!p) continue;
        long pid = strtol(p, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", hub->partial_dir, e->d_name);
        bs_hub_rmtree(path, NULL);
    }
    closedir(d);
}

int bs_hub_open(const bs_hub_opts *opts, bs_hub **out, bs_err *err)
{
    pthread_once(&curl_once, curl_init);
    bs_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return bs_err_set(err, BS_ENOMEM, "out of memory");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models", opts->data_dir ? opts->data_dir : "./data");
    int rc = bs_hub_mkdirs(dir, err);
    if (!rc && !realpath(dir, hub->models_dir))
        rc = bs_err_set(err, BS_EIO, "models folder %s: %s", dir, strerror(errno));
    if (rc) {
        free(hub);
        return rc;
    }
    snprintf(hub->partial_dir, sizeof hub->partial_dir, "%s/.partial", hub->models_dir);
    const char *ep = opts->endpoint ? opts->endpoint : getenv("HF_ENDPOINT");
    snprintf(hub->endpoint, sizeof hub->endpoint, "%s", ep && *ep ? ep : BS_HUB_DEFAULT_ENDPOINT);
    size_t n = strlen(hub->endpoint);
    while (n > 0 && hub->endpoint[n - 1] == '/') hub->endpoint[--n] = 0;
    const char *tok = opts->token ? opts->token : getenv("HF_TOKEN");
    hub->token = tok && *tok ? strdup(tok) : NULL;
    hub->store = opts->store;
    hub->validate = opts->validate ? opts->validate : bs_hub_validate_folder;
    hub->validate_ud = opts->validate_ud;
    hub->in_use = opts->in_use;
    hub->in_use_ud = opts->in_use_ud;
    pthread_mutex_init(&hub->mu, NULL);
    sweep_partial(hub);
    bs_err me = {0};
    if (bs_hub_migrate_layout(hub, &me))
        bs_log_warn("hub", "models folder layout not checked: %s", me.msg);
    *out = hub;
    return 0;
}

void bs_hub_close(bs_hub *hub)
{
    if (!hub) return;
    while (hub->busy) {
        busy_name *b = hub->busy;
        hub->busy = b->next;
        free(b);
    }
    pthread_mutex_destroy(&hub->mu);
    free(hub->token);
    free(hub);
}

const char *bs_hub_models_dir(const bs_hub *hub)
{
    return hub->models_dir;
}
const char *bs_hub_endpoint(const bs_hub *hub)
{
    return hub->endpoint;
}
bs_store *bs_hub_store(const bs_hub *hub)
{
    return hub->store;
}

bool bs_hub_in_use(bs_hub *hub, const char *name)
{
    return hub->in_use && hub->in_use(name, hub->in_use_ud);
}

bool bs_hub_busy(bs_hub *hub, const char *name)
{
    pthread_mutex_lock(&hub->mu);
    bool found = false;
    for (busy_name *b = hub->busy; b && !found; b = b->next) found = !strcmp(b->name, name);
    pthread_mutex_unlock(&hub->mu);
    return found;
}

static int claim(bs_hub *hub, const char *name, bs_err *err)
{
    pthread_mutex_lock(&hub->mu);
    for (busy_name *b = hub->busy; b; b = b->next)
        if (!strcmp(b->name, name)) {
            pthread_mutex_unlock(&hub->mu);
            return bs_err_set(err, BS_EBUSY, "model %s is already being downloaded or imported",
                              name);
        }
    busy_name *b = calloc(1, sizeof *b);
    if (!b) {
        pthread_mutex_unlock(&hub->mu);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    snprintf(b->name, sizeof b->name, "%s", name);
    b->next = hub->busy;
    hub->busy = b;
    pthread_mutex_unlock(&hub->mu);
    return 0;
}

static void unclaim(bs_hub *hub, const char *name)
{
    pthread_mutex_lock(&hub->mu);
    for (busy_name **p = &hub->busy; *p; p = &(*p)->next)
        if (!strcmp((*p)->name, name)) {
            busy_name *b = *p;
            *p = b->next;
            free(b);
            break;
        }
    pthread_mutex_unlock(&hub->mu);
}

/* Replaces every from in err's message by to. */
static void msg_replace(bs_err *err, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    if (!err || !fl) return;
    char out[sizeof err->msg];
    size_t j = 0;
    for (const char *p = err->msg; *p && j + 1 < sizeof out;) {
        if (!strncmp(p, from, fl) && j + tl + 1 < sizeof out) {
            memcpy(out + j, to, tl);
            j += tl;
            p += fl;
        } else {
            out[j++] = *p++;
        }
    }
    out[j] = 0;
    memcpy(err->msg, out, j + 1);
}

/* Errors name the folder a model would have become, relative to the data
 * dir ("models/org--name/config.json"), never the server's absolute paths
 * nor its staging folders. */
static void relative_msg(bs_hub *hub, bs_err *err, const char *staging, const char *name)
{
    char flat[2 * BS_HUB_NAME_MAX + 2], rel[2 * BS_HUB_NAME_MAX + 16];
    if (bs_hub_name_folder(name, flat, sizeof flat)) return;
    snprintf(rel, sizeof rel, "models/%s", flat);
    msg_replace(err, staging, rel);
    msg_replace(err, hub->models_dir, "models");
}

static int check_priority(const char *p, bs_err *err)
{
    if (p && strcmp(p, "low") && strcmp(p, "normal") && strcmp(p, "high"))
        return bs_err_set(err, BS_EINVAL, "cache_priority \"%.40s\" must be low, normal or high",
                          p);
    return 0;
}

static int check_task(const char *t, bs_err *err)
{
    static const char *const tasks[] = {"classification", "ner",        "qa",
                                        "fill-mask",      "embeddings", "features",
                                        "summarization",  NULL};
    if (!t) return 0;
    for (int i = 0; tasks[i]; i++)
        if (!strcmp(t, tasks[i])) return 0;
    return bs_err_set(err, BS_EINVAL,
                      "task_type \"%.40s\" must be one of classification, ner, qa, fill-mask, "
                      "embeddings, features, summarization",
                      t);
}

/* Turns the complete folder `staging` into the registered model `name`. */
static int install(bs_hub *hub, const char *staging, const char *name, const char *task_type,
                   const char *url, const char *priority, json_t **out, bs_err *err)
{
    char final[PATH_MAX], checksum[72];
    int64_t size = 0;
    json_t *doc = NULL;
    int rc = bs_hub_model_path(hub->models_dir, name, final, sizeof final, err);
    char owner[BS_HUB_NAME_MAX + 1];
    if (!rc) rc = bs_hub_folder_owner(hub, name, owner, sizeof owner, err);
    if (!rc && owner[0])
        rc = bs_err_set(err, BS_ECONFLICT,
                        "model %s would share the folder of model %s (%s); choose another name",
                        name, owner, final + strlen(hub->models_dir) + 1);
    if (!rc && (rc = hub->validate(staging, hub->validate_ud, err))) {
        bs_err_prefix(err, "model %s is not usable", name);
        /* Files that arrived intact but do not make a model: the caller's
         * input is unusable (422), not malformed in transit. */
        if (rc == BS_EFORMAT || rc == BS_EUNSUPPORTED || rc == BS_ENOTFOUND || rc == BS_ERANGE ||
            rc == BS_EUNPROCESSABLE) {
            rc = BS_EUNPROCESSABLE;
            if (err) err->code = rc;
        }
    }
    if (!rc) rc = bs_hub_manifest_write(staging, checksum, &size, err);
    if (!rc)
        rc = bs_hub_describe(staging, name, task_type, url, priority, checksum, size,
                             hub->store ? bs_store_now(hub->store) : bs_time_now_ms(), &doc, err);
    if (rc) return rc;
    json_object_set_new(doc, "local_path", json_string(final));

    /* Move into place: the old folder (a re-download) goes aside first so
     * that the name always points at a complete folder or at nothing. */
    char trash[PATH_MAX + 64];
    struct stat st;
    int replaced = 0;
    snprintf(trash, sizeof trash, "%s/trash-%d-XXXXXX", hub->partial_dir, (int)getpid());
    if (!rc && !lstat(final, &st)) {
        /* rename() may replace an empty directory: mkdtemp's is. */
        if (!mkdtemp(trash) || rename(final, trash))
            rc = bs_err_set(err, BS_EIO, "cannot move %s aside: %s", final, strerror(errno));
        else
            replaced = 1;
    }
    if (!rc && rename(staging, final))
        rc = bs_err_set(err, BS_EIO, "cannot move %s to %s: %s", staging, final, strerror(errno));
    if (replaced) bs_hub_rmtree(trash, NULL);
    if (!rc && hub->store) {
        json_t *stored = NULL;
        rc = bs_store_models_upsert(hub->store, doc, &stored, err);
        if (rc) {
            bs_hub_rmtree(final, NULL);
        } else {
            json_decref(doc);
            doc = stored;
        }
    }
    if (rc) {
        json_decref(doc);
        return rc;
    }
    json_t *evicted = NULL;
    const char *keep[] = {name};
    bs_err e2;
    if (hub->store && bs_hub_enforce_cap(hub, keep, 1, &evicted, &e2))
        bs_log_warn("hub", "cache cap not enforced: %s", e2.msg);
    json_decref(evicted);
    if (out)
        *out = doc;
    else
        json_decref(doc);
    return 0;
}

int bs_hub_download(bs_hub *hub, const bs_hub_download_req *req, bs_hub_progress_fn cb, void *ud,
                    json_t **out, bs_err *err)
{
    const char *rev = req->revision && *req->revision ? req->revision : "main";
    int rc = bs_hub_name_check(req->model_name, err);
    if (!rc) rc = bs_hub_revision_check(rev, err);
    if (!rc) rc = check_priority(req->cache_priority, err);
    if (!rc) rc = check_task(req->task_type, err);
    if (!rc) rc = claim(hub, req->model_name, err);
    if (rc) return rc;
    char flat[2 * BS_HUB_NAME_MAX + 2], frev[130], staging[PATH_MAX + 600];
    bs_hub_name_folder(req->model_name, flat, sizeof flat);
    snprintf(frev, sizeof frev, "%s", rev);
    for (char *p = frev; *p; p++)
        if (*p == '/') *p = '_';
    snprintf(staging, sizeof staging, "%s/%s@%s", hub->partial_dir, flat, frev);
    rc = bs_hub_mkdirs(staging, err);
    bs_hub_fetch f = {.endpoint = hub->endpoint,
                      .token = req->token && *req->token ? req->token : hub->token,
                      .repo = req->model_name,
                      .revision = rev,
                      .cb = cb,
                      .ud = ud};
    if (!rc) rc = bs_hub_fetch_repo(&f, staging, NULL, err);
    if (!rc) {
        char marker[PATH_MAX + 700];
        snprintf(marker, sizeof marker, "%s/%s", staging, BS_HUB_COMMIT_FILE);
        unlink(marker);
    }
    if (!rc && cb) {
        bs_hub_progress p = {.stage = "validating", .total = -1, .eta_s = -1};
        cb(&p, ud);
    }
    char url[2048];
    snprintf(url, sizeof url, "%s/%s", hub->endpoint, req->model_name);
    if (!rc)
        rc = install(hub, staging, req->model_name, req->task_type, url, req->cache_priority, out,
                     err);
    /* A folder that downloaded completely but failed validation will not
     * get better by resuming: start over next time. */
    if (rc == BS_EUNPROCESSABLE || rc == BS_ENOTFOUND || !rc) bs_hub_rmtree(staging, NULL);
    if (rc) relative_msg(hub, err, staging, req->model_name);
    unclaim(hub, req->model_name);
    if (!rc && cb) {
        bs_hub_progress p = {.stage = "done", .total = -1, .eta_s = -1};
        cb(&p, ud);
    }
    return rc;
}

/* One file of an import, before anything is copied: a symlink must stay
 * inside the imported folder src (else a model could publish any file the
 * server can read through its tokenizer or weights), and a safetensors
 * header must hold against the file's size (else a 3 GiB sparse file is
 * copied in full before being refused). */
static int precheck(const char *src, const char *path, const char *rel, bs_err *err)
{
    struct stat st;
    if (lstat(path, &st)) return 0; /* absent: not copied */
    if (S_ISLNK(st.st_mode)) {
        char real[PATH_MAX];
        size_t n = strlen(src);
        if (!realpath(path, real) || strncmp(real, src, n) || real[n] != '/')
            return bs_err_set(err, BS_EUNPROCESSABLE,
                              "%s is a symbolic link leading outside the imported folder", rel);
    }
    size_t n = strlen(rel);
    if (n > 12 && !strcmp(rel + n - 12, ".safetensors") && !stat(path, &st) &&
        S_ISREG(st.st_mode)) {
        bs_st_file f;
        bs_err e = {0};
        if (bs_st_open(path, &f, &e))
            return bs_err_set(err, BS_EUNPROCESSABLE, "%s is not a valid safetensors file (%s)",
                              rel, e.msg);
        bs_st_close(&f);
    }
    return 0;
}

/* Copies the wanted files of src (a directory, its real path) into dst,
 * once every one of them passed precheck. */
static int copy_wanted(const char *src, const char *dst, bs_err *err)
{
    DIR *d = opendir(src);
    if (!d) return bs_err_set(err, BS_EIO, "%s: %s", src, strerror(errno));
    struct dirent *e;
    int rc = 0;
    char path[2 * PATH_MAX];
    while (!rc && (e = readdir(d))) {
        if (!bs_hub_file_wanted(e->d_name)) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", src, e->d_name) < sizeof path)
            rc = precheck(src, path, e->d_name, err);
    }
    closedir(d);
    if (!rc && (size_t)snprintf(path, sizeof path, "%s/1_Pooling", src) < sizeof path)
        rc = precheck(src, path, "1_Pooling", err);
    if (!rc && (size_t)snprintf(path, sizeof path, "%s/1_Pooling/config.json", src) < sizeof path)
        rc = precheck(src, path, "1_Pooling/config.json", err);
    if (rc) return rc;
    d = opendir(src);
    if (!d) return bs_err_set(err, BS_EIO, "%s: %s", src, strerror(errno));
    int n = 0;
    char a[2 * PATH_MAX], b[2 * PATH_MAX];
    struct stat st;
    while (!rc && (e = readdir(d))) {
        if (!bs_hub_file_wanted(e->d_name)) continue;
        if ((size_t)snprintf(a, sizeof a, "%s/%s", src, e->d_name) >= sizeof a ||
            (size_t)snprintf(b, sizeof b, "%s/%s", dst, e->d_name) >= sizeof b)
            continue;
        if (stat(a, &st) || !S_ISREG(st.st_mode)) continue;
        rc = bs_hub_copy_file(a, b, err);
        n++;
    }
    closedir(d);
    if (!rc && (size_t)snprintf(a, sizeof a, "%s/1_Pooling/config.json", src) < sizeof a &&
        (size_t)snprintf(b, sizeof b, "%s/1_Pooling/config.json", dst) < sizeof b &&
        !stat(a, &st) && S_ISREG(st.st_mode))
        rc = bs_hub_copy_file(a, b, err);
    if (!rc && !n) rc = bs_err_set(err, BS_ENOTFOUND, "%s holds no model files", src);
    return rc;
}

int bs_hub_import(bs_hub *hub, const char *src, const char *model_name, const char *task_type,
                  const char *cache_priority, json_t **out, bs_err *err)
{
    int rc = bs_hub_name_check(model_name, err);
    if (!rc) rc = check_priority(cache_priority, err);
    if (!rc) rc = check_task(task_type, err);
    if (rc) return rc;
    char real[PATH_MAX];
    struct stat st;
    if (!src || !*src) return bs_err_set(err, BS_EINVAL, "path is empty");
    if (!realpath(src, real) || stat(real, &st))
        return bs_err_set(err, BS_ENOTFOUND, "path %.300s: %s", src, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bs_err_set(err, BS_EINVAL, "path %.300s is not a directory", src);
    if ((rc = claim(hub, model_name, err))) return rc;
    char flat[2 * BS_HUB_NAME_MAX + 2], staging[PATH_MAX + 600];
    bs_hub_name_folder(model_name, flat, sizeof flat);
    /* mkdtemp: unique even between two caches opened on one folder. */
    snprintf(staging, sizeof staging, "%s/import-%d-%s-XXXXXX", hub->partial_dir, (int)getpid(),
             flat);
    rc = bs_hub_mkdirs(hub->partial_dir, err);
    if (!rc && !mkdtemp(staging))
        rc = bs_err_set(err, BS_EIO, "cannot create a folder in %s: %s", hub->partial_dir,
                        strerror(errno));
    if (!rc) rc = copy_wanted(real, staging, err);
    char url[PATH_MAX + 16];
    snprintf(url, sizeof url, "file://%s", real);
    if (!rc) rc = install(hub, staging, model_name, task_type, url, cache_priority, out, err);
    if (rc) relative_msg(hub, err, staging, model_name);
    bs_hub_rmtree(staging, NULL);
    unclaim(hub, model_name);
    return rc;
}

static int need_store(bs_hub *hub, bs_err *err)
{
    return hub->store ? 0 : bs_err_set(err, BS_ESTORE, "the model cache has no store");
}

int bs_hub_list(bs_hub *hub, json_t **out, bs_err *err)
{
    int rc = need_store(hub, err);
    return rc ? rc : bs_store_models_list(hub->store, out, err);
}

int bs_hub_info(bs_hub *hub, const char *name, const char *task_type, json_t **out, bs_err *err)
{
    int rc = bs_hub_name_check(name, err);
    if (!rc) rc = need_store(hub, err);
    return rc ? rc : bs_store_models_get(hub->store, name, task_type, out, err);
}

int bs_hub_remove(bs_hub *hub, const char *name, bs_err *err)
{
    char path[PATH_MAX];
    int rc = bs_hub_model_path(hub->models_dir, name, path, sizeof path, err);
    if (!rc) rc = need_store(hub, err);
    if (rc) return rc;
    if (bs_hub_busy(hub, name))
        return bs_err_set(err, BS_EBUSY, "model %s is being downloaded or imported", name);
    /* A folder that is another model's stays: name only maps to it. */
    char owner[BS_HUB_NAME_MAX + 1];
    if ((rc = bs_hub_folder_owner(hub, name, owner, sizeof owner, err))) return rc;
    struct stat st;
    int on_disk = !owner[0] && !lstat(path, &st);
    int64_t removed = 0;
    rc = bs_store_models_delete(hub->store, name, NULL, &removed, err);
    if (rc) return rc;
    if (on_disk) {
        /* Moved aside first, in one rename: a load in progress sees the
         * whole folder or none, never a half-deleted one. */
        char trash[PATH_MAX + 64];
        snprintf(trash, sizeof trash, "%s/trash-%d-XXXXXX", hub->partial_dir, (int)getpid());
        if (!bs_hub_mkdirs(hub->partial_dir, NULL) && mkdtemp(trash) && !rename(path, trash))
            rc = bs_hub_rmtree(trash, err);
        else
            rc = bs_hub_rmtree(path, err);
        if (rc) return rc;
    }
    if (!on_disk && removed == 0)
        return bs_err_set(err, BS_ENOTFOUND, "model %s is not in the cache", name);
    return 0;
}
