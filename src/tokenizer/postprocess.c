/* Post-processors: TemplateProcessing, BertProcessing, RobertaProcessing
 * (with ByteLevel's trim_offsets), ByteLevel and Sequence. They wrap each
 * sequence (and each of its overflowing windows) in special tokens, then the
 * pair is merged as the library's Encoding::merge_with does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/encoding.h"
#include "tokenizer/tok_internal.h"

static void set_type_seq(bs_encoding *e, int32_t type_id, int32_t seq)
{
    for (size_t i = 0; i < e->len; i++) {
        e->type_ids[i] = type_id;
        if (seq >= 0) e->sequence_ids[i] = seq;
    }
    for (size_t i = 0; i < e->n_overflowing; i++) set_type_seq(&e->overflowing[i], type_id, seq);
}

/* ByteLevel::process_offsets, on code point offsets as in the library. */
static void trim_offsets(bs_encoding *e, int add_prefix_space)
{
    uint32_t g = bs_tok_bytelevel_char(' ');
    for (size_t i = 0; i < e->len; i++) {
        const char *t = e->tokens[i];
        size_t tl = strlen(t), lead = 0, trail = 0, pos = 0;
        uint32_t cps[4096];
        size_t nc = 0;
        int overflow = 0;
        while (pos < tl) {
            uint32_t cp;
            pos += bs_utf8_decode_cp(t + pos, tl - pos, &cp);
            if (nc < 4096)
                cps[nc++] = cp;
            else
                overflow = 1;
        }
        while (lead < nc && (cps[lead] == g || bs_tok_uc_is_whitespace(cps[lead]))) lead++;
        if (!overflow)
            while (trail < nc &&
                   (cps[nc - 1 - trail] == g || bs_tok_uc_is_whitespace(cps[nc - 1 - trail])))
                trail++;
        bs_span *o = &e->offsets[i];
        if (lead) {
            int first = i == 0 || o->start == 0;
            if (first && add_prefix_space && lead == 1) lead = 0;
            o->start = o->start + lead < o->end ? o->start + lead : o->end;
        }
        if (trail && o->end >= trail)
            o->end = o->end - trail > o->start ? o->end - trail : o->start;
    }
    for (size_t i = 0; i < e->n_overflowing; i++)
        trim_offsets(&e->overflowing[i], add_prefix_space);
}

static int push_special(bs_encoding *e, int32_t id, const char *tok, int32_t type_id)
{
    return bs_tok_enc_push(e, id, type_id, tok, strlen(tok), 0, 0, -1, -1, 1, 1);
}

/* Wraps seq (and each window) as: pre-specials, seq, post-specials. */
typedef struct wrap {
    const int32_t *pre_ids, *post_ids;
    const char *const *pre_tok, *const *post_tok;
    size_t n_pre, n_post;
    int32_t type_id;
} wrap;

static int wrap_one(const bs_encoding *s, const wrap *w, bs_encoding *out)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    for (size_t i = 0; i < w->n_pre && !rc; i++)
        rc = push_special(out, w->pre_ids[i], w->pre_tok[i], w->type_id);
    bs_encoding tmp = *s;
    tmp.overflowing = NULL;
    tmp.n_overflowing = 0;
    if (!rc) rc = bs_tok_enc_merge_with(out, &tmp);
    for (size_t i = 0; i < w->n_post && !rc; i++)
        rc = push_special(out, w->post_ids[i], w->post_tok[i], w->type_id);
    if (!rc && s->n_overflowing) {
        out->overflowing = calloc(s->n_overflowing, sizeof *out->overflowing);
        if (!out->overflowing) rc = BS_ENOMEM;
        for (size_t i = 0; i < s->n_overflowing && !rc; i++) {
            rc = wrap_one(&s->overflowing[i], w, &out->overflowing[i]);
            out->n_overflowing = i + 1;
        }
    }
    if (rc) bs_tok_enc_clear(out);
    return rc;
}

static const tmpl_special *find_special(const postproc *p, const char *name)
{
    for (size_t i = 0; i < p->n_specials; i++)
        if (!strcmp(p->specials[i].name, name)) return &p->specials[i];
    return NULL;
}

/* Template: consecutive special pieces around each sequence piece. The
 * template is cut into per-sequence groups so that windows are wrapped the
 * way the library's piece-by-piece merge produces them. */
static int template_apply(const postproc *p, bs_encoding *a, bs_encoding *b, int add_special,
                          bs_encoding *out)
{
    const tmpl_piece *t = b ? p->pair : p->single;
    size_t n = b ? p->n_pair : p->n_single;
    memset(out, 0, sizeof *out);
    int rc = 0;
    /* Build the list of parts: each part is a special token or a sequence. */
    for (size_t i = 0; i < n && !rc; i++) {
        bs_encoding part;
        memset(&part, 0, sizeof part);
        if (t[i].is_special) {
            if (!add_special) continue;
            const tmpl_special *sp = find_special(p, t[i].special);
            if (!sp) return BS_EFORMAT;
            for (size_t k = 0; k < sp->n && !rc; k++)
                rc = push_special(&part, sp->ids[k], sp->tokens[k], t[i].type_id);
        } else {
            bs_encoding *src = t[i].seq ? b : a;
            if (!src) continue;
            rc = bs_tok_enc_clone(src, &part);
            if (!rc) set_type_seq(&part, t[i].type_id, t[i].seq);
        }
        if (!rc) rc = bs_tok_enc_merge_with(out, &part);
        bs_tok_enc_clear(&part);
    }
    if (rc) bs_tok_enc_clear(out);
    return rc;
}

static int bert_like(const postproc *p, bs_encoding *a, bs_encoding *b, int add_special,
                     int roberta, bs_encoding *out)
{
    if (roberta && p->trim_offsets) {
        trim_offsets(a, p->add_prefix_space);
        if (b) trim_offsets(b, p->add_prefix_space);
    }
    memset(out, 0, sizeof *out);
    if (!add_special) {
        set_type_seq(a, 0, 0);
        int rc = bs_tok_enc_clone(a, out);
        if (!rc && b) {
            set_type_seq(b, roberta ? 0 : 1, 1);
            rc = bs_tok_enc_merge_with(out, b);
        }
        return rc;
    }
    const char *cls = p->cls, *sep = p->sep;
    wrap wa = {&p->cls_id, &p->sep_id, &cls, &sep, 1, 1, 0};
    set_type_seq(a, 0, 0);
    int rc = wrap_one(a, &wa, out);
    if (rc || !b) return rc;
    int32_t bt = roberta ? 0 : 1;
    set_type_seq(b, bt, 1);
    wrap wb = {&p->sep_id, &p->sep_id, &sep, &sep, roberta ? 1 : 0, 1, bt};
    bs_encoding wbenc;
    rc = wrap_one(b, &wb, &wbenc);
    if (!rc) rc = bs_tok_enc_merge_with(out, &wbenc);
    bs_tok_enc_clear(&wbenc);
    if (rc) bs_tok_enc_clear(out);
    return rc;
}

int bs_tok_postproc_run(const postproc *p, bs_encoding *a, bs_encoding *b, int add_special,
                        bs_encoding *out)
{
    if (!p) {
        set_type_seq(a, 0, 0);
        int rc = bs_tok_enc_clone(a, out);
        if (!rc && b) {
            set_type_seq(b, 1, 1);
            rc = bs_tok_enc_merge_with(out, b);
        }
        return rc;
    }
    switch (p->type) {
    case POST_TEMPLATE:
        return template_apply(p, a, b, add_special, out);
    case POST_BERT:
        return bert_like(p, a, b, add_special, 0, out);
    case POST_ROBERTA:
        return bert_like(p, a, b, add_special, 1, out);
    case POST_BYTELEVEL:
        if (p->trim_offsets) {
            trim_offsets(a, p->add_prefix_space);
            if (b) trim_offsets(b, p->add_prefix_space);
        }
        return bs_tok_postproc_run(NULL, a, b, add_special, out);
    case POST_SEQ: {
        /* Each processor but the last only rewrites offsets (ByteLevel). */
        for (size_t i = 0; i + 1 < p->n_subs; i++)
            if (p->subs[i].type == POST_BYTELEVEL && p->subs[i].trim_offsets) {
                trim_offsets(a, p->subs[i].add_prefix_space);
                if (b) trim_offsets(b, p->subs[i].add_prefix_space);
            }
        if (!p->n_subs) return bs_tok_postproc_run(NULL, a, b, add_special, out);
        const postproc *last = &p->subs[p->n_subs - 1];
        return bs_tok_postproc_run(last, a, b, add_special, out);
    }
    }
    return BS_EINTERNAL;
}

size_t bs_tok_postproc_added(const postproc *p, int pair)
{
    if (!p) return 0;
    switch (p->type) {
    case POST_TEMPLATE: {
        const tmpl_piece *t = pair ? p->pair : p->single;
        size_t n = pair ? p->n_pair : p->n_single, k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!t[i].is_special) continue;
            const tmpl_special *sp = find_special(p, t[i].special);
            k += sp ? sp->n : 0;
        }
        return k;
    }
    case POST_BERT:
        return pair ? 3 : 2;
    case POST_ROBERTA:
        return pair ? 4 : 2;
    case POST_SEQ: {
        size_t k = 0;
        for (size_t i = 0; i < p->n_subs; i++) k += bs_tok_postproc_added(&p->subs[i], pair);
        return k;
    }
    }
    return 0;
}

void bs_tok_postproc_free(postproc *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_single; i++) free(p->single[i].special);
    for (size_t i = 0; i < p->n_pair; i++) free(p->pair[i].special);
    free(p->single);
    free(p->pair);
    for (size_t i = 0; i < p->n_specials; i++) {
        free(p->specials[i].name);
        free(p->specials[i].ids);
        for (size_t k = 0; k < p->specials[i].n; k++) free(p->specials[i].tokens[k]);
        free(p->specials[i].tokens);
    }
    free(p->specials);
    free(p->cls);
    free(p->sep);
    for (size_t i = 0; i < p->n_subs; i++) bs_tok_postproc_free(&p->subs[i]);
    free(p->subs);
}
