/* Every request handler, grouped by resource (one .c file each). */
#ifndef BS_SERVER_HANDLERS_H
#define BS_SERVER_HANDLERS_H

#include "server/http.h"

/* health.c */
void bs_handle_health(bs_request *req, bs_response *res);
void bs_handle_health_db(bs_request *req, bs_response *res);

#endif
