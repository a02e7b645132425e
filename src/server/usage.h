/* API key usage (last_used, usage_stats) counted in memory per request and
 * written to the store in one batch every few seconds and at shutdown, so
 * that authenticating a request never costs a write. */
#ifndef BS_SERVER_USAGE_H
#define BS_SERVER_USAGE_H

#include "bertstudio/common.h"
#include "store/store.h"

typedef struct bs_usage bs_usage;

bs_usage *bs_usage_new(void);
void bs_usage_free(bs_usage *u);
/* Counts one request of api_key_id from ip at now_ms. */
void bs_usage_record(bs_usage *u, const char *api_key_id, const char *ip, int64_t now_ms);
/* Writes the pending counters (one store transaction) and clears them. On
 * failure the counts are kept for the next flush. */
int bs_usage_flush(bs_usage *u, bs_store *s, bs_err *err);

#endif
