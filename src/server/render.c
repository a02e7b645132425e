/* Task answers written once, from the typed results, in the shape the route
 * chose: scores as float64 and model vectors as float32, each in its
 * shortest round-trip form. An answer is an opening, a list of items (the
 * rows a stream sends one at a time) and a closing. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "server/render.h"
#include "util/json.h"

static void put_str(bs_buf *out, const char *s)
{
    bs_json_put_string(out, s ? s : "", s ? strlen(s) : 0);
}

static void put_dbl(bs_buf *out, double v)
{
    char num[32];
    bs_buf_append(out, num, (size_t)bs_json_fmt_double(v, num));
}

static void put_floats(bs_buf *out, const float *v, size_t n)
{
    char num[32];
    bs_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) bs_buf_putc(out, ',');
        bs_buf_append(out, num, (size_t)bs_json_fmt_float(v[i], num));
    }
    bs_buf_putc(out, ']');
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "base64 of the vector as little-endian float32" (OpenAI's encoding). */
static void put_base64(bs_buf *out, const float *v, size_t n)
{
    size_t nb = n * 4;
    bs_buf_putc(out, '"');
    for (size_t i = 0; i < nb; i += 3) {
        unsigned char raw[3] = {0, 0, 0};
        for (size_t k = 0; k < 3 && i + k < nb; k++) {
            uint32_t u;
            memcpy(&u, &v[(i + k) / 4], 4);
            raw[k] = (unsigned char)(u >> (8 * ((i + k) % 4)));
        }
        uint32_t x = (uint32_t)raw[0] << 16 | (uint32_t)raw[1] << 8 | raw[2];
        char q[4] = {b64[(x >> 18) & 63], b64[(x >> 12) & 63],
                     i + 1 < nb ? b64[(x >> 6) & 63] : '=', i + 2 < nb ? b64[x & 63] : '='};
        bs_buf_append(out, q, 4);
    }
    bs_buf_putc(out, '"');
}

static const char *bool_str(int b)
{
    return b ? "true" : "false";
}

/* ── the task's own pieces ── */

static void put_labels(bs_buf *out, const bs_classification_result *r, size_t i)
{
    bs_buf_putc(out, '[');
    for (size_t k = r->offsets[i]; k < r->offsets[i + 1]; k++) {
        if (k > r->offsets[i]) bs_buf_putc(out, ',');
        bs_buf_puts(out, "{\"label\":");
        put_str(out, r->labels[k].label);
        bs_buf_puts(out, ",\"score\":");
        put_dbl(out, r->labels[k].score);
        bs_buf_putc(out, '}');
    }
    bs_buf_putc(out, ']');
}

static void put_entities(bs_buf *out, const bs_ner_result *r, size_t i)
{
    bs_buf_putc(out, '[');
    for (size_t k = r->offsets[i]; k < r->offsets[i + 1]; k++) {
        const bs_ner_entity *e = &r->entities[k];
        if (k > r->offsets[i]) bs_buf_putc(out, ',');
        bs_buf_puts(out, r->grouped ? "{\"entity_group\":" : "{\"entity\":");
        put_str(out, e->label);
        bs_buf_puts(out, ",\"score\":");
        put_dbl(out, e->score);
        if (!r->grouped) bs_buf_printf(out, ",\"index\":%d", (int)e->index);
        bs_buf_puts(out, ",\"word\":");
        put_str(out, e->word);
        bs_buf_printf(out, ",\"start\":%zu,\"end\":%zu}", e->start, e->end);
    }
    bs_buf_putc(out, ']');
}

static void put_answer(bs_buf *out, const bs_qa_answer *a)
{
    bs_buf_puts(out, "{\"answer\":");
    put_str(out, a->answer);
    bs_buf_puts(out, ",\"score\":");
    put_dbl(out, a->score);
    bs_buf_printf(out, ",\"start\":%zu,\"end\":%zu}", a->start, a->end);
}

static void put_candidates(bs_buf *out, const bs_fill_mask_result *r, size_t mask)
{
    const bs_fill_mask_candidate *c = r->candidates + mask * r->per_mask;
    bs_buf_putc(out, '[');
    for (size_t k = 0; k < r->per_mask; k++) {
        if (k) bs_buf_putc(out, ',');
        bs_buf_puts(out, "{\"score\":");
        put_dbl(out, c[k].score);
        bs_buf_printf(out, ",\"token\":%d,\"token_str\":", (int)c[k].token);
        put_str(out, c[k].token_str);
        bs_buf_puts(out, ",\"sequence\":");
        put_str(out, c[k].sequence);
        bs_buf_putc(out, '}');
    }
    bs_buf_putc(out, ']');
}

/* One text's predictions: its mask's candidates, or a list per mask. */
static void put_predictions(bs_buf *out, const bs_fill_mask_result *r, size_t i)
{
    if (r->masks[i] == 1) {
        put_candidates(out, r, r->mask_offsets[i]);
        return;
    }
    bs_buf_putc(out, '[');
    for (size_t m = 0; m < r->masks[i]; m++) {
        if (m) bs_buf_putc(out, ',');
        put_candidates(out, r, r->mask_offsets[i] + m);
    }
    bs_buf_putc(out, ']');
}

static void put_matrix(bs_buf *out, const bs_features_result *r, size_t i)
{
    bs_buf_putc(out, '[');
    for (size_t t = 0; t < r->tokens[i]; t++) {
        if (t) bs_buf_putc(out, ',');
        put_floats(out, r->values + (r->offsets[i] + t) * r->dim, r->dim);
    }
    bs_buf_putc(out, ']');
}

static int truncated_of(const bs_task_result *res)
{
    switch (res->task) {
    case BS_TASK_CLASSIFICATION:
        return res->u.classification.truncated;
    case BS_TASK_NER:
        return res->u.ner.truncated;
    case BS_TASK_QA:
        return res->u.qa.truncated;
    case BS_TASK_FILL_MASK:
        return res->u.fill_mask.truncated;
    case BS_TASK_EMBEDDINGS:
        return res->u.embeddings.truncated;
    case BS_TASK_FEATURES:
        return res->u.features.truncated;
    default:
        return res->u.summarization.truncated;
    }
}

/* Items of the answer: rows of the task's list (texts, answers, vectors). */
static size_t count_items(const bs_render *r)
{
    const bs_task_result *res = &r->res;
    switch (r->o.shape) {
    case BS_SHAPE_RERANK:
        return r->n_hits;
    case BS_SHAPE_ORIG_QA:
    case BS_SHAPE_ORIG_SUMMARY:
        return 0;
    case BS_SHAPE_ORIG_NER:
        return res->u.ner.n ? 1 : 0;
    case BS_SHAPE_ORIG_FILL_MASK:
        return res->u.fill_mask.n ? 1 : 0;
    case BS_SHAPE_ORIG_FEATURES:
        if (r->o.single) return res->u.features.n ? res->u.features.tokens[0] : 0;
        return res->u.features.n;
    default:
        break;
    }
    switch (res->task) {
    case BS_TASK_CLASSIFICATION:
        return res->u.classification.n;
    case BS_TASK_NER:
        return res->u.ner.n;
    case BS_TASK_QA:
        return res->u.qa.n;
    case BS_TASK_FILL_MASK:
        return res->u.fill_mask.n;
    case BS_TASK_EMBEDDINGS:
        return res->u.embeddings.n;
    case BS_TASK_FEATURES:
        return res->u.features.n;
    case BS_TASK_SUMMARIZATION:
        return res->u.summarization.n;
    default:
        return 0;
    }
}

static void put_head(bs_render *r, bs_buf *out)
{
    const bs_task_result *res = &r->res;
    switch (r->o.shape) {
    case BS_SHAPE_ENVELOPE:
        bs_reply_envelope_open(out);
        bs_buf_puts(out, res->task == BS_TASK_EMBEDDINGS ? "{\"embeddings\":["
                         : res->task == BS_TASK_FEATURES ? "{\"features\":["
                                                         : "{\"results\":[");
        break;
    case BS_SHAPE_RERANK:
        bs_reply_envelope_open(out);
        bs_buf_puts(out, "{\"results\":[");
        break;
    case BS_SHAPE_OPENAI_EMBEDDINGS:
        bs_buf_puts(out, "{\"object\":\"list\",\"data\":[");
        break;
    case BS_SHAPE_ORIG_EMBED:
        bs_buf_puts(out, "{\"embeddings\":[");
        break;
    case BS_SHAPE_ORIG_FEATURES:
        bs_buf_puts(out, "{\"features\":[");
        break;
    case BS_SHAPE_ORIG_CLASSIFY:
        bs_buf_puts(out, "{\"results\":[");
        break;
    case BS_SHAPE_ORIG_QA: {
        static const bs_qa_answer none = {"", 0.0, 0, 0};
        put_answer(out, res->u.qa.n ? &res->u.qa.answers[0] : &none);
        break;
    }
    case BS_SHAPE_ORIG_NER:
        bs_buf_puts(out, "{\"entities\":");
        break;
    case BS_SHAPE_ORIG_FILL_MASK:
        bs_buf_puts(out, "{\"results\":");
        break;
    case BS_SHAPE_ORIG_SUMMARY:
        bs_buf_puts(out, "{\"summary\":");
        put_str(out, res->u.summarization.n ? res->u.summarization.texts[0] : "");
        bs_buf_putc(out, '}');
        break;
    }
}

/* Item i, or nothing (0) when the shape leaves it out. */
static int put_item(bs_render *r, size_t i, bs_buf *out)
{
    const bs_task_result *res = &r->res;
    switch (r->o.shape) {
    case BS_SHAPE_RERANK:
        bs_buf_printf(out, "{\"index\":%zu,\"score\":", r->hits[i].index);
        put_dbl(out, r->hits[i].score);
        if (r->hit_texts) {
            bs_buf_puts(out, ",\"text\":");
            put_str(out, r->hit_texts[i]);
        }
        bs_buf_putc(out, '}');
        return 1;
    case BS_SHAPE_OPENAI_EMBEDDINGS: {
        const bs_embeddings_result *e = &res->u.embeddings;
        size_t width = r->o.dims ? r->o.dims : e->dim;
        bs_buf_printf(out, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i);
        if (r->o.base64)
            put_base64(out, e->vectors + i * e->dim, width);
        else
            put_floats(out, e->vectors + i * e->dim, width);
        bs_buf_putc(out, '}');
        return 1;
    }
    case BS_SHAPE_ORIG_FEATURES:
        if (r->o.single) {
            const bs_features_result *f = &res->u.features;
            put_floats(out, f->values + (f->offsets[0] + i) * f->dim, f->dim);
            return 1;
        }
        break;
    case BS_SHAPE_ORIG_CLASSIFY:
        if (r->o.single) {
            const bs_classification_result *c = &res->u.classification;
            if (c->offsets[i] == c->offsets[i + 1]) return 0;
            bs_buf_puts(out, "{\"label\":");
            put_str(out, c->labels[c->offsets[i]].label);
            bs_buf_puts(out, ",\"score\":");
            put_dbl(out, c->labels[c->offsets[i]].score);
            bs_buf_putc(out, '}');
            return 1;
        }
        break;
    default:
        break;
    }
    switch (res->task) {
    case BS_TASK_CLASSIFICATION:
        put_labels(out, &res->u.classification, i);
        break;
    case BS_TASK_NER:
        put_entities(out, &res->u.ner, i);
        break;
    case BS_TASK_QA:
        put_answer(out, &res->u.qa.answers[i]);
        break;
    case BS_TASK_FILL_MASK:
        put_predictions(out, &res->u.fill_mask, i);
        break;
    case BS_TASK_EMBEDDINGS:
        put_floats(out, res->u.embeddings.vectors + i * res->u.embeddings.dim,
                   res->u.embeddings.dim);
        break;
    case BS_TASK_FEATURES:
        put_matrix(out, &res->u.features, i);
        break;
    case BS_TASK_SUMMARIZATION:
        bs_buf_puts(out, "{\"summary_text\":");
        put_str(out, res->u.summarization.texts[i]);
        bs_buf_putc(out, '}');
        break;
    default:
        return 0;
    }
    return 1;
}

static void put_tail(bs_render *r, bs_buf *out)
{
    const bs_task_result *res = &r->res;
    switch (r->o.shape) {
    case BS_SHAPE_ENVELOPE:
        if (res->task == BS_TASK_EMBEDDINGS)
            bs_buf_printf(out, "],\"dimensions\":%zu,\"truncated\":%s}", res->u.embeddings.dim,
                          bool_str(res->u.embeddings.truncated));
        else
            bs_buf_printf(out, "],\"truncated\":%s}", bool_str(truncated_of(res)));
        bs_reply_envelope_close(out);
        break;
    case BS_SHAPE_RERANK:
        bs_buf_puts(out, "]}");
        bs_reply_envelope_close(out);
        break;
    case BS_SHAPE_OPENAI_EMBEDDINGS:
        bs_buf_puts(out, "],\"model\":");
        put_str(out, r->model);
        bs_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}",
                      res->u.embeddings.tokens, res->u.embeddings.tokens);
        break;
    case BS_SHAPE_ORIG_EMBED:
        bs_buf_puts(out, "],\"model\":");
        put_str(out, r->model);
        bs_buf_printf(out, ",\"dimensions\":%zu}", res->u.embeddings.dim);
        break;
    case BS_SHAPE_ORIG_FEATURES:
    case BS_SHAPE_ORIG_CLASSIFY:
        bs_buf_puts(out, "]}");
        break;
    case BS_SHAPE_ORIG_NER:
    case BS_SHAPE_ORIG_FILL_MASK:
        bs_buf_putc(out, '}');
        break;
    case BS_SHAPE_ORIG_QA:
    case BS_SHAPE_ORIG_SUMMARY:
        break;
    }
}

/* The first dims of the n values of vec, in place; renormalised when the
 * full vector was unit length (a shortened Matryoshka embedding stays a
 * unit vector, as OpenAI's). */
static void shorten(float *vec, size_t n, size_t dims)
{
    double full = 0, part = 0;
    for (size_t i = 0; i < n; i++) {
        full += (double)vec[i] * vec[i];
        if (i < dims) part += (double)vec[i] * vec[i];
    }
    double scale = fabs(sqrt(full) - 1.0) < 1e-3 && part > 0 ? 1.0 / sqrt(part) : 1.0;
    for (size_t i = 0; i < dims && i < n; i++) vec[i] = (float)(vec[i] * scale);
}

int bs_render_begin(bs_render *r, bs_task_result *res, const bs_render_opts *o)
{
    memset(r, 0, sizeof *r);
    r->res = *res;
    memset(res, 0, sizeof *res);
    r->o = *o;
    r->o.model = NULL;
    if (o->model && !(r->model = strdup(o->model))) return BS_ENOMEM;
    if (o->shape == BS_SHAPE_OPENAI_EMBEDDINGS && o->dims) {
        bs_embeddings_result *e = &r->res.u.embeddings;
        if (o->dims > e->dim) r->o.dims = e->dim;
        for (size_t i = 0; i < e->n; i++) shorten(e->vectors + i * e->dim, e->dim, r->o.dims);
    }
    r->n_items = count_items(r);
    return 0;
}

int bs_render_begin_rerank(bs_render *r, const bs_rerank_hit *hits, size_t n,
                           const char *const *texts)
{
    memset(r, 0, sizeof *r);
    r->o.shape = BS_SHAPE_RERANK;
    r->res.task = BS_TASK_COUNT; /* nothing of a task to free */
    r->hits = malloc((n ? n : 1) * sizeof *r->hits);
    if (!r->hits) return BS_ENOMEM;
    memcpy(r->hits, hits, n * sizeof *hits);
    r->n_hits = n;
    if (texts) {
        r->hit_texts = calloc(n ? n : 1, sizeof *r->hit_texts);
        if (!r->hit_texts) return BS_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!(r->hit_texts[i] = strdup(texts[hits[i].index]))) return BS_ENOMEM;
    }
    r->n_items = n;
    return 0;
}

int bs_render_next(bs_render *r, bs_buf *out)
{
    switch (r->stage) {
    case 0:
        put_head(r, out);
        r->stage = 1;
        return 1;
    case 1:
        while (r->item < r->n_items) {
            size_t at = out->len;
            if (r->written) bs_buf_putc(out, ',');
            if (put_item(r, r->item++, out)) {
                r->written++;
                return 1;
            }
            out->len = at; /* left out: no separator either */
        }
        r->stage = 2;
        /* fall through */
    case 2:
        put_tail(r, out);
        r->stage = 3;
        return 1;
    default:
        return 0;
    }
}

size_t bs_render_numbers(const bs_render *r)
{
    const bs_task_result *res = &r->res;
    if (r->o.shape == BS_SHAPE_RERANK) return 2 * r->n_hits;
    switch (res->task) {
    case BS_TASK_CLASSIFICATION:
        return res->u.classification.offsets
                   ? res->u.classification.offsets[res->u.classification.n]
                   : 0;
    case BS_TASK_NER:
        return res->u.ner.offsets ? 4 * res->u.ner.offsets[res->u.ner.n] : 0;
    case BS_TASK_QA:
        return 3 * res->u.qa.n;
    case BS_TASK_FILL_MASK: {
        size_t masks = 0;
        for (size_t i = 0; i < res->u.fill_mask.n; i++) masks += res->u.fill_mask.masks[i];
        return 2 * masks * res->u.fill_mask.per_mask;
    }
    case BS_TASK_EMBEDDINGS:
        return res->u.embeddings.n * (r->o.dims ? r->o.dims : res->u.embeddings.dim);
    case BS_TASK_FEATURES: {
        size_t rows = 0;
        for (size_t i = 0; i < res->u.features.n; i++) rows += res->u.features.tokens[i];
        return rows * res->u.features.dim;
    }
    default:
        return 0;
    }
}

size_t bs_render_overhead(const bs_render *r)
{
    return r->o.shape == BS_SHAPE_ENVELOPE || r->o.shape == BS_SHAPE_RERANK
               ? bs_reply_envelope_bytes()
               : 0;
}

void bs_render_free(bs_render *r)
{
    bs_task_result_free(&r->res);
    free(r->model);
    for (size_t i = 0; r->hit_texts && i < r->n_hits; i++) free(r->hit_texts[i]);
    free(r->hit_texts);
    free(r->hits);
    memset(r, 0, sizeof *r);
}
