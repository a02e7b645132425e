/* Finding the uploaded file in a multipart/form-data request body. */
#ifndef BS_SERVER_MULTIPART_H
#define BS_SERVER_MULTIPART_H

#include <stddef.h>

/* Finds the uploaded file of a multipart/form-data body: the part named
 * "file", else the first part with a filename. content_type is the
 * request's Content-Type header (its boundary parameter, quoted or not, at
 * most 70 characters). Returns 0 with *data and *dlen pointing inside body
 * (the file's bytes, unchecked), or -1 with detail saying what is missing
 * or malformed (no boundary, part headers beyond 8192 bytes, a part without
 * its closing boundary, no file part). At most 64 parts are looked at. */
int bs_multipart_file(const char *content_type, const char *body, size_t len, const char **data,
                      size_t *dlen, char *detail, size_t detail_len);

#endif
