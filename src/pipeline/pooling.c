/* Sentence-transformers pooling (models/Pooling.py) and Normalize over one
 * unpadded sequence's token vectors; accumulation in double. */
#include <math.h>

#include "pipeline/internal.h"

void bs_pool(const float *hidden, size_t len, size_t dim, bs_pooling mode, double *out)
{
    for (size_t d = 0; d < dim; d++) out[d] = mode == BS_POOL_MAX ? -1e9 : 0;
    if (mode == BS_POOL_CLS) {
        for (size_t d = 0; d < dim; d++) out[d] = hidden[d];
        return;
    }
    for (size_t t = 0; t < len; t++) {
        const float *h = hidden + t * dim;
        for (size_t d = 0; d < dim; d++) {
            if (mode == BS_POOL_MAX) {
                if (h[d] > out[d]) out[d] = h[d];
            } else {
                out[d] += h[d];
            }
        }
    }
    if (mode == BS_POOL_MAX || len == 0) return;
    double div = mode == BS_POOL_MEAN_SQRT_LEN ? sqrt((double)len) : (double)len;
    for (size_t d = 0; d < dim; d++) out[d] /= div;
}

void bs_normalize(double *v, size_t dim)
{
    double ss = 0;
    for (size_t d = 0; d < dim; d++) ss += v[d] * v[d];
    double n = sqrt(ss);
    if (n < 1e-12) n = 1e-12;
    for (size_t d = 0; d < dim; d++) v[d] /= n;
}
