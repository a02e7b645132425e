/* Reranking (sentence-transformers' CrossEncoder.rank): one padding-free
 * forward pass over the (query, text) pairs of a sequence-classification
 * model; each text's score is its last label's classification score, read
 * from the logits by index, never by the label's name. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

static int by_score_desc(const void *a, const void *b)
{
    const bs_rerank_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index; /* stable */
}

/* The score of the last of nl labels under fn, as classification ranks it. */
static double last_label_score(const float *logits, size_t nl, bs_cls_function fn, double *tmp)
{
    if (fn == BS_CLS_FN_SOFTMAX) {
        bs_pl_softmax(logits, nl, tmp);
        return tmp[nl - 1];
    }
    return fn == BS_CLS_FN_SIGMOID ? bs_pl_sigmoid(logits[nl - 1]) : logits[nl - 1];
}

int bs_pipeline_rerank(const bs_pipeline_ctx *ctx, const bs_rerank_req *req, bs_rerank_hit *hits,
                       int *truncated, bs_err *err)
{
    int trunc = 0;
    if (truncated) *truncated = 0;
    const char *q = req->query;
    bs_texts query = {1, &q};
    int rc = bs_pl_check_texts(&query, "query", err);
    if (!rc) rc = bs_pl_check_texts(&req->texts, "texts", err);
    if (!rc) rc = bs_pl_require_head(ctx, BS_HEAD_SEQ_CLS, "rerank", err);
    if (rc) return rc;
    size_t n = req->texts.n, nl = (size_t)bs_model_num_labels(ctx->model);
    if (nl == 0) return bs_err_set(err, BS_EUNPROCESSABLE, "rerank: the model has no labels");
    bs_cls_function fn = bs_pl_cls_default_function(ctx);
    bs_encoding **encs = calloc(n, sizeof *encs);
    double *tmp = calloc(nl, sizeof *tmp);
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    if (!encs || !tmp) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = bs_pl_encode(ctx, q, strlen(q), req->texts.texts[i], bs_pl_max_len(ctx), &encs[i],
                          &trunc, err);
    if (rc) goto done;
    if ((rc = bs_pl_forward(ctx, encs, n, BS_OUT_LOGITS, &out, err))) goto done;
    for (size_t i = 0; i < n; i++) {
        hits[i].index = i;
        hits[i].score = last_label_score(out.logits + i * (size_t)out.n_labels, nl, fn, tmp);
    }
    qsort(hits, n, sizeof *hits, by_score_desc);
    if (truncated) *truncated = trunc;
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    free(tmp);
    return rc;
}
