/* Typed task results as the jansson `data` object of the API, for the CLI
 * and library users of bs_pipeline_run_json (the server renders the same
 * shapes straight to bytes in server/render.c; a unit test holds the two
 * equal). */
#include <stdlib.h>

#include "pipeline/ctx.h"
#include "pipeline/internal.h"

/* Appends v (stolen) to a; 0 or -1. */
static int push(json_t *a, json_t *v)
{
    return v ? json_array_append_new(a, v) : -1;
}

json_t *bs_pl_ner_entity_json(const bs_ner_entity *e, int grouped)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = json_object_set_new(o, grouped ? "entity_group" : "entity", json_string(e->label));
    bad |= json_object_set_new(o, "score", json_real(e->score));
    if (!grouped) bad |= json_object_set_new(o, "index", json_integer(e->index));
    bad |= json_object_set_new(o, "word", json_string(e->word));
    bad |= json_object_set_new(o, "start", json_integer((json_int_t)e->start));
    bad |= json_object_set_new(o, "end", json_integer((json_int_t)e->end));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *floats(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (push(a, json_real(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *candidates(const bs_fill_mask_candidate *c, size_t n)
{
    json_t *a = json_array();
    for (size_t k = 0; a && k < n; k++)
        if (push(a, json_pack("{s:f, s:i, s:s, s:s}", "score", c[k].score, "token", (int)c[k].token,
                              "token_str", c[k].token_str, "sequence", c[k].sequence))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The "results" list of a task (NULL for embeddings and features). */
static json_t *results(const bs_task_result *res, int *bad)
{
    json_t *out = json_array();
    if (!out) {
        *bad = 1;
        return NULL;
    }
    switch (res->task) {
    case BS_TASK_CLASSIFICATION: {
        const bs_classification_result *r = &res->u.classification;
        for (size_t i = 0; i < r->n && !*bad; i++) {
            json_t *row = json_array();
            *bad |= push(out, row);
            for (size_t k = r->offsets[i]; row && k < r->offsets[i + 1]; k++)
                *bad |= push(row, json_pack("{s:s, s:f}", "label", r->labels[k].label, "score",
                                            r->labels[k].score));
        }
        break;
    }
    case BS_TASK_NER: {
        const bs_ner_result *r = &res->u.ner;
        for (size_t i = 0; i < r->n && !*bad; i++) {
            json_t *row = json_array();
            *bad |= push(out, row);
            for (size_t k = r->offsets[i]; row && k < r->offsets[i + 1]; k++)
                *bad |= push(row, bs_pl_ner_entity_json(&r->entities[k], r->grouped));
        }
        break;
    }
    case BS_TASK_QA:
        for (size_t k = 0; k < res->u.qa.n; k++) {
            const bs_qa_answer *a = &res->u.qa.answers[k];
            *bad |=
                push(out, json_pack("{s:s, s:f, s:I, s:I}", "answer", a->answer, "score", a->score,
                                    "start", (json_int_t)a->start, "end", (json_int_t)a->end));
        }
        break;
    case BS_TASK_FILL_MASK: {
        /* one mask: its candidates; several: a list per mask */
        const bs_fill_mask_result *r = &res->u.fill_mask;
        for (size_t i = 0; i < r->n && !*bad; i++) {
            const bs_fill_mask_candidate *c = r->candidates + r->mask_offsets[i] * r->per_mask;
            if (r->masks[i] == 1) {
                *bad |= push(out, candidates(c, r->per_mask));
                continue;
            }
            json_t *item = json_array();
            *bad |= push(out, item);
            for (size_t m = 0; item && m < r->masks[i]; m++)
                *bad |= push(item, candidates(c + m * r->per_mask, r->per_mask));
        }
        break;
    }
    case BS_TASK_SUMMARIZATION:
        for (size_t i = 0; i < res->u.summarization.n; i++)
            *bad |= push(out, json_pack("{s:s}", "summary_text", res->u.summarization.texts[i]));
        break;
    default:
        break;
    }
    return out;
}

json_t *bs_task_result_json(const bs_task_result *res)
{
    int bad = 0;
    json_t *data = NULL;
    switch (res->task) {
    case BS_TASK_EMBEDDINGS: {
        const bs_embeddings_result *r = &res->u.embeddings;
        json_t *embs = json_array();
        for (size_t i = 0; embs && i < r->n; i++)
            bad |= push(embs, floats(r->vectors + i * r->dim, r->dim));
        data = json_pack("{s:o, s:I, s:b}", "embeddings", embs, "dimensions", (json_int_t)r->dim,
                         "truncated", r->truncated);
        break;
    }
    case BS_TASK_FEATURES: {
        const bs_features_result *r = &res->u.features;
        json_t *feats = json_array();
        for (size_t i = 0; feats && i < r->n && !bad; i++) {
            json_t *m = json_array();
            bad |= push(feats, m);
            for (size_t t = 0; m && t < r->tokens[i]; t++)
                bad |= push(m, floats(r->values + (r->offsets[i] + t) * r->dim, r->dim));
        }
        data = json_pack("{s:o, s:b}", "features", feats, "truncated", r->truncated);
        break;
    }
    case BS_TASK_CLASSIFICATION:
    case BS_TASK_NER:
    case BS_TASK_QA:
    case BS_TASK_FILL_MASK:
    case BS_TASK_SUMMARIZATION: {
        int truncated = res->task == BS_TASK_CLASSIFICATION ? res->u.classification.truncated
                        : res->task == BS_TASK_NER          ? res->u.ner.truncated
                        : res->task == BS_TASK_QA           ? res->u.qa.truncated
                        : res->task == BS_TASK_FILL_MASK    ? res->u.fill_mask.truncated
                                                            : res->u.summarization.truncated;
        data = json_pack("{s:o, s:b}", "results", results(res, &bad), "truncated", truncated);
        break;
    }
    default:
        return NULL;
    }
    if (bad) {
        json_decref(data);
        return NULL;
    }
    return data;
}
