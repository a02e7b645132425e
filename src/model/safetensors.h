/* safetensors files: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the raw data. The
 * file is mmap'ed; the header is validated against the file size. */
#ifndef BS_MODEL_SAFETENSORS_H
#define BS_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"

typedef enum bs_dtype {
    BS_DT_F32,
    BS_DT_F16,
    BS_DT_BF16,
    BS_DT_F64,
    BS_DT_I64,
    BS_DT_I32,
    BS_DT_I16,
    BS_DT_I8,
    BS_DT_U8,
    BS_DT_BOOL,
    BS_DT_F8_E4M3,
    BS_DT_F8_E5M2,
    BS_DT_U16,
    BS_DT_U32,
    BS_DT_U64,
} bs_dtype;

#define BS_ST_MAX_DIMS 8

typedef struct bs_st_tensor {
    char *name;
    bs_dtype dtype;
    int ndim;
    int64_t shape[BS_ST_MAX_DIMS];
    size_t begin, end; /* byte range inside the data section */
    const void *data;  /* = data section + begin */
} bs_st_tensor;

typedef struct bs_st_file {
    char *path;
    void *map;
    size_t map_len;
    bs_st_tensor *tensors;
    size_t n_tensors;
} bs_st_file;

const char *bs_dtype_name(bs_dtype dt);
size_t bs_dtype_size(bs_dtype dt);

/* Parses a whole safetensors image (`data`, `size` bytes; the data is not
 * copied: tensors point into it). `name` is used in messages. Checks header
 * length, JSON, dtypes, shapes, that byte ranges lie inside the file, match
 * the shape, do not overlap and are aligned for their dtype. */
int bs_st_parse(const void *data, size_t size, const char *name, bs_st_file *out, bs_err *err);

/* mmaps and parses `path`. */
int bs_st_open(const char *path, bs_st_file *out, bs_err *err);
void bs_st_close(bs_st_file *f);

/* The tensor called `name`, or NULL. */
const bs_st_tensor *bs_st_find(const bs_st_file *f, const char *name);

#endif
