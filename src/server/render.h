/* The one renderer of task answers: a typed pipeline result written as the
 * bytes of one answer shape (our envelope, OpenAI's /v1/embeddings, the
 * original product's routes), chosen before the first byte. The answer
 * comes out in pieces (its opening, one row, its closing) so that a long
 * one can be streamed; the pieces joined are the answer built whole. */
#ifndef BS_SERVER_RENDER_H
#define BS_SERVER_RENDER_H

#include <stddef.h>

#include "bertstudio/pipeline.h"
#include "util/buf.h"

typedef enum bs_shape {
    BS_SHAPE_ENVELOPE = 0,      /* {"success":true,"data":<the task's data>} (api.md) */
    BS_SHAPE_RERANK,            /* the envelope around {"results":[{index,score[,text]}]} */
    BS_SHAPE_OPENAI_EMBEDDINGS, /* {"object":"list","data":[...],"model","usage"} */
    BS_SHAPE_ORIG_EMBED,        /* {"embeddings","model","dimensions"} */
    BS_SHAPE_ORIG_FEATURES,     /* {"features": [matrix per text] | one text's matrix} */
    BS_SHAPE_ORIG_CLASSIFY,     /* {"results": [top label | ranked labels per text]} */
    BS_SHAPE_ORIG_QA,           /* the best answer {"answer","score","start","end"} */
    BS_SHAPE_ORIG_NER,          /* {"entities": [the first text's]} */
    BS_SHAPE_ORIG_FILL_MASK,    /* {"results": the first text's predictions} */
    BS_SHAPE_ORIG_SUMMARY,      /* {"summary": the first text's} */
} bs_shape;

typedef struct bs_render_opts {
    bs_shape shape;
    const char *model; /* OPENAI_EMBEDDINGS, ORIG_EMBED: the model named (copied) */
    int single;        /* ORIG_FEATURES: one text's matrix; ORIG_CLASSIFY: top label only */
    int base64;        /* OPENAI_EMBEDDINGS: vectors as base64 of little-endian float32 */
    size_t dims;       /* OPENAI_EMBEDDINGS: first dims values, unit length kept (0: all) */
} bs_render_opts;

typedef struct bs_render {
    bs_task_result res;
    bs_render_opts o;
    char *model;
    /* BS_SHAPE_RERANK: the hits, best first, and their texts (NULL: none) */
    bs_rerank_hit *hits;
    char **hit_texts;
    size_t n_hits;
    int stage; /* 0: opening, 1: items, 2: closing, 3: done */
    size_t item, n_items, written;
} bs_render;

/* Starts rendering res (stolen, also on failure) in shape o. Returns 0 or
 * BS_ENOMEM. */
int bs_render_begin(bs_render *r, bs_task_result *res, const bs_render_opts *o);
/* Starts rendering rerank hits (copied; texts[hits[i].index] copied when
 * texts is non-NULL) in BS_SHAPE_RERANK. Returns 0 or BS_ENOMEM. */
int bs_render_begin_rerank(bs_render *r, const bs_rerank_hit *hits, size_t n,
                           const char *const *texts);
/* Appends the next piece of the answer to out: 1 when it did, 0 when the
 * answer is complete. */
int bs_render_next(bs_render *r, bs_buf *out);
/* How many numbers the answer carries (base64 floats included), for the
 * setting stream_answer_numbers. */
size_t bs_render_numbers(const bs_render *r);
/* Bytes of the answer that are not the task's data (the envelope), so that
 * the execution log's result_size is that of the data. */
size_t bs_render_overhead(const bs_render *r);
void bs_render_free(bs_render *r);

#endif
