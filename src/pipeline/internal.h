/* Private helpers of the pipeline module: the model-independent pieces of
 * every task (probabilities, NER aggregation, QA span scoring, pooling, text
 * clean-up), kept free of model/tokenizer calls so they unit-test alone. */
#ifndef BS_PIPELINE_INTERNAL_H
#define BS_PIPELINE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "bertstudio/pipeline.h"

/* ── probabilities (float32 logits in, float64 out, as the fixtures) ── */
void bs_pl_softmax(const float *x, size_t n, double *out);
void bs_pl_log_softmax(const float *x, size_t n, double *out);
double bs_pl_sigmoid(double x);
/* Indices 0..n-1 ordered by descending v, ties kept in index order
 * (Python's stable sorted(reverse=True)). Caller frees; NULL on ENOMEM. */
size_t *bs_pl_argsort_desc(const double *v, size_t n);
/* Index of the largest value, first one on equality (numpy argmax). */
size_t bs_pl_argmax(const double *v, size_t n);

/* ── text ── */
/* Replaces every `from` in s by `to` (not longer than `from`), in place. */
void bs_pl_replace_in_place(char *s, const char *from, const char *to);
/* transformers' clean_up_tokenization, in place (" ." -> "." ...). */
void bs_pl_clean_up_tokenization(char *s);
/* Python str.strip(): byte range [*b, *e) of s without leading/trailing
 * Unicode whitespace. */
void bs_pl_strip(const char *s, size_t len, size_t *b, size_t *e);
/* Byte offset of code point `cp` in valid UTF-8 s (len if beyond). */
size_t bs_pl_cp_to_byte(const char *s, size_t len, size_t cp);
/* Python's str.lower() of UTF-8 s[0..len) with the simple case mapping
 * (malloc'ed; NULL on ENOMEM). */
char *bs_pl_lower(const char *s, size_t len);

/* ── NER ── */
typedef struct bs_ner_token {
    int32_t index;     /* position in the encoded sequence ([CLS] = 0) */
    int32_t id;        /* token id */
    const char *word;  /* raw vocabulary token, or the text slice for [UNK] */
    size_t start, end; /* code points into the text */
    int is_subword;
    const double *probs; /* [n_labels] softmax */
} bs_ner_token;

/* Decodes tokens[from..to) into one string (the tokenizer's decoder);
 * returns a malloc'ed string or NULL on failure. */
typedef char *(*bs_ner_decode_fn)(void *user, const bs_ner_token *tokens, size_t from, size_t to);

/* A growing list of entities (items owned: bs_ner_list_free). */
typedef struct bs_ner_list {
    bs_ner_entity *items;
    size_t n, cap;
} bs_ner_list;
void bs_ner_list_free(bs_ner_list *l);

/* Aggregates the pre-entities of one text as transformers'
 * TokenClassificationPipeline (aggregate + group_entities + ignore_labels)
 * and appends the entities to `out` (index -1 for groups). */
int bs_ner_aggregate_list(const bs_ner_token *tokens, size_t n, const char *const *labels,
                          size_t n_labels, bs_ner_aggregation agg, const char *const *ignore,
                          size_t n_ignore, bs_ner_decode_fn decode, void *user, bs_ner_list *out,
                          bs_err *err);
/* bs_ner_aggregate_list appending the entities as JSON objects to `out` (a
 * JSON array), as the `data` of the ner task holds them. */
int bs_ner_aggregate(const bs_ner_token *tokens, size_t n, const char *const *labels,
                     size_t n_labels, bs_ner_aggregation agg, const char *const *ignore,
                     size_t n_ignore, bs_ner_decode_fn decode, void *user, json_t *out,
                     bs_err *err);

/* One entity as the JSON object of the ner task's answer (a new reference;
 * NULL on ENOMEM): {entity|entity_group, score, [index], word, start, end}. */
json_t *bs_pl_ner_entity_json(const bs_ner_entity *e, int grouped);

/* ── QA ── */
typedef struct bs_qa_span {
    int32_t s, e; /* token positions in the window */
    double score;
} bs_qa_span;

/* Scores the spans of one window as transformers' select_starts_ends +
 * decode_spans: positions with desired[i] == 0 get logit -10000, softmax
 * over the window, null score p_start[0]*p_end[0] folded into *min_null
 * (when handle_impossible), then p[0] = 0 and spans s <= e < s + max_answer_len
 * with both ends desired; the top_k best (score > 0), best first, are
 * stored in *out (free()). */
int bs_qa_window_spans(const float *start_logits, const float *end_logits, const uint8_t *desired,
                       size_t len, size_t top_k, size_t max_answer_len, int handle_impossible,
                       double *min_null, bs_qa_span **out, size_t *n_out, bs_err *err);

/* Windows over C context tokens with room R per window and overlap stride
 * (tokenizers' truncate with stride): returns how many windows there are
 * (0 when stride >= R or R == 0) and fills starts[] with the first `max`
 * window starts (in context tokens). */
size_t bs_qa_windows(size_t n_context, size_t room, size_t stride, size_t *starts, size_t max);

/* ── pooling ── */
/* Pools hidden [len][dim] into out[dim] (double precision accumulation). */
void bs_pool(const float *hidden, size_t len, size_t dim, bs_pooling mode, double *out);
/* v / max(||v||, 1e-12) in place. */
void bs_normalize(double *v, size_t dim);

#endif
