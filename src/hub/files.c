/* Which files of a model repository inference needs. Everything else (other
 * frameworks' weights, ONNX exports, READMEs, images) is never fetched or
 * copied, which keeps downloads small and the cache free of foreign files. */
#include "hub/hub.h"

#include <string.h>

static const char *const wanted[] = {
    "config.json",
    "model.safetensors.index.json",
    "generation_config.json",
    /* tokenizer */
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    /* sentence-transformers */
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
};

bool bs_hub_file_wanted(const char *f)
{
    if (!f || !*f) return false;
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++)
        if (!strcmp(f, wanted[i])) return true;
    /* Weights: root-level *.safetensors only (shards included). */
    size_t n = strlen(f);
    return !strchr(f, '/') && f[0] != '.' && n > 12 && !strcmp(f + n - 12, ".safetensors");
}
