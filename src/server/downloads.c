/* Hub downloads as background jobs: one thread per download, its progress
 * thinned to at most four events a second (plus every stage change) and
 * kept, the last MAX_EVENTS of them, for readers that come and go. The
 * /models handlers start, wait for and stream these; they never see a job.
 * At most max_concurrent_downloads run at once (more: BS_ELIMIT, 429); a
 * job's thread is detached and gone when it ends; finished jobs are kept
 * for KEEP_FINISHED_MS, at most KEEP_FINISHED of them (issue 17 M4). */
#include "server/context.h"
#include "server/downloads.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS       256
#define KEEP_FINISHED    64
#define KEEP_FINISHED_MS (10 * 60 * 1000)

/* One download in the background and what it reported. */
typedef struct job {
    struct job *next;
    char name[BS_HUB_NAME_MAX + 1];
    char revision[129], task_type[32], priority[16];
    char token[512]; /* the hf_token setting when the job started ("": none) */
    int finished;    /* 0 running, 1 succeeded, -1 failed */
    json_t *events;  /* [{"id", "event", "data"}], the last MAX_EVENTS */
    int64_t next_id;
    int64_t last_progress_ns;
    bs_err err;
    int64_t finished_ms; /* when it ended (monotonic ms) */
    int readers;         /* bs_downloads_wait calls holding it across a wait */
    struct bs_downloads *svc;
} job;

struct bs_downloads {
    bs_hub *hub; /* the server's (srv->serving->hub) */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job reported something */
    job *jobs;
    int threads; /* download threads still running (detached) */
    int stopping;
    bs_settings *settings;
};

void bs_downloads_shutdown(bs_server *srv)
{
    bs_downloads *s = srv->models;
    if (!s) return;
    srv->models = NULL;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1; /* running downloads cancel at their next progress report */
    pthread_cond_broadcast(&s->cv);
    while (s->threads > 0) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    while (s->jobs) {
        job *j = s->jobs;
        s->jobs = j->next;
        json_decref(j->events);
        free(j);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int bs_downloads_startup(bs_server *srv, bs_err *err)
{
    bs_downloads *s = calloc(1, sizeof *s);
    if (!s) return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->hub = srv->serving->hub;
    s->settings = srv->settings;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    srv->models = s;
    bs_err e = {0};
    int n = 0;
    int64_t t0 = bs_time_mono_ns();
    if (bs_hub_register_demo_models(s->hub, NULL, &n, &e))
        bs_log_warn("models", "demo models not registered: %s", e.msg);
    else if (n > 0)
        bs_log_info("models", "registered %d demo models in %.0f ms", n,
                    (double)(bs_time_mono_ns() - t0) / 1e6);
    return 0;
}

void bs_downloads_quiesce(bs_server *srv)
{
    bs_downloads *s = srv->models;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1; /* downloads cancel at their next progress report; streams end */
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* With s->mu held. */
static job *find_job(bs_downloads *s, const char *name)
{
    for (job *j = s->jobs; j; j = j->next)
        if (!strcmp(j->name, name)) return j;
    return NULL;
}

/* With s->mu held. */
static void push_event(job *j, const char *event, json_t *data)
{
    json_t *ev =
        json_pack("{s:I, s:s, s:o}", "id", (json_int_t)++j->next_id, "event", event, "data", data);
    if (!ev) return;
    json_array_append_new(j->events, ev);
    if (json_array_size(j->events) > MAX_EVENTS) json_array_remove(j->events, 0);
    pthread_cond_broadcast(&j->svc->cv);
}

static int on_progress(const bs_hub_progress *p, void *ud)
{
    job *j = ud;
    bs_downloads *s = j->svc;
    pthread_mutex_lock(&s->mu);
    int64_t now = bs_time_mono_ns();
    int stage_change = 1;
    json_t *last = json_array_get(j->events, json_array_size(j->events) - 1);
    const char *last_stage =
        json_string_value(json_object_get(json_object_get(last, "data"), "stage"));
    if (last_stage && !strcmp(last_stage, p->stage)) stage_change = 0;
    /* At most 4 progress events a second, plus every stage change. */
    if (stage_change || now - j->last_progress_ns >= 250000000 || p->done == p->total) {
        j->last_progress_ns = now;
        json_t *d =
            json_pack("{s:s, s:I, s:I, s:f, s:f, s:i, s:i}", "stage", p->stage, "done",
                      (json_int_t)p->done, "total", (json_int_t)p->total, "rate", p->rate, "eta_s",
                      p->eta_s, "files_done", p->files_done, "files_total", p->files_total);
        if (d && p->file) json_object_set_new(d, "file", json_string(p->file));
        if (d) push_event(j, "progress", d);
    }
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *download_main(void *arg)
{
    job *j = arg;
    bs_downloads *s = j->svc;
    bs_hub_download_req r = {.model_name = j->name,
                             .revision = j->revision[0] ? j->revision : NULL,
                             .task_type = j->task_type[0] ? j->task_type : NULL,
                             .cache_priority = j->priority[0] ? j->priority : NULL,
                             .token = j->token[0] ? j->token : NULL};
    json_t *doc = NULL;
    bs_err err = {0};
    char name[sizeof j->name];
    snprintf(name, sizeof name, "%s", j->name); /* j may be pruned once finished */
    int rc = bs_hub_download(s->hub, &r, on_progress, j, &doc, &err);
    if (rc)
        bs_log_warn("models", "download of %s failed: %s", name, err.msg);
    else
        bs_log_info("models", "downloaded %s", name);
    pthread_mutex_lock(&s->mu);
    j->finished_ms = bs_time_mono_ns() / 1000000;
    if (rc) {
        j->err = err;
        j->finished = -1;
        push_event(j, "error",
                   json_pack("{s:s, s:s}", "error", bs_strerror(rc), "detail", err.msg));
    } else {
        j->finished = 1;
        push_event(j, "done", doc);
        doc = NULL;
    }
    s->threads--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    json_decref(doc);
    return NULL;
}

/* With s->mu held: forgets finished jobs past their keeping time, and the
 * oldest beyond KEEP_FINISHED, except those a waiter holds. */
static void prune(bs_downloads *s)
{
    int64_t now = bs_time_mono_ns() / 1000000;
    int kept = 0;
    /* Newest first (new jobs are pushed at the head): count as we go. */
    for (job **p = &s->jobs; *p;) {
        job *j = *p;
        int drop = 0;
        if (j->finished && !j->readers) {
            kept++;
            drop = now - j->finished_ms > KEEP_FINISHED_MS || kept > KEEP_FINISHED;
        }
        if (drop) {
            *p = j->next;
            json_decref(j->events);
            free(j);
        } else {
            p = &j->next;
        }
    }
}

/* With s->mu held. */
static int running(const bs_downloads *s)
{
    int n = 0;
    for (const job *j = s->jobs; j; j = j->next) n += !j->finished;
    return n;
}

int bs_downloads_start(bs_downloads *s, const bs_hub_download_req *r, bs_err *err)
{
    const char *name = r->model_name;
    pthread_mutex_lock(&s->mu);
    job *j = find_job(s, name);
    if (j && !j->finished) {
        pthread_mutex_unlock(&s->mu);
        return bs_err_set(err, BS_EBUSY, "model %s is already being downloaded", name);
    }
    int cap = (int)bs_settings_int(s->settings, "max_concurrent_downloads");
    if (running(s) >= cap) {
        pthread_mutex_unlock(&s->mu);
        return bs_err_set(err, BS_ELIMIT,
                          "%d downloads are running (setting max_concurrent_downloads); retry "
                          "when one ends",
                          cap);
    }
    prune(s);
    j = find_job(s, name);
    if (j) { /* a finished job of the same name: start over */
        json_decref(j->events);
    } else {
        j = calloc(1, sizeof *j);
        if (!j) {
            pthread_mutex_unlock(&s->mu);
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        }
        j->next = s->jobs;
        s->jobs = j;
        j->svc = s;
        snprintf(j->name, sizeof j->name, "%s", name);
    }
    j->finished = 0;
    j->events = json_array();
    j->next_id = 0;
    memset(&j->err, 0, sizeof j->err);
    snprintf(j->revision, sizeof j->revision, "%s", r->revision ? r->revision : "");
    snprintf(j->task_type, sizeof j->task_type, "%s", r->task_type ? r->task_type : "");
    snprintf(j->priority, sizeof j->priority, "%s", r->cache_priority ? r->cache_priority : "");
    snprintf(j->token, sizeof j->token, "%s", r->token ? r->token : "");
    j->readers = 0;
    /* Detached: its stack goes when it ends, not when someone joins it
     * (3,000 finished downloads used to keep 27 GB of address space). */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int prc = pthread_create(&t, &attr, download_main, j);
    pthread_attr_destroy(&attr);
    if (prc) {
        j->finished = -1;
        j->finished_ms = bs_time_mono_ns() / 1000000;
        bs_err_set(&j->err, BS_ENOMEM, "cannot start the download thread");
        pthread_mutex_unlock(&s->mu);
        return bs_err_set(err, BS_ENOMEM, "cannot start the download");
    }
    s->threads++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int bs_downloads_wait(bs_downloads *s, const char *name, json_t **doc, bs_err *err)
{
    *doc = NULL;
    pthread_mutex_lock(&s->mu);
    job *j = find_job(s, name);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return bs_err_set(err, BS_ENOTFOUND, "no download of %s", name);
    }
    j->readers++; /* not pruned while this waits on it */
    while (!j->finished) pthread_cond_wait(&s->cv, &s->mu);
    j->readers--;
    int rc = 0;
    if (j->finished > 0) {
        json_t *last = json_array_get(j->events, json_array_size(j->events) - 1);
        *doc = json_incref(json_object_get(last, "data"));
    } else {
        if (err) *err = j->err;
        rc = j->err.code ? j->err.code : BS_EIO;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int bs_downloads_running(bs_downloads *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    job *j = find_job(s, name);
    int running = j && !j->finished;
    pthread_mutex_unlock(&s->mu);
    return running;
}

json_t *bs_downloads_running_names(bs_downloads *s)
{
    json_t *out = json_array();
    pthread_mutex_lock(&s->mu);
    for (job *j = s->jobs; j; j = j->next)
        if (!j->finished) json_array_append_new(out, json_string(j->name));
    pthread_mutex_unlock(&s->mu);
    return out;
}

/* With s->mu held: formats the events after *after into out. */
static size_t collect(job *j, int64_t *after, bs_buf *out)
{
    size_t i, n = 0;
    json_t *ev;
    json_array_foreach(j->events, i, ev)
    {
        int64_t id = json_integer_value(json_object_get(ev, "id"));
        if (id <= *after) continue;
        char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
        bs_buf_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)id,
                      json_string_value(json_object_get(ev, "event")), data ? data : "null");
        free(data);
        *after = id;
        n++;
    }
    return n;
}

int bs_downloads_events(bs_downloads *s, const char *name, int64_t *after, int wait_s, bs_buf *out,
                        int *ended)
{
    pthread_mutex_lock(&s->mu);
    job *j = find_job(s, name);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return BS_ENOTFOUND;
    }
    size_t n = collect(j, after, out);
    if (j->finished) *ended = 1;
    if (n == 0 && !*ended) {
        if (s->stopping) {
            *ended = 1;
        } else {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += wait_s;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
                bs_buf_puts(out, ": keep-alive\n\n");
        }
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}
