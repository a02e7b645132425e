/* Operations on bs_encoding shared by the pipeline and the post-processors. */
#ifndef BS_TOKENIZER_ENCODING_H
#define BS_TOKENIZER_ENCODING_H

#include "bertstudio/tokenizer.h"

/* Appends one token (string copied) with byte offsets b0, b1 (the code point
 * offsets are derived from them by the caller). */
int bs_tok_enc_push(bs_encoding *e, int32_t id, int32_t type_id, const char *tok, size_t tok_len,
                    size_t b0, size_t b1, int32_t word, int32_t seq, int special, int attn);
/* Frees the contents (not e itself). */
void bs_tok_enc_clear(bs_encoding *e);
int bs_tok_enc_slice(const bs_encoding *s, size_t from, size_t to, bs_encoding *out);
int bs_tok_enc_clone(const bs_encoding *s, bs_encoding *out);
/* Encoding::truncate: keeps the first window, the rest in overflowing. */
int bs_tok_enc_truncate(bs_encoding *e, size_t max_len, size_t stride, int left);
/* Encoding::merge_with: appends b, and the windows' cross product. */
int bs_tok_enc_merge_with(bs_encoding *a, const bs_encoding *b);
int bs_tok_enc_pad(bs_encoding *e, size_t target, int32_t pad_id, int32_t pad_type,
                   const char *pad_tok, int left);

#endif
