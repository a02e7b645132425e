/* The subcommands of `bertstudio`, one file each. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef BS_CLI_H
#define BS_CLI_H

int bs_cli_serve(int argc, char **argv);
int bs_cli_keys(int argc, char **argv);
int bs_cli_run(int argc, char **argv);
int bs_cli_bench(int argc, char **argv);
int bs_cli_db(int argc, char **argv);
int bs_cli_tokenize(int argc, char **argv);
int bs_cli_models(int argc, char **argv);

/* Prints "bertstudio: <message>" on stderr and returns 2 (usage error). */
int bs_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
