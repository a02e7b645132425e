/* Keeping the cache under its disk cap (setting model_cache_max_bytes):
 * which models go first is decided from the seed's usage fields alone, so
 * the order can be tested with documents and no files. */
#include "hub/internal.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

typedef struct cand {
    const char *name;
    int prio;        /* 0 low, 1 normal, 2 high */
    int64_t last_ms; /* most recent access over the model's entries */
    int64_t count;   /* accesses summed over the model's entries */
    int64_t bytes;
    int keep;
} cand;

static int prio_rank(const char *p)
{
    if (p && !strcmp(p, "low")) return 0;
    if (p && !strcmp(p, "high")) return 2;
    return 1;
}

static int cmp_cand(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->prio != b->prio) return a->prio < b->prio ? -1 : 1;
    if (a->last_ms != b->last_ms) return a->last_ms < b->last_ms ? -1 : 1;
    if (a->count != b->count) return a->count < b->count ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int64_t date_ms(const json_t *v)
{
    int64_t ms = 0;
    if (json_is_string(v) && !bs_time_parse_iso8601(json_string_value(v), &ms)) return ms;
    if (json_is_integer(v)) return json_integer_value(v);
    return 0;
}

int bs_hub_eviction_plan(const json_t *entries, int64_t max_bytes, const char *const *keep,
                         size_t nkeep, json_t **out, bs_err *err)
{
    size_t n = json_array_size(entries), m = 0, i;
    cand *c = calloc(n + 1, sizeof *c);
    json_t *victims = json_array();
    if (!c || !victims) {
        free(c);
        json_decref(victims);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    int64_t total = 0;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "model_name"));
        if (!name || !json_is_true(json_object_get(e, "is_cached"))) continue;
        json_int_t size = json_integer_value(json_object_get(e, "file_size"));
        size_t k = 0;
        while (k < m && strcmp(c[k].name, name)) k++;
        int64_t last = date_ms(json_object_get(e, "last_accessed"));
        int prio = prio_rank(json_string_value(json_object_get(e, "cache_priority")));
        if (k == m) {
            c[m++] = (cand){.name = name, .prio = prio, .last_ms = last};
            for (size_t j = 0; j < nkeep; j++)
                if (!strcmp(keep[j], name)) c[k].keep = 1;
        }
        if (prio > c[k].prio) c[k].prio = prio;
        if (last > c[k].last_ms) c[k].last_ms = last;
        c[k].count += json_integer_value(json_object_get(e, "access_count"));
        /* Entries of one model share its folder: count the bytes once. */
        if (size > c[k].bytes) {
            total += size - c[k].bytes;
            c[k].bytes = size;
        }
    }
    qsort(c, m, sizeof *c, cmp_cand);
    for (size_t k = 0; k < m && total > max_bytes; k++) {
        if (c[k].keep) continue;
        json_array_append_new(victims, json_string(c[k].name));
        total -= c[k].bytes;
    }
    free(c);
    *out = victims;
    return 0;
}
