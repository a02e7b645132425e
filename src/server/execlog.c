/* The log queue: a ring buffer under one mutex, a writer thread that takes
 * whole runs of it and writes log documents with one insert_many per run. */
#include "server/execlog.h"
#include "server/context.h"
#include "util/log.h"
#include "util/time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256

typedef struct item {
    json_t *log; /* a log document, or NULL for an activity entry */
    char session[25];
    char action[32];
    char endpoint[128];
    char task_id[25];
} item;

struct bs_logq {
    bs_store *store;
    pthread_mutex_t mu;
    pthread_cond_t has_work, written;
    pthread_t thread;
    item *ring;
    size_t cap, head, len;
    uint64_t pushed, done; /* sequence numbers: entries accepted / written (or failed) */
    int stopping;
    atomic_ullong dropped, write_errors;
};

static void write_batch(bs_logq *q, item *items, size_t n)
{
    json_t *docs[BATCH];
    size_t nd = 0;
    bs_err err = {0};
    for (size_t i = 0; i <= n; i++) {
        /* Flush pending logs before an activity entry and at the end, so
         * that the order of the queue is kept. */
        if (i == n || !items[i].log) {
            if (nd) {
                if (bs_store_logs_insert_many(q->store, docs, nd, &err)) {
                    atomic_fetch_add(&q->write_errors, nd);
                    bs_log_warn("execlog", "%zu execution logs lost: %s", nd, err.msg);
                }
                for (size_t j = 0; j < nd; j++) json_decref(docs[j]);
                nd = 0;
            }
            if (i == n) break;
            item *a = &items[i];
            if (bs_store_sessions_log_activity(q->store, a->session, a->action, a->endpoint,
                                               a->task_id[0] ? a->task_id : NULL, &err) &&
                err.code != BS_ENOTFOUND) {
                atomic_fetch_add(&q->write_errors, 1);
                bs_log_warn("execlog", "session activity lost: %s", err.msg);
            }
            continue;
        }
        docs[nd++] = items[i].log;
    }
}

static void *writer(void *arg)
{
    bs_logq *q = arg;
    item *batch = malloc(BATCH * sizeof *batch);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->len && !q->stopping) pthread_cond_wait(&q->has_work, &q->mu);
        if (!q->len && q->stopping) break;
        size_t n = 0;
        while (q->len && n < BATCH && batch) {
            batch[n++] = q->ring[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
        }
        pthread_mutex_unlock(&q->mu);
        if (batch) write_batch(q, batch, n);
        pthread_mutex_lock(&q->mu);
        q->done += n;
        pthread_cond_broadcast(&q->written);
        if (!batch) break; /* out of memory at start: the queue can only be drained by stop */
    }
    pthread_mutex_unlock(&q->mu);
    free(batch);
    return NULL;
}

int bs_logq_start(bs_store *store, size_t capacity, bs_logq **out, bs_err *err)
{
    bs_logq *q = calloc(1, sizeof *q);
    if (!q || !(q->ring = calloc(capacity, sizeof *q->ring))) {
        free(q);
        return bs_err_set(err, BS_ENOMEM, "out of memory for the log queue");
    }
    q->store = store;
    q->cap = capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->has_work, NULL);
    pthread_cond_init(&q->written, NULL);
    if (pthread_create(&q->thread, NULL, writer, q)) {
        free(q->ring);
        free(q);
        return bs_err_set(err, BS_EINTERNAL, "cannot start the log writer thread");
    }
    *out = q;
    return 0;
}

void bs_logq_stop(bs_logq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_broadcast(&q->has_work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    for (size_t i = 0; i < q->len; i++) json_decref(q->ring[(q->head + i) % q->cap].log);
    pthread_cond_destroy(&q->has_work);
    pthread_cond_destroy(&q->written);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q);
}

static int push(bs_logq *q, const item *it)
{
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap || q->stopping) {
        pthread_mutex_unlock(&q->mu);
        atomic_fetch_add(&q->dropped, 1);
        json_decref(it->log);
        return -1;
    }
    q->ring[(q->head + q->len) % q->cap] = *it;
    q->len++;
    q->pushed++;
    pthread_cond_signal(&q->has_work);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int bs_logq_push_log(bs_logq *q, json_t *doc)
{
    item it = {.log = doc};
    return push(q, &it);
}

int bs_logq_push_activity(bs_logq *q, const char *session_doc_id, const char *action,
                          const char *endpoint, const char *task_id)
{
    item it = {0};
    snprintf(it.session, sizeof it.session, "%s", session_doc_id);
    snprintf(it.action, sizeof it.action, "%s", action);
    snprintf(it.endpoint, sizeof it.endpoint, "%s", endpoint ? endpoint : "");
    snprintf(it.task_id, sizeof it.task_id, "%s", task_id ? task_id : "");
    return push(q, &it);
}

void bs_logq_flush(bs_logq *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t target = q->pushed;
    while (q->done < target) pthread_cond_wait(&q->written, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

size_t bs_logq_depth(bs_logq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

uint64_t bs_logq_dropped(bs_logq *q)
{
    return atomic_load(&q->dropped);
}

uint64_t bs_logq_write_errors(bs_logq *q)
{
    return atomic_load(&q->write_errors);
}

static int is_oid(const char *s)
{
    if (!s || strlen(s) != 24) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

void bs_server_log_execution(bs_request *req, const bs_exec_record *rec)
{
    struct bs_server *srv = req->server;
    if (!srv || !srv->logq || !rec->task_type || !rec->model_name) return;
    char ts[32];
    bs_time_iso8601(bs_time_now_ms(), ts, sizeof ts);
    json_t *doc = json_object();
    json_object_set_new(doc, "task_type", json_string(rec->task_type));
    json_object_set_new(doc, "model_name", json_string(rec->model_name));
    json_object_set_new(doc, "execution_time",
                        json_real(rec->execution_time >= 0 ? rec->execution_time : 0));
    json_object_set_new(doc, "status", json_string(rec->success ? "success" : "error"));
    json_object_set_new(doc, "timestamp", json_string(ts));
    if (is_oid(rec->task_id)) json_object_set_new(doc, "task_id", json_string(rec->task_id));
    if (rec->input_text) {
        json_t *t = json_string(rec->input_text);
        if (t) json_object_set_new(doc, "input_text", t);
    }
    if (!rec->success && rec->error_message) {
        json_t *m = json_string(rec->error_message);
        if (m) json_object_set_new(doc, "error_message", m);
    }
    if (rec->result_size >= 0)
        json_object_set_new(doc, "result_size", json_integer(rec->result_size));
    if (rec->memory_usage >= 0)
        json_object_set_new(doc, "memory_usage", json_real(rec->memory_usage));
    if (req->auth.api_key_id[0])
        json_object_set_new(doc, "api_key_id", json_string(req->auth.api_key_id));
    if (req->auth.session_id[0])
        json_object_set_new(doc, "session_id", json_string(req->auth.session_id));
    if (req->client_ip[0]) json_object_set_new(doc, "ip_address", json_string(req->client_ip));
    const char *ua = bs_request_header(req, "User-Agent");
    json_t *uaj = ua ? json_stringn(ua, strnlen(ua, 512)) : NULL;
    if (uaj) json_object_set_new(doc, "user_agent", uaj);
    bs_logq_push_log(srv->logq, doc);
    if (req->auth.session_doc_id[0] && !req->activity_logged) {
        bs_logq_push_activity(srv->logq, req->auth.session_doc_id, "task_execution", req->path,
                              is_oid(rec->task_id) ? rec->task_id : NULL);
        req->activity_logged = 1;
    }
}
