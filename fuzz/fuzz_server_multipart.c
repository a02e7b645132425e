/* libFuzzer target: finding the file in a multipart/form-data body (the
 * import upload of /custom-tasks/import). The first input line is the
 * Content-Type header, the rest the body.
 * Run: build-fuzz/fuzz/fuzz_server_multipart -max_total_time=60 */
#include "server/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    char *ctype = malloc(hlen + 1);
    if (!ctype) return 0;
    memcpy(ctype, data, hlen);
    ctype[hlen] = 0;
    /* The body in its own allocation, so that a read past it is caught. */
    size_t blen = nl ? size - hlen - 1 : 0;
    char *body = malloc(blen ? blen : 1);
    if (!body) {
        free(ctype);
        return 0;
    }
    if (blen) memcpy(body, nl + 1, blen);
    const char *file = NULL;
    size_t flen = 0;
    char detail[256];
    if (bs_multipart_file(ctype, body, blen, &file, &flen, detail, sizeof detail) == 0) {
        if (file < body || file + flen > body + blen) abort();
    } else if (!memchr(detail, 0, sizeof detail) || !detail[0]) {
        abort();
    }
    free(body);
    free(ctype);
    return 0;
}
