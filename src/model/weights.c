/* Weights of a model folder: the safetensors file(s) - one file or the shards
 * of model.safetensors.index.json - and lookup by Hub state_dict name with or
 * without the base-model prefix, checked against the shape config.json implies. */
#include "model/model_impl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int add_file(bs_model *m, const char *path, bs_err *err)
{
    for (size_t i = 0; i < m->n_files; i++)
        if (strcmp(m->files[i].path, path) == 0) return 0;
    bs_st_file *f = realloc(m->files, (m->n_files + 1) * sizeof *f);
    if (!f) return bs_err_set(err, BS_ENOMEM, "%s: out of memory", path);
    m->files = f;
    int rc = bs_st_open(path, &m->files[m->n_files], err);
    if (rc < 0) return rc;
    m->n_files++;
    return 0;
}

static int open_index(bs_model *m, const char *dir, const char *index, bs_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(index, 0, &je);
    if (!root)
        return bs_err_set(err, BS_EFORMAT, "%s: invalid JSON: %s (line %d)", index, je.text,
                          je.line);
    json_t *map = json_object_get(root, "weight_map");
    int rc = 0;
    if (!json_is_object(map) || json_object_size(map) == 0) {
        rc = bs_err_set(err, BS_EFORMAT, "%s: missing \"weight_map\" object", index);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v)
    {
        const char *shard = json_string_value(v);
        if (!shard || strchr(shard, '/') || strcmp(shard, "..") == 0 || !*shard) {
            rc = bs_err_set(err, BS_EFORMAT,
                            "%s: weight_map entry for %s is not a file name in the folder", index,
                            key);
            goto done;
        }
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shard) >= sizeof path) {
            rc = bs_err_set(err, BS_EINVAL, "%s: path too long", index);
            goto done;
        }
        if ((rc = add_file(m, path, err)) < 0) goto done;
    }
done:
    json_decref(root);
    return rc;
}

int bs_w_open_all(bs_model *m, const char *dir, bs_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (exists(path)) return add_file(m, path, err);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (exists(path)) return open_index(m, dir, path, err);
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    if (exists(path))
        return bs_err_set(
            err, BS_EUNSUPPORTED,
            "%s: only safetensors weights are supported; convert the checkpoint once with "
            "Python: `from transformers import AutoModel; AutoModel.from_pretrained(dir)"
            ".save_pretrained(dir, safe_serialization=True)` (or use the Hub's "
            "refs/pr safetensors conversion)",
            path);
    return bs_err_set(err, BS_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json",
                      dir);
}

static const bs_st_tensor *find(const bs_model *m, const char *name, const bs_st_file **file)
{
    for (size_t i = 0; i < m->n_files; i++) {
        const bs_st_tensor *t = bs_st_find(&m->files[i], name);
        if (t) {
            *file = &m->files[i];
            return t;
        }
    }
    return NULL;
}

static int keep(bs_model *m, void *p)
{
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **o = realloc(m->owned, cap * sizeof *o);
        if (!o) return -1;
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

/* defer, when not NULL, takes an F16/BF16 tensor as the file holds it
 * (defer->w16) instead of a widened copy in *out. */
static int lookup(bs_model *m, const char *const *prefixes, const char *name, int64_t d0,
                  int64_t d1, const float **out, int required, bs_lin *defer, bs_err *err)
{
    *out = NULL;
    const bs_st_file *f = NULL;
    const bs_st_tensor *t = NULL;
    char full[512];
    for (int i = 0; prefixes && prefixes[i] && !t; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], name);
        t = find(m, full, &f);
    }
    if (!t) {
        snprintf(full, sizeof full, "%s", name);
        t = find(m, full, &f);
    }
    if (!t) {
        if (!required) return 0;
        return bs_err_set(err, BS_EFORMAT, "%s: missing tensor %s%s (needed by %s)",
                          m->n_files ? m->files[0].path : "model.safetensors",
                          prefixes && prefixes[0] ? prefixes[0] : "", name, m->cfg.architecture);
    }
    int want_nd = d1 ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
        char got[128] = "[";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        strncat(got, "]", sizeof got - strlen(got) - 1);
        char want[64];
        if (d1)
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        else
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        return bs_err_set(err, BS_EFORMAT, "%s: tensor %s has shape %s but config.json implies %s",
                          f->path, full, got, want);
    }
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    if (t->dtype == BS_DT_F32) {
        *out = t->data;
        return 0;
    }
    if (t->dtype != BS_DT_F16 && t->dtype != BS_DT_BF16)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "%s: tensor %s has dtype %s; supported: F32, F16, BF16", f->path, full,
                          bs_dtype_name(t->dtype));
    if (m->shapes_only) { /* never read: only the header was to be checked */
        *out = t->data;
        return 0;
    }
    if (defer) {
        if (m->n_lazy == m->cap_lazy) {
            size_t cap = m->cap_lazy ? m->cap_lazy * 2 : 64;
            bs_lin **l = realloc(m->lazy, cap * sizeof *l);
            if (!l) return bs_err_set(err, BS_ENOMEM, "%s: out of memory", f->path);
            m->lazy = l;
            m->cap_lazy = cap;
        }
        m->lazy[m->n_lazy++] = defer;
        defer->w16 = t->data;
        defer->w16_bf = t->dtype == BS_DT_BF16;
        return 0;
    }
    float *buf = malloc(n * sizeof *buf);
    if (!buf || keep(m, buf) < 0) {
        free(buf);
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory converting %s to F32", f->path, full);
    }
    if (t->dtype == BS_DT_F16)
        bs_f16_to_f32(t->data, buf, n);
    else
        bs_bf16_to_f32(t->data, buf, n);
    *out = buf;
    return 0;
}

int bs_w_get(bs_model *m, const char *const *prefixes, const char *name, int64_t d0, int64_t d1,
             const float **out, bs_err *err)
{
    return lookup(m, prefixes, name, d0, d1, out, 1, NULL, err);
}

int bs_w_opt(bs_model *m, const char *const *prefixes, const char *name, int64_t d0, int64_t d1,
             const float **out, bs_err *err)
{
    return lookup(m, prefixes, name, d0, d1, out, 0, NULL, err);
}

int bs_w_lin(bs_model *m, const char *const *prefixes, const char *name, int out, int in, bs_lin *l,
             bs_err *err)
{
    char wn[400], bn[400];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    l->out = out;
    l->in = in;
    l->w16 = NULL;
    int rc = lookup(m, prefixes, wn, out, in, &l->w, 1, l, err);
    if (rc == 0) rc = bs_w_get(m, prefixes, bn, out, 0, &l->b, err);
    return rc;
}

int bs_w_ln(bs_model *m, const char *const *prefixes, const char *name, int n, const char *wname,
            const char *bname, bs_ln *l, bs_err *err)
{
    char wn[400], bn[400];
    snprintf(wn, sizeof wn, "%s.%s", name, wname ? wname : "weight");
    snprintf(bn, sizeof bn, "%s.%s", name, bname ? bname : "bias");
    int rc = bs_w_get(m, prefixes, wn, n, 0, &l->g, err);
    if (rc == 0) rc = bs_w_get(m, prefixes, bn, n, 0, &l->b, err);
    return rc;
}

/* Once a weight is packed the kernels read only the packed copy, so the
 * mmap'ed original need not stay resident: drop its whole pages from memory
 * (MADV_DONTNEED on a private read-only file mapping only forgets them; a
 * later read faults them in again from the file). Keeps resident memory
 * near one copy of the weights instead of two. Heap copies (upcast F16/BF16)
 * are left alone: for them DONTNEED would mean zeroes. */
static void release_mapped(const bs_model *m, const float *w, size_t bytes)
{
    uintptr_t lo = (uintptr_t)w, hi = lo + bytes;
    for (size_t i = 0; i < m->n_files; i++) {
        uintptr_t f0 = (uintptr_t)m->files[i].map, f1 = f0 + m->files[i].map_len;
        if (!m->files[i].map || lo < f0 || hi > f1) continue;
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = (lo + page - 1) & ~(page - 1), b = hi & ~(page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
        return;
    }
}

struct pack_job {
    const bs_model *m;
    bs_lin **lins;
    bs_pack_kind kind;
    int failed;
};

/* Linears left unpacked (heads, BART's cross-attention keys, BS_GEMM=blas)
 * get their F16/BF16 weight widened to F32 now, once. */
static int widen_rest(bs_model *m, bs_err *err)
{
    for (size_t i = 0; i < m->n_lazy; i++) {
        bs_lin *l = m->lazy[i];
        if (l->packed || !l->w16) continue;
        size_t n = (size_t)l->out * (size_t)l->in;
        float *buf = malloc(n * sizeof *buf);
        if (!buf || keep(m, buf) < 0) {
            free(buf);
            return bs_err_set(err, BS_ENOMEM, "out of memory converting a %d x %d weight to F32",
                              l->out, l->in);
        }
        if (l->w16_bf)
            bs_bf16_to_f32(l->w16, buf, n);
        else
            bs_f16_to_f32(l->w16, buf, n);
        l->w = buf;
        l->w16 = NULL;
    }
    return 0;
}

static void pack_task(void *ctx, int t, int worker)
{
    struct pack_job *j = ctx;
    (void)worker;
    bs_lin *l = j->lins[t];
    if (l->w16) { /* straight from the file's F16/BF16: no F32 copy */
        if (bs_pack_weights_h16(l->w16, l->w16_bf, l->out, l->in, j->kind, (bs_packed *)l->packed) <
            0)
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        else
            release_mapped(j->m, (const float *)l->w16, (size_t)l->out * (size_t)l->in * 2);
        return;
    }
    bs_pack_weights(l->w, l->out, l->in, j->kind, (bs_packed *)l->packed);
    /* Right away, so that at most one weight per thread is held twice. */
    release_mapped(j->m, l->w, (size_t)l->out * (size_t)l->in * sizeof(float));
}

/* A linear's share of the packed block: its panels, to the next 64 bytes. */
static size_t packed_slot(const bs_lin *l, bs_pack_kind kind)
{
    return (bs_packed_bytes(l->out, l->in, kind) + 63) & ~(size_t)63;
}

int bs_w_pack_layers(bs_model *m, bs_err *err)
{
    /* bf16 and fp16 exist only as packed panels; f32 may also run on BLAS (BS_GEMM=blas
     * compares the two). */
    const char *env = getenv("BS_GEMM");
    /* bf16: AVX512_BF16 dot products where the path has them, else bf16
     * weights widened in the kernel (activations stay f32) */
    bs_pack_kind bf = bs_gemm_packed_available(BS_PACK_BF16) ? BS_PACK_BF16 : BS_PACK_BF16W;
    bs_pack_kind kind = m->precision == BS_PRECISION_BF16   ? bf
                        : m->precision == BS_PRECISION_FP16 ? BS_PACK_F16
                        : m->precision == BS_PRECISION_INT8 ? BS_PACK_I8
                                                            : BS_PACK_F32;
    if (!bs_gemm_packed_available(kind) || (kind == BS_PACK_F32 && env && strcmp(env, "blas") == 0))
        return widen_rest(m, err);
    int n_dec = m->cfg.fam == BS_FAM_BART ? m->cfg.dec_layers : 0, n = 0;
    bs_lin **todo = calloc((size_t)(m->n_enc_layers + n_dec) * 8, sizeof *todo);
    if (!todo) return bs_err_set(err, BS_ENOMEM, "out of memory packing weights");
    for (int i = 0; i < m->n_enc_layers + n_dec; i++) {
        bs_layer *L = i < m->n_enc_layers ? &m->layers[i] : &m->dec_layers[i - m->n_enc_layers];
        bs_lin *lins[] = {&L->q, &L->k, &L->v, &L->o, &L->cq, &L->co, &L->ff1, &L->ff2};
        for (size_t j = 0; j < sizeof lins / sizeof lins[0]; j++)
            if (lins[j]->w || lins[j]->w16) todo[n++] = lins[j];
    }
    /* every layer's panels in one block of streamed memory (huge pages),
     * each at a 64-byte boundary, in the order a forward pass reads them */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += packed_slot(todo[i], kind);
    char *arena = n ? bs_streamed_alloc(total) : NULL;
    if (n && (!arena || keep(m, arena) < 0)) {
        free(arena);
        free(todo);
        return bs_err_set(err, BS_ENOMEM, "out of memory packing weights (%zu MB)", total >> 20);
    }
    for (size_t i = 0, off = 0; i < (size_t)n; i++) {
        todo[i]->packed = (bs_packed *)(arena + off);
        off += packed_slot(todo[i], kind);
    }
    /* Packing reads every weight once: spread it over the compute threads. */
    struct pack_job j = {m, todo, kind, 0};
    bs_pool_run(m->pool, n, pack_task, &j);
    free(todo);
    if (j.failed) return bs_err_set(err, BS_ENOMEM, "out of memory packing weights");
    return widen_rest(m, err);
}
