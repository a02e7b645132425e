/* The route table: method + path pattern ("/custom-tasks/{id}") -> handler.
 * Unknown paths answer 404, known paths with another method 405. */
#ifndef BS_SERVER_ROUTER_H
#define BS_SERVER_ROUTER_H

#include "server/http.h"

typedef void (*bs_handler_fn)(bs_request *req, bs_response *res);

typedef struct bs_route {
    const char *method;
    const char *pattern;
    bs_handler_fn handler;
} bs_route;

/* Finds the route for req->method and req->path, filling req's path
 * parameters. Returns the route, or NULL with *status set to 404 or 405
 * (and *allow listing the methods the path accepts, for 405). */
const bs_route *bs_router_match(const bs_route *routes, size_t n, bs_request *req, int *status,
                                char *allow, size_t allow_len);

/* The product's route table (server/routes.c). */
extern const bs_route bs_routes[];
extern const size_t bs_routes_count;

#endif
