/* bertstudio serve: runs the server until SIGINT or SIGTERM, then shuts
 * down gracefully (stop accepting, finish in-flight requests, close store). */
#include "bertstudio/model.h"
#include "cli/cli.h"
#include "server/server.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: bertstudio serve [--host ADDR] [--port N] [--data-dir DIR] [--threads N]\n"
        "                        [--tls-cert PEM --tls-key PEM] [--store URI]\n"
        "                        [--precision f32|fp16|bf16|int8] [--web-dir DIR] [--quiet]\n\n"
        "Serves the REST API (see docs/api.md) and the web studio at /.\n\n"
        "  --host ADDR      address to bind (default 127.0.0.1; env BERTSTUDIO_HOST)\n"
        "  --port N         port (default 8000; 0 picks a free one; env BERTSTUDIO_PORT)\n"
        "  --data-dir DIR   where the store and models live (default ./data;\n"
        "                   env BERTSTUDIO_DATA_DIR)\n"
        "  --threads N      most requests handled at once, a worker thread each (default\n"
        "                   1024); connections are many more (setting max_connections)\n"
        "  --tls-cert PEM   serve HTTPS with this certificate (with --tls-key)\n"
        "  --tls-key PEM    the certificate's private key\n"
        "  --store URI      sqlite:///path.db or mongodb://... (default DATA_DIR/bertstudio.db;\n"
        "                   env BERTSTUDIO_STORE)\n"
        "  --precision P    dense-layer arithmetic of loaded models: f32 (default: the\n"
        "                   reference's answers), fp16 (f16 weights: half the weight\n"
        "                   memory, ~1e-3 error, every CPU) or bf16 (about 2x faster,\n"
        "                   half the weight memory, ~1e-2 error; 2x needs AVX512_BF16)\n"
        "                   or int8 (dynamic quantization: int8 weights, u8 activations\n"
        "                   quantized per row, int32 sums; a quarter of the weight\n"
        "                   memory, ~1e-2 error; env BERTSTUDIO_PRECISION). The default\n"
        "                   of loads: the setting default_precision and POST\n"
        "                   /models/{name}/load {\"precision\"} override it\n"
        "  --web-dir DIR    serve the studio from DIR (a build of web/, for developing it)\n"
        "                   instead of the copy embedded in the binary\n"
        "  --quiet          no access log on stderr\n\n"
        "Custom tasks (POST /tasks/custom) run in the bertstudio-sandbox worker found\n"
        "beside this binary (env BERTSTUDIO_SANDBOX; docs/custom-tasks.md).\n");
}

/* The first admin key is shown once, here, before the server listens:
 * scripts wait for the server to answer and then read it from stdout. */
static void print_admin_key(const char *secret, void *ud)
{
    (void)ud;
    printf("Created the first admin API key (shown only this once, store it now): %s\n", secret);
    fflush(stdout);
}

int bs_cli_serve(int argc, char **argv)
{
    bs_server_opts opts = {.host = getenv("BERTSTUDIO_HOST"),
                           .data_dir = getenv("BERTSTUDIO_DATA_DIR"),
                           .store_uri = getenv("BERTSTUDIO_STORE"),
                           .port = 8000,
                           .on_admin_key = print_admin_key};
    long v;
    const char *env_port = getenv("BERTSTUDIO_PORT"), *precision = getenv("BERTSTUDIO_PRECISION");
    if (env_port) {
        if ((v = bs_cli_parse_count(env_port, 0, 65535)) < 0)
            return bs_cli_usage_error("BERTSTUDIO_PORT=%s is not a port number", env_port);
        opts.port = (uint16_t)v;
    }
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"data-dir", required_argument, 0, 'd'}, {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'H'},
        {"tls-cert", required_argument, 0, 'c'}, {"tls-key", required_argument, 0, 'k'},
        {"store", required_argument, 0, 's'},    {"precision", required_argument, 0, 'P'},
        {"web-dir", required_argument, 0, 'w'},  {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            opts.host = optarg;
            break;
        case 'p':
            if ((v = bs_cli_parse_count(optarg, 0, 65535)) < 0)
                return bs_cli_usage_error("--port %s is not a port number (0-65535)", optarg);
            opts.port = (uint16_t)v;
            break;
        case 'd':
            opts.data_dir = optarg;
            break;
        case 't':
            if ((v = bs_cli_parse_count(optarg, 1, 1024)) < 0)
                return bs_cli_usage_error("--threads %s must be 1-1024", optarg);
            opts.threads = (unsigned)v;
            break;
        case 'q':
            opts.quiet = 1;
            break;
        case 'c':
            opts.tls_cert = optarg;
            break;
        case 'k':
            opts.tls_key = optarg;
            break;
        case 's':
            opts.store_uri = optarg;
            break;
        case 'P':
            precision = optarg;
            break;
        case 'w':
            opts.web_dir = optarg;
            break;
        case 'H':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) return bs_cli_usage_error("serve: unexpected argument '%s'", argv[optind]);
    if (opts.web_dir) {
        char index[4096];
        snprintf(index, sizeof index, "%s/index.html", opts.web_dir);
        if (access(index, R_OK))
            return bs_cli_usage_error("--web-dir %s has no index.html (build web/ first)",
                                      opts.web_dir);
    }
    if (precision && (opts.precision = bs_precision_parse(precision)) < 0)
        return bs_cli_usage_error("--precision %s is not f32, fp16, bf16 or int8", precision);
    if (!bs_precision_supported((bs_precision)opts.precision))
        return bs_cli_usage_error("--precision %s is not supported by this CPU's kernel path",
                                  precision);

    /* Block the stop signals in every thread (the server's threads inherit
     * this mask) so that only sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    bs_err err = {0};
    bs_server *srv;
    if (bs_server_start(&opts, &srv, &err)) {
        fprintf(stderr, "bertstudio: %s\n", err.msg);
        return 1;
    }
    printf("BERT Studio %s serving on %s://%s:%u (data in %s)\n", bs_version(),
           opts.tls_cert ? "https" : "http", opts.host ? opts.host : "127.0.0.1",
           (unsigned)bs_server_port(srv), opts.data_dir ? opts.data_dir : "./data");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "bertstudio: %s received, finishing in-flight requests\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    bs_server_stop(srv);
    return 0;
}
