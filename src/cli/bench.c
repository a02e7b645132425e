/* `bertstudio bench`: times the engine's forward pass on synthetic batches
 * and prints one JSON line (latency median/p90, sequences/s, tokens/s,
 * GFLOP/s, memory). The inputs come from a fixed LCG that bench/peer-ort.mjs
 * reproduces, so both engines see the same tokens. */
#include "bertstudio/model.h"
#include "cli/cli.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Milliseconds since this process started (kernel start time, 10 ms grain). */
static double since_process_start_ms(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long start = 0;
    /* field 22 (starttime); p points at the end of field 2 */
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
        if (++field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    double boot_ms = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    return boot_ms - (double)start * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) v = strtol(line + kl, NULL, 10);
    fclose(f);
    return v;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bertstudio bench --model DIR [--batch N] [--seq L | --mixed MIN:MAX]\n"
            "                        [--threads T] [--iters K] [--warmup W] [--precision P]\n\n"
            "Times the forward pass on synthetic inputs and prints one JSON line.\n\n"
            "  --model DIR      model folder (config.json, model.safetensors)\n"
            "  --batch N        sequences per forward pass (default 1)\n"
            "  --seq L          tokens per sequence (default 128)\n"
            "  --mixed MIN:MAX  lengths drawn from MIN..MAX instead of --seq\n"
            "  --threads T      compute threads (default: all cores)\n"
            "  --iters K        timed passes (default 20)\n"
            "  --warmup W       untimed passes first (default 3)\n"
            "  --precision P    dense-layer arithmetic: f32 (default, exact), fp16 (f16\n"
            "                   weights, half the memory, every CPU) or bf16 (about 2x\n"
            "                   faster with AVX512_BF16; ~1e-2 error; elsewhere bf16\n"
            "                   weights widened in the kernel) or int8 (dynamic\n"
            "                   quantization: int8 weights, u8 activations, int32 sums;\n"
            "                   ~1e-2 error; AVX2, AVX-VNNI and AVX512-VNNI kernels)\n"
            "\nBS_CPU=portable|avx2|avxvnni|avx512 in the environment forces a lower kernel\n"
            "path (avxvnni: avx2 with AVX-VNNI's int8); each model load logs the one in use.\n");
}

int bs_cli_bench(int argc, char **argv)
{
    const char *dir = NULL;
    int batch = 1, seq = 128, mn = 0, mx = 0, threads = 0, iters = 20, warmup = 3, precision = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) return bs_cli_usage_error("bench: %s needs a value", a);
        i++;
        int *num = !strcmp(a, "--batch")     ? &batch
                   : !strcmp(a, "--seq")     ? &seq
                   : !strcmp(a, "--threads") ? &threads
                   : !strcmp(a, "--iters")   ? &iters
                   : !strcmp(a, "--warmup")  ? &warmup
                                             : NULL;
        if (num) {
            /* --threads 0 and --warmup 0 are allowed: all cores, no warm-up */
            int lo = num == &threads || num == &warmup ? 0 : 1;
            if ((*num = (int)bs_cli_parse_count(v, lo, 1 << 20)) < 0)
                return bs_cli_usage_error("bench: %s %s is not a number from %d to %d", a, v, lo,
                                          1 << 20);
        } else if (!strcmp(a, "--model")) {
            dir = v;
        } else if (!strcmp(a, "--precision")) {
            if ((precision = bs_precision_parse(v)) < 0)
                return bs_cli_usage_error("bench: --precision %s is not f32, fp16, bf16 or int8",
                                          v);
        } else if (!strcmp(a, "--mixed")) {
            if (sscanf(v, "%d:%d", &mn, &mx) != 2 || mn < 1 || mx < mn)
                return bs_cli_usage_error("bench: --mixed wants MIN:MAX with 1 <= MIN <= MAX");
        } else {
            return bs_cli_usage_error("bench: unknown option %s", a);
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    double t0 = now_ms();
    bs_model_opts opts;
    bs_model_opts_default(&opts);
    if (threads > 0) opts.n_threads = threads;
    opts.precision = (bs_precision)precision;
    bs_model *m = NULL;
    bs_err err = {0};
    if (bs_model_load(dir, &opts, &m, &err) != 0) {
        fprintf(stderr, "bertstudio: %s\n", err.msg);
        return 1;
    }
    double load_ms = now_ms() - t0;
    long rss_load = rss_kb("VmRSS:");

    /* Lengths first, then ids, from one LCG stream (see bench/peer-ort.mjs). */
    uint32_t s = 42;
    int *lens = calloc((size_t)batch, sizeof *lens);
    long total = 0;
    for (int b = 0; b < batch; b++) {
        lens[b] = mn ? mn + (int)(bs_cli_lcg(&s) % (uint32_t)(mx - mn + 1)) : seq;
        total += lens[b];
    }
    int vocab = bs_model_vocab_size(m);
    int32_t *ids = malloc((size_t)total * sizeof *ids);
    bs_seq *seqs = calloc((size_t)batch, sizeof *seqs);
    /* Ids from 1000 up skip BERT's special and unused tokens; tiny vocabularies use all. */
    int base = vocab > 2000 ? 1000 : 0;
    for (long i = 0; i < total; i++)
        ids[i] = base + (int32_t)(bs_cli_lcg(&s) % (uint32_t)(vocab - base));
    long off = 0;
    for (int b = 0; b < batch; b++) {
        seqs[b] = (bs_seq){ids + off, NULL, lens[b]};
        off += lens[b];
    }
    bs_batch bt = {seqs, batch};
    bs_model_outputs out;
    bs_model_outputs_init(&out);
    out.want = BS_OUT_HIDDEN;
    double *lat = calloc((size_t)iters, sizeof *lat);
    int rc = 0;
    double first_ms = -1;
    for (int i = 0; i < warmup + iters && rc == 0; i++) {
        double a = now_ms();
        rc = bs_model_forward(m, &bt, &out, &err);
        double d = now_ms() - a;
        if (first_ms < 0) first_ms = since_process_start_ms();
        if (i >= warmup) lat[i - warmup] = d;
    }
    if (rc != 0) {
        fprintf(stderr, "bertstudio: %s\n", err.msg);
    } else {
        /* Sum of the first sequence's hidden states: the peer prints the same
         * figure, a cheap check that both run the same model on the same tokens. */
        double checksum = 0;
        for (long i = 0; i < (long)lens[0] * bs_model_hidden_size(m); i++)
            checksum += out.last_hidden_state[i];
        qsort(lat, (size_t)iters, sizeof *lat, bs_cli_cmp_double);
        double med = lat[iters / 2],
               p90 = lat[(iters * 9) / 10 < iters ? (iters * 9) / 10 : iters - 1];
        /* FLOPs of the encoder: dense layers per token, attention per sequence. */
        double H = bs_model_hidden_size(m);
        int layers = bs_model_num_layers(m), inter = bs_model_intermediate_size(m);
        double flops = 0;
        for (int b = 0; b < batch; b++)
            flops += layers * (lens[b] * (8.0 * H * H + 4.0 * H * inter) +
                               4.0 * (double)lens[b] * lens[b] * H);
        json_t *name = json_string(dir); /* NULL when dir is not UTF-8 */
        char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
        json_decref(name);
        printf("{\"engine\":\"bertstudio\",\"model\":%s,\"batch\":%d,", quoted ? quoted : "null",
               batch);
        free(quoted);
        if (mn)
            printf("\"mixed\":\"%d:%d\",", mn, mx);
        else
            printf("\"seq\":%d,", seq);
        printf("\"precision\":\"%s\",", bs_precision_name(bs_model_precision(m)));
        bs_kernels_info k;
        bs_kernels_get(&k, NULL);
        printf("\"kernels\":\"%s\",", k.path);
        printf("\"tokens\":%ld,\"threads\":%d,\"iters\":%d,\"latency_ms\":{\"median\":%.3f,\"p90\":"
               "%.3f,\"min\":%.3f},"
               "\"seq_per_s\":%.1f,\"tokens_per_s\":%.0f,\"gflops\":%.1f,\"load_ms\":%.1f,\"start_"
               "to_first_ms\":%.0f,"
               "\"rss_after_load_mb\":%.1f,\"peak_rss_mb\":%.1f,\"checksum\":%.3f}\n",
               total, bs_model_n_threads(m), iters, med, p90, lat[0], batch / (med / 1e3),
               total / (med / 1e3), flops / (med / 1e3) / 1e9, load_ms, first_ms, rss_load / 1024.0,
               rss_kb("VmHWM:") / 1024.0, checksum);
    }
    bs_model_outputs_release(&out);
    free(lat);
    free(seqs);
    free(ids);
    free(lens);
    bs_model_free(m);
    return rc ? 1 : 0;
}
