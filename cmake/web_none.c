/* The web studio's table when it was not built (-DBS_WEB=OFF, or no node/npm):
 * one page saying how to get it. The JSON API is unaffected. */
#include "server/web.h"

static const char page[] =
    "<!doctype html><meta charset=utf-8><title>BERT Studio</title>"
    "<p>This bertstudio was built without its web studio. Install node and npm "
    "(scripts/install-deps.sh) and build again with -DBS_WEB=ON, or run "
    "<code>bertstudio serve --web-dir DIR</code> with a build of web/.</p>";

const bs_web_asset bs_web_assets[] = {
    {"/index.html", "text/html; charset=utf-8", "\"none-1\"", (const unsigned char *)page,
     sizeof page - 1, NULL, 0},
};
const size_t bs_web_assets_count = 1;
