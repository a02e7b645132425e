/* Which task requests may share one pipeline call, how they are merged into
 * one request (their texts concatenated) and how the merged answer is cut
 * back into each request's own `data`. */
#include <stdlib.h>
#include <string.h>

#include "batch/batch.h"

/* The fields a mergeable request may hold: anything else (pairs, future
 * options) makes it run on its own, where the pipeline judges it. */
static const char *const cls_fields[] = {"text", "model_name", "top_k", "function_to_apply", NULL};
static const char *const ner_fields[] = {"text", "model_name", "aggregation_strategy",
                                         "ignore_labels", NULL};
static const char *const fm_fields[] = {"text", "model_name", "top_k", "targets", NULL};
static const char *const emb_fields[] = {"text", "model_name", "pooling", "normalize", NULL};
static const char *const feat_fields[] = {"text", "model_name", NULL};

static const char *const *allowed_fields(bs_task task)
{
    switch (task) {
    case BS_TASK_CLASSIFICATION:
        return cls_fields;
    case BS_TASK_NER:
        return ner_fields;
    case BS_TASK_FILL_MASK:
        return fm_fields;
    case BS_TASK_EMBEDDINGS:
        return emb_fields;
    case BS_TASK_FEATURES:
        return feat_fields;
    default:
        return NULL;
    }
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s)) return 1;
    return 0;
}

/* Number of texts of a valid `text` (a string or a non-empty list of
 * strings), 0 otherwise. */
static size_t count_texts(const json_t *text)
{
    if (json_is_string(text)) return 1;
    if (!json_is_array(text) || json_array_size(text) == 0) return 0;
    size_t i;
    json_t *t;
    json_array_foreach(text, i, t) if (!json_is_string(t)) return 0;
    return json_array_size(text);
}

int bs_batch_mergeable(bs_task task, const json_t *request, char **key, size_t *n_texts)
{
    *key = NULL;
    *n_texts = 0;
    const char *const *fields = allowed_fields(task);
    if (!fields || !json_is_object(request)) return 0;
    size_t n = count_texts(json_object_get(request, "text"));
    if (n == 0 || n > BS_PIPELINE_MAX_BATCH) return 0;
    const char *k;
    json_t *v;
    json_t *opts = json_object();
    if (!opts) return 0;
    json_object_foreach((json_t *)request, k, v)
    {
        if (!in_list(fields, k)) {
            json_decref(opts);
            return 0;
        }
        if (strcmp(k, "text") && strcmp(k, "model_name")) json_object_set(opts, k, v);
    }
    char *opts_text = json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(opts);
    if (!opts_text) return 0;
    const char *name = bs_task_name(task);
    size_t len = strlen(name) + 1 + strlen(opts_text) + 1;
    *key = malloc(len);
    if (*key) snprintf(*key, len, "%s|%s", name, opts_text);
    free(opts_text);
    if (!*key) return 0;
    *n_texts = n;
    return 1;
}

static size_t estimate_one(const json_t *t, size_t cap)
{
    size_t est = json_string_length(t) / 3 + 2;
    return est < cap ? est : cap;
}

size_t bs_batch_estimate_tokens(const json_t *request, size_t max_seq_len)
{
    const json_t *text = json_object_get(request, "text");
    if (json_is_string(text)) return estimate_one(text, max_seq_len);
    size_t i, sum = 0;
    json_t *t;
    json_array_foreach(text, i, t) sum += estimate_one(t, max_seq_len);
    return sum;
}

json_t *bs_batch_merge(const json_t *const *requests, size_t n)
{
    json_t *merged = json_copy((json_t *)requests[0]);
    json_t *texts = json_array();
    if (!merged || !texts) goto fail;
    for (size_t r = 0; r < n; r++) {
        json_t *text = json_object_get(requests[r], "text");
        if (json_is_string(text)) {
            if (json_array_append(texts, text)) goto fail;
        } else if (json_array_extend(texts, text)) {
            goto fail;
        }
    }
    if (json_object_set_new(merged, "text", texts)) {
        texts = NULL;
        goto fail;
    }
    return merged;
fail:
    json_decref(texts);
    json_decref(merged);
    return NULL;
}

json_t *bs_batch_split(const json_t *data, size_t total, size_t off, size_t n)
{
    json_t *out = json_object();
    if (!out) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)data, k, v)
    {
        json_t *part;
        if (json_is_array(v) && json_array_size(v) == total) {
            part = json_array();
            for (size_t i = off; part && i < off + n; i++)
                /* Shared, not copied: jansson's reference counts are atomic and
                 * nobody modifies an answer once it is built. */
                if (json_array_append(part, json_array_get(v, i))) {
                    json_decref(part);
                    part = NULL;
                }
        } else {
            part = json_deep_copy(v);
        }
        if (!part || json_object_set_new(out, k, part)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
