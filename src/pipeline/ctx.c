/* Loading a model folder for the pipelines: tokenizer, model, and the
 * sentence-transformers and generation side files read once, so that runs
 * share an immutable context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"

static json_t *load_json_file(const char *dir, const char *name, int *missing, bs_err *err)
{
    char path[4096];
    *missing = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        bs_err_set(err, BS_EINVAL, "model folder path is too long");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = 1;
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    fclose(f);
    if (!j) bs_err_set(err, BS_EFORMAT, "%s: invalid JSON at line %d: %s", name, je.line, je.text);
    return j;
}

/* modules.json -> Pooling config and Normalize; sentence_bert_config.json. */
static int load_sentence_transformers(bs_pipeline_ctx *ctx, const char *dir, bs_err *err)
{
    int missing;
    json_t *mods = load_json_file(dir, "modules.json", &missing, err);
    if (missing) return 0;
    if (!mods) return BS_EFORMAT;
    int rc = 0;
    if (!json_is_array(mods)) {
        rc = bs_err_set(err, BS_EFORMAT, "modules.json: expected a list of modules");
        goto done;
    }
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m)
    {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *path = json_string_value(json_object_get(m, "path"));
        if (!type) continue;
        if (strstr(type, "Normalize")) ctx->st_normalize = 1;
        if (!strstr(type, "Pooling") || !path) continue;
        if (strstr(path, "..")) {
            rc = bs_err_set(err, BS_EFORMAT,
                            "modules.json: pooling path '%s' leaves the model folder", path);
            goto done;
        }
        char name[1024];
        snprintf(name, sizeof name, "%s/config.json", path);
        json_t *pc = load_json_file(dir, name, &missing, err);
        if (missing) {
            rc = bs_err_set(err, BS_EFORMAT, "modules.json names %s, which does not exist", name);
            goto done;
        }
        if (!pc) {
            rc = BS_EFORMAT;
            goto done;
        }
        static const struct {
            const char *key;
            unsigned bit;
        } modes[] = {
            {"pooling_mode_cls_token", BS_POOLBIT_CLS},
            {"pooling_mode_mean_tokens", BS_POOLBIT_MEAN},
            {"pooling_mode_max_tokens", BS_POOLBIT_MAX},
            {"pooling_mode_mean_sqrt_len_tokens", BS_POOLBIT_MEAN_SQRT},
        };
        for (size_t k = 0; k < sizeof modes / sizeof *modes; k++)
            if (json_is_true(json_object_get(pc, modes[k].key))) ctx->st_pooling |= modes[k].bit;
        json_decref(pc);
    }
    json_t *sb = load_json_file(dir, "sentence_bert_config.json", &missing, err);
    if (!missing && !sb) {
        rc = BS_EFORMAT;
        goto done;
    }
    json_t *msl = json_object_get(sb, "max_seq_length");
    if (json_is_integer(msl) && json_integer_value(msl) > 0)
        ctx->st_max_seq_len = (size_t)json_integer_value(msl);
    json_decref(sb);
done:
    json_decref(mods);
    return rc;
}

/* config.json's function_to_apply, which transformers' text classification
 * honours when neither the request nor problem_type decides. */
static bs_cls_function config_function(const bs_model *m)
{
    const char *fn = bs_model_function_to_apply(m);
    static const char *const names[] = {"softmax", "sigmoid", "none"};
    for (int i = 0; fn && i < 3; i++)
        if (!strcmp(fn, names[i])) return (bs_cls_function)(BS_CLS_FN_SOFTMAX + i);
    return BS_CLS_FN_DEFAULT;
}

int bs_pipeline_ctx_load(const char *dir, const bs_model_opts *opts, bs_pipeline_ctx **out,
                         bs_err *err)
{
    *out = NULL;
    bs_pipeline_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = bs_tokenizer_load(dir, &ctx->tok, err);
    if (!rc) rc = bs_model_load(dir, opts, &ctx->model, err);
    if (!rc) ctx->config_function = config_function(ctx->model);
    if (!rc) rc = load_sentence_transformers(ctx, dir, err);
    if (rc) {
        bs_pipeline_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void bs_pipeline_ctx_free(bs_pipeline_ctx *ctx)
{
    if (!ctx) return;
    bs_model_free(ctx->model);
    bs_tokenizer_free(ctx->tok);
    free(ctx);
}

const bs_model *bs_pipeline_ctx_model(const bs_pipeline_ctx *ctx)
{
    return ctx->model;
}
const bs_tokenizer *bs_pipeline_ctx_tokenizer(const bs_pipeline_ctx *ctx)
{
    return ctx->tok;
}
