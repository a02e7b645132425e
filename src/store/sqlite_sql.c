/* Translation of the store's small query form into SQL for the SQLite
 * engine, and of rows back into seed-shaped JSON documents. Values are
 * always bound, never spliced into SQL text. */
#include "store/sqlite_int.h"
#include "util/time.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *opsql(bs_qop op)
{
    switch (op) {
    case BS_Q_EQ:
        return "=";
    case BS_Q_NE:
        return "IS NOT";
    case BS_Q_GTE:
        return ">=";
    case BS_Q_GT:
        return ">";
    case BS_Q_LT:
        return "<";
    case BS_Q_LTE:
        return "<=";
    default:
        return "IN";
    }
}

static int push(bs_sq_binds *bv, const json_t *v, bs_ftype t, bs_err *err)
{
    if (bv->n >= (int)(sizeof bv->val / sizeof *bv->val))
        return bs_err_set(err, BS_ELIMIT, "query has too many values");
    bv->val[bv->n] = v;
    bv->type[bv->n++] = t;
    return 0;
}

/* The placeholders of an IN list; an empty list matches nothing. */
static int in_list(bs_buf *b, const json_t *arr, bs_ftype t, bs_sq_binds *bv, bs_err *err)
{
    if (!json_is_array(arr)) return bs_err_set(err, BS_EINTERNAL, "IN needs an array");
    if (json_array_size(arr) == 0) {
        bs_buf_puts(b, "(NULL)");
        return 0;
    }
    bs_buf_putc(b, '(');
    for (size_t i = 0; i < json_array_size(arr); i++) {
        bs_buf_puts(b, i ? ",?" : "?");
        int rc = push(bv, json_array_get(arr, i), t, err);
        if (rc) return rc;
    }
    bs_buf_putc(b, ')');
    return 0;
}

static int cond(bs_buf *b, bs_coll c, const bs_query *q, const bs_qcond *k, bs_sq_binds *bv,
                bs_err *err)
{
    const bs_field *f = bs_store_field(c, k->field);
    if (!f) return bs_err_set(err, BS_EINTERNAL, "query on unknown field %s", k->field);
    if (c == BS_COLL_TASKS && !strcmp(k->field, "tags")) {
        /* Multikey index (tags, model_name): the side table answers both. */
        bs_buf_puts(b, "t.rowid IN (SELECT task FROM custom_tasks_tags WHERE tag IN ");
        int rc = in_list(b, k->val, BS_F_STR, bv, err);
        if (rc) return rc;
        for (int i = 0; i < q->nall; i++)
            if (!strcmp(q->all[i].field, "model_name") && q->all[i].op == BS_Q_EQ) {
                bs_buf_puts(b, " AND model_name = ?");
                if ((rc = push(bv, q->all[i].val, BS_F_STR, err))) return rc;
            }
        bs_buf_putc(b, ')');
        return 0;
    }
    bs_buf_printf(b, "t.\"%s\" %s ", f->name, opsql(k->op));
    if (k->op == BS_Q_IN) return in_list(b, k->val, f->type, bv, err);
    bs_buf_putc(b, '?');
    return push(bv, k->val, f->type, err);
}

int bs_sq_where(bs_buf *b, bs_coll c, const bs_query *q, bs_sq_binds *bv, bs_err *err)
{
    int n = 0, rc;
    for (int i = 0; i < q->nall; i++) {
        bs_buf_puts(b, n++ ? " AND " : " WHERE ");
        if ((rc = cond(b, c, q, &q->all[i], bv, err))) return rc;
    }
    if (q->nany) {
        bs_buf_puts(b, n++ ? " AND (" : " WHERE (");
        for (int i = 0; i < q->nany; i++) {
            if (i) bs_buf_puts(b, " OR ");
            if ((rc = cond(b, c, q, &q->any[i], bv, err))) return rc;
        }
        bs_buf_putc(b, ')');
    }
    return 0;
}

int bs_sq_bind(sqlite3_stmt *st, int i, const json_t *v, bs_ftype t)
{
    if (!v || json_is_null(v)) return sqlite3_bind_null(st, i);
    switch (t) {
    case BS_F_INT:
        return sqlite3_bind_int64(st, i, (sqlite3_int64)json_integer_value(v));
    case BS_F_NUM:
        return sqlite3_bind_double(st, i, json_number_value(v));
    case BS_F_BOOL:
        return sqlite3_bind_int(st, i, json_is_true(v));
    case BS_F_DATE: {
        int64_t ms = 0;
        if (json_is_integer(v))
            ms = json_integer_value(v);
        else if (bs_time_parse_iso8601(json_string_value(v), &ms))
            return sqlite3_bind_null(st, i);
        return sqlite3_bind_int64(st, i, ms);
    }
    case BS_F_JSON: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) return SQLITE_NOMEM;
        return sqlite3_bind_text(st, i, text, -1, free);
    }
    default:
        if (json_is_string(v))
            return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                                     SQLITE_TRANSIENT);
        return sqlite3_bind_null(st, i);
    }
}

int bs_sq_bind_all(sqlite3_stmt *st, const bs_sq_binds *bv, int first)
{
    for (int i = 0; i < bv->n; i++) {
        int rc = bs_sq_bind(st, first + i, bv->val[i], bv->type[i]);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

json_t *bs_sq_row(sqlite3_stmt *st, bs_coll c, int first)
{
    const bs_coll_desc *d = &bs_store_colls[c];
    json_t *doc = json_object();
    if (!doc) return NULL;
    for (int f = 0; f < d->nfields; f++) {
        int col = first + f;
        if (sqlite3_column_type(st, col) == SQLITE_NULL) continue;
        json_t *v = NULL;
        switch (d->fields[f].type) {
        case BS_F_INT:
            v = json_integer(sqlite3_column_int64(st, col));
            break;
        case BS_F_NUM:
            v = json_real(sqlite3_column_double(st, col));
            break;
        case BS_F_BOOL:
            v = json_boolean(sqlite3_column_int(st, col));
            break;
        case BS_F_DATE: {
            char iso[32];
            v = json_string(bs_time_iso8601(sqlite3_column_int64(st, col), iso, sizeof iso));
            break;
        }
        case BS_F_JSON:
            v = json_loadb((const char *)sqlite3_column_text(st, col),
                           (size_t)sqlite3_column_bytes(st, col), JSON_DECODE_ANY, NULL);
            break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(st, col),
                             (size_t)sqlite3_column_bytes(st, col));
        }
        if (v) json_object_set_new(doc, d->fields[f].name, v);
    }
    return doc;
}

char *bs_sq_fts_query(const char *text)
{
    /* Like MongoDB's $text: the words of the text, any of them. Each word
     * is quoted so FTS5 operators in user input stay plain words. */
    bs_buf b;
    bs_buf_init(&b);
    const unsigned char *p = (const unsigned char *)text;
    int words = 0;
    while (*p) {
        while (*p && *p < 0x80 && !isalnum(*p)) p++;
        if (!*p) break;
        const unsigned char *w = p;
        while (*p && (*p >= 0x80 || isalnum(*p))) p++;
        bs_buf_puts(&b, words++ ? " OR \"" : "\"");
        bs_buf_append(&b, w, (size_t)(p - w));
        bs_buf_putc(&b, '"');
    }
    if (!words || b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return bs_buf_steal(&b, NULL);
}
