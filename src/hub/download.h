/* Private to hub/: fetching a repository's files over the Hub's file
 * protocol into a staging folder (used by hub.c, tested on its own). */
#ifndef BS_HUB_DOWNLOAD_H
#define BS_HUB_DOWNLOAD_H

#include "hub/hub.h"

/* Staging folders record the commit their files came from; the caller
 * removes this file before the folder is installed. */
#define BS_HUB_COMMIT_FILE ".commit"

typedef struct bs_hub_fetch {
    const char *endpoint; /* e.g. https://huggingface.co (no trailing '/') */
    const char *token;    /* bearer token or NULL */
    const char *repo;     /* checked Hub id */
    const char *revision; /* checked revision */
    bs_hub_progress_fn cb;
    void *ud;
    int max_attempts; /* per file, for dropped connections; 0 = 4 */
} bs_hub_fetch;

/* Lists the repo at its revision and fetches every wanted file into dir
 * (created; subfolders too). Each file is fetched as "<file>.part",
 * resumed with a Range request when a .part exists (from an earlier
 * attempt or a dropped connection), checked (size, and sha256 when the Hub
 * gives one: the listing's lfs.sha256, X-Linked-Etag or a 64-hex ETag) and
 * renamed to its name; files already there are kept when an earlier
 * attempt listed the same commit (otherwise dir is emptied first). commit (may be NULL)
 * gets the listing's commit sha (41 bytes). Errors: see bs_hub_download. */
int bs_hub_fetch_repo(const bs_hub_fetch *f, const char *dir, char commit[41], bs_err *err);

#endif
