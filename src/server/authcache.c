/* Direct-mapped table of key documents under striped locks: the working
 * set is a handful of keys, so collisions only cost a store read. */
#include "server/authcache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS   1024
#define NSTRIPES 16

typedef struct slot {
    unsigned char digest[32];
    json_t *doc;
    int64_t expires_ms;
    uint64_t generation;
} slot;

struct bs_authcache {
    unsigned char key[crypto_generichash_KEYBYTES];
    int64_t ttl_ms;
    atomic_ullong generation;
    pthread_mutex_t stripes[NSTRIPES];
    slot slots[NSLOTS];
};

bs_authcache *bs_authcache_new(int64_t ttl_ms)
{
    if (sodium_init() < 0) return NULL;
    bs_authcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    randombytes_buf(c->key, sizeof c->key);
    c->ttl_ms = ttl_ms;
    for (int i = 0; i < NSTRIPES; i++) pthread_mutex_init(&c->stripes[i], NULL);
    return c;
}

void bs_authcache_free(bs_authcache *c)
{
    if (!c) return;
    for (size_t i = 0; i < NSLOTS; i++) json_decref(c->slots[i].doc);
    for (int i = 0; i < NSTRIPES; i++) pthread_mutex_destroy(&c->stripes[i]);
    sodium_memzero(c->key, sizeof c->key);
    free(c);
}

uint64_t bs_authcache_generation(bs_authcache *c)
{
    return atomic_load(&c->generation);
}

static size_t locate(bs_authcache *c, const char *secret, unsigned char digest[32])
{
    crypto_generichash(digest, 32, (const unsigned char *)secret, strlen(secret), c->key,
                       sizeof c->key);
    return ((size_t)digest[0] | (size_t)digest[1] << 8) % NSLOTS;
}

json_t *bs_authcache_get(bs_authcache *c, const char *secret, int64_t now_ms)
{
    unsigned char d[32];
    size_t i = locate(c, secret, d);
    pthread_mutex_t *mu = &c->stripes[i % NSTRIPES];
    json_t *doc = NULL;
    pthread_mutex_lock(mu);
    slot *s = &c->slots[i];
    if (s->doc && s->expires_ms > now_ms && s->generation == atomic_load(&c->generation) &&
        sodium_memcmp(s->digest, d, sizeof d) == 0)
        doc = json_incref(s->doc);
    pthread_mutex_unlock(mu);
    return doc;
}

void bs_authcache_put(bs_authcache *c, const char *secret, const json_t *doc, uint64_t generation,
                      int64_t now_ms)
{
    unsigned char d[32];
    size_t i = locate(c, secret, d);
    json_t *copy = json_deep_copy(doc); /* callers keep and may modify theirs */
    if (!copy) return;
    pthread_mutex_t *mu = &c->stripes[i % NSTRIPES];
    pthread_mutex_lock(mu);
    slot *s = &c->slots[i];
    json_t *old = s->doc;
    if (generation == atomic_load(&c->generation)) {
        memcpy(s->digest, d, sizeof d);
        s->doc = copy;
        s->expires_ms = now_ms + c->ttl_ms;
        s->generation = generation;
        copy = NULL;
    } else {
        old = NULL;
    }
    pthread_mutex_unlock(mu);
    json_decref(old);
    json_decref(copy);
}

void bs_authcache_invalidate(bs_authcache *c)
{
    /* Entries of older generations are ignored by get and replaced by put;
     * there is no need to walk the table. */
    atomic_fetch_add(&c->generation, 1);
}
