/* What every task endpoint shares: the compact shortest-float answer of
 * JSON results that are not a pipeline's, the execution log entry, and the check that a waiting
 * client is still there (so that the batcher skips the work of clients that hung up). */
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/context.h"
#include "util/json.h"
#include "server/handlers/tasks.h"
#include "util/time.h"

static const char *const float_keys[] = {"embeddings", "features", "embedding", NULL};

int64_t bs_tasks_reply(bs_response *res, json_t *data, int envelope)
{
    res->status = 200;
    res->body.len = 0;
    if (envelope) bs_reply_envelope_open(&res->body);
    size_t start = res->body.len;
    bs_json_write(data, float_keys, &res->body);
    int64_t size = (int64_t)(res->body.len - start);
    if (envelope) bs_reply_envelope_close(&res->body);
    json_decref(data);
    if (res->body.oom) {
        bs_buf_free(&res->body);
        bs_buf_init(&res->body);
        bs_reply_error(res, 500, "Out of memory", "the answer did not fit in memory");
        return -1;
    }
    return size;
}

void bs_tasks_reply_err(bs_request *req, bs_response *res, const bs_err *err)
{
    if (err && err->code == BS_EBUSY) {
        bs_response_header(res, "Retry-After", "1");
        bs_reply_error(res, 503, "Service busy", "%s", err->msg);
        return;
    }
    bs_reply_err(req, res, err);
}

/* The libmicrohttpd connection is suspended while our handler runs, so the library
 * cannot tell us that the peer left: look at the socket itself. A readable
 * socket with nothing to read (or an error/hang-up) means the client closed. */
int bs_tasks_client_alive(void *arg)
{
    bs_request *req = arg;
    if (!req->conn) return 1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 1;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return 0;
    char c;
    return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
}

/* Resident memory of the process in MB (-1 when unknown). */
static double resident_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    int ok = f && fscanf(f, "%ld %ld", &size, &resident) == 2;
    if (f) fclose(f);
    return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : -1;
}

static char *input_text(const json_t *input)
{
    if (json_is_string(input)) return strdup(json_string_value(input));
    return input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

void bs_tasks_log(bs_request *req, const char *task_type, const char *model_name,
                  const json_t *input, int success, const char *error_message, int64_t result_size)
{
    char *text = input_text(input);
    bs_exec_record rec = {
        .task_type = task_type,
        .model_name = model_name && *model_name ? model_name : "(none)",
        .input_text = text,
        .execution_time = (double)(bs_time_mono_ns() - req->started_ns) / 1e9,
        .success = success,
        .error_message = error_message,
        .result_size = result_size,
        .memory_usage = resident_mb(),
    };
    bs_server_log_execution(req, &rec);
    free(text);
}

void bs_tasks_log_error(bs_request *req, const char *task_type, const char *model_name,
                        const json_t *input, const bs_err *err)
{
    if (err->code == BS_EBUSY) return;
    bs_tasks_log(req, task_type, model_name, input, 0, err->msg, -1);
}
