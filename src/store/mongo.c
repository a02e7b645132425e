/* MongoDB engine: placeholder until the engine lands (see mongo_*.c). */
#include "store/internal.h"

int bs_store_mongo_open(bs_store *s, const char *uri, const bs_store_opts *opts, bs_err *err)
{
    return bs_err_set(err, BS_EUNSUPPORTED, "mongodb engine not built yet");
}
