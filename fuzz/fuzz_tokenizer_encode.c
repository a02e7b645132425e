/* libFuzzer target: arbitrary bytes as text on the fixture tokenizers
 * (WordPiece, byte-level BPE, Unigram). The first byte picks the tokenizer
 * and the options; a 0xFF byte separates text and pair. Invalid UTF-8 must
 * be refused, everything else encoded and decoded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/tokenizer.h"

static bs_tokenizer *toks[3];

static void load_all(void)
{
    static const char *const names[] = {"bert-base-uncased", "roberta-base", "albert-base-v2"};
    char root[1024];
    snprintf(root, sizeof root, "%s", __FILE__); /* <repo>/fuzz/fuzz_tokenizer_encode.c */
    char *sl = strrchr(root, '/');
    if (sl) *sl = 0;
    sl = strrchr(root, '/');
    if (sl) *sl = 0;
    for (int i = 0; i < 3; i++) {
        char path[1200];
        const char *env = getenv("BS_FIXTURES");
        if (env)
            snprintf(path, sizeof path, "%s/tokenizers/%s", env, names[i]);
        else
            snprintf(path, sizeof path, "%s/tests/fixtures/tokenizers/%s", root, names[i]);
        bs_err err;
        if (bs_tokenizer_load(path, &toks[i], &err)) {
            fprintf(stderr, "fuzz_tokenizer_encode: %s\n", err.msg);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) load_all();
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    const bs_tokenizer *tok = toks[ctl % 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *sep = memchr(text, 0xFF, len);
    const char *pair = NULL;
    size_t plen = 0;
    if (sep) {
        pair = sep + 1;
        plen = len - (size_t)(pair - text);
        len = (size_t)(sep - text);
    }
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.add_special_tokens = !(ctl & 8);
    if (ctl & 16) {
        o.truncation.strategy = (bs_trunc_strategy)(1 + (ctl >> 5) % 3);
        o.truncation.max_length = 6 + (ctl >> 5);
        o.truncation.stride = (ctl >> 6);
        o.truncation.direction = (ctl & 4) ? BS_DIR_LEFT : BS_DIR_RIGHT;
        o.truncation.full_coverage_windows = ctl & 32;
    }
    if (ctl & 128) {
        o.padding.strategy = BS_PAD_LONGEST;
        o.padding.pad_to_multiple_of = 8;
    }
    bs_encoding *e;
    bs_err err;
    if (bs_tokenizer_encode(tok, text, len, pair, plen, &o, &e, &err)) return 0;
    for (size_t i = 0; i < e->len; i++)
        if (e->offsets[i].start > e->offsets[i].end) abort();
    char *s;
    if (!bs_tokenizer_decode(tok, e->ids, e->len, ctl & 1, &s, &err)) free(s);
    bs_encoding_free(e);
    return 0;
}
