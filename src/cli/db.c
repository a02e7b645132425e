/* bertstudio db: backup, restore, export, import and retention of the store
 * from the command line (also while a server runs on the same data dir), and
 * `db bench`, the store's throughput and latency figures on SQLite. */
#include "cli/cli.h"
#include "store/store.h"
#include "util/time.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: bertstudio db backup FILE      consistent snapshot while serving\n"
        "       bertstudio db restore FILE     replace the store's content with a backup\n"
        "       bertstudio db export DIR       DIR/<collection>.jsonl, portable between engines\n"
        "       bertstudio db import DIR       load DIR/<collection>.jsonl (same _id = replaced)\n"
        "       bertstudio db sweep            apply retention now (logs, sessions)\n"
        "       bertstudio db bench [--tasks N] [--logs N]   SQLite figures in a scratch dir\n\n"
        "  --data-dir DIR   the data directory (default ./data; env BERTSTUDIO_DATA_DIR);\n"
        "                   the SQLite file is DATA_DIR/bertstudio.db, the hash key "
        "DATA_DIR/store.key\n"
        "  --store URI      sqlite:///path.db or mongodb://... (env BERTSTUDIO_STORE)\n\n"
        "Migrating SQLite -> MongoDB: db export DIR, then db --store mongodb://... import DIR\n"
        "with the same --data-dir (API keys and sessions are hashed with its store.key).\n");
}

static void print_counts(const char *verb, json_t *counts)
{
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
        printf("%s %lld %s\n", verb, (long long)json_integer_value(v), k);
}

/* ───────────────────────────── bench ───────────────────────────── */

static const char *const words[] = {
    "sentiment", "analysis",    "classification", "named",     "entity",     "recognition",
    "question",  "answering",   "summary",        "review",    "product",    "customer",
    "support",   "ticket",      "email",          "spam",      "toxicity",   "legal",
    "medical",   "finance",     "news",           "topic",     "intent",     "language",
    "detect",    "keyword",     "extraction",     "embedding", "similarity", "search",
    "ranking",   "translation", "tweet",          "emotion",   "sarcasm",    "invoice",
    "contract",  "resume",      "chat",           "dialogue",  "fraud",      "risk"};
#define NWORDS (sizeof words / sizeof *words)

/* Appends one word: a frequent domain word with probability 1/every, else
 * one of NRARE tail words "w<n>". Returns the bytes written. */
#define NRARE 5000
static int word(unsigned *seed, int every, char *out, size_t len)
{
    if (rand_r(seed) % every == 0) return snprintf(out, len, "%s ", words[rand_r(seed) % NWORDS]);
    return snprintf(out, len, "w%u ", rand_r(seed) % NRARE);
}

static double secs_since(int64_t t0)
{
    return (double)(bs_time_mono_ns() - t0) / 1e9;
}

static json_t *bench_log(unsigned *seed, int64_t ts)
{
    static const char *const types[] = {"classification", "ner",        "qa",
                                        "fill-mask",      "embeddings", "summarization"};
    static const char *const models[] = {"distilbert-base-uncased", "bert-base-cased",
                                         "roberta-base", "albert-base-v2"};
    return json_pack("{s:s,s:s,s:f,s:s,s:o,s:i,s:s}", "task_type", types[rand_r(seed) % 6],
                     "model_name", models[rand_r(seed) % 4], "execution_time",
                     (rand_r(seed) % 5000) / 10000.0, "status",
                     rand_r(seed) % 20 ? "success" : "error", "timestamp",
                     json_string(bs_time_iso8601(ts, (char[32]){0}, 32)), "result_size",
                     rand_r(seed) % 4096, "ip_address", "192.168.1.77");
}

static int bench(const char *dir, long ntasks, long nlogs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bench.db", dir);
    bs_store *s = NULL;
    bs_store_opts o = {.data_dir = dir};
    bs_err err = {0};
    if (bs_store_open(path, &o, &s, &err)) return bs_cli_fail(&err);
    unsigned seed = 42;
    int64_t now = bs_time_now_ms();
    printf("store bench: SQLite %s (WAL, synchronous=NORMAL)\n", path);

    /* 1. execution_logs, one transaction per insert. Logs arrive in time
     * order, as a server writes them, spread over the 90 days of retention. */
    int64_t start = now - 90 * 86400000LL, step = 90 * 86400000LL / nlogs;
    long nsingle = nlogs < 20000 ? nlogs : 20000;
    int64_t t0 = bs_time_mono_ns();
    for (long i = 0; i < nsingle; i++) {
        json_t *d = bench_log(&seed, start + i * step);
        if (bs_store_logs_insert(s, d, NULL, &err)) return bs_cli_fail(&err);
        json_decref(d);
    }
    printf("execution_logs single insert: %ld in %.2f s = %.0f inserts/s\n", nsingle,
           secs_since(t0), (double)nsingle / secs_since(t0));

    /* 2. batched, as the async logger does */
    enum { BATCH = 500 };
    json_t *batch[BATCH];
    t0 = bs_time_mono_ns();
    long done = nsingle;
    while (done < nlogs) {
        int n = nlogs - done < BATCH ? (int)(nlogs - done) : BATCH;
        for (int i = 0; i < n; i++) batch[i] = bench_log(&seed, start + (done + i) * step);
        if (bs_store_logs_insert_many(s, batch, (size_t)n, &err)) return bs_cli_fail(&err);
        for (int i = 0; i < n; i++) json_decref(batch[i]);
        done += n;
    }
    double tb = secs_since(t0);
    printf("execution_logs batched insert (%d per transaction): %ld in %.2f s = %.0f inserts/s\n",
           BATCH, nlogs - nsingle, tb, (double)(nlogs - nsingle) / tb);

    /* 3. analytics over all logs */
    static const char *const gname[] = {"task_type", "model_name", "day"};
    for (int g = 0; g < 3; g++) {
        json_t *out = NULL;
        t0 = bs_time_mono_ns();
        if (bs_store_logs_stats(s, &(bs_log_query){.since_ms = now - 91 * 86400000LL},
                                (bs_log_group)g, &out, &err))
            return bs_cli_fail(&err);
        printf("logs stats by %-10s over %ld logs (90 days): %.3f s, %zu groups\n", gname[g], nlogs,
               secs_since(t0), json_array_size(out));
        json_decref(out);
    }
    json_t *out = NULL;
    t0 = bs_time_mono_ns();
    if (bs_store_logs_stats(s, &(bs_log_query){.since_ms = now - 7 * 86400000LL},
                            BS_LOG_GROUP_TASK_TYPE, &out, &err))
        return bs_cli_fail(&err);
    printf("logs stats by task_type, last 7 days: %.3f s\n", secs_since(t0));
    json_decref(out);

    /* 4. custom_tasks text search. Text mixes a small domain vocabulary
     * (frequent words, matching thousands of tasks) with a long tail of
     * rarer words, as real names and descriptions do. */
    t0 = bs_time_mono_ns();
    for (long i = 0; i < ntasks; i++) {
        char name[128], desc[400];
        int n = 0;
        for (int w = 0; w < 3; w++) n += word(&seed, 2, name + n, sizeof name - (size_t)n);
        n = 0;
        for (int w = 0; w < 12; w++) n += word(&seed, 4, desc + n, sizeof desc - (size_t)n);
        json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:[s,s],s:b}", "name", name, "description", desc,
                              "model_name", "distilbert-base-uncased", "function_code",
                              "def f(x): return x", "tags", words[rand_r(&seed) % NWORDS],
                              words[rand_r(&seed) % NWORDS], "is_public", rand_r(&seed) % 2);
        if (bs_store_tasks_insert(s, d, NULL, &err)) return bs_cli_fail(&err);
        json_decref(d);
    }
    printf("custom_tasks insert: %ld in %.2f s = %.0f inserts/s\n", ntasks, secs_since(t0),
           (double)ntasks / secs_since(t0));
    for (int kind = 0; kind < 2; kind++) {
        enum { NQ = 200 };
        double lat[NQ];
        int64_t matched = 0;
        for (int q = 0; q < NQ; q++) {
            char text[128];
            int n = 0;
            for (int w = 0; w < 2; w++)
                n += kind ? snprintf(text + n, sizeof text - (size_t)n, "%s ",
                                     words[rand_r(&seed) % NWORDS])
                          : snprintf(text + n, sizeof text - (size_t)n, "w%u ",
                                     rand_r(&seed) % NRARE);
            t0 = bs_time_mono_ns();
            int64_t total = 0;
            if (bs_store_tasks_find(s, &(bs_task_query){.search = text, .limit = 20}, &out, &total,
                                    &err))
                return bs_cli_fail(&err);
            lat[q] = secs_since(t0) * 1000;
            matched += total;
            json_decref(out);
        }
        qsort(lat, NQ, sizeof *lat, bs_cli_cmp_double);
        printf("text search, 2 %s words (avg %lld matches), top 20 by bm25 + total, on %ld tasks: "
               "p50 %.2f ms, p95 %.2f ms\n",
               kind ? "frequent" : "tail", (long long)(matched / NQ), ntasks, lat[NQ / 2],
               lat[(int)ceil(0.95 * NQ) - 1]);
    }
    bs_store_close(s);
    return 0;
}

/* ───────────────────────────── main ───────────────────────────── */

int bs_cli_db(int argc, char **argv)
{
    const char *data_dir = getenv("BERTSTUDIO_DATA_DIR"), *uri = getenv("BERTSTUDIO_STORE");
    long ntasks = 100000, nlogs = 1000000;
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"store", required_argument, 0, 's'},
        {"tasks", required_argument, 0, 't'},    {"logs", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data_dir = optarg;
            break;
        case 's':
            uri = optarg;
            break;
        case 't':
            if ((ntasks = bs_cli_parse_count(optarg, 1, 100000000)) < 0)
                return bs_cli_usage_error("db: --tasks %s is not a number from 1 to 100000000",
                                          optarg);
            break;
        case 'l':
            if ((nlogs = bs_cli_parse_count(optarg, 1, 1000000000)) < 0)
                return bs_cli_usage_error("db: --logs %s is not a number from 1 to 1000000000",
                                          optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind], *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    data_dir = bs_cli_data_dir(data_dir);
    if (!strcmp(cmd, "bench")) {
        char dir[] = "/tmp/bertstudio-bench-XXXXXX";
        if (!mkdtemp(dir)) return bs_cli_usage_error("db bench: cannot create a scratch directory");
        int rc = bench(dir, ntasks, nlogs);
        char cmdline[128];
        snprintf(cmdline, sizeof cmdline, "rm -rf '%s'", dir);
        if (system(cmdline)) fprintf(stderr, "bertstudio: could not remove %s\n", dir);
        return rc;
    }
    static const char *const known[] = {"backup", "restore", "export", "import", "sweep"};
    size_t k = 0;
    while (k < sizeof known / sizeof *known && strcmp(cmd, known[k])) k++;
    if (k == sizeof known / sizeof *known)
        return bs_cli_usage_error("db: unknown command '%s' (see 'bertstudio db --help')", cmd);
    bool needs_arg = strcmp(cmd, "sweep") != 0;
    if (needs_arg && !arg)
        return bs_cli_usage_error("db %s needs a %s argument", cmd,
                                  strstr(cmd, "port") ? "DIR" : "FILE");
    if (optind + 1 + needs_arg < argc) return bs_cli_usage_error("db %s: too many arguments", cmd);

    bs_store *s = NULL;
    int rc = bs_cli_store_open(data_dir, uri, &s);
    if (rc) return rc;
    bs_err err = {0};
    json_t *counts = NULL;
    if (!strcmp(cmd, "backup")) {
        rc = bs_store_backup(s, arg, &err);
        if (!rc) printf("backed up the %s store to %s\n", bs_store_engine_name(s), arg);
    } else if (!strcmp(cmd, "restore")) {
        rc = bs_store_restore(s, arg, &err);
        if (!rc) printf("restored %s into the %s store\n", arg, bs_store_engine_name(s));
    } else if (!strcmp(cmd, "export")) {
        rc = bs_store_export(s, arg, &counts, &err);
        if (!rc) print_counts("exported", counts);
    } else if (!strcmp(cmd, "import")) {
        rc = bs_store_import(s, arg, &counts, &err);
        if (!rc) print_counts("imported", counts);
    } else { /* sweep */
        int64_t logs = 0, sessions = 0;
        rc = bs_store_logs_sweep(s, 0, &logs, &err);
        if (!rc) rc = bs_store_sessions_sweep(s, 0, &sessions, &err);
        if (!rc)
            printf("removed %lld execution_logs and %lld user_sessions past retention\n",
                   (long long)logs, (long long)sessions);
    }
    json_decref(counts);
    bs_store_close(s);
    return rc ? bs_cli_fail(&err) : 0;
}
