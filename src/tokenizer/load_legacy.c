/* Model folders without tokenizer.json: vocab.txt (WordPiece, configured by
 * tokenizer_config.json's do_lower_case / strip_accents /
 * tokenize_chinese_chars) or vocab.json + merges.txt (byte-level BPE), built
 * into the same pipeline transformers' converters would produce; and the
 * configs every folder may carry (special tokens, model_max_length). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/load.h"
#include "util/file.h"

/* dir/name's bytes, or NULL: an unreadable optional file counts as absent. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[4300], *t = NULL;
    bs_err e = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (bs_file_read(p, (size_t)1 << 30, &t, len, &e)) return NULL;
    return t;
}

static json_t *load_json_file(const char *dir, const char *name)
{
    size_t len;
    char *t = slurp(dir, name, &len);
    if (!t) return NULL;
    json_t *j = json_loadb(t, len, 0, NULL);
    free(t);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int cfg_bool(json_t *c, const char *k, int def)
{
    json_t *v = c ? json_object_get(c, k) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static const char *tok_string(json_t *v)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int add_special(bs_tokenizer *tok, const char *content, int lstrip)
{
    int32_t id = bs_tok_vmap_get(&tok->model.vocab, content, strlen(content));
    if (id < 0) return 0;
    for (size_t i = 0; i < tok->n_added; i++)
        if (!strcmp(tok->added[i].content, content)) return 0;
    added_token *v = realloc(tok->added, (tok->n_added + 1) * sizeof *v);
    if (!v) return BS_ENOMEM;
    tok->added = v;
    added_token *t = &tok->added[tok->n_added];
    memset(t, 0, sizeof *t);
    if (!(t->content = strdup(content))) return BS_ENOMEM;
    tok->n_added++;
    t->len = strlen(content);
    t->id = id;
    t->special = 1;
    t->lstrip = lstrip;
    return 0;
}

static int template_bert(bs_tokenizer *tok, const char *cls, const char *sep)
{
    postproc *p = calloc(1, sizeof *p);
    if (!p) return BS_ENOMEM;
    tok->post = p;
    p->type = POST_BERT;
    p->cls = strdup(cls);
    p->sep = strdup(sep);
    p->cls_id = bs_tok_vmap_get(&tok->model.vocab, cls, strlen(cls));
    p->sep_id = bs_tok_vmap_get(&tok->model.vocab, sep, strlen(sep));
    return p->cls && p->sep ? 0 : BS_ENOMEM;
}

static int legacy_wordpiece(const char *dir, char *text, size_t len, json_t *cfg, bs_tokenizer *tok,
                            bs_err *err)
{
    model *m = &tok->model;
    m->kind = BS_MODEL_WORDPIECE;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    int rc = bs_tok_vmap_init(&m->vocab, lines);
    if (!rc) rc = bs_tok_model_set_vocab(m, lines);
    if (rc) return bs_err_set(err, rc, "out of memory");
    size_t id = 0, i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t l = e - i;
        if (l && text[i + l - 1] == '\r') l--;
        size_t bad;
        if (bs_utf8_validate(text + i, l, &bad))
            return bs_err_set(err, BS_EFORMAT, "%s/vocab.txt: line %zu is not valid UTF-8", dir,
                              id + 1);
        if (bs_tok_vmap_get(&m->vocab, text + i, l) < 0 &&
            (rc = bs_tok_vmap_put(&m->vocab, text + i, l, (int32_t)id)))
            return rc;
        if (!(m->id_to_tok[id] = strndup(text + i, l))) return BS_ENOMEM;
        m->id_len[id] = (uint32_t)l;
        id++;
        i = e + 1;
    }
    m->n_ids = id;
    m->prefix = strdup("##");
    m->unk_token = strdup("[UNK]");
    m->max_input_chars = 100;
    if (!m->prefix || !m->unk_token) return BS_ENOMEM;
    m->unk_id = bs_tok_vmap_get(&m->vocab, "[UNK]", 5);
    normalizer *n = calloc(1, sizeof *n);
    pretok *p = calloc(1, sizeof *p);
    decoder *d = calloc(1, sizeof *d);
    tok->norm = n;
    tok->pre = p;
    tok->dec = d;
    if (!n || !p || !d) return BS_ENOMEM;
    n->type = NORM_BERT;
    n->clean_text = 1;
    n->lowercase = cfg_bool(cfg, "do_lower_case", 1);
    n->handle_chinese = cfg_bool(cfg, "tokenize_chinese_chars", 1);
    json_t *sa = cfg ? json_object_get(cfg, "strip_accents") : NULL;
    n->strip_accents = json_is_boolean(sa) ? json_is_true(sa) : n->lowercase;
    p->type = PRE_BERT;
    d->type = DEC_WORDPIECE;
    d->cleanup = 1;
    if (!(d->prefix = strdup("##"))) return BS_ENOMEM;
    static const char *const sp[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int k = 0; k < 5; k++)
        if ((rc = add_special(tok, sp[k], 0))) return rc;
    return template_bert(tok, "[CLS]", "[SEP]");
}

static int legacy_bpe(const char *dir, json_t *vocab, char *merges, size_t mlen, json_t *cfg,
                      bs_tokenizer *tok, bs_err *err)
{
    model *m = &tok->model;
    m->kind = BS_MODEL_BPE;
    size_t n = json_object_size(vocab);
    int rc = bs_tok_vmap_init(&m->vocab, n);
    json_int_t maxid = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (size_t)json_integer_value(v) >= n * 2 + 1000000)
            return bs_err_set(err, BS_EFORMAT,
                              "%s/vocab.json: id of token \"%.40s\" is not a valid id", dir, k);
        if (json_integer_value(v) > maxid) maxid = json_integer_value(v);
    }
    if (!rc) rc = bs_tok_model_set_vocab(m, (size_t)(maxid + 1));
    if (rc) return bs_err_set(err, rc, "out of memory");
    json_object_foreach(vocab, k, v)
    {
        size_t id = (size_t)json_integer_value(v), kl = strlen(k);
        if ((rc = bs_tok_vmap_put(&m->vocab, k, kl, (int32_t)id))) return rc;
        if (!m->id_to_tok[id]) {
            if (!(m->id_to_tok[id] = strndup(k, kl))) return BS_ENOMEM;
            m->id_len[id] = (uint32_t)kl;
        }
    }
    char where[4400];
    snprintf(where, sizeof where, "%s/merges.txt", dir);
    size_t i = 0, line = 0;
    uint32_t rank = 0;
    while (i < mlen) {
        size_t e = i;
        while (e < mlen && merges[e] != '\n') e++;
        size_t l = e - i;
        if (l && merges[i + l - 1] == '\r') l--;
        line++;
        if (l && !(line == 1 && merges[i] == '#')) {
            const char *s = merges + i;
            const char *sp = memchr(s, ' ', l);
            if (!sp || memchr(sp + 1, ' ', l - (size_t)(sp + 1 - s)))
                return bs_err_set(err, BS_EFORMAT, "%s: line %zu is not \"a b\"", where, line);
            if ((rc = bs_tok_load_add_merge(m, s, (size_t)(sp - s), sp + 1,
                                            l - (size_t)(sp + 1 - s), rank, where, err)))
                return rc;
            rank++;
        }
        i = e + 1;
    }
    if ((rc = bs_tok_bpe_finish(m))) return rc;
    pretok *p = calloc(1, sizeof *p);
    decoder *d = calloc(1, sizeof *d);
    tok->pre = p;
    tok->dec = d;
    if (!p || !d) return BS_ENOMEM;
    p->type = PRE_BYTELEVEL;
    p->add_prefix_space = cfg_bool(cfg, "add_prefix_space", 0);
    p->use_regex = 1;
    p->trim_offsets = 1;
    d->type = DEC_BYTELEVEL;
    static const char *const sp[] = {"<s>", "<pad>", "</s>", "<unk>"};
    for (int q = 0; q < 4; q++)
        if ((rc = add_special(tok, sp[q], 0))) return rc;
    if ((rc = add_special(tok, "<mask>", 1))) return rc;
    postproc *pp = calloc(1, sizeof *pp);
    if (!pp) return BS_ENOMEM;
    tok->post = pp;
    if (bs_tok_vmap_get(&m->vocab, "<s>", 3) >= 0 && bs_tok_vmap_get(&m->vocab, "</s>", 4) >= 0) {
        pp->type = POST_ROBERTA;
        pp->cls = strdup("<s>");
        pp->sep = strdup("</s>");
        if (!pp->cls || !pp->sep) return BS_ENOMEM;
        pp->cls_id = bs_tok_vmap_get(&m->vocab, "<s>", 3);
        pp->sep_id = bs_tok_vmap_get(&m->vocab, "</s>", 4);
    } else {
        pp->type = POST_BYTELEVEL;
    }
    pp->trim_offsets = 1;
    pp->add_prefix_space = p->add_prefix_space;
    return 0;
}

int bs_tok_load_legacy(const char *dir, bs_tokenizer *tok, bs_err *err)
{
    json_t *cfg = load_json_file(dir, "tokenizer_config.json");
    size_t len;
    int rc;
    char *text = slurp(dir, "vocab.txt", &len);
    if (text) {
        rc = legacy_wordpiece(dir, text, len, cfg, tok, err);
        free(text);
    } else {
        json_t *vocab = load_json_file(dir, "vocab.json");
        char *merges = slurp(dir, "merges.txt", &len);
        if (vocab && merges)
            rc = legacy_bpe(dir, vocab, merges, len, cfg, tok, err);
        else
            rc = bs_err_set(err, BS_ENOTFOUND,
                            "%s: no tokenizer.json, vocab.txt or vocab.json + merges.txt", dir);
        json_decref(vocab);
        free(merges);
    }
    json_decref(cfg);
    if (rc && err && !err->msg[0]) bs_err_set(err, rc, "%s: %s", dir, bs_strerror(rc));
    return rc;
}

int bs_tok_load_configs(const char *dir, bs_tokenizer *tok, bs_err *err)
{
    static const char *const keys[BS_SPECIAL_COUNT] = {
        [BS_SPECIAL_CLS] = "cls_token", [BS_SPECIAL_SEP] = "sep_token",
        [BS_SPECIAL_PAD] = "pad_token", [BS_SPECIAL_MASK] = "mask_token",
        [BS_SPECIAL_UNK] = "unk_token", [BS_SPECIAL_BOS] = "bos_token",
        [BS_SPECIAL_EOS] = "eos_token"};
    json_t *files[2] = {load_json_file(dir, "special_tokens_map.json"),
                        load_json_file(dir, "tokenizer_config.json")};
    for (int f = 0; f < 2; f++) {
        if (!files[f]) continue;
        for (int k = 0; k < BS_SPECIAL_COUNT; k++) {
            const char *s = tok_string(json_object_get(files[f], keys[k]));
            if (!s) continue;
            int32_t id = bs_tokenizer_token_to_id(tok, s, strlen(s));
            if (id >= 0) tok->special_ids[k] = id;
        }
    }
    json_t *cfg = files[1];
    if (cfg) {
        json_t *ml = json_object_get(cfg, "model_max_length");
        if (json_is_number(ml)) {
            double v = json_number_value(ml);
            tok->model_max_length = v > 0 && v < 1e12 ? (size_t)v : 0;
        }
        tok->clean_up_spaces = cfg_bool(cfg, "clean_up_tokenization_spaces", 1);
    }
    json_decref(files[0]);
    json_decref(files[1]);
    (void)err;
    return 0;
}
