/* Model names and revisions are the only request data that become paths: this
 * file is the single place that turns them into folders, and it refuses any
 * name that could point outside the models folder. Each model gets one flat
 * folder ("org/name" -> "org--name", as the Hub's own cache spells it), so
 * that no model's folder holds another's. */
#include "hub/hub.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '/';
}

int bs_hub_name_check(const char *name, bs_err *err)
{
    if (!name || !*name) return bs_err_set(err, BS_EINVAL, "model_name is empty");
    size_t n = strnlen(name, BS_HUB_NAME_MAX + 1);
    if (n > BS_HUB_NAME_MAX)
        return bs_err_set(err, BS_EINVAL, "model_name is longer than %d characters",
                          BS_HUB_NAME_MAX);
    int slashes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_char(name[i]))
            return bs_err_set(err, BS_EINVAL,
                              "model_name \"%.80s\" must match ^[a-zA-Z0-9\\-_/]+$ (byte %zu "
                              "is not allowed)",
                              name, i);
        if (name[i] == '/') slashes++;
    }
    if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        return bs_err_set(err, BS_EINVAL,
                          "model_name \"%.80s\" has an empty segment (leading, trailing or "
                          "double '/')",
                          name);
    if (slashes > 1)
        return bs_err_set(err, BS_EINVAL,
                          "model_name \"%.80s\" has more than two segments (use name or "
                          "org/name)",
                          name);
    return 0;
}

/* The Hub's rule for a revision: a commit (40 hex digits) or a branch or
 * tag name as git check-ref-format allows it, within the characters a
 * folder name may hold. */
int bs_hub_revision_check(const char *rev, bs_err *err)
{
    if (!rev || !*rev) return bs_err_set(err, BS_EINVAL, "revision is empty");
    size_t n = strnlen(rev, 129);
    if (n > 128) return bs_err_set(err, BS_EINVAL, "revision is longer than 128 characters");
    for (size_t i = 0; i < n; i++) {
        char c = rev[i];
        if (!(name_char(c) || c == '.'))
            return bs_err_set(err, BS_EINVAL,
                              "revision \"%.80s\" may only hold letters, digits, '.', '_', '-' "
                              "and '/' (byte %zu is not allowed)",
                              rev, i);
    }
    /* Each '/'-separated component: not empty, not starting with '.', not
     * ending with ".lock"; the whole: no "..", not ending with '.'. */
    const char *bad = NULL;
    if (strstr(rev, ".."))
        bad = "holds \"..\"";
    else if (rev[n - 1] == '.')
        bad = "ends with '.'";
    for (const char *p = rev; !bad;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!len)
            bad = "has an empty component (leading, trailing or double '/')";
        else if (p[0] == '.')
            bad = "has a component starting with '.'";
        else if (len >= 5 && !strncmp(p + len - 5, ".lock", 5))
            bad = "has a component ending with \".lock\"";
        if (!end) break;
        p = end + 1;
    }
    if (bad)
        return bs_err_set(err, BS_EINVAL,
                          "revision \"%.80s\" %s: it must be a branch, a tag or a 40-hex commit",
                          rev, bad);
    return 0;
}

/* True when path is root itself or below it (both canonical). */
static int inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    return !strncmp(root, path, n) && (path[n] == '/' || path[n] == 0);
}

int bs_hub_name_folder(const char *name, char *out, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; name[i]; i++) {
        size_t need = name[i] == '/' ? 2 : 1;
        if (j + need >= len) return BS_ERANGE;
        if (name[i] == '/')
            out[j++] = '-', out[j++] = '-';
        else
            out[j++] = name[i];
    }
    if (!len) return BS_ERANGE;
    out[j] = 0;
    return 0;
}

int bs_hub_model_path(const char *models_dir, const char *name, char *out, size_t len, bs_err *err)
{
    int rc = bs_hub_name_check(name, err);
    if (rc) return rc;
    char flat[2 * BS_HUB_NAME_MAX + 2];
    if (bs_hub_name_folder(name, flat, sizeof flat) ||
        (size_t)snprintf(out, len, "%s/%s", models_dir, flat) >= len)
        return bs_err_set(err, BS_ERANGE, "model path for \"%s\" is too long", name);
    char root[PATH_MAX], real[PATH_MAX];
    if (!realpath(models_dir, root))
        return bs_err_set(err, BS_EIO, "models folder %s: %s", models_dir, strerror(errno));
    /* Check the deepest existing prefix: a symlinked org folder or model
     * folder must not lead anywhere else. */
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s", out);
    size_t base = strlen(models_dir);
    for (;;) {
        if (realpath(probe, real)) {
            if (!inside(root, real))
                return bs_err_set(err, BS_EPERM, "model \"%s\" resolves outside the models folder",
                                  name);
            return 0;
        }
        char *slash = strrchr(probe, '/');
        if (!slash || (size_t)(slash - probe) <= base) return 0;
        *slash = 0;
    }
}
