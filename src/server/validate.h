/* Field tables: what each endpoint accepts in its JSON body (type, required,
 * range, enum), checked once before the handler runs so that handlers read
 * typed, checked values. Unknown fields are rejected, naming them. */
#ifndef BS_SERVER_VALIDATE_H
#define BS_SERVER_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

typedef enum bs_ftype_spec {
    BS_T_STRING,  /* string */
    BS_T_INT,     /* integer (JSON number without fraction) */
    BS_T_NUMBER,  /* integer or real */
    BS_T_BOOL,    /* true / false */
    BS_T_OBJECT,  /* any object */
    BS_T_ARRAY,   /* any array */
    BS_T_STRINGS, /* array of strings */
    BS_T_TEXT,    /* a string or an array of strings (task inputs) */
    BS_T_ANY,     /* any JSON value */
} bs_ftype_spec;

enum {
    BS_REQUIRED = 1u << 0, /* must be present (and not null unless BS_NULLABLE) */
    BS_NULLABLE = 1u << 1, /* null is accepted (means "default") */
};

/* One accepted field. Range [min, max] applies when max > min: to the value
 * of numbers, to the length in code points of strings (and of each string
 * of BS_T_TEXT), to the item count of BS_T_ARRAY and BS_T_STRINGS. choices: a
 * NULL-terminated list of allowed strings (for BS_T_STRING and the items of
 * BS_T_STRINGS), or NULL. */
typedef struct bs_field_spec {
    const char *name;
    bs_ftype_spec type;
    unsigned flags;
    double min, max;
    const char *const *choices;
} bs_field_spec;

/* Checks that body is an object whose members all appear in fields
 * (terminated by name NULL) with the right type, range and choice, and that
 * every BS_REQUIRED field is present. Returns 0, or -1 with detail filled
 * ("field 'top_k': 0 is below the minimum 1", "unknown field 'foo'
 * (accepted: text, model_name)"). */
int bs_validate(const json_t *body, const bs_field_spec *fields, char *detail, size_t detail_len);

/* Deepest nesting of arrays and objects in the JSON text (strings skipped),
 * stopping early once beyond limit. Used to refuse deeply nested bodies
 * before the parser recurses into them. */
int bs_json_depth(const char *text, size_t len, int limit);

/* Maximum nesting accepted in request bodies. */
#define BS_JSON_MAX_DEPTH 32

#endif
