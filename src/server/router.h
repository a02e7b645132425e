/* The route table: method + path pattern ("/custom-tasks/{id}") -> handler,
 * the permission the caller needs, and optionally the body's field table.
 * Unknown paths answer 404, known paths with another method 405; HEAD is
 * served by the GET route. */
#ifndef BS_SERVER_ROUTER_H
#define BS_SERVER_ROUTER_H

#include "server/http.h"
#include "server/validate.h"

typedef void (*bs_handler_fn)(bs_request *req, bs_response *res);

/* perm: BS_PERM_* bits the caller must ALL hold; 0 = any authenticated
 * caller; BS_ROUTE_PUBLIC = no credentials needed. */
#define BS_ROUTE_PUBLIC (1u << 31)

typedef struct bs_route {
    const char *method;
    const char *pattern;
    bs_handler_fn handler;
    unsigned perm;
    /* When not NULL, the JSON body is parsed and checked against this table
     * (terminated by an entry with name NULL) before the handler runs; the
     * handler finds it in req->json. NULL: the handler reads the body itself
     * (bs_request_json, bs_validate). */
    const bs_field_spec *body;
} bs_route;

/* A route row that serves only the requests pred accepts (its handler
 * names the row): where one path serves two APIs (docs/compat.md), the
 * row of the original product's shape comes first with its predicate, and
 * a request it refuses goes on to the next row of the same method and
 * path. The permission stays in the row, so the table keeps deciding. */
typedef struct bs_route_when {
    bs_handler_fn handler;
    int (*pred)(bs_request *req);
} bs_route_when;

/* Finds the route for req->method and req->path, filling req's path
 * parameters. Returns the route, or NULL with *status set to 404 or 405
 * (and *allow listing the methods the path accepts, for 405). */
const bs_route *bs_router_match(const bs_route *routes, size_t n, bs_request *req, int *status,
                                char *allow, size_t allow_len);

/* The product's route table (server/routes.c). */
extern const bs_route bs_routes[];
extern const size_t bs_routes_count;
/* The predicates of the rows that have one (server/routes.c). */
extern const bs_route_when bs_route_whens[];
extern const size_t bs_route_whens_count;

#endif
