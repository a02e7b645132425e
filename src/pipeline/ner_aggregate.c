/* NER post-processing: transformers' TokenClassificationPipeline.aggregate,
 * aggregate_words, group_entities and the ignore_labels filter, over
 * per-token probabilities that the caller computed. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

/* One entity before grouping: a token (none/simple) or a word. */
typedef struct entity {
    size_t label;
    double score;
    size_t tok_from, tok_to; /* tokens it covers */
} entity;

static int bad_alloc(bs_err *err)
{
    return bs_err_set(err, BS_ENOMEM, "out of memory in NER aggregation");
}

/* "B-PER" -> (B, "PER"); "I-PER" -> (I, "PER"); anything else -> (I, label). */
static void get_tag(const char *label, int *is_b, const char **tag)
{
    if (!strncmp(label, "B-", 2)) {
        *is_b = 1;
        *tag = label + 2;
    } else if (!strncmp(label, "I-", 2)) {
        *is_b = 0;
        *tag = label + 2;
    } else {
        *is_b = 0;
        *tag = label;
    }
}

static int ignored(const char *name, const char *const *ignore, size_t n_ignore)
{
    for (size_t i = 0; i < n_ignore; i++)
        if (!strcmp(name, ignore[i])) return 1;
    return 0;
}

/* Label and score of a word from its tokens' probabilities. */
static void aggregate_word(const bs_ner_token *t, size_t from, size_t to, size_t n_labels,
                           bs_ner_aggregation agg, double *avg, entity *out)
{
    const double *probs = t[from].probs;
    if (agg == BS_NER_AGG_MAX) {
        double best = -1;
        for (size_t i = from; i < to; i++) {
            double m = t[i].probs[bs_pl_argmax(t[i].probs, n_labels)];
            if (m > best) {
                best = m;
                probs = t[i].probs;
            }
        }
    } else if (agg == BS_NER_AGG_AVERAGE) {
        for (size_t l = 0; l < n_labels; l++) {
            double s = 0;
            for (size_t i = from; i < to; i++) s += t[i].probs[l];
            avg[l] = s / (double)(to - from);
        }
        probs = avg;
    }
    out->label = bs_pl_argmax(probs, n_labels);
    out->score = probs[out->label];
    out->tok_from = from;
    out->tok_to = to;
}

void bs_ner_list_free(bs_ner_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].label);
        free(l->items[i].word);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Appends one entity (word stolen, also on failure). */
static int emit(bs_ner_list *out, const char *name, double score, int32_t index, char *word,
                size_t start, size_t end)
{
    char *label = strdup(name);
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        bs_ner_entity *g = realloc(out->items, cap * sizeof *g);
        if (g) {
            out->items = g;
            out->cap = cap;
        }
    }
    if (!label || !word || out->n == out->cap) {
        free(label);
        free(word);
        return -1;
    }
    out->items[out->n++] = (bs_ner_entity){label, score, index, word, start, end};
    return 0;
}

/* Group name as transformers' group_sub_entities: label.split("-", 1)[-1]. */
static const char *group_name(const char *label)
{
    const char *dash = strchr(label, '-');
    return dash ? dash + 1 : label;
}

int bs_ner_aggregate(const bs_ner_token *tokens, size_t n, const char *const *labels,
                     size_t n_labels, bs_ner_aggregation agg, const char *const *ignore,
                     size_t n_ignore, bs_ner_decode_fn decode, void *user, json_t *out, bs_err *err)
{
    bs_ner_list l = {0};
    int rc = bs_ner_aggregate_list(tokens, n, labels, n_labels, agg, ignore, n_ignore, decode, user,
                                   &l, err);
    for (size_t i = 0; !rc && i < l.n; i++)
        if (json_array_append_new(out, bs_pl_ner_entity_json(&l.items[i], agg != BS_NER_AGG_NONE)))
            rc = bad_alloc(err);
    bs_ner_list_free(&l);
    return rc;
}

int bs_ner_aggregate_list(const bs_ner_token *tokens, size_t n, const char *const *labels,
                          size_t n_labels, bs_ner_aggregation agg, const char *const *ignore,
                          size_t n_ignore, bs_ner_decode_fn decode, void *user, bs_ner_list *out,
                          bs_err *err)
{
    if (n == 0) return 0;
    entity *ents = calloc(n, sizeof *ents);
    double *avg = calloc(n_labels ? n_labels : 1, sizeof *avg);
    size_t n_ents = 0;
    int rc = 0;
    if (!ents || !avg) {
        rc = bad_alloc(err);
        goto done;
    }
    if (agg == BS_NER_AGG_NONE || agg == BS_NER_AGG_SIMPLE) {
        for (size_t i = 0; i < n; i++)
            aggregate_word(tokens, i, i + 1, n_labels, BS_NER_AGG_FIRST, avg, &ents[n_ents++]);
    } else {
        size_t from = 0;
        for (size_t i = 1; i <= n; i++) {
            if (i < n && tokens[i].is_subword) continue;
            aggregate_word(tokens, from, i, n_labels, agg, avg, &ents[n_ents++]);
            from = i;
        }
    }
    if (agg == BS_NER_AGG_NONE) {
        for (size_t i = 0; i < n_ents; i++) {
            const bs_ner_token *t = &tokens[ents[i].tok_from];
            const char *name = labels[ents[i].label];
            if (ignored(name, ignore, n_ignore)) continue;
            if (emit(out, name, ents[i].score, t->index, strdup(t->word), t->start, t->end)) {
                rc = bad_alloc(err);
                goto done;
            }
        }
        goto done;
    }
    /* group_entities: consecutive entities with the same tag, not B- */
    for (size_t g = 0; g < n_ents;) {
        size_t h = g + 1;
        while (h < n_ents) {
            int b, lb;
            const char *tag, *ltag;
            get_tag(labels[ents[h].label], &b, &tag);
            get_tag(labels[ents[h - 1].label], &lb, &ltag);
            if (strcmp(tag, ltag) || b) break;
            h++;
        }
        double sum = 0;
        for (size_t i = g; i < h; i++) sum += ents[i].score;
        const char *name = group_name(labels[ents[g].label]);
        if (!ignored(name, ignore, n_ignore)) {
            char *word = decode(user, tokens, ents[g].tok_from, ents[h - 1].tok_to);
            if (!word) {
                rc = bs_err_set(err, BS_ENOMEM, "could not decode the words of an entity group");
                goto done;
            }
            if (emit(out, name, sum / (double)(h - g), -1, word, tokens[ents[g].tok_from].start,
                     tokens[ents[h - 1].tok_to - 1].end)) {
                rc = bad_alloc(err);
                goto done;
            }
        }
        g = h;
    }
done:
    free(ents);
    free(avg);
    return rc;
}
