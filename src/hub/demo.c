/* Out of the box the server has models to try: on an empty cache the tiny
 * random-weight fixture models are imported as demo/<folder>, so every
 * endpoint answers with no network. Their outputs are meaningless. */
#include "hub/internal.h"
#include "util/log.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bs_hub_register_demo_models(bs_hub *hub, const char *fixtures_dir, int *n, bs_err *err)
{
    if (n) *n = 0;
    const char *dir = fixtures_dir ? fixtures_dir : getenv("BERTSTUDIO_DEMO_MODELS");
#ifdef BS_DEMO_MODELS_DIR
    if (!dir) dir = BS_DEMO_MODELS_DIR;
#endif
    if (!dir || !*dir) return 0;
    json_t *entries = NULL;
    int rc = bs_hub_list(hub, &entries, err);
    if (rc) return rc;
    size_t have = json_array_size(entries);
    json_decref(entries);
    if (have) return 0;
    /* Sorted, so that the demo set is the same on every machine. */
    struct dirent **list = NULL;
    int count = scandir(dir, &list, NULL, alphasort);
    if (count < 0) {
        bs_log_info("hub", "no demo models at %s", dir);
        return 0;
    }
    int done = 0;
    for (int i = 0; i < count; i++) {
        const char *base = list[i]->d_name;
        char src[PATH_MAX], cfg[PATH_MAX + 16], name[BS_HUB_NAME_MAX + 8];
        struct stat st;
        if (base[0] == '.' || (size_t)snprintf(src, sizeof src, "%s/%s", dir, base) >= sizeof src ||
            (size_t)snprintf(cfg, sizeof cfg, "%s/config.json", src) >= sizeof cfg ||
            stat(cfg, &st) || (size_t)snprintf(name, sizeof name, "demo/%s", base) >= sizeof name ||
            bs_hub_name_check(name, NULL))
            continue;
        bs_err e;
        if (bs_hub_import(hub, src, name, NULL, "normal", NULL, &e))
            bs_log_warn("hub", "demo model %s skipped: %s", name, e.msg);
        else
            done++;
    }
    for (int i = 0; i < count; i++) free(list[i]);
    free(list);
    if (done) bs_log_info("hub", "registered %d demo models (random weights) from %s", done, dir);
    if (n) *n = done;
    return 0;
}
