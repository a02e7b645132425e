/* What happens to every request before its handler: per-IP rate limit,
 * CORS, credentials (API key or session cookie), the route's permission,
 * the key's rate limits, CSRF check for cookie-authenticated writes, and
 * the body's field table. */
#ifndef BS_SERVER_GUARD_H
#define BS_SERVER_GUARD_H

#include "server/router.h"

/* The per-IP limit, checked before routing (so that unknown paths and
 * failed logins count too). Returns 0, or -1 with res filled (429). */
int bs_guard_ip(bs_request *req, bs_response *res);
/* Authenticates and authorizes req for route, filling req->auth. Returns 0
 * to run the handler, or -1 with res filled (400, 401, 403, 429). */
int bs_guard_route(bs_request *req, bs_response *res, const bs_route *route);
/* As soon as the headers are in, for a request announcing a body: 401
 * (answered in res, -1) when the route needs credentials and the request
 * has none valid, so that no body is buffered for an unauthenticated
 * client. 0 otherwise (unknown and public routes included). */
int bs_guard_early(bs_request *req, bs_response *res);
/* Whether req carries a valid credential with admin:write (such a caller
 * is never limited by IP). Leaves req->auth empty. */
int bs_guard_admin(bs_request *req);
/* After the handler: records the session activity of state-changing
 * requests not already logged by the handler. */
void bs_guard_after(bs_request *req, bs_response *res);
/* CORS headers for an allowed Origin (every response), and the answer to a
 * preflight OPTIONS request (allow: the path's methods). */
void bs_cors_headers(bs_request *req, bs_response *res);
void bs_cors_preflight(bs_request *req, bs_response *res, const char *allow);

/* Resolves a secret (API key) into req->auth; 0, or -1 with res filled
 * (401, or 503 when the store fails). Used by POST /auth/login too. */
int bs_auth_with_key(bs_request *req, bs_response *res, const char *secret, json_t **key_doc);

/* Parses permission names into BS_PERM_* bits (unknown names ignored). */
unsigned bs_perms_from_json(const json_t *arr);
/* The permission names of bits, as a new JSON array. */
json_t *bs_perms_to_json(unsigned bits);
/* The name of the first permission of bits missing from have, or NULL. */
const char *bs_perm_missing(unsigned need, unsigned have);

/* The value of cookie name in req's Cookie header, copied into out
 * (0), or -1 when absent or too long. */
int bs_request_cookie(const bs_request *req, const char *name, char *out, size_t len);

#endif
