/* bertstudio: the command line. Finds the subcommand and hands over. */
#include "cli/cli.h"
#include "bertstudio/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} subcommands[] = {
    {"serve", bs_cli_serve, "run the HTTP API server"},
    {"keys", bs_cli_keys, "create and list API keys"},
    {"run", bs_cli_run, "run a task on a model folder, print the result (JSON)"},
    {"bench", bs_cli_bench, "time the engine's forward pass (one JSON line)"},
    {"accuracy", bs_cli_accuracy, "a precision's answers against f32 on random inputs (JSON)"},
    {"db", bs_cli_db, "store backup, restore, export, import, sweep, bench"},
    {"tokenize", bs_cli_tokenize, "tokenize texts with a model folder's tokenizer (JSON)"},
    {"models", bs_cli_models, "the model cache: list, download, import, remove, info"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bertstudio [--help] [--version] <command> [<args>]\n\n"
            "BERT Studio %s: HuggingFace BERT-family models as a native server and CLI.\n\n"
            "commands:\n",
            bs_version());
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(out, "\nRun 'bertstudio <command> --help' for a command's options.\n");
}

int bs_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bertstudio: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("bertstudio %s\n", bs_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].fn(argc - 1, argv + 1);
    return bs_cli_usage_error("unknown command '%s' (see 'bertstudio --help')", argv[1]);
}
