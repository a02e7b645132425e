/* A short-lived cache of API key documents by secret, so that a client
 * sending many requests costs one store read per key and TTL instead of
 * one per request. Entries are keyed by a keyed BLAKE2b digest of the
 * secret (the secret itself is never kept). Any change to keys made by
 * this process invalidates the whole cache at once; changes made by
 * another process are seen within the TTL. */
#ifndef BS_SERVER_AUTHCACHE_H
#define BS_SERVER_AUTHCACHE_H

#include <jansson.h>
#include <stdint.h>

typedef struct bs_authcache bs_authcache;

/* ttl_ms: how long an entry is trusted. NULL when out of memory or when
 * libsodium cannot be initialized. */
bs_authcache *bs_authcache_new(int64_t ttl_ms);
void bs_authcache_free(bs_authcache *c);
/* The current generation (read before a store lookup, given to put). */
uint64_t bs_authcache_generation(bs_authcache *c);
/* The cached key document of secret (new reference), or NULL. */
json_t *bs_authcache_get(bs_authcache *c, const char *secret, int64_t now_ms);
/* Caches doc for secret, unless the cache was invalidated since
 * generation was read (the document may then be stale). */
void bs_authcache_put(bs_authcache *c, const char *secret, const json_t *doc, uint64_t generation,
                      int64_t now_ms);
/* Forgets every entry (a key was changed, revoked or purged). */
void bs_authcache_invalidate(bs_authcache *c);

#endif
