/* Text generation for encoder-decoder models: greedy search and
 * transformers' vectorised beam search (generation/utils.py _beam_search),
 * with the logits processors summarization uses. The model is reached only
 * through the step/reorder callbacks, so the search is testable alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

/* no_repeat_ngram, min_length, forced BOS, forced EOS (transformers' order)
 * on one row's scores; seq holds the row's cur_len decoder tokens. */
static void process(const bs_gen_params *p, const int32_t *seq, int32_t cur_len, double *sc)
{
    int32_t n = p->no_repeat_ngram_size, V = p->vocab_size;
    if (n > 0 && cur_len + 1 >= n) {
        const int32_t *prefix = seq + cur_len - (n - 1);
        for (int32_t i = 0; i + n <= cur_len; i++) {
            if (memcmp(seq + i, prefix, (size_t)(n - 1) * sizeof *seq)) continue;
            int32_t t = seq[i + n - 1];
            if (t >= 0 && t < V) sc[t] = -INFINITY;
        }
    }
    if (cur_len < p->min_length && p->eos_token_id >= 0 && p->eos_token_id < V)
        sc[p->eos_token_id] = -INFINITY;
    int32_t forced = -1;
    if (cur_len == 1 && p->forced_bos_token_id >= 0) forced = p->forced_bos_token_id;
    if (cur_len == p->max_length - 1 && p->forced_eos_token_id >= 0)
        forced = p->forced_eos_token_id;
    if (forced >= 0 && forced < V) {
        for (int32_t v = 0; v < V; v++) sc[v] = -INFINITY;
        sc[forced] = 0;
    }
}

static int nomem(bs_err *err)
{
    return bs_err_set(err, BS_ENOMEM, "out of memory during generation");
}

static int greedy(const bs_gen_params *p, bs_gen_step_fn step, void *user, int32_t *seq,
                  size_t *n_out, bs_err *err)
{
    size_t V = (size_t)p->vocab_size;
    float *logits = malloc(V * sizeof *logits);
    double *sc = malloc(V * sizeof *sc);
    int rc = 0;
    if (!logits || !sc) {
        rc = nomem(err);
        goto done;
    }
    int32_t cur_len = 1;
    seq[0] = p->decoder_start_token_id;
    while (cur_len < p->max_length) {
        rc = step(user, &seq[cur_len - 1], 1, logits, err);
        if (rc) goto done;
        for (size_t v = 0; v < V; v++) sc[v] = logits[v];
        process(p, seq, cur_len, sc);
        int32_t next = (int32_t)bs_pl_argmax(sc, V);
        seq[cur_len++] = next;
        if (next == p->eos_token_id) break;
    }
    *n_out = (size_t)cur_len;
done:
    free(logits);
    free(sc);
    return rc;
}

typedef struct cand {
    double score;
    int32_t beam, token;
    size_t flat;
} cand;

/* Keeps the K best (score, flat index) candidates in order, lower flat
 * index first on equal scores (scan order). */
static void topk_push(cand *top, size_t *n, size_t K, cand c)
{
    if (*n == K && !(c.score > top[K - 1].score)) return;
    size_t i = *n < K ? (*n)++ : K - 1;
    while (i > 0 && c.score > top[i - 1].score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

static int beam(const bs_gen_params *p, bs_gen_step_fn step, bs_gen_reorder_fn reorder, void *user,
                int32_t *out_seq, size_t *n_out, double *score_out, bs_err *err)
{
    size_t V = (size_t)p->vocab_size, nb = (size_t)p->num_beams, K = 2 * nb,
           L = (size_t)p->max_length;
    float *logits = malloc(nb * V * sizeof *logits);
    double *sc = malloc(V * sizeof *sc), *rscore = malloc(nb * sizeof *rscore);
    int32_t *run = calloc(nb * L, sizeof *run), *nrun = calloc(nb * L, sizeof *nrun);
    int32_t *fin = calloc(nb * L, sizeof *fin), *feed = malloc(nb * sizeof *feed);
    int32_t *src = malloc(nb * sizeof *src);
    double *fscore = malloc(nb * sizeof *fscore);
    size_t *flen = calloc(nb, sizeof *flen);
    cand *top = malloc(K * sizeof *top);
    int rc = 0;
    if (!logits || !sc || !rscore || !run || !nrun || !fin || !feed || !src || !fscore || !flen ||
        !top) {
        rc = nomem(err);
        goto done;
    }
    for (size_t b = 0; b < nb; b++) {
        run[b * L] = p->decoder_start_token_id;
        rscore[b] = b ? -1e9 : 0;
        feed[b] = p->decoder_start_token_id;
    }
    size_t n_fin = 0;
    int32_t cur_len = 1;
    for (;;) {
        rc = step(user, feed, (int32_t)nb, logits, err);
        if (rc) goto done;
        size_t n_top = 0;
        for (size_t b = 0; b < nb; b++) {
            bs_pl_log_softmax(logits + b * V, V, sc);
            process(p, run + b * L, cur_len, sc);
            for (size_t v = 0; v < V; v++)
                topk_push(top, &n_top, K,
                          (cand){sc[v] + rscore[b], (int32_t)b, (int32_t)v, b * V + v});
        }
        /* finished hypotheses: hits among the first num_beams ranks */
        int all_hit = 1;
        double lp_div = pow((double)cur_len, p->length_penalty);
        for (size_t k = 0; k < n_top; k++) {
            int hit = top[k].token == p->eos_token_id || cur_len + 1 >= p->max_length;
            if (!hit) all_hit = 0;
            if (!hit || k >= nb || !isfinite(top[k].score)) continue;
            double norm = top[k].score / lp_div;
            size_t pos = n_fin;
            while (pos > 0 && norm > fscore[pos - 1]) pos--;
            if (pos >= nb) continue;
            size_t last = n_fin < nb ? n_fin : nb - 1;
            for (size_t j = last; j > pos; j--) {
                fscore[j] = fscore[j - 1];
                flen[j] = flen[j - 1];
                memcpy(fin + j * L, fin + (j - 1) * L, L * sizeof *fin);
            }
            fscore[pos] = norm;
            flen[pos] = (size_t)cur_len + 1;
            memcpy(fin + pos * L, run + (size_t)top[k].beam * L, (size_t)cur_len * sizeof *fin);
            fin[pos * L + (size_t)cur_len] = top[k].token;
            if (n_fin < nb) n_fin++;
        }
        /* next running beams: the best num_beams candidates that did not hit */
        size_t nr = 0;
        for (size_t k = 0; k < n_top && nr < nb; k++) {
            int hit = top[k].token == p->eos_token_id || cur_len + 1 >= p->max_length;
            if (hit) continue;
            src[nr] = top[k].beam;
            memcpy(nrun + nr * L, run + (size_t)top[k].beam * L, (size_t)cur_len * sizeof *run);
            nrun[nr * L + (size_t)cur_len] = top[k].token;
            rscore[nr] = top[k].score;
            feed[nr] = top[k].token;
            nr++;
        }
        cur_len++;
        if (all_hit || nr < nb) break;
        if (n_fin == nb && p->early_stopping == BS_EARLY_STOP_TRUE) break;
        if (n_fin == nb) {
            double len = p->early_stopping == BS_EARLY_STOP_NEVER && p->length_penalty > 0
                             ? (double)(p->max_length - 1)
                             : (double)(cur_len - 1);
            if (rscore[0] / pow(len, p->length_penalty) <= fscore[nb - 1]) break;
        }
        int32_t *t = run;
        run = nrun;
        nrun = t;
        rc = reorder(user, src, (int32_t)nb, err);
        if (rc) goto done;
    }
    if (n_fin == 0) {
        rc = bs_err_set(err, BS_EINTERNAL, "beam search ended without a finished hypothesis");
        goto done;
    }
    memcpy(out_seq, fin, flen[0] * sizeof *fin);
    *n_out = flen[0];
    *score_out = fscore[0];
done:
    free(logits);
    free(sc);
    free(rscore);
    free(run);
    free(nrun);
    free(fin);
    free(feed);
    free(src);
    free(fscore);
    free(flen);
    free(top);
    return rc;
}

int bs_generate(const bs_gen_params *p, bs_gen_step_fn step, bs_gen_reorder_fn reorder, void *user,
                int32_t **ids_out, size_t *n_out, double *score_out, bs_err *err)
{
    *ids_out = NULL;
    *n_out = 0;
    *score_out = NAN;
    if (p->vocab_size < 1)
        return bs_err_set(err, BS_EINVAL, "generation: vocab_size %d must be >= 1", p->vocab_size);
    if (p->max_length < 2 || p->max_length > 1 << 16)
        return bs_err_set(err, BS_EINVAL, "generation: max_length %d must be between 2 and 65536",
                          p->max_length);
    if (p->num_beams < 1 || p->num_beams > 64)
        return bs_err_set(err, BS_EINVAL, "generation: num_beams %d must be between 1 and 64",
                          p->num_beams);
    if (p->num_beams > 1 && !reorder)
        return bs_err_set(err, BS_EINVAL, "generation: beam search needs a reorder callback");
    int32_t *seq = malloc((size_t)p->max_length * sizeof *seq);
    if (!seq) return nomem(err);
    int rc = p->num_beams == 1 ? greedy(p, step, user, seq, n_out, err)
                               : beam(p, step, reorder, user, seq, n_out, score_out, err);
    if (rc) {
        free(seq);
        *n_out = 0;
        return rc;
    }
    *ids_out = seq;
    return 0;
}
