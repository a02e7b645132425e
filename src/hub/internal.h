/* Private to hub/: file-system helpers and the default folder check. */
#ifndef BS_HUB_INTERNAL_H
#define BS_HUB_INTERNAL_H

#include "hub/hub.h"

/* bs_hub_opts.validate's default (validate.c). */
int bs_hub_validate_folder(const char *dir, void *ud, bs_err *err);

/* opts.in_use of the hub (hub.c); false without one. */
bool bs_hub_in_use(bs_hub *hub, const char *model_name);

/* The other model (if any) whose folder name is name's: owner gets it, or
 * "" when the folder is name's alone (layout.c). */
int bs_hub_folder_owner(bs_hub *hub, const char *name, char *owner, size_t len, bs_err *err);
/* Moves models/org/name folders (the layout before one flat folder per
 * model) to models/org--name and updates their documents; a model that
 * cannot move is logged and left in place. */
int bs_hub_migrate_layout(bs_hub *hub, bs_err *err);

/* mkdir -p (fsutil.c). */
int bs_hub_mkdirs(const char *path, bs_err *err);
/* rm -rf without following symlinks; a missing path is fine. */
int bs_hub_rmtree(const char *path, bs_err *err);
/* Copies src to dst (symlinks followed), creating dst's parent folders. */
int bs_hub_copy_file(const char *src, const char *dst, bs_err *err);

#endif
