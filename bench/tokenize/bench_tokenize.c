/* Tokenizer throughput: encodes every line of a text file (special tokens
 * added, no truncation) with BERT Studio's tokenizer on T threads sharing
 * one tokenizer, and prints {"tokens", "seconds"} of the best of 3 runs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bertstudio/tokenizer.h"

typedef struct work {
    const bs_tokenizer *tok;
    char **lines;
    size_t n, first, step, tokens;
} work;

static void *run(void *arg)
{
    work *w = arg;
    w->tokens = 0;
    for (size_t i = w->first; i < w->n; i += w->step) {
        bs_encoding *e;
        bs_err err;
        if (bs_tokenizer_encode(w->tok, w->lines[i], strlen(w->lines[i]), NULL, 0, NULL, &e,
                                &err)) {
            fprintf(stderr, "bench_tokenize: %s\n", err.msg);
            exit(1);
        }
        w->tokens += e->len;
        bs_encoding_free(e);
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenize MODEL_DIR TEXT_FILE [THREADS]\n");
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (threads < 1 || threads > 64) threads = 1;
    bs_tokenizer *tok;
    bs_err err;
    if (bs_tokenizer_load(argv[1], &tok, &err)) {
        fprintf(stderr, "bench_tokenize: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) return 1;
    fclose(f);
    text[len] = 0;
    size_t n = 0, cap = 1024;
    char **lines = malloc(cap * sizeof *lines);
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = l;
    }
    double best = 1e9;
    size_t tokens = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        work w[64];
        double t0 = now();
        for (int k = 0; k < threads; k++) {
            w[k] = (work){tok, lines, n, (size_t)k, (size_t)threads, 0};
            pthread_create(&th[k], NULL, run, &w[k]);
        }
        tokens = 0;
        for (int k = 0; k < threads; k++) {
            pthread_join(th[k], NULL);
            tokens += w[k].tokens;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"tokens\": %zu, \"seconds\": %.4f}\n", tokens, best);
    free(lines);
    free(text);
    bs_tokenizer_free(tok);
    return 0;
}
