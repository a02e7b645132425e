/* Portable element-wise kernels (activations, layernorm, softmax). Compiled
 * for the baseline ISA (AVX2+FMA), they are also the reference the faster
 * per-ISA tables are tested against. */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

int bs_act_from_name(const char *name)
{
    static const struct {
        const char *name;
        bs_act act;
    } names[] = {
        {"gelu", BS_ACT_GELU},
        {"gelu_new", BS_ACT_GELU_TANH},
        {"gelu_pytorch_tanh", BS_ACT_GELU_TANH},
        {"gelu_fast", BS_ACT_GELU_TANH},
        {"relu", BS_ACT_RELU},
        {"silu", BS_ACT_SILU},
        {"swish", BS_ACT_SILU},
        {"tanh", BS_ACT_TANH},
        {"linear", BS_ACT_NONE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) return (int)names[i].act;
    return -1;
}

static void bias_act(float *y, const float *bias, int n, bs_act act)
{
    if (bias)
        for (int i = 0; i < n; i++) y[i] += bias[i];
    switch (act) {
    case BS_ACT_NONE:
        break;
    case BS_ACT_GELU:
        for (int i = 0; i < n; i++) y[i] = 0.5f * y[i] * (1.0f + erff(y[i] * 0.70710678118654752f));
        break;
    case BS_ACT_GELU_TANH:
        for (int i = 0; i < n; i++) {
            float x = y[i];
            y[i] = 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        }
        break;
    case BS_ACT_RELU:
        for (int i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case BS_ACT_SILU:
        for (int i = 0; i < n; i++) y[i] = y[i] / (1.0f + expf(-y[i]));
        break;
    case BS_ACT_TANH:
        for (int i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    }
}

static void add_layernorm(float *x, const float *res, const float *gamma, const float *beta, int n,
                          float eps)
{
    if (res)
        for (int i = 0; i < n; i++) x[i] += res[i];
    /* Two passes (mean, then centred variance) as PyTorch does: one-pass
     * E[x^2]-E[x]^2 loses digits when |mean| >> std. */
    float mean = 0.0f;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    float var = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = x[i] - mean;
        var += d * d;
    }
    var /= (float)n;
    float inv = 1.0f / sqrtf(var + eps);
    for (int i = 0; i < n; i++) x[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

static void softmax(float *x, int n, float scale)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx) mx = x[i];
    }
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

static const bs_kernels portable = {"portable", bias_act, add_layernorm, softmax};

const bs_kernels *bs_kernels_portable(void)
{
    return &portable;
}

const bs_kernels *bs_kernels_best(void)
{
    static const bs_kernels *best;
    const bs_kernels *k = __atomic_load_n(&best, __ATOMIC_ACQUIRE);
    if (!k) {
        k = bs_kernels_avx512();
        if (!k) k = &portable;
        __atomic_store_n(&best, k, __ATOMIC_RELEASE);
    }
    return k;
}
