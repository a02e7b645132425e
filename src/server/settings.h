/* System settings: the registry of known settings (type, default, range,
 * description) and the in-memory cache of their current values that the
 * request path reads, refreshed from the store on every PUT and
 * periodically (so that other server processes' changes arrive too). */
#ifndef BS_SERVER_SETTINGS_H
#define BS_SERVER_SETTINGS_H

#include "bertstudio/common.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum bs_setting_type {
    BS_SETTING_INTEGER,
    BS_SETTING_FLOAT,
    BS_SETTING_BOOLEAN,
    BS_SETTING_STRING,
    BS_SETTING_JSON,
} bs_setting_type;

typedef struct bs_setting_def {
    const char *key;
    bs_setting_type type;
    const char *default_json; /* the default, as JSON text */
    double min, max;          /* numbers: inclusive range (used when max > min) */
    const char *description;
} bs_setting_def;

extern const bs_setting_def bs_settings_registry[];
extern const size_t bs_settings_registry_count;

/* The registry entry of key, or NULL for an unknown setting. */
const bs_setting_def *bs_settings_def(const char *key);
/* "integer", "float", "boolean", "string" or "json" (system_settings.setting_type). */
const char *bs_settings_type_name(bs_setting_type t);
/* Checks value against def (type, range, shape of json settings). On
 * success *normalized gets a new reference of the value to store (an
 * integer given for a float setting becomes a real). Returns 0, or -1 with
 * detail naming the problem. */
int bs_settings_check(const bs_setting_def *def, const json_t *value, json_t **normalized,
                      char *detail, size_t detail_len);

typedef struct bs_settings bs_settings;

bs_settings *bs_settings_new(void);
void bs_settings_free(bs_settings *c);
/* Re-reads every setting from the store (stored values override the
 * registry's defaults; a stored value that no longer passes the registry's
 * check is ignored with a warning). */
int bs_settings_refresh(bs_settings *c, bs_store *s, bs_err *err);
/* Current value (new reference) of a registry setting; NULL for an unknown key. */
json_t *bs_settings_value(bs_settings *c, const char *key);
/* Typed readers of registry settings; an unknown key is a programming error. */
int64_t bs_settings_int(bs_settings *c, const char *key);
double bs_settings_float(bs_settings *c, const char *key);
bool bs_settings_bool(bs_settings *c, const char *key);

#endif
