/* The engine as custom tasks see it: the calls of the transformers shim
 * (load, tokenize, forward, decode, pipeline, generate), answered with the
 * models of the server's registry, so a model is loaded once and shared
 * with the built-in tasks. Everything in a call comes from user code: ids,
 * sizes and names are checked before they reach the engine. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/handlers/custom.h"
#include "server/handlers/tasks.h"
#include "util/time.h"

/* Most floats one forward call may return (an MLM's logits grow with the
 * vocabulary): about 40 MB of JSON, under the sandbox's frame limit. */
#define MAX_OUT_FLOATS (2u << 20)
#define MAX_SEQS       256

static const char *head_name(bs_head_kind h)
{
    switch (h) {
    case BS_HEAD_SEQ_CLS:
        return "seq_cls";
    case BS_HEAD_TOKEN_CLS:
        return "token_cls";
    case BS_HEAD_QA:
        return "qa";
    case BS_HEAD_MLM:
        return "mlm";
    case BS_HEAD_SEQ2SEQ_LM:
        return "seq2seq";
    default:
        return "base";
    }
}

static json_t *model_info(const bs_pipeline_ctx *ctx)
{
    const bs_model *m = bs_pipeline_ctx_model(ctx);
    const bs_tokenizer *tok = bs_pipeline_ctx_tokenizer(ctx);
    json_t *labels = json_object();
    for (int i = 0; i < bs_model_num_labels(m); i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        const char *l = bs_model_label(m, i);
        json_object_set_new(labels, k, json_string(l ? l : ""));
    }
    static const char *kinds[BS_SPECIAL_COUNT] = {"cls", "sep", "pad", "mask", "unk", "bos", "eos"};
    json_t *sp = json_object();
    for (int k = 0; k < BS_SPECIAL_COUNT; k++) {
        int32_t id = bs_tokenizer_special_id(tok, (bs_special_kind)k);
        const char *t = bs_tokenizer_special_token(tok, (bs_special_kind)k);
        if (id >= 0 && t)
            json_object_set_new(sp, kinds[k], json_pack("{s:i,s:s}", "id", id, "token", t));
    }
    const char *cfg_text = bs_model_config_json(m);
    json_t *cfg = cfg_text ? json_loads(cfg_text, 0, NULL) : NULL;
    return json_pack("{s:s,s:s,s:s,s:o,s:i,s:i,s:b,s:o,s:I,s:o}", "model_type", bs_model_type(m),
                     "architecture", bs_model_architecture(m) ? bs_model_architecture(m) : "",
                     "head", head_name(bs_model_head(m)), "id2label", labels, "hidden_size",
                     bs_model_hidden_size(m), "vocab_size", bs_model_vocab_size(m), "has_pooler",
                     bs_model_has_pooler(m), "special_tokens", sp, "model_max_length",
                     (json_int_t)bs_tokenizer_model_max_length(tok), "config",
                     cfg ? cfg : json_object());
}

/* ids of a JSON array of integers, into out (malloc'ed). */
static int int_row(const json_t *row, int32_t **out, size_t *n, const char *what, bs_err *err)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(row)) return bs_err_set(err, BS_EINVAL, "%s: expected a list of ids", what);
    size_t len = json_array_size(row);
    if (len > 1000000) return bs_err_set(err, BS_ELIMIT, "%s: too many ids", what);
    int32_t *v = malloc((len ? len : 1) * sizeof *v);
    if (!v) return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(row, i);
        json_int_t id = json_integer_value(x);
        if (!json_is_integer(x) || id < INT32_MIN || id > INT32_MAX) {
            free(v);
            return bs_err_set(err, BS_EINVAL, "%s[%zu]: not an integer id", what, i);
        }
        v[i] = (int32_t)id;
    }
    *out = v;
    *n = len;
    return 0;
}

static json_t *float_row(const float *p, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real(p[i]));
    return a;
}

/* Per-token rows [tokens][width] of one sequence. */
static json_t *token_rows(const float *base, int32_t first, int32_t len, size_t width)
{
    json_t *a = json_array();
    for (int32_t t = 0; t < len; t++)
        json_array_append_new(a, width == 1 ? json_real(base[first + t])
                                            : float_row(base + (size_t)(first + t) * width, width));
    return a;
}

/* model(**inputs): the sequences queue in the model's batcher like any
 * route's, so a custom task's forward shares passes with other requests. */
static int op_forward(bs_custom_bridge *b, const bs_task_model *tm, const json_t *call,
                      json_t **reply, bs_err *err)
{
    const bs_pipeline_ctx *ctx = tm->m->ctx;
    const bs_model *m = bs_pipeline_ctx_model(ctx);
    const json_t *ids = json_object_get(call, "input_ids"),
                 *types = json_object_get(call, "token_type_ids");
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n == 0 || n > MAX_SEQS)
        return bs_err_set(err, BS_EINVAL, "input_ids: give 1 to %d sequences", MAX_SEQS);
    bs_seq *seqs = calloc(n, sizeof *seqs);
    int32_t **bufs = calloc(2 * n, sizeof *bufs);
    int rc = seqs && bufs ? 0 : bs_err_set(err, BS_ENOMEM, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = 0, tlen = 0;
        rc = int_row(json_array_get(ids, i), &bufs[2 * i], &len, "input_ids", err);
        if (!rc && len == 0) rc = bs_err_set(err, BS_EINVAL, "input_ids[%zu] is empty", i);
        json_t *t = json_is_array(types) ? json_array_get(types, i) : NULL;
        if (!rc && t && !json_is_null(t)) {
            rc = int_row(t, &bufs[2 * i + 1], &tlen, "token_type_ids", err);
            if (!rc && tlen != len)
                rc = bs_err_set(err, BS_EINVAL, "token_type_ids[%zu] has %zu ids, input_ids %zu", i,
                                tlen, len);
        }
        if (!rc) {
            seqs[i] = (bs_seq){
                .input_ids = bufs[2 * i], .token_type_ids = bufs[2 * i + 1], .len = (int32_t)len};
            total += len;
        }
    }
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    int32_t *positions = NULL;
    bs_head_kind head = bs_model_head(m);
    const json_t *want = json_object_get(call, "want");
    size_t wi;
    json_t *w;
    json_array_foreach(want, wi, w)
    {
        const char *s = json_string_value(w);
        if (!s) continue;
        if (!strcmp(s, "last_hidden_state")) out.want |= BS_OUT_HIDDEN;
        if (!strcmp(s, "pooler_output") && bs_model_has_pooler(m)) out.want |= BS_OUT_POOLED;
        if ((!strcmp(s, "logits") || !strcmp(s, "start_logits")) && head != BS_HEAD_BASE &&
            head != BS_HEAD_SEQ2SEQ_LM)
            out.want |= BS_OUT_LOGITS;
    }
    if (!rc && head == BS_HEAD_MLM && (out.want & BS_OUT_LOGITS)) {
        if (total * (size_t)bs_model_vocab_size(m) > MAX_OUT_FLOATS)
            rc = bs_err_set(err, BS_ELIMIT,
                            "the masked-LM logits of %zu tokens are too large; give fewer tokens",
                            total);
        positions = rc ? NULL : malloc(total * sizeof *positions);
        if (!rc && !positions) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < total; i++) positions[i] = (int32_t)i;
        out.mlm_positions = positions;
        out.n_mlm_positions = (int32_t)total;
    }
    if (!rc && total * (size_t)bs_model_hidden_size(m) > MAX_OUT_FLOATS)
        rc = bs_err_set(err, BS_ELIMIT, "%zu tokens give too large an output; give fewer", total);
    if (!rc && !out.want) out.want = BS_OUT_HIDDEN;
    bs_batch batch = {.seqs = seqs, .n_seqs = (int32_t)n};
    if (!rc) {
        bs_batcher_enter(tm->m->batcher, BS_ROUTE_OTHER, bs_tasks_client_alive, b->req);
        rc = bs_batcher_forward(tm->m->batcher, &batch, &out, err);
        bs_batcher_leave();
    }
    if (!rc) {
        json_t *r = json_object();
        size_t H = (size_t)out.hidden_size;
        json_t *hid = json_array(), *lg = json_array(), *st = json_array(), *en = json_array(),
               *po = json_array();
        int32_t first = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t len = seqs[i].len;
            if (out.last_hidden_state)
                json_array_append_new(hid, token_rows(out.last_hidden_state, first, len, H));
            if (out.pooler_output)
                json_array_append_new(po, float_row(out.pooler_output + i * H, H));
            if (out.logits) {
                size_t L = (size_t)out.n_labels;
                if (head == BS_HEAD_SEQ_CLS)
                    json_array_append_new(lg, float_row(out.logits + i * L, L));
                else
                    json_array_append_new(lg, token_rows(out.logits, first, len, L));
            }
            if (out.start_logits)
                json_array_append_new(st, token_rows(out.start_logits, first, len, 1));
            if (out.end_logits)
                json_array_append_new(en, token_rows(out.end_logits, first, len, 1));
            first += len;
        }
        if (out.last_hidden_state) json_object_set(r, "last_hidden_state", hid);
        if (out.pooler_output) json_object_set(r, "pooler_output", po);
        if (out.logits) json_object_set(r, "logits", lg);
        if (out.start_logits) json_object_set(r, "start_logits", st);
        if (out.end_logits) json_object_set(r, "end_logits", en);
        json_decref(hid);
        json_decref(po);
        json_decref(lg);
        json_decref(st);
        json_decref(en);
        *reply = r;
    }
    bs_batcher_outputs_release(&out);
    free(positions);
    for (size_t i = 0; bufs && i < 2 * n; i++) free(bufs[i]);
    free(bufs);
    free(seqs);
    return rc;
}

static int op_tokenize(const bs_pipeline_ctx *ctx, const json_t *call, json_t **reply, bs_err *err)
{
    const bs_tokenizer *tok = bs_pipeline_ctx_tokenizer(ctx);
    const json_t *texts = json_object_get(call, "text"),
                 *pairs = json_object_get(call, "text_pair");
    size_t n = json_array_size(texts);
    if (!json_is_array(texts) || n == 0 || n > BS_PIPELINE_MAX_BATCH)
        return bs_err_set(err, BS_EINVAL, "text: give 1 to %d texts", BS_PIPELINE_MAX_BATCH);
    if (json_is_array(pairs) && json_array_size(pairs) != n)
        return bs_err_set(err, BS_EINVAL, "text_pair: %zu entries for %zu texts",
                          json_array_size(pairs), n);
    bs_encode_opts opts;
    bs_encode_opts_default(&opts);
    opts.add_special_tokens = !json_is_false(json_object_get(call, "add_special_tokens"));
    json_t *ml = json_object_get(call, "max_length");
    if (json_is_integer(ml)) {
        if (json_integer_value(ml) < 1 || json_integer_value(ml) > 1000000)
            return bs_err_set(err, BS_EINVAL, "max_length: must be between 1 and 1000000");
        opts.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
        opts.truncation.max_length = (size_t)json_integer_value(ml);
    }
    json_t *encs = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(texts, i));
        const char *p = json_is_array(pairs) ? json_string_value(json_array_get(pairs, i)) : NULL;
        if (!t) {
            json_decref(encs);
            return bs_err_set(err, BS_EINVAL, "text[%zu]: not a string", i);
        }
        size_t len = strlen(t), plen = p ? strlen(p) : 0;
        if (len > BS_PIPELINE_MAX_TEXT_BYTES || plen > BS_PIPELINE_MAX_TEXT_BYTES) {
            json_decref(encs);
            return bs_err_set(err, BS_EINVAL, "text[%zu]: longer than %u bytes", i,
                              BS_PIPELINE_MAX_TEXT_BYTES);
        }
        bs_encoding *e = NULL;
        int rc = bs_tokenizer_encode(tok, t, len, p, plen, &opts, &e, err);
        if (rc) {
            json_decref(encs);
            return rc;
        }
        json_t *ids = json_array(), *types = json_array(), *toks = json_array(),
               *offs = json_array();
        for (size_t k = 0; k < e->len; k++) {
            json_array_append_new(ids, json_integer(e->ids[k]));
            json_array_append_new(types, json_integer(e->type_ids[k]));
            json_array_append_new(toks, json_string(e->tokens[k]));
            json_array_append_new(offs, json_pack("[I,I]", (json_int_t)e->offsets[k].start,
                                                  (json_int_t)e->offsets[k].end));
        }
        json_array_append_new(encs,
                              json_pack("{s:o,s:o,s:o,s:o}", "input_ids", ids, "token_type_ids",
                                        types, "tokens", toks, "offsets", offs));
        bs_encoding_free(e);
    }
    *reply = json_pack("{s:o}", "encodings", encs);
    return 0;
}

static int op_decode(const bs_pipeline_ctx *ctx, const json_t *call, json_t **reply, bs_err *err)
{
    const bs_tokenizer *tok = bs_pipeline_ctx_tokenizer(ctx);
    const json_t *rows = json_object_get(call, "ids");
    int skip = json_is_true(json_object_get(call, "skip_special_tokens"));
    if (!json_is_array(rows) || json_array_size(rows) > 4096)
        return bs_err_set(err, BS_EINVAL, "ids: expected at most 4096 sequences");
    json_t *texts = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        int32_t *ids;
        size_t n;
        int rc = int_row(row, &ids, &n, "ids", err);
        char *s = NULL;
        size_t slen = 0;
        if (!rc) {
            for (size_t k = 0; k < n && !rc; k++)
                if (ids[k] < 0 || (size_t)ids[k] >= bs_tokenizer_vocab_size(tok))
                    rc = bs_err_set(err, BS_ERANGE, "ids[%zu]: %d is not in the vocabulary", k,
                                    ids[k]);
            if (!rc) rc = bs_tokenizer_decode_len(tok, ids, n, skip, &s, &slen, err);
        }
        free(ids);
        if (rc) {
            json_decref(texts);
            return rc;
        }
        json_array_append_new(texts, json_stringn(s, slen));
        free(s);
    }
    *reply = json_pack("{s:o}", "texts", texts);
    return 0;
}

static int op_ids_to_tokens(const bs_pipeline_ctx *ctx, const json_t *call, json_t **reply,
                            bs_err *err)
{
    const bs_tokenizer *tok = bs_pipeline_ctx_tokenizer(ctx);
    int32_t *ids;
    size_t n;
    int rc = int_row(json_object_get(call, "ids"), &ids, &n, "ids", err);
    if (rc) return rc;
    int skip = json_is_true(json_object_get(call, "skip_special_tokens"));
    json_t *toks = json_array();
    for (size_t k = 0; k < n; k++) {
        if (skip && bs_tokenizer_is_special(tok, ids[k])) continue;
        const char *t = bs_tokenizer_id_to_token(tok, ids[k]);
        json_array_append_new(toks, t ? json_string(t) : json_null());
    }
    free(ids);
    *reply = json_pack("{s:o}", "tokens", toks);
    return 0;
}

static int op_tokens_to_ids(const bs_pipeline_ctx *ctx, const json_t *call, json_t **reply,
                            bs_err *err)
{
    const bs_tokenizer *tok = bs_pipeline_ctx_tokenizer(ctx);
    const json_t *toks = json_object_get(call, "tokens");
    if (!json_is_array(toks))
        return bs_err_set(err, BS_EINVAL, "tokens: expected a list of strings");
    int32_t unk = bs_tokenizer_special_id(tok, BS_SPECIAL_UNK);
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(toks, i, t)
    {
        const char *s = json_string_value(t);
        int32_t id = s ? bs_tokenizer_token_to_id(tok, s, strlen(s)) : -1;
        json_array_append_new(ids, id >= 0    ? json_integer(id)
                                   : unk >= 0 ? json_integer(unk)
                                              : json_null());
    }
    *reply = json_pack("{s:o}", "ids", ids);
    return 0;
}

static int op_pipeline(bs_custom_bridge *b, bs_task_model *tm, const json_t *call, json_t **reply,
                       bs_err *err)
{
    bs_task task;
    int rc = bs_task_from_name(json_string_value(json_object_get(call, "task")), &task, err);
    if (rc) return rc;
    json_t *body = json_object_get(call, "body");
    if (!json_is_object(body))
        return bs_err_set(err, BS_EINVAL, "pipeline: the arguments must be keyword arguments");
    return bs_batcher_run_route(tm->m->batcher, BS_ROUTE_OTHER, task, body, bs_tasks_client_alive,
                                b->req, reply, err);
}

/* BART's generate: the summarization pipeline on the decoded input, its
 * text encoded back into ids (the pipeline decides the decoding). */
static int op_generate(bs_custom_bridge *b, bs_task_model *tm, const json_t *call, json_t **reply,
                       bs_err *err)
{
    const bs_pipeline_ctx *ctx = tm->m->ctx;
    if (bs_model_head(bs_pipeline_ctx_model(ctx)) != BS_HEAD_SEQ2SEQ_LM)
        return bs_err_set(err, BS_EUNSUPPORTED, "generate needs a BART sequence-to-sequence model");
    json_t *dec = NULL;
    json_t *dcall =
        json_pack("{s:O,s:b}", "ids", json_object_get(call, "input_ids"), "skip_special_tokens", 1);
    int rc =
        dcall ? op_decode(ctx, dcall, &dec, err) : bs_err_set(err, BS_EINVAL, "input_ids: missing");
    json_decref(dcall);
    if (rc) return rc;
    json_t *body = json_object();
    json_t *opts = json_object_get(call, "options");
    if (json_is_object(opts)) json_object_update(body, opts);
    json_object_set(body, "text", json_object_get(dec, "texts"));
    json_object_set_new(body, "model_name", json_string(tm->name));
    json_decref(dec);
    bs_task_result sum;
    bs_batcher_enter(tm->m->batcher, BS_TASK_SUMMARIZATION, bs_tasks_client_alive, b->req);
    rc = bs_pipeline_run_request(ctx, BS_TASK_SUMMARIZATION, body, &sum, err);
    bs_batcher_leave();
    json_decref(body);
    if (rc) return rc;
    json_t *texts = json_array();
    for (size_t k = 0; k < sum.u.summarization.n; k++)
        json_array_append_new(texts, json_string(sum.u.summarization.texts[k]));
    bs_task_result_free(&sum);
    size_t i;
    json_t *r;
    json_t *tcall = json_pack("{s:o,s:b}", "text", texts, "add_special_tokens", 1);
    json_t *enc = NULL;
    rc = op_tokenize(ctx, tcall, &enc, err);
    json_decref(tcall);
    if (rc) return rc;
    json_t *ids = json_array();
    json_array_foreach(json_object_get(enc, "encodings"), i, r)
        json_array_append(ids, json_object_get(r, "input_ids"));
    json_decref(enc);
    *reply = json_pack("{s:o}", "ids", ids);
    return 0;
}

int bs_custom_bridge_call(void *ud, const json_t *call, json_t **reply, bs_err *err)
{
    bs_custom_bridge *b = ud;
    *reply = NULL;
    const char *op = json_string_value(json_object_get(call, "op"));
    const char *model = json_string_value(json_object_get(call, "model"));
    if (!op) return bs_err_set(err, BS_EINVAL, "engine call without an op");
    if (!strcmp(op, "pipeline"))
        model = json_string_value(json_object_get(json_object_get(call, "body"), "model_name"));
    if (!model || !*model) return bs_err_set(err, BS_EINVAL, "%s: no model named", op);
    bs_response scratch = {0};
    bs_buf_init(&scratch.body);
    bs_task_model tm;
    int rc;
    /* A model that is still loading is waited for, within the run's time. */
    while ((rc = bs_tasks_acquire(b->req, &scratch, model, &tm, err)) == BS_EBUSY &&
           bs_time_mono_ns() + 20000000 < b->deadline_ns) {
        bs_buf_free(&scratch.body);
        bs_buf_init(&scratch.body);
        struct timespec ts = {.tv_nsec = 20000000};
        nanosleep(&ts, NULL);
    }
    bs_buf_free(&scratch.body);
    if (rc) {
        if (rc == BS_ENOTFOUND)
            bs_err_set(
                err, BS_ENOTFOUND,
                "model '%s' is not in the model cache (download it with POST /models/download)",
                model);
        return rc;
    }
    if (!b->model_name[0]) snprintf(b->model_name, sizeof b->model_name, "%s", model);
    b->calls++;
    const bs_pipeline_ctx *ctx = tm.m->ctx;
    if (!strcmp(op, "load"))
        *reply = model_info(ctx);
    else if (!strcmp(op, "tokenize"))
        rc = op_tokenize(ctx, call, reply, err);
    else if (!strcmp(op, "forward"))
        rc = op_forward(b, &tm, call, reply, err);
    else if (!strcmp(op, "decode"))
        rc = op_decode(ctx, call, reply, err);
    else if (!strcmp(op, "ids_to_tokens"))
        rc = op_ids_to_tokens(ctx, call, reply, err);
    else if (!strcmp(op, "tokens_to_ids"))
        rc = op_tokens_to_ids(ctx, call, reply, err);
    else if (!strcmp(op, "pipeline"))
        rc = op_pipeline(b, &tm, call, reply, err);
    else if (!strcmp(op, "generate"))
        rc = op_generate(b, &tm, call, reply, err);
    else
        rc = bs_err_set(err, BS_EUNSUPPORTED, "unknown engine call '%.32s'", op);
    bs_tasks_release(b->req, &tm);
    if (!rc && !*reply) rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    return rc;
}
