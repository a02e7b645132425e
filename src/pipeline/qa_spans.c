/* QA post-processing over one window: transformers' select_starts_ends and
 * decode_spans (masking, softmax, null score, best spans), and the window
 * layout of tokenizers' truncation with stride. */
#include <math.h>
#include <stdlib.h>

#include "pipeline/internal.h"

/* Softmax of logits with undesired positions set to -10000 (as transformers). */
static void masked_softmax(const float *logits, const uint8_t *desired, size_t len, double *p)
{
    double mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < len; i++) {
        p[i] = desired[i] ? (double)logits[i] : -10000.0;
        if (p[i] > mx) mx = p[i];
    }
    for (size_t i = 0; i < len; i++) {
        p[i] = exp(p[i] - mx);
        sum += p[i];
    }
    for (size_t i = 0; i < len; i++) p[i] /= sum;
}

int bs_qa_window_spans(const float *start_logits, const float *end_logits, const uint8_t *desired,
                       size_t len, size_t top_k, size_t max_answer_len, int handle_impossible,
                       double *min_null, bs_qa_span **out, size_t *n_out, bs_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (len == 0 || top_k == 0 || max_answer_len == 0) return 0;
    double *ps = malloc(len * sizeof *ps), *pe = malloc(len * sizeof *pe);
    size_t cap = len * (max_answer_len < len ? max_answer_len : len);
    bs_qa_span *spans = malloc(cap * sizeof *spans);
    double *scores = malloc(cap * sizeof *scores);
    size_t *order = NULL;
    int rc = 0;
    if (!ps || !pe || !spans || !scores) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory scoring QA spans");
        goto done;
    }
    masked_softmax(start_logits, desired, len, ps);
    masked_softmax(end_logits, desired, len, pe);
    if (handle_impossible && ps[0] * pe[0] < *min_null) *min_null = ps[0] * pe[0];
    ps[0] = pe[0] = 0;
    size_t n = 0;
    for (size_t s = 0; s < len; s++) {
        if (!desired[s]) continue;
        for (size_t e = s; e < len && e < s + max_answer_len; e++) {
            if (!desired[e]) continue;
            double sc = ps[s] * pe[e];
            if (!(sc > 0)) continue;
            spans[n] = (bs_qa_span){(int32_t)s, (int32_t)e, sc};
            scores[n++] = sc;
        }
    }
    order = bs_pl_argsort_desc(scores, n);
    if (!order) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory scoring QA spans");
        goto done;
    }
    size_t k = n < top_k ? n : top_k;
    bs_qa_span *res = malloc((k ? k : 1) * sizeof *res);
    if (!res) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory scoring QA spans");
        goto done;
    }
    for (size_t i = 0; i < k; i++) res[i] = spans[order[i]];
    *out = res;
    *n_out = k;
done:
    free(ps);
    free(pe);
    free(spans);
    free(scores);
    free(order);
    return rc;
}

size_t bs_qa_windows(size_t n_context, size_t room, size_t stride, size_t *starts, size_t max)
{
    if (room == 0 || stride >= room) return 0;
    size_t step = room - stride;
    /* the last window is the first one that reaches the end of the context */
    size_t n = n_context <= room ? 1 : (n_context - room + step - 1) / step + 1;
    for (size_t i = 0; i < n && i < max; i++) starts[i] = i * step;
    return n;
}
