/*
 * tokenize: the tokenizer API (bertstudio/tokenizer.h) on its own. Loads a
 * tokenizer from a model folder or a tokenizer.json file, encodes a text (and
 * optionally a second text as a pair), prints one row per token and decodes
 * the ids back to text.
 *
 *   build/examples/bs-tokenize tests/fixtures/tokenizers/bert-base-uncased "Hello, world!"
 *   build/examples/bs-tokenize tests/fixtures/tokenizers/roberta-base/tokenizer.json \
 *       "café?" "naïve 😀 answer."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bertstudio/tokenizer.h>

static const char *kind_name(bs_model_kind kind)
{
    switch (kind) {
    case BS_MODEL_WORDPIECE:
        return "WordPiece";
    case BS_MODEL_BPE:
        return "BPE";
    case BS_MODEL_UNIGRAM:
        return "Unigram";
    case BS_MODEL_WORDLEVEL:
        return "WordLevel";
    }
    return "?";
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR|tokenizer.json TEXT [PAIR]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1], *text = argv[2], *pair = argc == 4 ? argv[3] : NULL;

    /* Every fallible call fills a bs_err with a sentence naming the bad input
     * (the file, the component, the field): print it as is. */
    bs_err err = {0};
    bs_tokenizer *tok = NULL;
    if (bs_tokenizer_load(path, &tok, &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        return 1;
    }
    printf("tokenizer: %s, %zu tokens\n", kind_name(bs_tokenizer_model_kind(tok)),
           bs_tokenizer_vocab_size(tok));

    /* Default options: special tokens added ([CLS] ... [SEP], or <s> ... </s>),
     * no truncation, no padding. Texts are UTF-8 with explicit lengths; invalid
     * UTF-8 is refused with BS_EUTF8. */
    bs_encode_opts opts;
    bs_encode_opts_default(&opts);
    bs_encoding *enc = NULL;
    if (bs_tokenizer_encode(tok, text, strlen(text), pair, pair ? strlen(pair) : 0, &opts, &enc,
                            &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        bs_tokenizer_free(tok);
        return 1;
    }

    printf("ids:");
    for (size_t i = 0; i < enc->len; i++) printf(" %d", enc->ids[i]);
    printf("\n");

    /* Offsets are code points (Python str indices) into the token's own input:
     * `text` for sequence 0, `pair` for sequence 1. Special tokens have (0, 0). */
    printf("%4s %7s %4s %3s  %-13s %s\n", "pos", "id", "type", "seq", "offsets", "token");
    for (size_t i = 0; i < enc->len; i++) {
        char seq[16] = "-";
        if (enc->sequence_ids[i] >= 0) snprintf(seq, sizeof seq, "%d", enc->sequence_ids[i]);
        char span[32];
        snprintf(span, sizeof span, "[%zu, %zu)", enc->offsets[i].start, enc->offsets[i].end);
        printf("%4zu %7d %4d %3s  %-13s %s\n", i, enc->ids[i], enc->type_ids[i], seq, span,
               enc->tokens[i]);
    }

    /* Back to text, skipping the special tokens. The string is ours to free(). */
    char *decoded = NULL;
    int status = bs_tokenizer_decode(tok, enc->ids, enc->len, 1, &decoded, &err);
    if (status == 0)
        printf("decoded: %s\n", decoded);
    else
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);

    free(decoded);
    bs_encoding_free(enc);
    bs_tokenizer_free(tok);
    return status == 0 ? 0 : 1;
}
