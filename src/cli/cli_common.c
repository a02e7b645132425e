/* What several subcommands share: where the data directory is, opening the
 * store the way the server does, and printing a library error. Kept here so
 * that `keys`, `db` and `models` agree on the defaults. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *bs_cli_data_dir(const char *flag)
{
    return flag && *flag ? flag : "./data";
}

int bs_cli_store_open(const char *data_dir, const char *uri, bs_store **out)
{
    char path[4200];
    if (!uri) {
        int n = snprintf(path, sizeof path, "%s/bertstudio.db", data_dir);
        if (n < 0 || (size_t)n >= sizeof path)
            return bs_cli_usage_error("--data-dir %.64s...: path too long", data_dir);
        uri = path;
    }
    bs_store_opts so = {.data_dir = data_dir};
    bs_err err = {0};
    if (bs_store_open(uri, &so, out, &err)) return bs_cli_fail(&err);
    return 0;
}

int bs_cli_fail(const bs_err *err)
{
    fprintf(stderr, "bertstudio: %s\n", err->msg[0] ? err->msg : bs_strerror(err->code));
    return 1;
}

long bs_cli_parse_count(const char *s, long lo, long hi)
{
    if (!s || *s < '0' || *s > '9') return -1; /* strtol would take " -1" and "+1" */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return !*end && !errno && v >= lo && v <= hi ? v : -1;
}

int bs_cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

uint32_t bs_cli_lcg(uint32_t *s)
{
    *s = (*s * 1103515245u + 12345u) & 0x7fffffffu;
    return *s;
}
