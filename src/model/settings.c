/* What config.json and generation_config.json say beyond the network's
 * shape: the classification score function and the generation settings,
 * read once at load into typed fields so that the pipelines never parse the
 * model's JSON again. Unreadable or absent values stay unset (the pipelines
 * then use transformers' defaults), as transformers treats them. */
#include "model/model_impl.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* An integer in int32 range, or the first element of a list of them (a
 * generation_config may list several eos ids); -1 otherwise. */
static int32_t int_or_unset(const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
        json_integer_value(v) <= INT32_MAX)
        return (int32_t)json_integer_value(v);
    if (json_is_array(v) && json_is_integer(json_array_get(v, 0)))
        return (int32_t)json_integer_value(json_array_get(v, 0));
    return -1;
}

/* The last layer holding key with a non-null value wins. */
static const json_t *layered(json_t *const *layers, size_t n, const char *key)
{
    const json_t *out = NULL;
    for (size_t l = 0; l < n; l++) {
        if (!json_is_object(layers[l])) continue;
        json_t *v = json_object_get(layers[l], key);
        if (v && !json_is_null(v)) out = v;
    }
    return out;
}

void bs_model_settings_read(bs_model *m)
{
    bs_model_gen_config *g = &m->gen;
    memset(g, 0, sizeof *g);
    m->function_to_apply = NULL;
    json_t *cfg = json_loads(m->config_text, 0, NULL);
    json_t *gen = m->genconfig_text ? json_loads(m->genconfig_text, 0, NULL) : NULL;
    json_t *tsp = json_object_get(json_object_get(cfg, "task_specific_params"), "summarization");
    json_t *layers[] = {cfg, gen, tsp};
    const size_t n = sizeof layers / sizeof *layers;

    static const char *const fns[] = {"softmax", "sigmoid", "none"};
    const char *fn = json_string_value(json_object_get(cfg, "function_to_apply"));
    for (size_t i = 0; fn && i < 3; i++)
        if (!strcmp(fn, fns[i])) m->function_to_apply = fns[i];

    g->max_length = int_or_unset(layered(layers, n, "max_length"));
    g->min_length = int_or_unset(layered(layers, n, "min_length"));
    g->num_beams = int_or_unset(layered(layers, n, "num_beams"));
    g->no_repeat_ngram_size = int_or_unset(layered(layers, n, "no_repeat_ngram_size"));
    const json_t *lp = layered(layers, n, "length_penalty");
    g->length_penalty = json_is_number(lp) ? json_number_value(lp) : NAN;
    const json_t *es = layered(layers, n, "early_stopping");
    g->early_stopping = !es                                                             ? -1
                        : json_is_true(es)                                              ? 1
                        : json_is_string(es) && !strcmp(json_string_value(es), "never") ? 2
                                                                                        : 0;
    g->decoder_start_token_id = int_or_unset(layered(layers, n, "decoder_start_token_id"));
    g->bos_token_id = int_or_unset(layered(layers, n, "bos_token_id"));
    g->eos_token_id = int_or_unset(layered(layers, n, "eos_token_id"));
    g->pad_token_id = int_or_unset(layered(layers, n, "pad_token_id"));
    g->forced_bos_token_id = int_or_unset(layered(layers, n, "forced_bos_token_id"));
    g->forced_eos_token_id = int_or_unset(layered(layers, n, "forced_eos_token_id"));
    json_decref(cfg);
    json_decref(gen);
}

const char *bs_model_function_to_apply(const bs_model *m)
{
    return m->function_to_apply;
}

const bs_model_gen_config *bs_model_generation(const bs_model *m)
{
    return &m->gen;
}
