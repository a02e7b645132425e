/* The original product's API on its own paths (docs/compat.md): the
 * predicates that tell its requests from ours on a shared path (used by the
 * route table's variants, server/routes.c), and the helpers its shapes
 * share. */
#ifndef BS_SERVER_HANDLERS_COMPAT_H
#define BS_SERVER_HANDLERS_COMPAT_H

#include <jansson.h>

#include "server/http.h"

/* A JSON body holding "model_id" (POST /models/download, /models/load). */
int bs_compat_is_model_id_body(bs_request *req);
/* ?author= and ?model= without ?model_name= (DELETE /models/downloaded). */
int bs_compat_is_author_model_query(bs_request *req);
/* No body at all (POST /api-keys). */
int bs_compat_is_bodyless(bs_request *req);
/* A GET on a shared path that asks for the original's shape: ?shape=original,
 * or the setting original_get_shapes is on (and ?shape=ours is absent). */
int bs_compat_is_original_get(bs_request *req);
/* An original GET (above) with no credential at all: GET /auth/check
 * answers {"authenticated": false} (ours: 401). */
int bs_compat_is_anonymous(bs_request *req);

/* Rewrites an error answer of res (our envelope) into FastAPI's
 * {"detail": "..."} (the detail bs_reply_error wrote, not read back from
 * the body), keeping the status and headers; any other answer is left as
 * it is. Handlers that know beforehand set res->detail_errors instead. */
void bs_compat_detail_only(bs_response *res);
/* Replies status with {"message": msg} (the original's MessageResponse). */
void bs_compat_message(bs_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills a missing "model" of an original task body with the setting
 * default_model (called by the legacy routes before they validate). */
void bs_compat_default_model(bs_request *req, json_t *body);
/* Counts texts embedded by the original's /embed routes (for /stats). */
void bs_compat_count_embeddings(size_t n);

#endif
