/* Encoding of one sequence through normalizer, pre-tokenizer and model. */
#ifndef BS_TOKENIZER_PIPELINE_H
#define BS_TOKENIZER_PIPELINE_H

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* Encodes valid UTF-8 text as sequence seq into e (byte offsets only).
 * limit > 0 stops after the word that brings the count to limit (from the
 * end when from_left). */
int bs_tok_pipeline_encode_seq(const bs_tokenizer *tok, const char *text, size_t len, int32_t seq,
                               size_t limit, int from_left, bs_encoding *e, bs_err *err);

#endif
