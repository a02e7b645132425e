/* Element-wise kernels (activations, layernorm, softmax) in plain C: the
 * reference table on libm (what every other table is tested against), and
 * the portable path's table, written branch-free on polynomials so that any
 * compiler vectorises it for its target (SSE/AVX on x86-64, NEON on ARM). */
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

static void ref_bias_act(float *y, const float *bias, int n, bs_act act)
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

static void ref_add_layernorm(float *x, const float *res, const float *gamma, const float *beta,
                              int n, float eps)
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

static void ref_softmax(float *x, int n, float scale)
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

static const bs_kernels reference = {"reference", ref_bias_act, ref_add_layernorm, ref_softmax};

const bs_kernels *bs_kernels_reference(void)
{
    return &reference;
}

/* ── the portable table: the AVX kernels' approximations, one float at a time
 * in straight-line code the vectoriser turns into SIMD loops ── */

/* e^x: x = n ln2 + r, degree-6 polynomial in r, 2^n built in the exponent. */
static inline float exp_c(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) * (1 << 23);
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

/* erf(z) (A&S 7.1.26, Taylor near 0 where it loses relative accuracy) */
static inline float erf_c(float z)
{
    float az = fabsf(z);
    float t = 1.0f / (1.0f + 0.3275911f * az);
    float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
               0.254829592f) *
              t;
    float e = 1.0f - p * exp_c(-az * az);
    e = copysignf(e, z);
    float z2 = z * z;
    float tay =
        z * (1.1283791670955126f - 0.37612638903183752f * z2) + 0.11283791670955126f * z2 * z2 * z;
    return az < 0.05f ? tay : e;
}

static inline float tanh_c(float u)
{
    float au = fabsf(u);
    float t = 1.0f - 2.0f / (exp_c(au + au) + 1.0f);
    float u2 = au * au;
    float tay = au * (1.0f + u2 * (-1.0f / 3 + u2 * (2.0f / 15)));
    return copysignf(au < 0.04f ? tay : t, u);
}

static void bias_act(float *y, const float *bias, int n, bs_act act)
{
    if (bias)
        for (int i = 0; i < n; i++) y[i] += bias[i];
    switch (act) {
    case BS_ACT_NONE:
        break;
    case BS_ACT_GELU:
        for (int i = 0; i < n; i++)
            y[i] = 0.5f * y[i] * (1.0f + erf_c(y[i] * 0.70710678118654752f));
        break;
    case BS_ACT_GELU_TANH:
        for (int i = 0; i < n; i++) {
            float x = y[i];
            y[i] = 0.5f * x * (1.0f + tanh_c(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        }
        break;
    case BS_ACT_RELU:
        for (int i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case BS_ACT_SILU:
        for (int i = 0; i < n; i++) y[i] = y[i] / (1.0f + exp_c(-y[i]));
        break;
    case BS_ACT_TANH:
        for (int i = 0; i < n; i++) y[i] = tanh_c(y[i]);
        break;
    }
}

/* Sums and maxima in 8 lanes, folded at the end: a float reduction in one
 * accumulator is an ordered chain no compiler may vectorise. */
#define LANES 8

/* sum of x, or with mean given (dev = 1), of (x - mean)^2 */
static inline float sum_c(const float *x, int n, int dev, float mean)
{
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[i + l] - mean;
            acc[l] += dev ? d * d : x[i + l];
        }
    for (; i < n; i++) {
        float d = x[i] - mean;
        acc[i % LANES] += dev ? d * d : x[i];
    }
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

static void add_layernorm(float *x, const float *res, const float *gamma, const float *beta, int n,
                          float eps)
{
    if (res)
        for (int i = 0; i < n; i++) x[i] += res[i];
    float mean = sum_c(x, n, 0, 0.0f) / (float)n;
    float var = sum_c(x, n, 1, mean) / (float)n;
    float inv = 1.0f / sqrtf(var + eps);
    for (int i = 0; i < n; i++) x[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

static void softmax(float *x, int n, float scale)
{
    float mx[LANES];
    for (int l = 0; l < LANES; l++) mx[l] = -INFINITY;
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float v = x[i + l] * scale;
            mx[l] = v > mx[l] ? v : mx[l];
        }
    for (; i < n; i++) mx[0] = x[i] * scale > mx[0] ? x[i] * scale : mx[0];
    float m = mx[0];
    for (int l = 1; l < LANES; l++) m = mx[l] > m ? mx[l] : m;
    for (i = 0; i < n; i++) x[i] = exp_c(x[i] * scale - m);
    float inv = 1.0f / sum_c(x, n, 0, 0.0f);
    for (i = 0; i < n; i++) x[i] *= inv;
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
        bs_cpu_path p = bs_cpu_path_get();
        k = p == BS_CPU_AVX512 ? bs_kernels_avx512() : p == BS_CPU_AVX2 ? bs_kernels_avx2() : NULL;
        if (!k) k = &portable;
        __atomic_store_n(&best, k, __ATOMIC_RELEASE);
    }
    return k;
}
