/* Token classification / NER (transformers' TokenClassificationPipeline):
 * per-token softmax, pre-entities with words and character offsets from the
 * original text, then aggregation (ner_aggregate.c). */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"
#include "util/buf.h"
#include "util/utf8.h"

void bs_ner_req_init(bs_ner_req *req)
{
    memset(req, 0, sizeof *req);
    req->aggregation = BS_NER_AGG_NONE;
}

typedef struct ner_text {
    const bs_pipeline_ctx *ctx;
    int two_level; /* word aggregation: decode words, then the words again */
    bs_err *err;
} ner_text;

/* The tokenizer's decoder over tokens[from..to). Tokens that are the unknown
 * token carry their original text slice (as transformers puts it in `word`):
 * the decoder's rendering of the unknown token is replaced by that slice. */
static char *decode_run(void *user, const bs_ner_token *t, size_t from, size_t to)
{
    ner_text *nt = user;
    int32_t unk = bs_tokenizer_special_id(nt->ctx->tok, BS_SPECIAL_UNK);
    int32_t *ids = malloc((to - from) * sizeof *ids);
    if (!ids) return NULL;
    for (size_t i = from; i < to; i++) ids[i - from] = t[i].id;
    char *s = bs_pl_decode(nt->ctx, ids, to - from, 0, 0, nt->err);
    free(ids);
    const char *unk_str = unk >= 0 ? bs_tokenizer_id_to_token(nt->ctx->tok, unk) : NULL;
    if (!s || !unk_str || !*unk_str) return s;
    bs_buf b;
    bs_buf_init(&b);
    const char *r = s;
    size_t ul = strlen(unk_str);
    for (size_t i = from; i < to; i++) {
        if (t[i].id != unk) continue;
        const char *hit = strstr(r, unk_str);
        if (!hit) break;
        bs_buf_append(&b, r, (size_t)(hit - r));
        bs_buf_puts(&b, t[i].word);
        r = hit + ul;
    }
    bs_buf_puts(&b, r);
    free(s);
    if (b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return bs_buf_steal(&b, NULL);
}

/* A group's word. With word aggregation transformers decodes every word's
 * tokens, then the group's words once more (convert_tokens_to_string twice):
 * the second pass is the tokenizer's decoder chain run on the words. */
static char *decode_tokens(void *user, const bs_ner_token *t, size_t from, size_t to)
{
    ner_text *nt = user;
    if (!nt->two_level) return decode_run(user, t, from, to);
    char **words = calloc(to - from, sizeof *words);
    size_t n = 0;
    char *out = NULL;
    if (!words) return NULL;
    for (size_t i = from; i < to;) {
        size_t j = i + 1;
        while (j < to && t[j].is_subword) j++;
        if (!(words[n++] = decode_run(user, t, i, j))) goto done;
        i = j;
    }
    bs_tokenizer_decode_tokens(nt->ctx->tok, (const char *const *)words, n, &out, NULL, nt->err);
done:
    for (size_t i = 0; i < n; i++) free(words[i]);
    free(words);
    return out;
}

/* Pre-entities of one encoded text, then the aggregated entities. */
static int ner_one(const bs_pipeline_ctx *ctx, const bs_ner_req *req, const char *text,
                   const bs_encoding *enc, const float *logits, size_t nl,
                   const char *const *labels, bs_ner_list *row, bs_err *err)
{
    static const char *const default_ignore[] = {"O"};
    bs_ner_token *toks = calloc(enc->len ? enc->len : 1, sizeof *toks);
    double *probs = calloc(enc->len * nl + 1, sizeof *probs);
    char **slices = calloc(enc->len ? enc->len : 1, sizeof *slices);
    int rc = 0;
    if (!toks || !probs || !slices) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    int has_prefix = bs_tokenizer_continuing_subword_prefix(ctx->tok) != NULL;
    int32_t unk = bs_tokenizer_special_id(ctx->tok, BS_SPECIAL_UNK);
    size_t n = 0;
    for (size_t i = 0; i < enc->len; i++) {
        if (enc->special_tokens_mask[i]) continue;
        bs_ner_token *t = &toks[n];
        double *p = probs + n * nl;
        bs_pl_softmax(logits + i * nl, nl, p);
        t->index = (int32_t)i;
        t->id = enc->ids[i];
        t->probs = p;
        t->start = enc->offsets[i].start;
        t->end = enc->offsets[i].end;
        size_t bs = enc->byte_offsets[i].start, be = enc->byte_offsets[i].end;
        slices[n] = strndup(text + bs, be - bs);
        if (!slices[n]) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            goto done;
        }
        t->word = enc->tokens[i];
        if (has_prefix) {
            t->is_subword =
                bs_utf8_count(enc->tokens[i], strlen(enc->tokens[i])) != t->end - t->start;
        } else {
            t->is_subword = t->start > 0 && bs > 0 && text[bs - 1] != ' ' && text[bs] != ' ';
        }
        if (enc->ids[i] == unk) {
            t->word = slices[n];
            t->is_subword = 0;
        }
        n++;
    }
    ner_text nt = {ctx, req->aggregation >= BS_NER_AGG_FIRST, err};
    const char *const *ignore = req->has_ignore_labels ? req->ignore_labels : default_ignore;
    size_t n_ignore = req->has_ignore_labels ? req->n_ignore_labels : 1;
    rc = bs_ner_aggregate_list(toks, n, labels, nl, req->aggregation, ignore, n_ignore,
                               decode_tokens, &nt, row, err);
done:
    for (size_t i = 0; slices && i < enc->len; i++) free(slices[i]);
    free(slices);
    free(toks);
    free(probs);
    return rc;
}

void bs_ner_result_free(bs_ner_result *res)
{
    bs_ner_list l = {res->entities, res->offsets ? res->offsets[res->n] : 0, 0};
    bs_ner_list_free(&l);
    free(res->offsets);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_ner(const bs_pipeline_ctx *ctx, const bs_ner_req *req, bs_ner_result *res,
                    bs_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = bs_pl_check_texts(&req->input, "text", err);
    if (rc) return rc;
    if ((rc = bs_pl_require_head(ctx, BS_HEAD_TOKEN_CLS, "ner", err))) return rc;
    size_t n = req->input.n, nl = (size_t)bs_model_num_labels(ctx->model);
    const char **labels = calloc(nl ? nl : 1, sizeof *labels);
    bs_encoding **encs = calloc(n, sizeof *encs);
    size_t *offsets = calloc(n + 1, sizeof *offsets);
    bs_ner_list all = {0};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    if (!labels || !encs || !offsets) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t l = 0; l < nl; l++) labels[l] = bs_model_label(ctx->model, (int)l);
    for (size_t i = 0; i < n && !rc; i++)
        rc = bs_pl_encode(ctx, req->input.texts[i], strlen(req->input.texts[i]), NULL,
                          bs_pl_max_len(ctx), &encs[i], &res->truncated, err);
    if (rc) goto done;
    if ((rc = bs_pl_forward(ctx, encs, n, BS_OUT_LOGITS, &out, err))) goto done;
    size_t row0 = 0;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = all.n;
        rc = ner_one(ctx, req, req->input.texts[i], encs[i],
                     out.logits + row0 * (size_t)out.n_labels, nl, labels, &all, err);
        if (rc) goto done;
        row0 += encs[i]->len;
    }
    offsets[n] = all.n;
    res->n = n;
    res->offsets = offsets;
    res->entities = all.items;
    res->grouped = req->aggregation != BS_NER_AGG_NONE;
    offsets = NULL;
    all.items = NULL;
    all.n = 0;
done:
    bs_pl_outputs_release(ctx, &out);
    bs_encoding_batch_free(encs, n);
    free(labels);
    free(offsets);
    bs_ner_list_free(&all);
    if (rc) res->truncated = 0;
    return rc;
}
