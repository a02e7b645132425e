/* Loading a model folder and the information getters of the public API.
 * Order: config.json (cheap checks first), then the safetensors weights. */
#include "model/model_impl.h"
#include "util/file.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No config.json is that large. */
#define BS_MODEL_CONFIG_MAX ((size_t)64 << 20)

void bs_model_opts_default(bs_model_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    opts->n_threads = c > 0 ? (int)c : 1;
}

/* shapes_only: stop after binding, with every tensor's header checked and
 * none of its data read (bs_model_check). */
static int load(const char *dir, const bs_model_opts *opts, int shapes_only, bs_model **out,
                bs_err *err)
{
    *out = NULL;
    if (!dir) return bs_err_set(err, BS_EINVAL, "bs_model_load: no model directory given");
    bs_model_opts def;
    bs_model_opts_default(&def);
    if (opts && opts->n_threads > 0) def.n_threads = opts->n_threads;
    if (opts) def.precision = opts->precision;
    bs_kernels_info k;
    int crc = bs_kernels_get(&k, err); /* a BS_CPU this CPU cannot run */
    if (crc < 0) return crc;
    bs_log_info("model", "%s: kernels: %s (%s)", dir, k.path, k.reason);
    if (def.precision == BS_PRECISION_INT8)
        bs_log_info("model", "%s: int8 kernel: %s", dir, k.int8);
    if (def.precision != BS_PRECISION_F32 && !bs_precision_supported(def.precision))
        return bs_err_set(err, BS_EUNSUPPORTED,
                          def.precision == BS_PRECISION_BF16
                              ? "%s: precision bf16 is not supported by this kernel path"
                              : "%s: unknown precision",
                          dir);
    bs_model *m = calloc(1, sizeof *m);
    if (!m) return bs_err_set(err, BS_ENOMEM, "%s: out of memory", dir);
    m->shapes_only = shapes_only;
    char path[4096];
    int rc;
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path) {
        rc = bs_err_set(err, BS_EINVAL, "%s: path too long", dir);
        goto fail;
    }
    if ((rc = bs_file_read(path, BS_MODEL_CONFIG_MAX, &m->config_text, NULL, err))) {
        if (rc == BS_ENOTFOUND) bs_err_set(err, rc, "%s: no such file (not a model folder?)", path);
        goto fail;
    }
    if ((rc = bs_config_parse(m->config_text, &m->cfg, err)) < 0) {
        bs_err_prefix(err, "%s", dir);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    bs_err gerr = {0}; /* optional file: absent or unreadable means none */
    if (bs_file_read(path, BS_MODEL_CONFIG_MAX, &m->genconfig_text, NULL, &gerr))
        m->genconfig_text = NULL;
    bs_model_settings_read(m);

    bs_config *c = &m->cfg;
    m->n_enc_layers = c->fam == BS_FAM_ALBERT ? c->n_groups * c->inner_group_num : c->n_layers;
    m->layers = calloc((size_t)m->n_enc_layers, sizeof *m->layers);
    m->dec_layers = c->dec_layers ? calloc((size_t)c->dec_layers, sizeof *m->dec_layers) : NULL;
    if (!m->layers || (c->dec_layers && !m->dec_layers)) {
        rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory", dir);
        goto fail;
    }
    m->max_seq = c->max_pos;
    if (c->fam == BS_FAM_ROBERTA) m->max_seq = c->max_pos - c->pad_id - 1;
    if (m->max_seq < 1) {
        rc = bs_err_set(
            err, BS_ERANGE,
            "%s/config.json: max_position_embeddings %d leaves no room after padding_idx %d", dir,
            c->max_pos, c->pad_id);
        goto fail;
    }
    if (c->pad_id >= c->vocab) {
        rc = bs_err_set(err, BS_ERANGE, "%s/config.json: pad_token_id %d >= vocab_size %d", dir,
                        c->pad_id, c->vocab);
        goto fail;
    }
    if ((rc = bs_w_open_all(m, dir, err)) < 0) goto fail;
    if ((rc = bs_arch_bind(m, err)) < 0) goto fail;
    if (shapes_only) {
        *out = m;
        return 0;
    }
    m->precision = def.precision;
    if (opts && opts->ctx) {
        m->ctx = opts->ctx;
    } else {
        bs_ctx_opts co = {.n_threads = def.n_threads};
        if ((rc = bs_ctx_new(&co, &m->ctx, err))) {
            bs_err_prefix(err, "%s", dir);
            goto fail;
        }
        m->owns_ctx = 1;
    }
    m->pool = bs_ctx_attach(m->ctx);
    m->n_threads = bs_ctx_n_threads(m->ctx);
    if ((rc = bs_w_pack_layers(m, err)) < 0) goto fail;
    *out = m;
    return 0;
fail:
    bs_model_free(m);
    return rc;
}

int bs_model_load(const char *dir, const bs_model_opts *opts, bs_model **out, bs_err *err)
{
    return load(dir, opts, 0, out, err);
}

int bs_model_check(const char *dir, bs_err *err)
{
    bs_model *m = NULL;
    int rc = load(dir, NULL, 1, &m, err);
    bs_model_free(m);
    return rc;
}

void bs_model_free(bs_model *m)
{
    if (!m) return;
    if (m->pool) bs_ctx_detach(m->ctx);
    if (m->owns_ctx) bs_ctx_free(m->ctx);
    for (size_t i = 0; i < m->n_files; i++) bs_st_close(&m->files[i]);
    free(m->files);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->lazy);
    free(m->layers);
    free(m->dec_layers);
    bs_config_free(&m->cfg);
    free(m->config_text);
    free(m->genconfig_text);
    free(m);
}

const char *bs_model_type(const bs_model *m)
{
    return m->cfg.model_type;
}
const char *bs_model_architecture(const bs_model *m)
{
    return m->cfg.architecture;
}
bs_head_kind bs_model_head(const bs_model *m)
{
    return m->cfg.head;
}
int bs_model_hidden_size(const bs_model *m)
{
    return m->cfg.hidden;
}
int bs_model_vocab_size(const bs_model *m)
{
    return m->cfg.vocab;
}
int bs_model_max_position_embeddings(const bs_model *m)
{
    return m->cfg.max_pos;
}
int bs_model_max_seq_len(const bs_model *m)
{
    return m->max_seq;
}
int bs_model_pad_token_id(const bs_model *m)
{
    return m->cfg.pad_id;
}
int bs_model_num_labels(const bs_model *m)
{
    return m->cfg.n_labels;
}
const char *bs_model_label(const bs_model *m, int i)
{
    return m->cfg.labels && i >= 0 && i < m->cfg.n_labels ? m->cfg.labels[i] : NULL;
}
const char *bs_model_problem_type(const bs_model *m)
{
    return m->cfg.problem_type;
}
int bs_model_has_pooler(const bs_model *m)
{
    return m->has_pooler;
}
int bs_model_uses_token_type_ids(const bs_model *m)
{
    return m->cfg.type_vocab > 1;
}
const char *bs_model_config_json(const bs_model *m)
{
    return m->config_text;
}
const char *bs_model_generation_config_json(const bs_model *m)
{
    return m->genconfig_text;
}
int bs_model_n_threads(const bs_model *m)
{
    return m->n_threads;
}

bs_precision bs_model_precision(const bs_model *m)
{
    return m->precision;
}

int bs_precision_supported(bs_precision p)
{
    return p == BS_PRECISION_F32 ||
           (p == BS_PRECISION_FP16 && bs_gemm_packed_available(BS_PACK_F16)) ||
           (p == BS_PRECISION_BF16 && bs_gemm_packed_available(BS_PACK_BF16W)) ||
           (p == BS_PRECISION_INT8 && bs_gemm_packed_available(BS_PACK_I8));
}

const char *bs_precision_name(bs_precision p)
{
    return p == BS_PRECISION_BF16   ? "bf16"
           : p == BS_PRECISION_FP16 ? "fp16"
           : p == BS_PRECISION_INT8 ? "int8"
                                    : "f32";
}

int bs_precision_parse(const char *name)
{
    if (name && !strcmp(name, "f32")) return BS_PRECISION_F32;
    if (name && !strcmp(name, "bf16")) return BS_PRECISION_BF16;
    if (name && !strcmp(name, "fp16")) return BS_PRECISION_FP16;
    if (name && !strcmp(name, "int8")) return BS_PRECISION_INT8;
    return -1;
}
int bs_model_num_layers(const bs_model *m)
{
    return m->cfg.n_layers;
}
int bs_model_intermediate_size(const bs_model *m)
{
    return m->cfg.inter;
}
