/* Probabilities and rankings shared by the tasks. Computed in float64 from
 * the model's float32 logits, with numpy's shifted-exponential softmax, so
 * scores match transformers' pipelines to well under 1e-6. */
#include <math.h>
#include <stdlib.h>

#include "pipeline/internal.h"

/* The largest of x[0..n), n > 0: the shift that keeps exp() finite. */
static double max_of(const float *x, size_t n)
{
    double mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    return mx;
}

void bs_pl_softmax(const float *x, size_t n, double *out)
{
    if (n == 0) return;
    double mx = max_of(x, n), sum = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = exp((double)x[i] - mx);
        sum += out[i];
    }
    for (size_t i = 0; i < n; i++) out[i] /= sum;
}

void bs_pl_log_softmax(const float *x, size_t n, double *out)
{
    if (n == 0) return;
    double mx = max_of(x, n), sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (size_t i = 0; i < n; i++) out[i] = (double)x[i] - lse;
}

double bs_pl_sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

size_t *bs_pl_argsort_desc(const double *v, size_t n)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (size_t i = 0; i < n; i++) idx[i] = i;
    /* bottom-up merge sort: stable and reentrant (qsort is neither) */
    size_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) {
        free(idx);
        return NULL;
    }
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) {
                /* take from the right run only when strictly greater: stable */
                if (v[idx[b]] > v[idx[a]])
                    tmp[k++] = idx[b++];
                else
                    tmp[k++] = idx[a++];
            }
            while (a < mid) tmp[k++] = idx[a++];
            while (b < hi) tmp[k++] = idx[b++];
        }
        size_t *t = idx;
        idx = tmp;
        tmp = t;
    }
    free(tmp);
    return idx;
}

size_t bs_pl_argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}
