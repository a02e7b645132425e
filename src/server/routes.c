/* The route table of api.md, one line per route. Handlers live in
 * server/handlers/, one file per resource. */
#include "server/handlers/handlers.h"
#include "server/router.h"

const bs_route bs_routes[] = {
    {"GET", "/health", bs_handle_health},
    {"GET", "/health/db", bs_handle_health_db},
};

const size_t bs_routes_count = sizeof bs_routes / sizeof *bs_routes;
