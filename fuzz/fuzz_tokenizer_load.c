/* libFuzzer target: arbitrary bytes as tokenizer.json. Loading must either
 * fail with an error or give a tokenizer that encodes and decodes without
 * crashing. */
#include <stdint.h>
#include <stdlib.h>

#include "bertstudio/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load_json((const char *)data, size, &tok, &err)) return 0;
    static const char *const texts[] = {"Hello, world! naïve café", "  [MASK] <mask> 日本語 ``x''",
                                        ""};
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
    o.truncation.max_length = 8;
    o.truncation.stride = 1;
    for (int i = 0; i < 3; i++) {
        bs_encoding *e;
        if (bs_tokenizer_encode(tok, texts[i], __builtin_strlen(texts[i]), texts[(i + 1) % 3],
                                __builtin_strlen(texts[(i + 1) % 3]), i ? &o : NULL, &e, &err))
            continue;
        char *s;
        if (!bs_tokenizer_decode(tok, e->ids, e->len, i & 1, &s, &err)) free(s);
        bs_encoding_free(e);
    }
    bs_tokenizer_free(tok);
    return 0;
}
