/* The subcommands of `bertstudio`, one file each. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef BS_CLI_H
#define BS_CLI_H

#include "store/store.h"

int bs_cli_serve(int argc, char **argv);
int bs_cli_keys(int argc, char **argv);
int bs_cli_run(int argc, char **argv);
int bs_cli_bench(int argc, char **argv);
int bs_cli_accuracy(int argc, char **argv);
int bs_cli_db(int argc, char **argv);
int bs_cli_tokenize(int argc, char **argv);
int bs_cli_models(int argc, char **argv);

/* Prints "bertstudio: <message>" on stderr and returns 2 (usage error). */
int bs_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The data directory: the --data-dir value or BERTSTUDIO_DATA_DIR the caller
 * found (flag), else ./data; an empty value counts as unset. */
const char *bs_cli_data_dir(const char *flag);

/* Opens the store at uri (sqlite:///..., mongodb://...) or, when uri is
 * NULL, DATA_DIR/bertstudio.db, with data_dir's store.key. Returns 0, or
 * prints the reason on stderr and returns the exit status (1, 2). */
int bs_cli_store_open(const char *data_dir, const char *uri, bs_store **out);

/* A whole decimal number in [lo, hi] (lo >= 0) from a flag's value, or -1:
 * no sign games, no trailing text, no overflow. */
long bs_cli_parse_count(const char *s, long lo, long hi);

/* qsort's comparison of doubles, ascending. */
int bs_cli_cmp_double(const void *a, const void *b);

/* The synthetic inputs' generator of bench and accuracy: the next value of
 * a 31-bit LCG (bench/peer-ort.mjs reproduces it, so both engines see the
 * same tokens). */
uint32_t bs_cli_lcg(uint32_t *s);

/* Prints "bertstudio: <err's message>" on stderr and returns 1. */
int bs_cli_fail(const bs_err *err);

#endif
