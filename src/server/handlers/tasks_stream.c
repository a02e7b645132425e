/* Long task answers (features or embeddings of large batches, on /tasks,
 * the legacy routes and /v1/embeddings) sent as a chunked stream, one row
 * at a time, instead of one string built whole: the bytes are exactly those
 * bs_tasks_reply would send. The execution is logged when the stream ends,
 * with the size actually sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/context.h"
#include "util/json.h"
#include "server/handlers/tasks.h"

static const char *const float_keys[] = {"embeddings", "features", "embedding", NULL};

typedef struct answer {
    bs_request *req;
    json_t *data, *input;
    char task_type[32], model_name[256];
    void *iter;    /* the member of data being written; NULL past the last */
    size_t row;    /* next element of the member when it is written row by row */
    size_t prefix; /* bytes of `{"k":` for that member */
    int envelope;  /* inside the success envelope (bs_reply_envelope_open) */
    int begun;     /* the opening bytes are out */
    int ended;     /* the closing bytes are in pending */
    int64_t sent;  /* bytes of `data` sent, for the log */
    int failed;
    bs_buf pending, scratch;
    size_t off;
} answer;

static size_t count_numbers(const json_t *j)
{
    size_t n = 0, i;
    json_t *v;
    if (json_is_number(j)) return 1;
    if (json_is_array(j)) json_array_foreach(j, i, v) n += count_numbers(v);
    if (json_is_object(j)) {
        const char *k;
        json_object_foreach((json_t *)j, k, v) n += count_numbers(v);
    }
    return n;
}

/* Appends bs_json_write({k: v}) without its first `skip` bytes and
 * its last `cut`: the member or the row exactly as the whole answer holds
 * it (same float32/float64 choice, same escaping). */
static void put_wrapped(answer *a, const char *k, json_t *v, size_t skip, size_t cut)
{
    json_t *w = json_object();
    json_object_set(w, k, v);
    a->scratch.len = 0;
    bs_json_write(w, float_keys, &a->scratch);
    json_decref(w);
    if (a->scratch.len >= skip + cut)
        bs_buf_append(&a->pending, a->scratch.data + skip, a->scratch.len - skip - cut);
}

/* Fills pending with the next piece of the answer: the opening, one member,
 * or one row of a member written by rows, or the closing. */
static void next_piece(answer *a)
{
    if (!a->begun) {
        a->begun = 1;
        if (a->envelope) bs_reply_envelope_open(&a->pending);
        bs_buf_putc(&a->pending, '{');
        a->iter = json_object_iter(a->data);
        return;
    }
    if (!a->iter) {
        bs_buf_putc(&a->pending, '}');
        if (a->envelope) bs_reply_envelope_close(&a->pending);
        a->ended = 1;
        return;
    }
    const char *k = json_object_iter_key(a->iter);
    json_t *v = json_object_iter_value(a->iter);
    size_t n = json_array_size(v);
    if (a->row == 0) {
        if (a->iter != json_object_iter(a->data)) bs_buf_putc(&a->pending, ',');
        /* Arrays go row by row (a row of features, an embedding of
         * /v1's data); anything else whole. */
        if (!json_is_array(v) || n == 0) {
            put_wrapped(a, k, v, 1, 1); /* "k":v */
            a->iter = json_object_iter_next(a->data, a->iter);
            return;
        }
        json_t *empty = json_array();
        size_t before = a->pending.len;
        put_wrapped(a, k, empty, 1, 2); /* "k":[ */
        json_decref(empty);
        /* {"k":row} less its first (pending added + 1 - 1) bytes is the row:
         * `{"k":` is as long as `"k":[`. */
        a->prefix = a->pending.len - before;
    } else {
        bs_buf_putc(&a->pending, ',');
    }
    if (a->row < n) put_wrapped(a, k, json_array_get(v, a->row), a->prefix, 1);
    if (++a->row >= n) {
        bs_buf_putc(&a->pending, ']');
        a->row = 0;
        a->iter = json_object_iter_next(a->data, a->iter);
    }
}

static long answer_read(void *ud, char *buf, size_t max)
{
    answer *a = ud;
    while (a->off == a->pending.len) {
        if (a->ended) return 0;
        a->pending.len = a->off = 0;
        next_piece(a);
        if (a->pending.oom || a->scratch.oom) {
            a->failed = 1;
            return -1;
        }
    }
    size_t n = a->pending.len - a->off;
    if (n > max) n = max;
    memcpy(buf, a->pending.data + a->off, n);
    a->off += n;
    a->sent += (int64_t)n;
    return (long)n;
}

/* When the exchange ends: the execution log, with the bytes of `data`. */
static void answer_free(void *ud)
{
    answer *a = ud;
    int complete = a->ended && a->off == a->pending.len && !a->failed;
    /* less the envelope */
    int64_t size = a->envelope ? a->sent - (int64_t)bs_reply_envelope_bytes() : a->sent;
    bs_tasks_log(a->req, a->task_type, a->model_name, a->input, complete,
                 complete ? NULL : "the client left before the whole answer was sent",
                 complete ? size : -1);
    json_decref(a->data);
    json_decref(a->input);
    bs_buf_free(&a->pending);
    bs_buf_free(&a->scratch);
    free(a);
}

int bs_tasks_reply_stream(bs_request *req, bs_response *res, json_t *data, int envelope,
                          size_t numbers, const char *task_type, const char *model_name,
                          const json_t *input)
{
    int64_t min = bs_settings_int(req->server->settings, "stream_answer_numbers");
    if (min <= 0 || !json_is_object(data)) return 0;
    if ((numbers ? numbers : count_numbers(data)) <= (size_t)min) return 0;
    answer *a = calloc(1, sizeof *a);
    if (!a) return 0;
    a->req = req;
    a->data = data;
    a->envelope = envelope;
    a->input = json_incref((json_t *)input);
    snprintf(a->task_type, sizeof a->task_type, "%s", task_type);
    snprintf(a->model_name, sizeof a->model_name, "%s", model_name ? model_name : "");
    bs_buf_init(&a->pending);
    bs_buf_init(&a->scratch);
    res->status = 200;
    res->content_type = "application/json";
    res->body.len = 0;
    bs_response_stream(res, answer_read, a, answer_free);
    return 1;
}
