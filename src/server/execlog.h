/* Execution logs and session activity, written off the request path: the
 * request thread only enqueues; one writer thread batches the queue into
 * the store. The queue is bounded: when full, entries are dropped and
 * counted (bertstudio_log_queue_dropped_total in /metrics), never waited for.
 *
 * Task handlers call bs_server_log_execution() once per task run. */
#ifndef BS_SERVER_EXECLOG_H
#define BS_SERVER_EXECLOG_H

#include <stddef.h>
#include <stdint.h>

#include "bertstudio/common.h"
#include "server/http.h"
#include "store/store.h"

/* One task run, as seen by its handler. Strings are copied; NULL = absent. */
typedef struct bs_exec_record {
    const char *task_type;     /* "classification", "ner", ..., "custom" (required) */
    const char *model_name;    /* required */
    const char *task_id;       /* the custom task's _id (24 hex), NULL for built-in tasks */
    const char *input_text;    /* the store keeps only length + keyed hash unless the
                                  setting log_input_text is true */
    double execution_time;     /* seconds */
    int success;               /* 1: status "success"; 0: "error" */
    const char *error_message; /* when !success */
    int64_t result_size;       /* bytes of the result; < 0 unknown */
    double memory_usage;       /* MB; < 0 unknown */
} bs_exec_record;

/* Records one task execution for the caller of req: the log gets the
 * caller's api_key_id, session_id (when authenticated by session), client
 * IP (anonymized by the store) and User-Agent; a session also gets a
 * "task_execution" activity entry. Never blocks and never fails the request. */
void bs_server_log_execution(bs_request *req, const bs_exec_record *rec);

/* ── the queue itself (server-internal) ── */
typedef struct bs_logq bs_logq;

/* Starts the writer thread. capacity: most entries waiting at once. */
int bs_logq_start(bs_store *store, size_t capacity, bs_logq **out, bs_err *err);
/* Writes everything queued, stops the writer and frees the queue. */
void bs_logq_stop(bs_logq *q);
/* Queues a log document (stolen). Returns 0, or -1 when the queue is full
 * (the document is freed and the drop counted). */
int bs_logq_push_log(bs_logq *q, json_t *doc);
/* Queues an activity_log entry for session _id session_doc_id. */
int bs_logq_push_activity(bs_logq *q, const char *session_doc_id, const char *action,
                          const char *endpoint, const char *task_id);
/* Waits until everything queued before the call is written (readers of
 * logs and sessions call this so that they see their own writes). */
void bs_logq_flush(bs_logq *q);
size_t bs_logq_depth(bs_logq *q);
uint64_t bs_logq_dropped(bs_logq *q);
uint64_t bs_logq_write_errors(bs_logq *q);

#endif
