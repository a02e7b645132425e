/* The model_cache document of a model folder: what task its architecture
 * serves, its headline config values, and where it came from. */
#include "hub/hub.h"
#include "util/time.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

const char *bs_hub_task_type(const json_t *config, bool has_st)
{
    const char *arch =
        json_string_value(json_array_get(json_object_get(config, "architectures"), 0));
    if (arch) {
        if (ends_with(arch, "ForSequenceClassification")) return "classification";
        if (ends_with(arch, "ForTokenClassification")) return "ner";
        if (ends_with(arch, "ForQuestionAnswering")) return "qa";
        if (ends_with(arch, "ForMaskedLM")) return "fill-mask";
        if (ends_with(arch, "ForConditionalGeneration")) return "summarization";
    }
    if (has_st && (!arch || ends_with(arch, "Model"))) return "embeddings";
    return "features";
}

static void copy_int(json_t *dst, const json_t *config, const char *key)
{
    json_t *v = json_object_get(config, key);
    if (json_is_integer(v)) json_object_set_new(dst, key, json_integer(json_integer_value(v)));
}

int bs_hub_describe(const char *dir, const char *model_name, const char *task_type,
                    const char *download_url, const char *cache_priority, const char *checksum,
                    int64_t file_size, int64_t now_ms, json_t **out, bs_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *config = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(config)) {
        json_decref(config);
        return bs_err_set(err, BS_EFORMAT, "%s: %s (line %d)", path,
                          config ? "not a JSON object" : je.text, je.line);
    }
    snprintf(path, sizeof path, "%s/modules.json", dir);
    struct stat st;
    bool has_st = !stat(path, &st);
    json_t *mc = json_object();
    copy_int(mc, config, "vocab_size");
    /* BART names its sizes differently; keep the seed's keys. */
    json_t *hs = json_object_get(config, "hidden_size");
    json_object_set_new(
        mc, "hidden_size",
        json_integer(json_integer_value(hs ? hs : json_object_get(config, "d_model"))));
    json_t *nh = json_object_get(config, "num_attention_heads");
    if (!nh) nh = json_object_get(config, "encoder_attention_heads");
    if (!nh) nh = json_object_get(config, "n_heads"); /* DistilBERT */
    json_object_set_new(mc, "num_attention_heads", json_integer(json_integer_value(nh)));
    copy_int(mc, config, "max_position_embeddings");
    const char *mt = json_string_value(json_object_get(config, "model_type"));
    if (mt) json_object_set_new(mc, "model_type", json_string(mt));
    json_t *arch = json_array_get(json_object_get(config, "architectures"), 0);
    if (json_is_string(arch)) json_object_set_new(mc, "architecture", json_copy(arch));

    char now[32];
    bs_time_iso8601(now_ms, now, sizeof now);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:b, s:s}", "model_name", model_name,
        "model_type", has_st ? "sentence-transformers" : "transformers", "task_type",
        task_type ? task_type : bs_hub_task_type(config, has_st), "download_url", download_url,
        "local_path", dir, "file_size", (json_int_t)file_size, "download_date", now,
        "last_accessed", now, "model_config", mc, "checksum", checksum, "is_cached", 1,
        "cache_priority", cache_priority ? cache_priority : "normal");
    json_decref(config);
    if (!doc) return bs_err_set(err, BS_ENOMEM, "out of memory");
    *out = doc;
    return 0;
}
