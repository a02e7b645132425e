/* Loaders of the tokenizer files (tokenizer.json, and the older vocab.txt /
 * vocab.json + merges.txt with tokenizer_config.json). */
#ifndef BS_TOKENIZER_LOAD_H
#define BS_TOKENIZER_LOAD_H

#include "tokenizer/tok_internal.h"

/* Fills tok's components from tokenizer.json bytes. */
int bs_tok_load_tokenizer_json(const char *text, size_t len, bs_tokenizer *tok, bs_err *err);
/* Adds the merge (a, b) of rank to m's BPE merges; where names the file. */
int bs_tok_load_add_merge(model *m, const char *a, size_t al, const char *b, size_t bl,
                          uint32_t rank, const char *where, bs_err *err);
/* Builds a WordPiece or byte-level BPE tokenizer from the older files in dir. */
int bs_tok_load_legacy(const char *dir, bs_tokenizer *tok, bs_err *err);
/* Reads tokenizer_config.json / special_tokens_map.json of dir (if any). */
int bs_tok_load_configs(const char *dir, bs_tokenizer *tok, bs_err *err);

#endif
