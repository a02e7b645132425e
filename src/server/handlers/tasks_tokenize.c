/* POST /tokenize: the model's tokenizer on one text or a list (optionally
 * with pairs), with the ids, type ids, attention mask, tokens and character
 * offsets the model would see; max_length truncates (longest first) and
 * stride sets the overlap of the overflowing windows, returned under
 * "overflowing". */
#include <string.h>

#include "server/handlers/handlers.h"
#include "server/handlers/tasks.h"

static const bs_field_spec tokenize_fields[] = {
    {"text", BS_T_TEXT, BS_REQUIRED, 0, 0, NULL},
    {"text_pair", BS_T_TEXT, BS_NULLABLE, 0, 0, NULL},
    {"model_name", BS_T_STRING, BS_REQUIRED, 0, 0, NULL},
    {"max_length", BS_T_INT, BS_NULLABLE, 1, 1000000, NULL},
    {"stride", BS_T_INT, BS_NULLABLE, 0, 1000000, NULL},
    {"add_special_tokens", BS_T_BOOL, BS_NULLABLE, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static json_t *encoding_json(const bs_encoding *e, int with_overflow)
{
    json_t *ids = json_array(), *types = json_array(), *mask = json_array(), *toks = json_array(),
           *offs = json_array();
    for (size_t i = 0; i < e->len; i++) {
        json_array_append_new(ids, json_integer(e->ids[i]));
        json_array_append_new(types, json_integer(e->type_ids[i]));
        json_array_append_new(mask, json_integer(e->attention_mask[i]));
        json_array_append_new(toks, json_string(e->tokens[i]));
        json_array_append_new(offs, json_pack("[I,I]", (json_int_t)e->offsets[i].start,
                                              (json_int_t)e->offsets[i].end));
    }
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o}", "input_ids", ids, "token_type_ids", types,
                          "attention_mask", mask, "tokens", toks, "offsets", offs);
    if (o && with_overflow && e->n_overflowing) {
        json_t *ov = json_array();
        for (size_t w = 0; w < e->n_overflowing; w++)
            json_array_append_new(ov, encoding_json(&e->overflowing[w], 0));
        json_object_set_new(o, "overflowing", ov);
    }
    return o;
}

/* Texts of a BS_T_TEXT value as an array (borrowed strings). */
static size_t text_list(const json_t *v, const char **out, size_t max)
{
    if (json_is_string(v)) {
        out[0] = json_string_value(v);
        return 1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t) if (i < max) out[i] = json_string_value(t);
    return json_array_size(v);
}

static int tokenize(const bs_tokenizer *tok, const json_t *body, json_t **out, bs_err *err)
{
    const char *tx[BS_PIPELINE_MAX_BATCH], *px[BS_PIPELINE_MAX_BATCH];
    json_t *text = json_object_get(body, "text"), *pair = json_object_get(body, "text_pair");
    size_t n = text_list(text, tx, BS_PIPELINE_MAX_BATCH);
    if (n == 0 || n > BS_PIPELINE_MAX_BATCH)
        return bs_err_set(err, BS_EINVAL, "text: give 1 to %d texts", BS_PIPELINE_MAX_BATCH);
    size_t np = json_is_null(pair) || !pair ? 0 : text_list(pair, px, BS_PIPELINE_MAX_BATCH);
    if (np && np != n)
        return bs_err_set(err, BS_EINVAL, "text_pair: %zu entries for %zu texts", np, n);
    bs_encode_opts opts;
    bs_encode_opts_default(&opts);
    json_t *v;
    if ((v = json_object_get(body, "add_special_tokens")) && json_is_boolean(v))
        opts.add_special_tokens = json_is_true(v);
    if ((v = json_object_get(body, "max_length")) && json_is_integer(v)) {
        opts.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
        opts.truncation.max_length = (size_t)json_integer_value(v);
        if ((v = json_object_get(body, "stride")) && json_is_integer(v))
            opts.truncation.stride = (size_t)json_integer_value(v);
    }
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tx[i]), plen = np ? strlen(px[i]) : 0;
        if (len > BS_PIPELINE_MAX_TEXT_BYTES || plen > BS_PIPELINE_MAX_TEXT_BYTES) {
            json_decref(results);
            return bs_err_set(err, BS_EINVAL, "text[%zu]: longer than %u bytes", i,
                              BS_PIPELINE_MAX_TEXT_BYTES);
        }
        bs_encoding *e = NULL;
        int rc = bs_tokenizer_encode(tok, tx[i], len, np ? px[i] : NULL, plen, &opts, &e, err);
        if (rc) {
            json_decref(results);
            return bs_err_prefix(err, "text[%zu]", i);
        }
        json_array_append_new(results, encoding_json(e, 1));
        bs_encoding_free(e);
    }
    *out = json_pack("{s:o}", "results", results);
    return *out ? 0 : bs_err_set(err, BS_ENOMEM, "out of memory");
}

void bs_handle_tokenize(bs_request *req, bs_response *res)
{
    json_t *body = bs_request_json(req, res);
    if (!body) return;
    char detail[512];
    if (bs_validate(body, tokenize_fields, detail, sizeof detail)) {
        bs_reply_error(res, 400, "Invalid request", "%s", detail);
        return;
    }
    const char *model_name = json_string_value(json_object_get(body, "model_name"));
    json_t *input = json_object_get(body, "text");
    bs_task_model tm;
    bs_err err = {0};
    if (bs_tasks_acquire(req, res, model_name, &tm, &err)) {
        bs_tasks_log_error(req, "tokenize", model_name, input, &err);
        return;
    }
    json_t *data = NULL;
    int rc = tokenize(bs_pipeline_ctx_tokenizer(tm.m->ctx), body, &data, &err);
    bs_tasks_release(req, &tm);
    if (rc) {
        bs_tasks_reply_err(req, res, &err);
        bs_tasks_log_error(req, "tokenize", model_name, input, &err);
        return;
    }
    int64_t size = bs_tasks_reply(res, data, 1);
    bs_tasks_log(req, "tokenize", model_name, input, size >= 0, NULL, size);
}
