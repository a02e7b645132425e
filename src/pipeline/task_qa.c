/* Extractive question answering (transformers' QuestionAnsweringPipeline):
 * question + context split into doc_stride windows, span scoring in every
 * window, spans aligned to words and mapped to characters of the context,
 * same-text answers merged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

#define WINDOWS_PER_FORWARD 8

void bs_qa_req_init(bs_qa_req *req)
{
    memset(req, 0, sizeof *req);
    req->top_k = 1;
    req->doc_stride = -1;
    req->max_answer_len = 15;
    req->max_seq_len = -1;
}

/* One window as an encoding-shaped view with its own arrays. */
typedef struct window {
    bs_encoding enc; /* ids, type_ids, sequence_ids, word_ids, offsets, byte_offsets */
} window;

static void window_free(window *w)
{
    free(w->enc.ids);
    free(w->enc.type_ids);
    free(w->enc.sequence_ids);
    free(w->enc.word_ids);
    free(w->enc.offsets);
    free(w->enc.byte_offsets);
}

/* [prefix: question and its specials] context[cs, cs+cl) [suffix specials] */
static int window_make(const bs_encoding *full, size_t c0, size_t c1, size_t cs, size_t cl,
                       window *w)
{
    size_t pre = c0, post = full->len - c1, len = pre + cl + post;
    memset(w, 0, sizeof *w);
    w->enc.len = len;
    w->enc.ids = malloc(len * sizeof(int32_t));
    w->enc.type_ids = malloc(len * sizeof(int32_t));
    w->enc.sequence_ids = malloc(len * sizeof(int32_t));
    w->enc.word_ids = malloc(len * sizeof(int32_t));
    w->enc.offsets = malloc(len * sizeof(bs_span));
    w->enc.byte_offsets = malloc(len * sizeof(bs_span));
    if (!w->enc.ids || !w->enc.type_ids || !w->enc.sequence_ids || !w->enc.word_ids ||
        !w->enc.offsets || !w->enc.byte_offsets)
        return -1;
    size_t src[3] = {0, c0 + cs, c1}, cnt[3] = {pre, cl, post}, k = 0;
    for (int part = 0; part < 3; part++) {
        for (size_t i = src[part]; i < src[part] + cnt[part]; i++, k++) {
            w->enc.ids[k] = full->ids[i];
            w->enc.type_ids[k] = full->type_ids[i];
            w->enc.sequence_ids[k] = full->sequence_ids[i];
            w->enc.word_ids[k] = full->word_ids[i];
            w->enc.offsets[k] = full->offsets[i];
            w->enc.byte_offsets[k] = full->byte_offsets[i];
        }
    }
    return 0;
}

typedef struct answer {
    char *text, *lower;
    double score;
    size_t start, end;
} answer;

/* Answers in order of arrival, with a hash index on their lower-cased text
 * so that merging stays linear in the number of spans. */
typedef struct answers {
    answer *a;
    size_t n, cap;
    size_t *slots; /* index + 1, 0 = empty; n_slots a power of two, at most half full */
    size_t n_slots;
} answers;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t *slot_of(answers *as, const char *lower)
{
    size_t mask = as->n_slots - 1, i = (size_t)fnv1a(lower) & mask;
    while (as->slots[i] && strcmp(as->a[as->slots[i] - 1].lower, lower)) i = (i + 1) & mask;
    return &as->slots[i];
}

static int answers_grow(answers *as)
{
    size_t cap = as->cap ? 2 * as->cap : 16;
    answer *na = realloc(as->a, cap * sizeof *na);
    if (!na) return -1;
    as->a = na;
    as->cap = cap;
    size_t *slots = calloc(2 * cap, sizeof *slots);
    if (!slots) return -1;
    free(as->slots);
    as->slots = slots;
    as->n_slots = 2 * cap;
    for (size_t k = 0; k < as->n; k++) *slot_of(as, as->a[k].lower) = k + 1;
    return 0;
}

/* transformers' get_answer: same text, case-insensitive, adds the score. */
static int answers_add(answers *as, const char *ctx_text, size_t bstart, size_t bend, size_t start,
                       size_t end, double score)
{
    char *text = strndup(ctx_text + bstart, bend - bstart);
    char *lower = text ? bs_pl_lower(text, bend - bstart) : NULL;
    if (!lower || (as->n == as->cap && answers_grow(as))) {
        free(text);
        free(lower);
        return -1;
    }
    size_t *slot = slot_of(as, lower);
    if (*slot) {
        as->a[*slot - 1].score += score;
        free(text);
        free(lower);
        return 0;
    }
    *slot = as->n + 1;
    as->a[as->n++] = (answer){text, lower, score, start, end};
    return 0;
}

/* Span [s, e] of a window -> character/byte span (align_to_words, looking
 * at the window's own context tokens only). */
static void span_chars(const bs_encoding *w, int32_t s, int32_t e, size_t *cs, size_t *ce,
                       size_t *bs, size_t *be)
{
    int32_t ws = w->word_ids[s], we = w->word_ids[e];
    *cs = w->offsets[s].start;
    *bs = w->byte_offsets[s].start;
    *ce = w->offsets[e].end;
    *be = w->byte_offsets[e].end;
    if (ws < 0 || we < 0) return;
    for (size_t i = 0; i < w->len; i++) {
        if (w->sequence_ids[i] != 1 || w->word_ids[i] != ws) continue;
        *cs = w->offsets[i].start;
        *bs = w->byte_offsets[i].start;
        break;
    }
    for (size_t i = w->len; i-- > 0;) {
        if (w->sequence_ids[i] != 1 || w->word_ids[i] != we) continue;
        *ce = w->offsets[i].end;
        *be = w->byte_offsets[i].end;
        break;
    }
}

static int check_params(const bs_pipeline_ctx *ctx, const bs_qa_req *req, size_t *max_seq_len,
                        size_t *stride, bs_err *err)
{
    const char *q = req->question, *c = req->context;
    bs_texts tq = {1, &q}, tc = {1, &c};
    int rc = bs_pl_check_texts(&tq, "question", err);
    if (!rc) rc = bs_pl_check_texts(&tc, "context", err);
    if (rc) return rc;
    if (req->top_k < 1) return bs_err_set(err, BS_EINVAL, "top_k %d must be >= 1", req->top_k);
    if (req->max_answer_len < 1)
        return bs_err_set(err, BS_EINVAL, "max_answer_len %d must be >= 1", req->max_answer_len);
    size_t model_max = bs_pl_max_len(ctx);
    if (req->max_seq_len >= 0 && (req->max_seq_len < 4 || (size_t)req->max_seq_len > model_max))
        return bs_err_set(err, BS_EINVAL,
                          "max_seq_len %d must be between 4 and the model's maximum %zu",
                          req->max_seq_len, model_max);
    *max_seq_len =
        req->max_seq_len >= 0 ? (size_t)req->max_seq_len : (model_max < 384 ? model_max : 384);
    if (req->doc_stride >= 0) {
        *stride = (size_t)req->doc_stride;
    } else {
        *stride = *max_seq_len / 2 < 128 ? *max_seq_len / 2 : 128;
    }
    return bs_pl_require_head(ctx, BS_HEAD_QA, "qa", err);
}

/* The top_k answers, best first (texts copied). */
static int emit(answers *as, size_t top_k, bs_qa_result *res)
{
    double *scores = malloc((as->n ? as->n : 1) * sizeof *scores);
    if (!scores) return -1;
    for (size_t i = 0; i < as->n; i++) scores[i] = as->a[i].score;
    size_t *order = bs_pl_argsort_desc(scores, as->n);
    size_t n = as->n < top_k ? as->n : top_k;
    res->answers = calloc(n ? n : 1, sizeof *res->answers);
    int rc = order && res->answers ? 0 : -1;
    for (size_t k = 0; !rc && k < n; k++) {
        answer *a = &as->a[order[k]];
        res->answers[k] = (bs_qa_answer){strdup(a->text), a->score, a->start, a->end};
        res->n = k + 1;
        if (!res->answers[k].answer) rc = -1;
    }
    free(order);
    free(scores);
    return rc;
}

void bs_qa_result_free(bs_qa_result *res)
{
    for (size_t i = 0; res->answers && i < res->n; i++) free(res->answers[i].answer);
    free(res->answers);
    memset(res, 0, sizeof *res);
}

int bs_pipeline_qa(const bs_pipeline_ctx *ctx, const bs_qa_req *req, bs_qa_result *res, bs_err *err)
{
    memset(res, 0, sizeof *res);
    size_t max_seq_len = 0, stride = 0;
    int rc = check_params(ctx, req, &max_seq_len, &stride, err);
    if (rc) return rc;
    bs_encoding *full = NULL;
    size_t *starts = NULL, n_win = 0;
    window *wins = NULL;
    answers as = {0};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    int never_truncated = 0;
    if ((rc = bs_pl_encode(ctx, req->question, strlen(req->question), req->context, 0, &full,
                           &never_truncated, err)))
        goto done;
    size_t c0 = full->len, c1 = 0;
    for (size_t i = 0; i < full->len; i++) {
        if (full->sequence_ids[i] != 1) continue;
        if (i < c0) c0 = i;
        c1 = i + 1;
    }
    if (c1 == 0) {
        rc = bs_err_set(err, BS_EINVAL, "context has no tokens");
        goto done;
    }
    size_t C = c1 - c0, fixed = full->len - C;
    if (fixed >= max_seq_len) {
        rc = bs_err_set(err, BS_EINVAL,
                        "question is too long: with special tokens it takes %zu tokens, leaving no "
                        "room for the "
                        "context within max_seq_len %zu",
                        fixed, max_seq_len);
        goto done;
    }
    size_t room = max_seq_len - fixed;
    if (C > room && stride >= room) {
        rc = bs_err_set(
            err, BS_EINVAL,
            "doc_stride %zu must be smaller than the %zu context tokens that fit in one window "
            "(max_seq_len %zu minus the question and special tokens)",
            stride, room, max_seq_len);
        goto done;
    }
    starts = malloc(BS_PIPELINE_MAX_QA_WINDOWS * sizeof *starts);
    if (!starts) goto oom;
    n_win = bs_qa_windows(C, room, C > room ? stride : 0, starts, BS_PIPELINE_MAX_QA_WINDOWS);
    if (n_win > BS_PIPELINE_MAX_QA_WINDOWS) {
        rc = bs_err_set(
            err, BS_EINVAL,
            "context is too long: it needs %zu windows of max_seq_len %zu with doc_stride %zu; the "
            "limit is %d windows",
            n_win, max_seq_len, stride, BS_PIPELINE_MAX_QA_WINDOWS);
        n_win = 0;
        goto done;
    }
    wins = calloc(n_win, sizeof *wins);
    if (!wins) goto oom;
    for (size_t w = 0; w < n_win; w++) {
        size_t cl = C - starts[w] < room ? C - starts[w] : room;
        if (window_make(full, c0, c1, starts[w], cl, &wins[w])) goto oom;
    }
    int32_t cls = bs_tokenizer_special_id(ctx->tok, BS_SPECIAL_CLS);
    size_t top_k =
        req->top_k < BS_PIPELINE_MAX_RESULTS ? (size_t)req->top_k : BS_PIPELINE_MAX_RESULTS;
    double min_null = 1000000;
    for (size_t w0 = 0; w0 < n_win; w0 += WINDOWS_PER_FORWARD) {
        size_t nw = n_win - w0 < WINDOWS_PER_FORWARD ? n_win - w0 : WINDOWS_PER_FORWARD;
        bs_encoding *encs[WINDOWS_PER_FORWARD];
        for (size_t k = 0; k < nw; k++) encs[k] = &wins[w0 + k].enc;
        if ((rc = bs_pl_forward(ctx, encs, nw, BS_OUT_LOGITS, &out, err))) goto done;
        size_t row = 0;
        for (size_t k = 0; k < nw; k++) {
            const bs_encoding *we = encs[k];
            uint8_t desired[we->len];
            for (size_t i = 0; i < we->len; i++)
                desired[i] = we->sequence_ids[i] == 1 || we->ids[i] == cls;
            bs_qa_span *spans;
            size_t n_spans;
            rc =
                bs_qa_window_spans(out.start_logits + row, out.end_logits + row, desired, we->len,
                                   top_k, (size_t)req->max_answer_len,
                                   req->handle_impossible_answer, &min_null, &spans, &n_spans, err);
            if (rc) goto done;
            for (size_t j = 0; j < n_spans; j++) {
                size_t cs, ce, bs, be;
                span_chars(we, spans[j].s, spans[j].e, &cs, &ce, &bs, &be);
                if (answers_add(&as, req->context, bs, be, cs, ce, spans[j].score)) {
                    free(spans);
                    goto oom;
                }
            }
            free(spans);
            row += we->len;
        }
    }
    if (req->handle_impossible_answer) { /* appended as is, never merged with a span's answer */
        if (as.n == as.cap && answers_grow(&as)) goto oom;
        as.a[as.n] = (answer){strdup(""), strdup(""), min_null, 0, 0};
        if (!as.a[as.n].text || !as.a[as.n].lower) {
            free(as.a[as.n].text);
            free(as.a[as.n].lower);
            goto oom;
        }
        as.n++;
    }
    if (emit(&as, top_k, res)) goto oom;
    goto done;
oom:
    rc = bs_err_set(err, BS_ENOMEM, "out of memory");
done:
    bs_pl_outputs_release(ctx, &out);
    for (size_t w = 0; wins && w < n_win; w++) window_free(&wins[w]);
    free(wins);
    free(starts);
    bs_encoding_free(full);
    for (size_t i = 0; i < as.n; i++) {
        free(as.a[i].text);
        free(as.a[i].lower);
    }
    free(as.a);
    free(as.slots);
    if (rc) bs_qa_result_free(res);
    return rc;
}
