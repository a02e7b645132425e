/* `bertstudio accuracy`: what a reduced precision does to a model's answers.
 * Loads the folder twice, in f32 and in the precision asked for, runs the
 * same inputs through both (random token sequences, or the lines of a file
 * through the model's tokenizer), and prints one JSON line: the
 * cosine of each sequence's mean-pooled embedding (what the embeddings task
 * returns) and of each token's hidden state against f32, and, when the model
 * has a classification head, how many argmaxes stayed the same. With
 * --min-cosine / --min-argmax it is a gate: exit 1 when a figure falls short,
 * so a user can check a model before serving it in int8. */
#include "bertstudio/ctx.h"
#include "bertstudio/model.h"
#include "bertstudio/tokenizer.h"
#include "cli/cli.h"
#include "util/file.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: bertstudio accuracy --model DIR --precision P [--texts FILE]\n"
                 "                           [--inputs N] [--lengths MIN:MAX] [--batch B]\n"
                 "                           [--threads T] [--seed S] [--min-cosine C]\n"
                 "                           [--min-argmax F]\n\n"
                 "Runs the same inputs through the model in f32 and in precision P and prints\n"
                 "one JSON line comparing the two.\n\n"
                 "  --model DIR      model folder (config.json, model.safetensors)\n"
                 "  --precision P    fp16, bf16, int8 (or f32, which must agree exactly)\n"
                 "  --texts FILE     the inputs: one text a line (UTF-8, empty lines skipped,\n"
                 "                   at most 64 MB), through the folder's tokenizer and cut\n"
                 "                   to the model's longest; without it, random token ids\n"
                 "  --inputs N       inputs (default 1000, or every line of --texts; at most\n"
                 "                   2^20)\n"
                 "  --lengths A:B    random inputs' tokens, drawn from A..B (default 8:128,\n"
                 "                   capped at the model's longest)\n"
                 "  --batch B        sequences per forward pass (default 32)\n"
                 "  --threads T      compute threads (default: all cores)\n"
                 "  --seed S         the random inputs' seed (default 1)\n"
                 "  --min-cosine C   exit 1 when an embedding's cosine is below C\n"
                 "  --min-argmax F   exit 1 when fewer than F (0..1) of the classification\n"
                 "                   head's argmaxes (QA: answer spans) are unchanged\n\n"
                 "Output: kernels (the path in use), embedding_cosine (min, mean over inputs),\n"
                 "token_cosine_min, max_abs_diff (hidden states) and, for a sequence or token\n"
                 "classification head, argmax {unchanged, of, margin_median,\n"
                 "flipped_margin_max}: f32's gaps between the two highest logits; for a\n"
                 "question-answering head the same as answer_span (start and end kept).\n");
}

/* The lines of a --texts file, in place in its buffer. */
struct texts {
    char *buf;
    char **line;
    size_t *len, *no; /* bytes, and line number in the file (from 1) */
    size_t n;
};

#define TEXTS_MAX_BYTES ((size_t)64 << 20)

static int texts_read(const char *path, struct texts *t)
{
    size_t n = 0;
    bs_err err = {0};
    if (bs_file_read(path, TEXTS_MAX_BYTES, &t->buf, &n, &err)) return bs_cli_fail(&err);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) cap += t->buf[i] == '\n';
    t->line = malloc(cap * sizeof *t->line);
    t->len = malloc(cap * sizeof *t->len);
    t->no = malloc(cap * sizeof *t->no);
    if (!t->line || !t->len || !t->no) {
        fprintf(stderr, "bertstudio: accuracy: out of memory\n");
        return 1;
    }
    size_t no = 0;
    for (char *p = t->buf, *end = t->buf + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        size_t l = (size_t)(e - p);
        if (l && p[l - 1] == '\r') l--;
        no++;
        if (l) t->line[t->n] = p, t->len[t->n] = l, t->no[t->n++] = no;
        p = e + 1;
    }
    if (!t->n) return bs_cli_usage_error("accuracy: --texts %s has no text", path);
    return 0;
}

static void texts_free(struct texts *t)
{
    free(t->buf);
    free(t->line);
    free(t->len);
    free(t->no);
}

/* Fills seqs[0..n) from ids/types (room for n sequences of at most max
 * tokens): lines first .. first + n of the file, tokenized, or random ids. */
static int fill_batch(const struct texts *tx, const bs_tokenizer *tok, size_t first, int n, int max,
                      int lo, int vocab, uint32_t *s, int32_t *ids, int32_t *types, bs_seq *seqs)
{
    /* Random ids from 1000 up skip BERT's special and unused tokens; tiny
     * vocabularies skip only the first few (the specials). */
    int base = vocab > 2000 ? 1000 : vocab > 8 ? 5 : 0;
    bs_encode_opts o;
    bs_encode_opts_default(&o);
    o.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
    o.truncation.max_length = (size_t)max;
    for (int i = 0, off = 0; i < n; i++, off += max) {
        int len;
        if (tok) {
            bs_encoding *e = NULL;
            bs_err err = {0};
            if (bs_tokenizer_encode(tok, tx->line[first + i], tx->len[first + i], NULL, 0, &o, &e,
                                    &err)) {
                fprintf(stderr, "bertstudio: accuracy: --texts line %zu: %s\n", tx->no[first + i],
                        err.msg);
                return 1;
            }
            len = (int)e->len;
            memcpy(ids + off, e->ids, (size_t)len * sizeof *ids);
            memcpy(types + off, e->type_ids, (size_t)len * sizeof *types);
            bs_encoding_free(e);
            if (len == 0) ids[off] = 0, types[off] = 0, len = 1; /* a tokenizer without specials */
        } else {
            len = lo + (int)(bs_cli_lcg(s) % (uint32_t)(max - lo + 1));
            for (int j = 0; j < len; j++) {
                ids[off + j] = base + (int32_t)(bs_cli_lcg(s) % (uint32_t)(vocab - base));
                types[off + j] = 0;
            }
        }
        seqs[i] = (bs_seq){ids + off, types + off, len};
    }
    return 0;
}

/* The cosine of two vectors from their dot products (two zero vectors agree). */
static double cosine(double ab, double aa, double bb)
{
    return aa == 0 && bb == 0 ? 1.0 : ab / (sqrt(aa * bb) + 1e-300);
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The running comparison of the two models' answers. margins: each
 * classified row's (or answer span's) f32 gap between its two highest
 * logits (room for `of`). */
struct tally {
    double emb_min, emb_sum, tok_min, max_diff, flipped_margin_max, *margins;
    long seqs, same, of;
};

/* The argmax of x[0..n) and its gap to the runner-up (infinite for n = 1). */
static double top_gap(const float *x, int n, int *arg)
{
    int ia = argmax(x, n);
    double second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != ia && x[i] > second) second = x[i];
    *arg = ia;
    return n > 1 ? (double)x[ia] - second : INFINITY;
}

/* One classified row (or answer span): kept or not, and how near a tie f32 was. */
static void tally_row(int kept, double margin, struct tally *t)
{
    if (kept)
        t->same++;
    else if (margin > t->flipped_margin_max)
        t->flipped_margin_max = margin;
    t->margins[t->of++] = margin;
}

static void classify_row(const float *a, const float *b, int L, struct tally *t)
{
    int ia;
    double margin = top_gap(a, L, &ia);
    tally_row(argmax(b, L) == ia, margin, t);
}

/* QA: the answer span (argmax of the start and of the end logits over the
 * sequence's tokens) kept or not; its margin is the nearer tie of the two. */
static void span_row(const bs_model_outputs *a, const bs_model_outputs *b, long row, int len,
                     struct tally *t)
{
    int s, e;
    double gs = top_gap(a->start_logits + row, len, &s), ge = top_gap(a->end_logits + row, len, &e);
    int kept = argmax(b->start_logits + row, len) == s && argmax(b->end_logits + row, len) == e;
    tally_row(kept, gs < ge ? gs : ge, t);
}

/* Compares one batch's outputs, sequence by sequence (rows of both are
 * packed in the batch's order). pool_a/pool_b: H doubles of scratch each,
 * the sums of a sequence's hidden states (their cosine is the mean-pooled
 * embeddings': the 1/len scale cancels). */
static void compare_batch(const bs_model *m, const bs_batch *bt, const bs_model_outputs *a,
                          const bs_model_outputs *b, double *pool_a, double *pool_b,
                          struct tally *t)
{
    int H = bs_model_hidden_size(m);
    bs_head_kind head = bs_model_head(m);
    long row = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        int len = bt->seqs[s].len;
        memset(pool_a, 0, (size_t)H * sizeof *pool_a);
        memset(pool_b, 0, (size_t)H * sizeof *pool_b);
        for (int i = 0; i < len; i++, row++) {
            const float *ha = a->last_hidden_state + (size_t)row * H,
                        *hb = b->last_hidden_state + (size_t)row * H;
            double ab = 0, aa = 0, bb = 0;
            for (int j = 0; j < H; j++) {
                double x = ha[j], y = hb[j];
                ab += x * y, aa += x * x, bb += y * y;
                pool_a[j] += x;
                pool_b[j] += y;
                if (fabs(x - y) > t->max_diff) t->max_diff = fabs(x - y);
            }
            double c = cosine(ab, aa, bb);
            if (c < t->tok_min) t->tok_min = c;
            if (head == BS_HEAD_TOKEN_CLS)
                classify_row(a->logits + (size_t)row * a->n_labels,
                             b->logits + (size_t)row * a->n_labels, a->n_labels, t);
        }
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < H; j++)
            ab += pool_a[j] * pool_b[j], aa += pool_a[j] * pool_a[j], bb += pool_b[j] * pool_b[j];
        double c = cosine(ab, aa, bb);
        if (c < t->emb_min) t->emb_min = c;
        t->emb_sum += c;
        t->seqs++;
        if (head == BS_HEAD_SEQ_CLS)
            classify_row(a->logits + (size_t)s * a->n_labels, b->logits + (size_t)s * a->n_labels,
                         a->n_labels, t);
        if (head == BS_HEAD_QA) span_row(a, b, row - len, len, t);
    }
}

static int load(const char *dir, int threads, bs_precision p, bs_model **m)
{
    bs_model_opts opts;
    bs_model_opts_default(&opts);
    if (threads > 0) opts.n_threads = threads;
    opts.precision = p;
    bs_err err = {0};
    if (bs_model_load(dir, &opts, m, &err) != 0) return bs_cli_fail(&err);
    return 0;
}

/* The JSON line, and the gate's verdict: 0, or 1 when a figure falls short. */
static int report(const char *dir, const bs_model *low, const char *texts, int lo, int hi,
                  struct tally *t, double min_cos, double min_arg)
{
    /* classification heads keep argmaxes, QA heads answer spans */
    const char *kept = bs_model_head(low) == BS_HEAD_QA ? "answer_span" : "argmax";
    bs_kernels_info k;
    bs_kernels_get(&k, NULL);
    /* paths that are not UTF-8 print as null */
    json_t *o = json_pack("{s:o?, s:s, s:s, s:s, s:I}", "model", json_string(dir), "precision",
                          bs_precision_name(bs_model_precision(low)), "reference", "f32", "kernels",
                          k.path, "inputs", (json_int_t)t->seqs);
    if (texts) {
        json_t *tj = json_string(texts); /* NULL when not UTF-8: null, as the model's path */
        json_object_set_new(o, "texts", tj ? tj : json_null());
    } else {
        json_object_set_new(o, "lengths", json_sprintf("%d:%d", lo, hi));
    }
    json_object_set_new(
        o, "embedding_cosine",
        json_pack("{s:f, s:f}", "min", t->emb_min, "mean", t->emb_sum / (double)t->seqs));
    json_object_set_new(o, "token_cosine_min", json_real(t->tok_min));
    json_object_set_new(o, "max_abs_diff", json_real(t->max_diff));
    if (t->of) {
        /* how near a tie the flipped rows were, against a typical row */
        qsort(t->margins, (size_t)t->of, sizeof *t->margins, bs_cli_cmp_double);
        json_t *a = json_pack("{s:I, s:I, s:f}", "unchanged", (json_int_t)t->same, "of",
                              (json_int_t)t->of, "margin_median", t->margins[t->of / 2]);
        if (t->same < t->of)
            json_object_set_new(a, "flipped_margin_max", json_real(t->flipped_margin_max));
        json_object_set_new(o, kept, a);
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!line) {
        fprintf(stderr, "bertstudio: accuracy: out of memory\n");
        return 1;
    }
    printf("%s\n", line);
    free(line);
    int rc = 0;
    if (min_cos > -1 && t->emb_min < min_cos) {
        fprintf(stderr, "bertstudio: accuracy: embedding cosine %.6f is below --min-cosine %g\n",
                t->emb_min, min_cos);
        rc = 1;
    }
    if (min_arg >= 0 && t->of && (double)t->same < min_arg * (double)t->of) {
        fprintf(stderr, "bertstudio: accuracy: %s unchanged on %ld of %ld, below --min-argmax %g\n",
                kept, t->same, t->of, min_arg);
        rc = 1;
    }
    return rc;
}

int bs_cli_accuracy(int argc, char **argv)
{
    const char *dir = NULL, *texts_path = NULL;
    int inputs = 0, batch = 32, threads = 0, seed = 1, lo = 8, hi = 128, precision = -1;
    double min_cos = -1, min_arg = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) return bs_cli_usage_error("accuracy: %s needs a value", a);
        i++;
        int *num = !strcmp(a, "--inputs")    ? &inputs
                   : !strcmp(a, "--batch")   ? &batch
                   : !strcmp(a, "--threads") ? &threads
                   : !strcmp(a, "--seed")    ? &seed
                                             : NULL;
        double *frac = !strcmp(a, "--min-cosine")   ? &min_cos
                       : !strcmp(a, "--min-argmax") ? &min_arg
                                                    : NULL;
        if (num) {
            int low = num == &threads || num == &seed ? 0 : 1;
            if ((*num = (int)bs_cli_parse_count(v, low, 1 << 20)) < 0)
                return bs_cli_usage_error("accuracy: %s %s is not a number from %d to %d", a, v,
                                          low, 1 << 20);
        } else if (frac) {
            char *end = NULL;
            *frac = strtod(v, &end);
            if (end == v || *end || !(*frac >= (frac == &min_cos ? -1.0 : 0.0)) || *frac > 1.0)
                return bs_cli_usage_error("accuracy: %s %s is not a number from %s to 1", a, v,
                                          frac == &min_cos ? "-1" : "0");
        } else if (!strcmp(a, "--model")) {
            dir = v;
        } else if (!strcmp(a, "--texts")) {
            texts_path = v;
        } else if (!strcmp(a, "--precision")) {
            if ((precision = bs_precision_parse(v)) < 0)
                return bs_cli_usage_error("accuracy: --precision %s is not f32, fp16, bf16 or int8",
                                          v);
        } else if (!strcmp(a, "--lengths")) {
            char tail;
            if (sscanf(v, "%d:%d%c", &lo, &hi, &tail) != 2 || lo < 1 || hi < lo || hi > 1 << 20)
                return bs_cli_usage_error("accuracy: --lengths wants MIN:MAX with 1 <= MIN <= MAX");
        } else {
            return bs_cli_usage_error("accuracy: unknown option %s", a);
        }
    }
    if (!dir || precision < 0) {
        usage(stderr);
        return 2;
    }
    struct texts tx = {0};
    bs_tokenizer *tok = NULL;
    bs_model *ref = NULL, *low = NULL;
    int rc = 0;
    if (texts_path) {
        bs_err err = {0};
        if ((rc = texts_read(texts_path, &tx)) != 0) goto out;
        if (bs_tokenizer_load(dir, &tok, &err)) {
            rc = bs_cli_fail(&err);
            goto out;
        }
        if (inputs == 0 || (size_t)inputs > tx.n) inputs = (int)tx.n;
    } else if (inputs == 0) {
        inputs = 1000;
    }
    if ((rc = load(dir, threads, BS_PRECISION_F32, &ref)) != 0 ||
        (rc = load(dir, threads, (bs_precision)precision, &low)) != 0)
        goto out;
    bs_head_kind head = bs_model_head(ref);
    int judged = head == BS_HEAD_SEQ_CLS || head == BS_HEAD_TOKEN_CLS || head == BS_HEAD_QA;
    if (min_arg >= 0 && !judged) {
        rc = bs_cli_usage_error(
            "accuracy: --min-argmax: %s has no classification or question-answering head", dir);
        goto out;
    }
    int cap = bs_model_max_seq_len(ref);
    if (hi > cap) hi = cap;
    if (lo > hi) lo = hi;
    int max = tok ? cap : hi; /* tokens per sequence at most */
    int H = bs_model_hidden_size(ref);
    int32_t *ids = malloc((size_t)batch * max * sizeof *ids);
    int32_t *types = malloc((size_t)batch * max * sizeof *types);
    bs_seq *seqs = calloc((size_t)batch, sizeof *seqs);
    double *pools = malloc((size_t)2 * H * sizeof *pools);
    bs_model_outputs oa, ob;
    bs_model_outputs_init(&oa);
    bs_model_outputs_init(&ob);
    oa.want = ob.want = BS_OUT_HIDDEN;
    if (judged) oa.want = ob.want = BS_OUT_HIDDEN | BS_OUT_LOGITS;
    struct tally t = {.emb_min = 1, .tok_min = 1};
    size_t rows = head == BS_HEAD_SEQ_CLS || head == BS_HEAD_QA ? (size_t)inputs
                  : head == BS_HEAD_TOKEN_CLS                   ? (size_t)inputs * max
                                                                : 1;
    t.margins = malloc(rows * sizeof *t.margins);
    if (!ids || !types || !seqs || !pools || !t.margins) {
        fprintf(stderr, "bertstudio: accuracy: out of memory\n");
        rc = 1;
    }
    uint32_t s = (uint32_t)seed;
    bs_err err = {0};
    for (int done = 0; rc == 0 && done < inputs; done += batch) {
        int n = inputs - done < batch ? inputs - done : batch;
        rc = fill_batch(&tx, tok, (size_t)done, n, max, lo, bs_model_vocab_size(ref), &s, ids,
                        types, seqs);
        if (rc) break;
        bs_batch bt = {seqs, n};
        if (bs_model_forward(ref, &bt, &oa, &err) != 0 ||
            bs_model_forward(low, &bt, &ob, &err) != 0) {
            rc = bs_cli_fail(&err);
            break;
        }
        compare_batch(ref, &bt, &oa, &ob, pools, pools + H, &t);
    }
    if (rc == 0) rc = report(dir, low, texts_path, lo, hi, &t, min_cos, min_arg);
    bs_model_outputs_release(&oa);
    bs_model_outputs_release(&ob);
    free(t.margins);
    free(pools);
    free(seqs);
    free(types);
    free(ids);
out:
    bs_model_free(low);
    bs_model_free(ref);
    bs_tokenizer_free(tok);
    texts_free(&tx);
    return rc;
}
