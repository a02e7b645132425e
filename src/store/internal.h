/* Private to src/store: collection descriptors, the small query form the
 * typed APIs speak, and the engine interface that sqlite.c and mongo.c
 * implement. The typed APIs (tasks.c, keys.c, ...) hold the rules; the
 * engines only translate. */
#ifndef BS_STORE_INTERNAL_H
#define BS_STORE_INTERNAL_H

#include "store/store.h"

#include <stdbool.h>

typedef enum bs_coll {
    BS_COLL_TASKS,
    BS_COLL_KEYS,
    BS_COLL_SESSIONS,
    BS_COLL_MODELS,
    BS_COLL_LOGS,
    BS_COLL_SETTINGS,
    BS_NCOLL
} bs_coll;

/* How a top-level field is typed in JSON and stored natively. */
typedef enum bs_ftype {
    BS_F_STR,  /* string */
    BS_F_INT,  /* integer */
    BS_F_NUM,  /* number */
    BS_F_BOOL, /* boolean */
    BS_F_DATE, /* ISO-8601 string in JSON; SQLite INTEGER ms; BSON date */
    BS_F_OID,  /* 24-hex string in JSON; SQLite TEXT; BSON ObjectId */
    BS_F_JSON, /* object or array (or any value for setting_value), stored as JSON */
} bs_ftype;

typedef struct bs_field {
    const char *name;
    bs_ftype type;
} bs_field;

typedef struct bs_coll_desc {
    const char *name;
    const bs_field *fields; /* fields[0] is "_id" */
    int nfields;
} bs_coll_desc;

extern const bs_coll_desc bs_store_colls[BS_NCOLL];
/* The field descriptor, or NULL when the collection has no such field. */
const bs_field *bs_store_field(bs_coll c, const char *name);
/* Collection by seed name; -1 when unknown. */
int bs_store_coll_by_name(const char *name);

/* Validates a complete document of collection c (types of every field,
 * unknown fields, and the collection's rules). BS_EINVAL names the field. */
int bs_store_validate(bs_coll c, const json_t *doc, bs_err *err);
/* setting_value must match setting_type (integer, float, boolean, string, json). */
int bs_store_setting_check(const char *type, const json_t *value, bs_err *err);
/* Removes null members (null and absent mean the same in both engines). */
void bs_store_strip_nulls(json_t *doc);

/* ── queries ── */
typedef enum bs_qop { BS_Q_EQ, BS_Q_NE, BS_Q_GTE, BS_Q_GT, BS_Q_LT, BS_Q_LTE, BS_Q_IN } bs_qop;

/* field op val. Date values may be ISO strings or integer ms. BS_Q_IN takes an
 * array; on an array field (tags) it means "contains any of". */
typedef struct bs_qcond {
    const char *field;
    bs_qop op;
    const json_t *val;
} bs_qcond;

#define BS_Q_MAX 10
typedef struct bs_query {
    bs_qcond all[BS_Q_MAX]; /* ANDed */
    int nall;
    bs_qcond any[BS_Q_MAX]; /* when nany > 0: at least one of them, ANDed with all[] */
    int nany;
    const char *text; /* custom_tasks text search (words, OR-ed) */
    const char *sort; /* field to sort by, NULL = _id order */
    bool desc;
    bool sort_text_score; /* by relevance, best first (needs text) */
    int64_t limit;        /* 0 = no limit */
    int64_t offset;
} bs_query;

void bs_query_add(bs_query *q, const char *field, bs_qop op, const json_t *val);
void bs_query_add_any(bs_query *q, const char *field, bs_qop op, const json_t *val);

/* Receives one log of a stats scan (in any order). */
typedef int (*bs_scan_fn)(void *ud, const char *group, double exec_time, bool success);

typedef struct bs_engine {
    const char *name;
    void (*close)(bs_store *s);
    int (*ping)(bs_store *s, bs_err *err);
    /* Inserts n complete documents atomically. replace: an existing _id is
     * overwritten (import). */
    int (*insert)(bs_store *s, bs_coll c, json_t *const *docs, size_t n, bool replace, bs_err *err);
    /* Matching documents as stored (hashes included); *total (may be NULL)
     * counts them without limit/offset. */
    int (*find)(bs_store *s, bs_coll c, const bs_query *q, json_t **out, int64_t *total,
                bs_err *err);
    /* set: top-level fields to replace (null = unset). inc: numeric
     * increments, keys "field" or "subdoc.field". */
    int (*update)(bs_store *s, bs_coll c, const bs_query *q, const json_t *set, const json_t *inc,
                  int64_t *matched, bs_err *err);
    int (*remove)(bs_store *s, bs_coll c, const bs_query *q, int64_t *removed, bs_err *err);
    /* count of documents per value of field (array fields: per element),
     * most frequent first: [{"value": v, "count": n}...]. */
    int (*group_count)(bs_store *s, bs_coll c, const bs_query *q, const char *field, int64_t limit,
                       json_t **out, bs_err *err);
    /* Sum of an integer field over matching documents. */
    int (*sum)(bs_store *s, bs_coll c, const bs_query *q, const char *field, int64_t *out,
               bs_err *err);
    /* Atomic read-modify-writes. */
    int (*task_exec)(bs_store *s, const char *id, double secs, bool ok, bs_err *err);
    int (*session_push)(bs_store *s, const char *id, const json_t *entry, int cap, bs_err *err);
    int (*log_scan)(bs_store *s, const bs_query *q, bs_log_group g, bs_scan_fn cb, void *ud,
                    bs_err *err);
    int (*backup)(bs_store *s, const char *path, bs_err *err);
    int (*restore)(bs_store *s, const char *path, bs_err *err);
} bs_engine;

struct bs_store {
    const bs_engine *eng;
    void *impl;
    bs_store_clock_fn clock;
    void *clock_ud;
    unsigned char secret[32]; /* keyed-hash key (store.key) */
};

int bs_store_sqlite_open(bs_store *s, const char *path, const bs_store_opts *opts, bs_err *err);
int bs_store_mongo_open(bs_store *s, const char *uri, const bs_store_opts *opts, bs_err *err);

/* Whole-store JSON-lines dump {"collection", "doc"} and its reload (which
 * first empties every collection): MongoDB's backup format (dump.c). */
int bs_store_dump_file(bs_store *s, const char *path, bs_err *err);
int bs_store_load_file(bs_store *s, const char *path, bs_err *err);

/* ── helpers (secret.c) ── */
/* A new ObjectId as 24 lowercase hex chars + NUL. */
void bs_store_oid_new(int64_t now_ms, char out[25]);
bool bs_store_oid_valid(const char *s);
/* Loads or creates DIR/store.key (32 random bytes, mode 0600). */
int bs_store_secret_load(const char *dir, unsigned char key[32], bs_err *err);
/* Keyed BLAKE2b-256 of text, as 64 hex chars + NUL. */
void bs_store_hash(const bs_store *s, const char *text, size_t len, char out[65]);
/* prefix + nchars random base62 characters; caller frees. NULL on OOM. */
char *bs_store_random_secret(const char *prefix, size_t nchars);
/* IPv4: last octet zeroed; IPv6: last 80 bits zeroed; other text: NULL.
 * out >= 64 bytes. Returns out or NULL. */
const char *bs_store_anonymize_ip(const char *ip, char *out, size_t outlen);

/* ── common small helpers (store.c) ── */
/* ISO string of the store's now. */
json_t *bs_store_now_json(const bs_store *s);
json_t *bs_store_date_json(int64_t ms);
/* Finds the single document where field == value; BS_ENOTFOUND names what. */
int bs_store_find_one(bs_store *s, bs_coll c, const char *field, const char *value, json_t **out,
                      bs_err *err);
int bs_store_check_id(const char *what, const char *id, bs_err *err);
/* Retention: removes the documents of c whose date `field` is older than
 * `days` (<= 0: the integer setting `setting`, else dflt_days) before now. */
int bs_store_sweep_older(bs_store *s, bs_coll c, const char *field, const char *setting,
                         int64_t dflt_days, int64_t days, int64_t *removed, bs_err *err);

#endif
