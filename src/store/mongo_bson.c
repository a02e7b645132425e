/* JSON <-> BSON for the MongoDB engine. The descriptor of each collection
 * says which top-level fields are dates, ObjectIds, integers or doubles, so
 * both engines hand back identical documents. */
#include "store/mongo_int.h"
#include "util/buf.h"
#include "util/time.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool append_untyped(bson_t *b, const char *key, const json_t *v, bool activity);

static bool append_array(bson_t *b, const char *key, const json_t *v, bool activity)
{
    bson_t child;
    if (!bson_append_array_begin(b, key, -1, &child)) return false;
    size_t i;
    json_t *e;
    bool ok = true;
    json_array_foreach(v, i, e)
    {
        char kb[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, kb, sizeof kb);
        ok = ok && append_untyped(&child, k, e, activity);
    }
    return bson_append_array_end(b, &child) && ok;
}

/* activity: entries of user_sessions.activity_log, whose timestamp and
 * task_id are a date and an ObjectId like the seed shows. */
static bool append_untyped(bson_t *b, const char *key, const json_t *v, bool activity)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return bson_append_null(b, key, -1);
    case JSON_TRUE:
        return bson_append_bool(b, key, -1, true);
    case JSON_FALSE:
        return bson_append_bool(b, key, -1, false);
    case JSON_INTEGER:
        return bson_append_int64(b, key, -1, json_integer_value(v));
    case JSON_REAL:
        return bson_append_double(b, key, -1, json_real_value(v));
    case JSON_STRING:
        return bson_append_utf8(b, key, -1, json_string_value(v), (int)json_string_length(v));
    case JSON_ARRAY:
        return append_array(b, key, v, false);
    case JSON_OBJECT: {
        bson_t child;
        if (!bson_append_document_begin(b, key, -1, &child)) return false;
        const char *k;
        json_t *e;
        bool ok = true;
        json_object_foreach((json_t *)v, k, e)
        {
            if (activity && !strcmp(k, "timestamp"))
                ok = ok && bs_mg_append(&child, k, e, BS_F_DATE);
            else if (activity && !strcmp(k, "task_id"))
                ok = ok && bs_mg_append(&child, k, e, BS_F_OID);
            else
                ok = ok && append_untyped(&child, k, e, false);
        }
        return bson_append_document_end(b, &child) && ok;
    }
    }
    return false;
}

bool bs_mg_append(bson_t *b, const char *key, const json_t *v, int t)
{
    if (!v || json_is_null(v)) return bson_append_null(b, key, -1);
    switch (t) {
    case BS_F_DATE: {
        int64_t ms;
        if (json_is_integer(v))
            ms = json_integer_value(v);
        else if (!json_is_string(v) || bs_time_parse_iso8601(json_string_value(v), &ms))
            return false;
        return bson_append_date_time(b, key, -1, ms);
    }
    case BS_F_OID: {
        const char *s = json_string_value(v);
        if (!s || !bson_oid_is_valid(s, strlen(s)) || strlen(s) != 24) return false;
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, s);
        return bson_append_oid(b, key, -1, &oid);
    }
    case BS_F_NUM:
        return json_is_number(v) && bson_append_double(b, key, -1, json_number_value(v));
    case BS_F_INT:
        return json_is_integer(v) && bson_append_int64(b, key, -1, json_integer_value(v));
    case BS_F_BOOL:
        return json_is_boolean(v) && bson_append_bool(b, key, -1, json_is_true(v));
    case BS_F_JSON:
        if (json_is_array(v) && !strcmp(key, "activity_log")) return append_array(b, key, v, true);
        return append_untyped(b, key, v, false);
    default:
        return append_untyped(b, key, v, false);
    }
}

bool bs_mg_append_activity(bson_t *b, const char *key, const json_t *arr)
{
    return json_is_array(arr) && append_array(b, key, arr, true);
}

bool bs_mg_from_json(bs_coll c, const json_t *doc, bson_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        const bs_field *f = bs_store_field(c, k);
        if (!f || json_is_null(v)) continue;
        if (!bs_mg_append(out, k, v, (int)f->type)) return false;
    }
    return true;
}

static json_t *value_of(const bson_iter_t *it);

static json_t *object_of(const bson_iter_t *it, bool array)
{
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child)) return NULL;
    json_t *out = array ? json_array() : json_object();
    while (out && bson_iter_next(&child)) {
        json_t *v = value_of(&child);
        if (!v) continue; /* a BSON type without JSON form */
        if (array)
            json_array_append_new(out, v);
        else
            json_object_set_new(out, bson_iter_key(&child), v);
    }
    return out;
}

static json_t *value_of(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_NULL:
        return json_null();
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        return json_stringn(s, len);
    }
    case BSON_TYPE_DATE_TIME: {
        char iso[32];
        return json_string(bs_time_iso8601(bson_iter_date_time(it), iso, sizeof iso));
    }
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        return json_string(hex);
    }
    case BSON_TYPE_DOCUMENT:
        return object_of(it, false);
    case BSON_TYPE_ARRAY:
        return object_of(it, true);
    default:
        return NULL;
    }
}

json_t *bs_mg_to_json(bs_coll c, const bson_t *b)
{
    json_t *doc = json_object();
    bson_iter_t it;
    if (!doc || !bson_iter_init(&it, b)) return doc;
    while (bson_iter_next(&it)) {
        const bs_field *f = bs_store_field(c, bson_iter_key(&it));
        if (!f) continue; /* e.g. the text score */
        json_t *v = value_of(&it);
        if (!v || json_is_null(v)) {
            json_decref(v);
            continue;
        }
        /* numbers written by other tools keep the descriptor's type */
        if (f->type == BS_F_NUM && json_is_integer(v)) {
            json_t *r = json_real((double)json_integer_value(v));
            json_decref(v);
            v = r;
        } else if (f->type == BS_F_INT && json_is_real(v)) {
            json_t *r = json_integer((json_int_t)json_real_value(v));
            json_decref(v);
            v = r;
        }
        json_object_set_new(doc, f->name, v);
    }
    return doc;
}

static const char *mgop(bs_qop op)
{
    switch (op) {
    case BS_Q_NE:
        return "$ne";
    case BS_Q_GTE:
        return "$gte";
    case BS_Q_GT:
        return "$gt";
    case BS_Q_LT:
        return "$lt";
    case BS_Q_LTE:
        return "$lte";
    case BS_Q_IN:
        return "$in";
    default:
        return NULL;
    }
}

/* One condition as {field: value} or {field: {$op: value}}. */
static int cond(bson_t *doc, bs_coll c, const bs_qcond *k, bs_err *err)
{
    const bs_field *f = bs_store_field(c, k->field);
    if (!f) return bs_err_set(err, BS_EINTERNAL, "query on unknown field %s", k->field);
    /* the elements of tags are strings: $in on the array means "any of" */
    int t = f->type == BS_F_JSON ? -1 : (int)f->type;
    bool ok;
    if (k->op == BS_Q_EQ) {
        ok = bs_mg_append(doc, f->name, k->val, t);
    } else {
        bson_t sub;
        ok = bson_append_document_begin(doc, f->name, -1, &sub);
        if (k->op == BS_Q_IN) {
            bson_t arr;
            ok = ok && bson_append_array_begin(&sub, "$in", -1, &arr);
            size_t i;
            json_t *e;
            json_array_foreach(k->val, i, e)
            {
                char kb[16];
                const char *key;
                bson_uint32_to_string((uint32_t)i, &key, kb, sizeof kb);
                ok = ok && bs_mg_append(&arr, key, e, t);
            }
            ok = ok && bson_append_array_end(&sub, &arr);
        } else {
            ok = ok && bs_mg_append(&sub, mgop(k->op), k->val, t);
        }
        ok = ok && bson_append_document_end(doc, &sub);
    }
    return ok ? 0
              : bs_err_set(err, BS_EINVAL, "%s: bad value for %s", bs_store_colls[c].name,
                           k->field);
}

char *bs_mg_text(const char *text)
{
    bs_buf b;
    bs_buf_init(&b);
    int words = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        while (*p && *p < 0x80 && !isalnum(*p)) p++;
        if (!*p) break;
        const unsigned char *w = p;
        while (*p && (*p >= 0x80 || isalnum(*p))) p++;
        if (words++) bs_buf_putc(&b, ' ');
        bs_buf_append(&b, w, (size_t)(p - w));
    }
    if (!words || b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return bs_buf_steal(&b, NULL);
}

int bs_mg_filter(bs_coll c, const bs_query *q, bson_t *out, bs_err *err)
{
    if (q->text) {
        char *words = bs_mg_text(q->text);
        bson_t t;
        bool ok = words && bson_append_document_begin(out, "$text", -1, &t) &&
                  bson_append_utf8(&t, "$search", -1, words, -1) &&
                  bson_append_document_end(out, &t);
        free(words);
        if (!ok) return bs_err_set(err, BS_EINTERNAL, "text search without words");
    }
    if (!q->nall && !q->nany) return 0;
    bson_t and;
    bson_append_array_begin(out, "$and", -1, &and);
    int n = 0, rc = 0;
    for (int i = 0; i < q->nall && !rc; i++) {
        char kb[16];
        const char *key;
        bson_uint32_to_string((uint32_t)n++, &key, kb, sizeof kb);
        bson_t d;
        bson_append_document_begin(&and, key, -1, &d);
        rc = cond(&d, c, &q->all[i], err);
        bson_append_document_end(&and, &d);
    }
    if (q->nany && !rc) {
        char kb[16];
        const char *key;
        bson_uint32_to_string((uint32_t)n++, &key, kb, sizeof kb);
        bson_t d, or ;
        bson_append_document_begin(&and, key, -1, &d);
        bson_append_array_begin(&d, "$or", -1, & or);
        for (int i = 0; i < q->nany && !rc; i++) {
            const char *k2;
            bson_uint32_to_string((uint32_t)i, &k2, kb, sizeof kb);
            bson_t e;
            bson_append_document_begin(& or, k2, -1, &e);
            rc = cond(&e, c, &q->any[i], err);
            bson_append_document_end(& or, &e);
        }
        bson_append_array_end(&d, & or);
        bson_append_document_end(&and, &d);
    }
    bson_append_array_end(out, &and);
    return rc;
}
