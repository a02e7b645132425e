/* Task answers sent from the renderer (server/render.c): whole, or, when
 * they carry more numbers than the setting stream_answer_numbers (features
 * or embeddings of large batches), as a chunked stream one row at a time.
 * The pieces are the same either way, so are the bytes. The execution is
 * logged with the size of the task's data actually sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/context.h"
#include "server/handlers/tasks.h"

typedef struct answer {
    bs_request *req;
    bs_render r;
    json_t *input;
    char task_type[32], model_name[256];
    int64_t sent; /* bytes sent, for the log */
    int failed;
    bs_buf pending;
    size_t off;
    int ended;
} answer;

static long answer_read(void *ud, char *buf, size_t max)
{
    answer *a = ud;
    while (a->off == a->pending.len) {
        if (a->ended) return 0;
        a->pending.len = a->off = 0;
        if (!bs_render_next(&a->r, &a->pending)) a->ended = 1;
        if (a->pending.oom) {
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

/* When the exchange ends: the execution log, with the bytes of the data. */
static void answer_free(void *ud)
{
    answer *a = ud;
    int complete = a->ended && a->off == a->pending.len && !a->failed;
    int64_t size = a->sent - (int64_t)bs_render_overhead(&a->r);
    bs_tasks_log(a->req, a->task_type, a->model_name, a->input, complete,
                 complete ? NULL : "the client left before the whole answer was sent",
                 complete ? size : -1);
    bs_render_free(&a->r);
    json_decref(a->input);
    bs_buf_free(&a->pending);
    free(a);
}

void bs_tasks_answer(bs_request *req, bs_response *res, bs_render *r, const char *task_type,
                     const char *model_name, const json_t *input)
{
    int64_t min = bs_settings_int(req->server->settings, "stream_answer_numbers");
    answer *a = min > 0 && bs_render_numbers(r) > (size_t)min ? calloc(1, sizeof *a) : NULL;
    res->status = 200;
    res->content_type = "application/json";
    res->body.len = 0;
    if (a) {
        a->req = req;
        a->r = *r;
        a->input = json_incref((json_t *)input);
        snprintf(a->task_type, sizeof a->task_type, "%s", task_type);
        snprintf(a->model_name, sizeof a->model_name, "%s", model_name ? model_name : "");
        bs_buf_init(&a->pending);
        bs_response_stream(res, answer_read, a, answer_free);
        return;
    }
    while (bs_render_next(r, &res->body)) {
    }
    int64_t size = (int64_t)(res->body.len - bs_render_overhead(r));
    bs_render_free(r);
    if (res->body.oom) {
        bs_buf_free(&res->body);
        bs_buf_init(&res->body);
        bs_reply_error(res, 500, "Out of memory", "the answer did not fit in memory");
        size = -1;
    }
    bs_tasks_log(req, task_type, model_name, input, size >= 0, size >= 0 ? NULL : "out of memory",
                 size);
}
