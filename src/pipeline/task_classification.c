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

static json_t *rank_labels(const bs_model *m, const float *logits, size_t nl, bs_cls_function fn,
                           size_t top_k, double *scores)
{
    if (fn == BS_CLS_FN_SOFTMAX) {
        bs_pl_softmax(logits, nl, scores);
    } else {
        for (size_t l = 0; l < nl; l++)
            scores[l] = fn == BS_CLS_FN_SIGMOID ? bs_pl_sigmoid(logits[l]) : logits[l];
    }
    size_t *order = bs_pl_argsort_desc(scores, nl);
    json_t *row = json_array();
    if (!order || !row) {
        free(order);
        json_decref(row);
        return NULL;
    }
    for (size_t k = 0; k < nl && k < top_k; k++) {
        json_t *o = json_pack("{s:s, s:f}", "label", bs_model_label(m, (int)order[k]), "score",
                              scores[order[k]]);
        if (!o || json_array_append_new(row, o)) {
            json_decref(row);
            row = NULL;
            break;
        }
    }
    free(order);
    return row;
}

int bs_pipeline_classify(const bs_pipeline_ctx *ctx, const bs_classification_req *req,
                         json_t **data_out, bs_err *err)
{
    *data_out = NULL;
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
    size_t top_k = req->top_k <= 0 ? nl : (size_t)req->top_k;
    bs_cls_function fn =
        req->function == BS_CLS_FN_DEFAULT ? bs_pl_cls_default_function(ctx) : req->function;
    bs_encoding **encs = calloc(n, sizeof *encs);
    double *scores = calloc(nl ? nl : 1, sizeof *scores);
    json_t *results = json_array();
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    int truncated = 0;
    if (!encs || !scores || !results) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = bs_pl_encode(ctx, req->input.texts[i], strlen(req->input.texts[i]),
                          req->pairs ? req->pairs[i] : NULL, bs_pl_max_len(ctx), &encs[i],
                          &truncated, err);
    if (rc) goto done;
    if ((rc = bs_pl_forward(ctx, encs, n, BS_OUT_LOGITS, &out, err))) goto done;
    for (size_t i = 0; i < n; i++) {
        json_t *row =
            rank_labels(ctx->model, out.logits + i * (size_t)out.n_labels, nl, fn, top_k, scores);
        if (!row || json_array_append_new(results, row)) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            goto done;
        }
    }
    *data_out = json_pack("{s:O, s:b}", "results", results, "truncated", truncated);
    if (!*data_out) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    free(scores);
    json_decref(results);
    return rc;
}
