/*
 * The model cache: model folders under DATA_DIR/models/<model_name>/, one
 * model_cache document per (model_name, task_type) in the store, filled by
 * downloads from the HuggingFace Hub (file protocol, libcurl) or by imports
 * of local folders. Nothing half-written is ever registered: files are
 * fetched or copied into DATA_DIR/models/.partial/, checked (checksums,
 * bs_model_load, tokenizer) and only then renamed into place and recorded.
 *
 * Checksums: each model folder holds ".sha256sums", one line per file in the
 * format of sha256sum(1) ("<hex>  <relative path>\n", sorted by path in byte
 * order); `sha256sum -c .sha256sums` run in the folder verifies it. The
 * document's "checksum" is "sha256:" + the sha256 of that manifest's bytes.
 *
 * Model names: the seed's ^[a-zA-Z0-9\-_/]+$, at most two non-empty
 * segments ("name" or "org/name", as Hub ids are), so a name never holds
 * "." or ".." and maps to exactly one folder under the models folder.
 *
 * Thread safety: a bs_hub may be used from any number of threads; two
 * downloads or imports of the same name at once: the second gets BS_EBUSY.
 */
#ifndef BS_HUB_HUB_H
#define BS_HUB_HUB_H

#include "bertstudio/common.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BS_HUB_NAME_MAX         200
#define BS_HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define BS_HUB_MANIFEST         ".sha256sums"

typedef struct bs_hub bs_hub;

/* ── names and paths (name.c) ── */

/* 0 when name is a valid model name (see above); BS_EINVAL naming the rule
 * broken otherwise. */
int bs_hub_name_check(const char *name, bs_err *err);
/* 0 when rev is a usable Hub revision (branch, tag or commit: letters,
 * digits, '.', '_', '-', '/', no "..", at most 128 bytes). */
int bs_hub_revision_check(const char *rev, bs_err *err);
/* The folder name of a model below models_dir: "org/name" -> "org--name",
 * "name" -> "name". Two names map to one folder only when one of them has
 * "--" or a segment starting or ending with '-' (the Hub allows neither);
 * the cache refuses the second with BS_ECONFLICT. BS_ERANGE when out is too
 * small. */
int bs_hub_name_folder(const char *name, char *out, size_t len);
/* Writes models_dir/<bs_hub_name_folder(name)> into out after checking the
 * name; when that path
 * (or any of its parents below models_dir) exists, its realpath must stay
 * inside realpath(models_dir) (no symlink escapes). BS_EINVAL for a bad
 * name, BS_EPERM for an escape, BS_ERANGE when out is too small. */
int bs_hub_model_path(const char *models_dir, const char *name, char *out, size_t len, bs_err *err);

/* ── checksums (checksum.c) ── */

/* sha256 of a file as 64 lowercase hex digits (+NUL) into hex[65];
 * *size (may be NULL) gets its length. */
int bs_hub_sha256_file(const char *path, char hex[65], int64_t *size, bs_err *err);
/* Hashes every regular file below dir (except the manifest), writes
 * dir/.sha256sums and fills checksum ("sha256:<hex>", 72 bytes with NUL)
 * and *total_bytes (the files' sizes, manifest excluded). */
int bs_hub_manifest_write(const char *dir, char checksum[72], int64_t *total_bytes, bs_err *err);
/* Recomputes every digest of dir/.sha256sums and the aggregate; BS_EFORMAT
 * naming the first file that differs (or is missing). checksum may be NULL. */
int bs_hub_manifest_verify(const char *dir, char checksum[72], bs_err *err);

/* ── progress (download.c) ── */

typedef struct bs_hub_progress {
    const char *stage; /* "listing", "downloading", "validating", "done" */
    const char *file;  /* file being fetched, or NULL */
    int64_t done;      /* bytes on disk so far (resumed bytes included) */
    int64_t total;     /* bytes in all, -1 while unknown */
    double rate;       /* bytes/s transferred in this session */
    double eta_s;      /* seconds left, -1 when unknown */
    int files_done, files_total;
} bs_hub_progress;
/* Called at most ~10 times a second and at each stage change; returning
 * non-zero cancels the download (BS_EIO "cancelled"). */
typedef int (*bs_hub_progress_fn)(const bs_hub_progress *p, void *ud);

/* ── the cache (hub.c) ── */

typedef struct bs_hub_opts {
    const char *data_dir; /* models live in data_dir/models (created) */
    bs_store *store;      /* borrowed; must outlive the hub */
    const char *endpoint; /* NULL: env HF_ENDPOINT, else BS_HUB_DEFAULT_ENDPOINT */
    const char *token;    /* NULL: env HF_TOKEN (may stay unset) */
    /* Checks a complete folder before it is registered. NULL: the engine's
     * check (bs_model_load succeeds and a tokenizer loads). */
    int (*validate)(const char *dir, void *ud, bs_err *err);
    void *validate_ud;
    /* True for a model the caller has loaded or is loading: the disk cap
     * never evicts it. NULL: none is. */
    bool (*in_use)(const char *model_name, void *ud);
    void *in_use_ud;
} bs_hub_opts;

/* Opens the cache (creates data_dir/models, removes leftovers of crashed
 * imports; partial downloads are kept for resuming). *out owns the hub. */
int bs_hub_open(const bs_hub_opts *opts, bs_hub **out, bs_err *err);
void bs_hub_close(bs_hub *hub);
/* Absolute path of the models folder. */
const char *bs_hub_models_dir(const bs_hub *hub);
const char *bs_hub_endpoint(const bs_hub *hub);
bs_store *bs_hub_store(const bs_hub *hub);

typedef struct bs_hub_download_req {
    const char *model_name;     /* Hub id, also the local name */
    const char *revision;       /* NULL = "main" */
    const char *task_type;      /* NULL = derived from config.json */
    const char *cache_priority; /* NULL = "normal" */
    const char *token;          /* NULL or "": the hub's (HF_TOKEN) */
} bs_hub_download_req;

/* Downloads the files inference needs, verifies them, validates the folder,
 * moves it into place and upserts its model_cache document (*out, may be
 * NULL, gets it). Errors: BS_EINVAL (bad name/revision), BS_ENOTFOUND (no
 * such repo or revision, or no safetensors weights), BS_EAUTH (the Hub wants
 * a token: set HF_TOKEN), BS_EIO (network; partial files are kept and the
 * next attempt resumes), BS_EFORMAT (checksum or size mismatch: the
 * file is dropped), BS_EUNPROCESSABLE (the files do not make a usable model:
 * the validation's message), BS_EBUSY (same name in progress). */
int bs_hub_download(bs_hub *hub, const bs_hub_download_req *req, bs_hub_progress_fn cb, void *ud,
                    json_t **out, bs_err *err);

/* Copies a local model folder (the files inference needs, symlinks
 * followed, as HF cache snapshots are symlinks) into the cache under
 * model_name, then validates and registers it like a download. src must be
 * a directory. download_url records "file://<absolute src>". */
int bs_hub_import(bs_hub *hub, const char *src, const char *model_name, const char *task_type,
                  const char *cache_priority, json_t **out, bs_err *err);

/* The model_cache documents, least recently used first. */
int bs_hub_list(bs_hub *hub, json_t **out, bs_err *err);
/* One model's document (task_type NULL: the most recently used entry);
 * BS_ENOTFOUND when not registered. */
int bs_hub_info(bs_hub *hub, const char *model_name, const char *task_type, json_t **out,
                bs_err *err);
/* Deletes the model's folder and every document of it. BS_ENOTFOUND when
 * neither exists. The caller unloads it first (registry). */
int bs_hub_remove(bs_hub *hub, const char *model_name, bs_err *err);

/* True when name is being downloaded or imported right now. */
bool bs_hub_busy(bs_hub *hub, const char *model_name);

/* Searches the Hub's model index (search.c): words in search, a tag in tag
 * (both may be NULL), at most limit results (0 = 20, max 100). *out: an
 * array of {"model_name", "pipeline_tag", "tags", "downloads", "likes",
 * ...}. BS_EIO when the Hub cannot be reached or answers an error. */
int bs_hub_search(bs_hub *hub, const char *search, const char *tag, int limit, json_t **out,
                  bs_err *err);

/* ── derived fields (describe.c) ── */

/* task_type from config.json "architectures" (see docs/models.md);
 * has_st: the folder has sentence-transformers files (modules.json). */
const char *bs_hub_task_type(const json_t *config, bool has_st);
/* Builds the model_cache document of a complete folder. */
int bs_hub_describe(const char *dir, const char *model_name, const char *task_type,
                    const char *download_url, const char *cache_priority, const char *checksum,
                    int64_t file_size, int64_t now_ms, json_t **out, bs_err *err);

/* ── the files a model needs (files.c) ── */

/* True when rfilename (a repo-relative path) is one inference needs:
 * config, safetensors weights (root level) and their index, tokenizer,
 * sentence-transformers and generation files. */
bool bs_hub_file_wanted(const char *rfilename);

/* ── eviction (evict.c) ── */

/* Picks the entries to evict so that the cached entries' file_size sum is
 * at most max_bytes: cached entries (is_cached true) whose model_name is not
 * in keep[0..nkeep), by cache_priority (low, normal, high), then
 * last_accessed (oldest first), then access_count (fewest first). entries is
 * an array of model_cache documents (ISO dates); *out gets the victims'
 * model_names in eviction order (a model with several entries counts once
 * with the sum of its sizes). */
int bs_hub_eviction_plan(const json_t *entries, int64_t max_bytes, const char *const *keep,
                         size_t nkeep, json_t **out, bs_err *err);
/* Applies the plan with max_bytes = setting model_cache_max_bytes (default
 * 10 GiB; 0 = unlimited), keeping keep[] and the models in use (opts
 * in_use): removes the victims' folders and marks their documents
 * is_cached false. *evicted (may be NULL) gets the names. Called
 * after every download and import, keeping the new model. */
int bs_hub_enforce_cap(bs_hub *hub, const char *const *keep, size_t nkeep, json_t **evicted,
                       bs_err *err);

/* ── demo models (demo.c) ── */

/* On an empty cache, imports every model folder of fixtures_dir (NULL: env
 * BERTSTUDIO_DEMO_MODELS, else the compiled-in BS_DEMO_MODELS_DIR when
 * defined) as "demo/<folder>" (e.g. demo/tiny-bert-ner). Skips folders that
 * do not validate (logged). *n (may be NULL) gets how many were imported;
 * a missing fixtures_dir is not an error (0 imported). */
int bs_hub_register_demo_models(bs_hub *hub, const char *fixtures_dir, int *n, bs_err *err);

#endif
