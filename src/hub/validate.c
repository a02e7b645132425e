/* The engine's check of a complete model folder before it is registered:
 * config.json and the safetensors headers describe every tensor the
 * architecture needs with the right shape (bs_model_check: nothing is
 * packed or converted), and a tokenizer loads. Kept apart from hub.c so that tests of the cache can
 * plug their own. */
#include "hub/internal.h"
#include "bertstudio/model.h"
#include "bertstudio/tokenizer.h"

#include <stdio.h>
#include <sys/stat.h>

static int exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

int bs_hub_validate_folder(const char *dir, void *ud, bs_err *err)
{
    (void)ud;
    if (!exists(dir, "config.json"))
        return bs_err_set(err, BS_ENOTFOUND, "%s: no config.json", dir);
    if (!exists(dir, "tokenizer.json") && !exists(dir, "vocab.txt") &&
        !(exists(dir, "vocab.json") && exists(dir, "merges.txt")))
        return bs_err_set(err, BS_ENOTFOUND,
                          "%s: no tokenizer (tokenizer.json, vocab.txt, or vocab.json + "
                          "merges.txt)",
                          dir);
    /* Headers and shapes only: the weights are read when the model loads. */
    int rc = bs_model_check(dir, err);
    if (rc) return rc;
    bs_tokenizer *tok = NULL;
    rc = bs_tokenizer_load(dir, &tok, err);
    bs_tokenizer_free(tok);
    return rc;
}
