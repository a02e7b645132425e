/* Private to server/: the Hub downloads of one server, each a background
 * job whose events (progress, done, error) are kept for the /models routes
 * to read, wait for or stream. */
#ifndef BS_SERVER_DOWNLOADS_H
#define BS_SERVER_DOWNLOADS_H

#include <jansson.h>
#include <stdint.h>

#include "hub/hub.h"
#include "util/buf.h"

struct bs_server;
typedef struct bs_downloads bs_downloads;

/* At server start (after srv->serving): makes srv->downloads and registers
 * the demo models on an empty cache (a failure there is only logged).
 * Errors: BS_ENOMEM. */
int bs_downloads_startup(struct bs_server *srv, bs_err *err);
/* At stop, before draining requests: running downloads cancel at their next
 * progress report and event readers end. NULL-safe. */
void bs_downloads_quiesce(struct bs_server *srv);
/* At stop, after the last request: cancels running downloads, waits for
 * them, frees srv->downloads. */
void bs_downloads_shutdown(struct bs_server *srv);

/* Starts downloading r->model_name in a background thread (the strings are
 * copied). A finished job of the same name is replaced. Errors: BS_EBUSY
 * (that model is being downloaded), BS_ENOMEM (no thread or memory). */
int bs_downloads_start(bs_downloads *d, const bs_hub_download_req *r, bs_err *err);
/* Waits for the download of name to end: 0 and its model_cache document in
 * *doc (caller json_decref's it), or the download's error (BS_ENOTFOUND
 * when no download of name is known). */
int bs_downloads_wait(bs_downloads *d, const char *name, json_t **doc, bs_err *err);
/* 1 while a download of name runs. */
int bs_downloads_running(bs_downloads *d, const char *name);
/* The names of the running downloads, as a new JSON list of strings. */
json_t *bs_downloads_running_names(bs_downloads *d);
/* Appends to out, as server-sent events, the events of name's download
 * whose id is above *after (advanced past them). When there are none, waits
 * up to wait_s seconds for one and appends a keep-alive comment if none
 * came. *ended is set once the final event is in out or the service stops.
 * Returns BS_ENOTFOUND when no download of name is known, else 0. */
int bs_downloads_events(bs_downloads *d, const char *name, int64_t *after, int wait_s, bs_buf *out,
                        int *ended);

#endif
