/* safetensors reader. The header is hostile input: every offset is checked
 * against the file before any tensor is used, and element counts are
 * multiplied with overflow checks. */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    bs_dtype dt;
    size_t size;
} dtypes[] = {
    {"F32", BS_DT_F32, 4},   {"F16", BS_DT_F16, 2},         {"BF16", BS_DT_BF16, 2},
    {"F64", BS_DT_F64, 8},   {"I64", BS_DT_I64, 8},         {"I32", BS_DT_I32, 4},
    {"I16", BS_DT_I16, 2},   {"I8", BS_DT_I8, 1},           {"U8", BS_DT_U8, 1},
    {"BOOL", BS_DT_BOOL, 1}, {"F8_E4M3", BS_DT_F8_E4M3, 1}, {"F8_E5M2", BS_DT_F8_E5M2, 1},
    {"U16", BS_DT_U16, 2},   {"U32", BS_DT_U32, 4},         {"U64", BS_DT_U64, 8},
};

const char *bs_dtype_name(bs_dtype dt)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == dt) return dtypes[i].name;
    return "?";
}

size_t bs_dtype_size(bs_dtype dt)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == dt) return dtypes[i].size;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const bs_st_tensor *x = *(const bs_st_tensor *const *)a, *y = *(const bs_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int parse_tensor(const char *fname, const char *key, json_t *v, const unsigned char *base,
                        size_t data_len, bs_st_tensor *t, bs_err *err)
{
    if (!json_is_object(v))
        return bs_err_set(err, BS_EFORMAT, "%s: header entry %s is not an object", fname, key);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return bs_err_set(
            err, BS_EFORMAT,
            "%s: tensor %s needs a string dtype, a shape array and data_offsets [begin, end]",
            fname, key);
    const char *ds = json_string_value(jd);
    size_t esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(ds, dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dt;
            esize = dtypes[i].size;
        }
    if (!esize)
        return bs_err_set(err, BS_EUNSUPPORTED, "%s: tensor %s has unknown dtype %.32s", fname, key,
                          ds);
    size_t nd = json_array_size(js);
    if (nd > BS_ST_MAX_DIMS)
        return bs_err_set(err, BS_EFORMAT, "%s: tensor %s has %zu dimensions (at most %d)", fname,
                          key, nd, BS_ST_MAX_DIMS);
    t->ndim = (int)nd;
    size_t bytes = esize;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return bs_err_set(err, BS_EFORMAT,
                              "%s: tensor %s: shape[%zu] is not a non-negative integer", fname, key,
                              i);
        json_int_t dv = json_integer_value(d);
        t->shape[i] = dv;
        if ((uint64_t)dv > SIZE_MAX || (dv && bytes > SIZE_MAX / (size_t)dv))
            return bs_err_set(err, BS_EFORMAT, "%s: tensor %s: shape overflows the address space",
                              fname, key);
        bytes *= (size_t)dv;
    }
    json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return bs_err_set(err, BS_EFORMAT,
                          "%s: tensor %s: data_offsets must be integers 0 <= begin <= end", fname,
                          key);
    json_int_t bv = json_integer_value(b), ev = json_integer_value(e);
    if ((uint64_t)ev > data_len)
        return bs_err_set(err, BS_EFORMAT,
                          "%s: tensor %s: data_offsets end %lld is outside the data section (%zu "
                          "bytes; file truncated?)",
                          fname, key, (long long)ev, data_len);
    t->begin = (size_t)bv;
    t->end = (size_t)ev;
    if (t->end - t->begin != bytes)
        return bs_err_set(
            err, BS_EFORMAT,
            "%s: tensor %s: data_offsets span %zu bytes but dtype %s and its shape need %zu", fname,
            key, t->end - t->begin, ds, bytes);
    t->data = base + t->begin;
    if ((uintptr_t)t->data % esize != 0)
        return bs_err_set(err, BS_EFORMAT,
                          "%s: tensor %s: data at offset %zu is not aligned to its %zu-byte dtype",
                          fname, key, t->begin, esize);
    return 0;
}

int bs_st_parse(const void *data, size_t size, const char *name, bs_st_file *out, bs_err *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *p = data;
    if (size < 8)
        return bs_err_set(err, BS_EFORMAT,
                          "%s: file of %zu bytes is too short for a safetensors header", name,
                          size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > size - 8)
        return bs_err_set(err, BS_EFORMAT,
                          "%s: header length %llu exceeds the file size %zu (truncated file?)",
                          name, (unsigned long long)hlen, size);
    if (hlen > 100u * 1024 * 1024)
        return bs_err_set(err, BS_EFORMAT, "%s: header length %llu is larger than the 100 MB limit",
                          name, (unsigned long long)hlen);
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return bs_err_set(err, BS_EFORMAT, "%s: header is not valid JSON: %s (at byte %d)", name,
                          je.text, je.position);
    int rc = 0;
    bs_st_tensor **order = NULL;
    if (!json_is_object(root)) {
        rc = bs_err_set(err, BS_EFORMAT, "%s: header is not a JSON object", name);
        goto done;
    }
    size_t n = json_object_size(root);
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    order = calloc(n ? n : 1, sizeof *order);
    if (!out->tensors || !order) {
        rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory reading the header", name);
        goto done;
    }
    const unsigned char *base = p + 8 + hlen;
    size_t data_len = size - 8 - (size_t)hlen;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) continue;
        bs_st_tensor *t = &out->tensors[out->n_tensors];
        if ((rc = parse_tensor(name, key, v, base, data_len, t, err)) < 0) goto done;
        t->name = strdup(key);
        if (!t->name) {
            rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory", name);
            goto done;
        }
        order[out->n_tensors++] = t;
    }
    qsort(order, out->n_tensors, sizeof *order, cmp_begin);
    for (size_t i = 1; i < out->n_tensors; i++)
        if (order[i]->begin < order[i - 1]->end) {
            rc = bs_err_set(err, BS_EFORMAT, "%s: tensors %s [%zu, %zu) and %s [%zu, %zu) overlap",
                            name, order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end,
                            order[i]->name, order[i]->begin, order[i]->end);
            goto done;
        }
done:
    free(order);
    json_decref(root);
    if (rc < 0) bs_st_close(out);
    return rc;
}

int bs_st_open(const char *path, bs_st_file *out, bs_err *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bs_err_set(err, errno == ENOENT ? BS_ENOTFOUND : BS_EIO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return bs_err_set(err, BS_EIO, "%s: mmap failed: %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    int rc = bs_st_parse(map ? map : empty, size, path, out, err);
    if (rc < 0) {
        if (map) munmap(map, size);
        return rc;
    }
    out->map = map;
    out->map_len = size;
    out->path = strdup(path);
    if (!out->path) {
        bs_st_close(out);
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory", path);
    }
    return 0;
}

void bs_st_close(bs_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const bs_st_tensor *bs_st_find(const bs_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}
