/* Pending usage per key: a small array (there are few keys), swapped out
 * under the lock at flush so that requests never wait on the store. */
#include "server/usage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    char id[25];
    char ip[64];
    int64_t requests, last_ms;
} pending;

struct bs_usage {
    pthread_mutex_t mu;
    pending *items;
    size_t n, cap;
    pthread_mutex_t flush_mu; /* one flush at a time */
};

bs_usage *bs_usage_new(void)
{
    bs_usage *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    pthread_mutex_init(&u->mu, NULL);
    pthread_mutex_init(&u->flush_mu, NULL);
    return u;
}

void bs_usage_free(bs_usage *u)
{
    if (!u) return;
    free(u->items);
    pthread_mutex_destroy(&u->mu);
    pthread_mutex_destroy(&u->flush_mu);
    free(u);
}

static void add(bs_usage *u, const char *id, const char *ip, int64_t requests, int64_t now_ms)
{
    size_t i = 0;
    while (i < u->n && strcmp(u->items[i].id, id)) i++;
    if (i == u->n) {
        if (u->n == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 16;
            pending *p = realloc(u->items, cap * sizeof *p);
            if (!p) return; /* usage is best effort; never fail a request over it */
            u->items = p;
            u->cap = cap;
        }
        memset(&u->items[i], 0, sizeof u->items[i]);
        snprintf(u->items[i].id, sizeof u->items[i].id, "%s", id);
        u->n++;
    }
    pending *p = &u->items[i];
    p->requests += requests;
    if (now_ms >= p->last_ms) {
        p->last_ms = now_ms;
        if (ip && *ip) snprintf(p->ip, sizeof p->ip, "%s", ip);
    }
}

void bs_usage_record(bs_usage *u, const char *api_key_id, const char *ip, int64_t now_ms)
{
    pthread_mutex_lock(&u->mu);
    add(u, api_key_id, ip, 1, now_ms);
    pthread_mutex_unlock(&u->mu);
}

int bs_usage_flush(bs_usage *u, bs_store *s, bs_err *err)
{
    pthread_mutex_lock(&u->flush_mu);
    pthread_mutex_lock(&u->mu);
    pending *items = u->items;
    size_t n = u->n;
    u->items = NULL;
    u->n = u->cap = 0;
    pthread_mutex_unlock(&u->mu);
    int rc = 0;
    if (n) {
        bs_key_usage *batch = calloc(n, sizeof *batch);
        if (!batch) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++)
                batch[i] = (bs_key_usage){.api_key_id = items[i].id,
                                          .requests = items[i].requests,
                                          .last_used_ms = items[i].last_ms,
                                          .last_request_ip = items[i].ip[0] ? items[i].ip : NULL};
            rc = bs_store_keys_record_usage(s, batch, n, err);
            free(batch);
        }
        if (rc) { /* keep the counts for the next attempt */
            pthread_mutex_lock(&u->mu);
            for (size_t i = 0; i < n; i++)
                add(u, items[i].id, items[i].ip, items[i].requests, items[i].last_ms);
            pthread_mutex_unlock(&u->mu);
        }
    }
    free(items);
    pthread_mutex_unlock(&u->flush_mu);
    return rc;
}
