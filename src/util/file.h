/* Reading a whole file into memory, with a size cap decided by the caller:
 * the one reader behind config files, tokenizers, manifests, PEM files and
 * stdin, so that each of them refuses oversized input the same way. */
#ifndef BS_UTIL_FILE_H
#define BS_UTIL_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "bertstudio/common.h"

/* Reads f to its end into a malloc'ed, NUL-terminated buffer (*out, freed
 * by the caller; *len excludes the NUL). At most max bytes are accepted.
 * Errors: BS_ELIMIT (more than max bytes), BS_EIO (a read error),
 * BS_ENOMEM. The message does not name a file: callers prefix it. */
int bs_file_readf(FILE *f, size_t max, char **out, size_t *len, bs_err *err);
/* Same for the file at path, whose name the message carries. Errors also:
 * BS_ENOTFOUND (no such file), BS_EIO (cannot open it). */
int bs_file_read(const char *path, size_t max, char **out, size_t *len, bs_err *err);

#endif
