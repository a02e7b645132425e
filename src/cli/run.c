/* bertstudio run: runs one task on a model folder without the server. Reads
 * a /tasks/<task> request object (stdin or --json), prints the response's
 * `data` object; with --batch, one request per input line, one output line
 * each (a failed line prints {"error": ...}). */
#include "cli/cli.h"
#include "bertstudio/pipeline_json.h"
#include "util/file.h"
#include "util/log.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bertstudio run TASK --model DIR [--json REQUEST] [--batch] [--threads N]\n"
            "                        [--precision f32|fp16|bf16|int8]\n\n"
            "Runs a built-in task and prints the `data` object the server would return.\n"
            "TASK: classification, ner, qa, fill-mask, embeddings, features, summarization.\n\n"
            "  --model DIR      model folder (config.json, model.safetensors, tokenizer files)\n"
            "  --json REQUEST   the request object (default: read it from stdin)\n"
            "  --batch          read one request per line from stdin, print one line each\n"
            "  --threads N      compute threads (default: all cores)\n"
            "  --precision P    f32 (default, the reference's answers), fp16 (half the\n"
            "                   weight memory, ~1e-3 error, every CPU), bf16 (faster,\n"
            "                   ~1e-2 error; its fast form needs AVX512_BF16) or int8\n"
            "                   (dynamic quantization: a quarter of the weight memory,\n"
            "                   ~1e-2 error, every CPU)\n");
}

/* Runs one request text; prints the data object or returns 1 with err set. */
static int run_one(const bs_pipeline_ctx *ctx, bs_task task, const char *text, size_t len,
                   bs_err *err)
{
    json_error_t je;
    json_t *req = json_loadb(text, len, 0, &je);
    if (!req) {
        bs_err_set(err, BS_EINVAL, "request is not valid JSON (line %d, column %d): %s", je.line,
                   je.column, je.text);
        return 1;
    }
    json_t *data = NULL;
    int rc = bs_pipeline_run_json(ctx, task, req, &data, err);
    json_decref(req);
    if (rc) return 1;
    char *s = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!s) {
        bs_err_set(err, BS_ENOMEM, "out of memory printing the result");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

static int run_batch(const bs_pipeline_ctx *ctx, bs_task task)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int failures = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (n == 1 && line[0] == '\n') continue;
        bs_err err = {0};
        if (run_one(ctx, task, line, (size_t)n, &err)) {
            json_t *e = json_pack("{s:s}", "error", err.msg);
            char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
            if (s) puts(s);
            free(s);
            json_decref(e);
            failures++;
        }
        fflush(stdout);
    }
    free(line);
    return failures ? 1 : 0;
}

int bs_cli_run(int argc, char **argv)
{
    /* stdout carries the answer and stderr only its error: the engine's
     * informational lines (which kernels a load chose) stay out of it. */
    bs_log_set_level(BS_LOG_WARN);
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"json", required_argument, NULL, 'j'},
        {"batch", no_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *json = NULL;
    int batch = 0, threads = 0, precision = BS_PRECISION_F32, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:j:bt:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'b':
            batch = 1;
            break;
        case 't': {
            long v = bs_cli_parse_count(optarg, 1, 1024);
            if (v < 0)
                return bs_cli_usage_error("--threads %s is not a number from 1 to 1024", optarg);
            threads = (int)v;
            break;
        }
        case 'P':
            if ((precision = bs_precision_parse(optarg)) < 0)
                return bs_cli_usage_error("--precision %s is not f32, fp16, bf16 or int8", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return bs_cli_usage_error("run needs exactly one TASK");
    }
    bs_err err = {0};
    bs_task task;
    if (bs_task_from_name(argv[optind], &task, &err)) return bs_cli_usage_error("%s", err.msg);
    if (!model) return bs_cli_usage_error("run needs --model DIR");
    if (json && batch) return bs_cli_usage_error("--json and --batch cannot be combined");
    bs_model_opts opts;
    bs_model_opts_default(&opts);
    if (threads) opts.n_threads = threads;
    opts.precision = (bs_precision)precision;
    bs_pipeline_ctx *ctx = NULL;
    if (bs_pipeline_ctx_load(model, &opts, &ctx, &err)) return bs_cli_fail(&err);
    int status;
    if (batch) {
        status = run_batch(ctx, task);
    } else {
        size_t len = json ? strlen(json) : 0;
        char *text = NULL;
        if (!json && bs_file_readf(stdin, (size_t)1 << 30, &text, &len, &err)) {
            bs_err_prefix(&err, "cannot read the request from stdin");
            status = 1;
        } else {
            status = run_one(ctx, task, json ? json : text, len, &err);
        }
        free(text);
        if (status) bs_cli_fail(&err);
    }
    bs_pipeline_ctx_free(ctx);
    return status;
}
