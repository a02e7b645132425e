/* Text classification (transformers' TextClassificationPipeline): one
 * forward pass over the texts (and optional pairs), softmax / sigmoid /
 * none per problem_type, labels from id2label, ranked and cut to top_k. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

void bs_classification_req_init(bs_classification_req *req)
{
    memset(req, 0, sizeof *req);
    req->top_k = 1;
    req->function = BS_CLS_FN_DEFAULT;
}

bs_cls_function bs_pl_cls_default_function(const bs_pipeline_ctx *ctx)
{
    const char *pt = bs_model_problem_type(ctx->model);
    if (pt && !strcmp(pt, "regression")) return BS_CLS_FN_NONE;
    if ((pt && !strcmp(pt, "multi_label_classification")) || bs_model_num_labels(ctx->model) == 1)
        return BS_CLS_FN_SIGMOID;
    if (ctx->config_function != BS_CLS_FN_DEFAULT) return ctx->config_function;
    return BS_CLS_FN_SOFTMAX;
}

/* Scores of one row under fn, ranked into out[0..top_k) (labels copied). */
static int rank_labels(const bs_model *m, const float *logits, size_t nl, bs_cls_function fn,
                       size_t top_k, double *scores, bs_label_score *out)
{
    if (fn == BS_CLS_FN_SOFTMAX) {
        bs_pl_softmax(logits, nl, scores);
    } else {
        for (size_t l = 0; l < nl; l++)
            scores[l] = fn == BS_CLS_FN_SIGMOID ? bs_pl_sigmoid(logits[l]) : logits[l];
    }
    size_t *order = bs_pl_argsort_desc(scores, nl);
    if (!order) return -1;
    for (size_t k = 0; k < nl && k < top_k; k++) {
        out[k].label = strdup(bs_model_label(m, (int)order[k]));
        out[k].score = scores[order[k]];
        if (!out[k].label) {
            free(order);
            return -1;
        }
    }
    free(order);
    return 0;
}

void bs_classification_result_free(bs_classification_result *res)
{
    size_t total = res->offsets ? res->offsets[res->n] : 0;
    for (size_t i = 0; res->labels && i < total; i++) free(res->labels[i].label);
    free(res->labels);
    free(res->offsets);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_classify(const bs_pipeline_ctx *ctx, const bs_classification_req *req,
                         bs_classification_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    if (req->pairs) {
        for (size_t i = 0; i < req->input.n; i++) {
            if (!req->pairs[i]) continue;
            const char *p = req->pairs[i];
            bs_texts one = {1, &p};
            if ((rc = bs_pl_check_texts(&one, "text_pair", err))) return rc;
        }
    }
    if ((rc = bs_pl_require_head(ctx, BS_HEAD_SEQ_CLS, "classification", err))) return rc;
    size_t n = req->input.n, nl = (size_t)bs_model_num_labels(ctx->model);
    size_t top_k = req->top_k <= 0 || (size_t)req->top_k > nl ? nl : (size_t)req->top_k;
    bs_cls_function fn =
        req->function == BS_CLS_FN_DEFAULT ? bs_pl_cls_default_function(ctx) : req->function;
    bs_encoding **encs = calloc(n, sizeof *encs);
    double *scores = calloc(nl ? nl : 1, sizeof *scores);
    res->offsets = calloc(n + 1, sizeof *res->offsets);
    res->labels = calloc(n * top_k + 1, sizeof *res->labels);
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    if (!encs || !scores || !res->offsets || !res->labels) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    res->n = n;
    for (size_t i = 0; i <= n; i++) res->offsets[i] = i * top_k;
    for (size_t i = 0; i < n && !rc; i++)
        rc = bs_pl_encode(ctx, req->input.texts[i], strlen(req->input.texts[i]),
                          req->pairs ? req->pairs[i] : NULL, bs_pl_max_len(ctx), &encs[i],
                          &res->truncated, err);
    if (rc) goto done;
    if ((rc = bs_pl_forward(ctx, encs, n, BS_OUT_LOGITS, &out, err))) goto done;
    for (size_t i = 0; i < n; i++) {
        if (rank_labels(ctx->model, out.logits + i * (size_t)out.n_labels, nl, fn, top_k, scores,
                        res->labels + i * top_k)) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            goto done;
        }
    }
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    free(scores);
    if (rc) bs_classification_result_free(res);
    return rc;
}
