/* `bertstudio accuracy`: what a reduced precision does to a model's answers.
 * Loads the folder twice, in f32 and in the precision asked for, runs the
 * same random token sequences through both, and prints one JSON line: the
 * cosine of each sequence's mean-pooled embedding (what the embeddings task
 * returns) and of each token's hidden state against f32, and, when the model
 * has a classification head, how many argmaxes stayed the same. With
 * --min-cosine / --min-argmax it is a gate: exit 1 when a figure falls short,
 * so a user can check a model before serving it in int8. */
#include "bertstudio/model.h"
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: bertstudio accuracy --model DIR --precision P [--inputs N]\n"
                 "                           [--lengths MIN:MAX] [--batch B] [--threads T]\n"
                 "                           [--seed S] [--min-cosine C] [--min-argmax F]\n\n"
                 "Runs N random token sequences through the model in f32 and in precision P\n"
                 "and prints one JSON line comparing the two.\n\n"
                 "  --model DIR      model folder (config.json, model.safetensors)\n"
                 "  --precision P    fp16, bf16, int8 (or f32, which must agree exactly)\n"
                 "  --inputs N       sequences (default 1000; at most 2^20)\n"
                 "  --lengths A:B    tokens per sequence, drawn from A..B (default 8:128,\n"
                 "                   capped at the model's longest)\n"
                 "  --batch B        sequences per forward pass (default 32)\n"
                 "  --threads T      compute threads (default: all cores)\n"
                 "  --seed S         the inputs' random seed (default 1)\n"
                 "  --min-cosine C   exit 1 when an embedding's cosine is below C\n"
                 "  --min-argmax F   exit 1 when fewer than F (0..1) of the classification\n"
                 "                   head's argmaxes are unchanged\n\n"
                 "Output: embedding_cosine (min, mean over sequences), token_cosine_min,\n"
                 "max_abs_diff (hidden states) and, for models with a sequence or token\n"
                 "classification head, argmax {unchanged, of}.\n");
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
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
 * classified row's f32 gap between its two highest logits (room for `of`). */
struct tally {
    double emb_min, emb_sum, tok_min, max_diff, flipped_margin_max, *margins;
    long seqs, same, of;
};

/* One classified row: same argmax or not, and how near a tie f32 was. */
static void classify_row(const float *a, const float *b, int L, struct tally *t)
{
    int ia = argmax(a, L);
    double second = -INFINITY;
    for (int i = 0; i < L; i++)
        if (i != ia && a[i] > second) second = a[i];
    double margin = L > 1 ? (double)a[ia] - second : INFINITY;
    if (argmax(b, L) == ia)
        t->same++;
    else if (margin > t->flipped_margin_max)
        t->flipped_margin_max = margin;
    t->margins[t->of++] = margin;
}

/* Compares one batch's outputs, sequence by sequence (rows of both are
 * packed in the batch's order). pool_a/pool_b: H floats of scratch each. */
static void compare_batch(const bs_model *m, const bs_batch *bt, const bs_model_outputs *a,
                          const bs_model_outputs *b, double *pool_a, double *pool_b, float *fa,
                          float *fb, struct tally *t)
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
            double c = cosine(ha, hb, H);
            if (c < t->tok_min) t->tok_min = c;
            for (int j = 0; j < H; j++) {
                pool_a[j] += ha[j];
                pool_b[j] += hb[j];
                double d = fabs((double)ha[j] - hb[j]);
                if (d > t->max_diff) t->max_diff = d;
            }
            if (head == BS_HEAD_TOKEN_CLS)
                classify_row(a->logits + (size_t)row * a->n_labels,
                             b->logits + (size_t)row * a->n_labels, a->n_labels, t);
        }
        for (int j = 0; j < H; j++)
            fa[j] = (float)(pool_a[j] / len), fb[j] = (float)(pool_b[j] / len);
        double c = cosine(fa, fb, H);
        if (c < t->emb_min) t->emb_min = c;
        t->emb_sum += c;
        t->seqs++;
        if (head == BS_HEAD_SEQ_CLS)
            classify_row(a->logits + (size_t)s * a->n_labels, b->logits + (size_t)s * a->n_labels,
                         a->n_labels, t);
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

int bs_cli_accuracy(int argc, char **argv)
{
    const char *dir = NULL;
    int inputs = 1000, batch = 32, threads = 0, seed = 1, lo = 8, hi = 128, precision = -1;
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
    bs_model *ref = NULL, *low = NULL;
    int rc = load(dir, threads, BS_PRECISION_F32, &ref);
    if (rc) return rc;
    if ((rc = load(dir, threads, (bs_precision)precision, &low)) != 0) {
        bs_model_free(ref);
        return rc;
    }
    bs_head_kind head = bs_model_head(ref);
    if (min_arg >= 0 && head != BS_HEAD_SEQ_CLS && head != BS_HEAD_TOKEN_CLS) {
        bs_model_free(low);
        bs_model_free(ref);
        return bs_cli_usage_error("accuracy: --min-argmax: %s has no sequence or token "
                                  "classification head",
                                  dir);
    }
    int cap = bs_model_max_seq_len(ref);
    if (hi > cap) hi = cap;
    if (lo > hi) lo = hi;
    int H = bs_model_hidden_size(ref), vocab = bs_model_vocab_size(ref);
    int32_t *ids = malloc((size_t)batch * hi * sizeof *ids);
    bs_seq *seqs = calloc((size_t)batch, sizeof *seqs);
    double *pools = malloc((size_t)2 * H * sizeof *pools);
    float *means = malloc((size_t)2 * H * sizeof *means);
    bs_model_outputs oa, ob;
    bs_model_outputs_init(&oa);
    bs_model_outputs_init(&ob);
    oa.want = ob.want = BS_OUT_HIDDEN;
    if (head == BS_HEAD_SEQ_CLS || head == BS_HEAD_TOKEN_CLS)
        oa.want = ob.want = BS_OUT_HIDDEN | BS_OUT_LOGITS;
    struct tally t = {.emb_min = 1, .tok_min = 1};
    size_t rows = head == BS_HEAD_SEQ_CLS     ? (size_t)inputs
                  : head == BS_HEAD_TOKEN_CLS ? (size_t)inputs * hi
                                              : 1;
    t.margins = malloc(rows * sizeof *t.margins);
    bs_err err = {0};
    if (!ids || !seqs || !pools || !means || !t.margins) {
        fprintf(stderr, "bertstudio: accuracy: out of memory\n");
        rc = 1;
    }
    /* Ids from 1000 up skip BERT's special and unused tokens; tiny
     * vocabularies skip only the first few (the specials). */
    int base = vocab > 2000 ? 1000 : vocab > 8 ? 5 : 0;
    uint32_t s = (uint32_t)seed;
    for (int done = 0; rc == 0 && done < inputs; done += batch) {
        int n = inputs - done < batch ? inputs - done : batch, off = 0;
        for (int i = 0; i < n; i++) {
            int len = lo + (int)(bs_cli_lcg(&s) % (uint32_t)(hi - lo + 1));
            seqs[i] = (bs_seq){ids + off, NULL, len};
            for (int j = 0; j < len; j++)
                ids[off + j] = base + (int32_t)(bs_cli_lcg(&s) % (uint32_t)(vocab - base));
            off += len;
        }
        bs_batch bt = {seqs, n};
        if (bs_model_forward(ref, &bt, &oa, &err) != 0 ||
            bs_model_forward(low, &bt, &ob, &err) != 0) {
            rc = bs_cli_fail(&err);
            break;
        }
        compare_batch(ref, &bt, &oa, &ob, pools, pools + H, means, means + H, &t);
    }
    if (rc == 0) {
        bs_kernels_info k;
        bs_kernels_get(&k, NULL);
        printf("{\"model\":\"%s\",\"precision\":\"%s\",\"reference\":\"f32\",\"kernels\":\"%s\","
               "\"inputs\":%ld,\"lengths\":\"%d:%d\",\"embedding_cosine\":{\"min\":%.9f,\"mean\":"
               "%.9f},\"token_cosine_min\":%.9f,\"max_abs_diff\":%.6g",
               dir, bs_precision_name(bs_model_precision(low)), k.path, t.seqs, lo, hi, t.emb_min,
               t.emb_sum / (double)t.seqs, t.tok_min, t.max_diff);
        if (t.of) {
            /* how near a tie the flipped rows were, against a typical row */
            qsort(t.margins, (size_t)t.of, sizeof *t.margins, bs_cli_cmp_double);
            printf(",\"argmax\":{\"unchanged\":%ld,\"of\":%ld,\"margin_median\":%.6g", t.same, t.of,
                   t.margins[t.of / 2]);
            if (t.same < t.of) printf(",\"flipped_margin_max\":%.6g", t.flipped_margin_max);
            printf("}");
        }
        printf("}\n");
        if (min_cos > -1 && t.emb_min < min_cos) {
            fprintf(stderr,
                    "bertstudio: accuracy: embedding cosine %.6f is below --min-cosine %g\n",
                    t.emb_min, min_cos);
            rc = 1;
        }
        if (min_arg >= 0 && t.of && (double)t.same < min_arg * (double)t.of) {
            fprintf(stderr,
                    "bertstudio: accuracy: argmax unchanged on %ld of %ld, below --min-argmax %g\n",
                    t.same, t.of, min_arg);
            rc = 1;
        }
    }
    bs_model_outputs_release(&oa);
    bs_model_outputs_release(&ob);
    free(t.margins);
    free(means);
    free(pools);
    free(seqs);
    free(ids);
    bs_model_free(low);
    bs_model_free(ref);
    return rc;
}
