/* The device fields table: each field's name, type and value format, its lookups and one format check. */
/* It knows nothing of constraints or relations, so the /v1 constraints and a device body
 * can both be checked against it. */
#ifndef SEGMENTD_VALIDATE_FORMATS_H
#define SEGMENTD_VALIDATE_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum val_field_type {
    VAL_FIELD_STRING,
    VAL_FIELD_INT,          /* 32-bit signed integer */
    VAL_FIELD_LONG,         /* 64-bit signed integer */
    VAL_FIELD_STRING_ARRAY, /* a list of strings (tags) */
} val_field_type;

typedef struct val_field {
    const char *name;
    val_field_type type;
    bool timestamp; /* Unix time in milliseconds: never negative */
    /* The format of a string value: true when s is valid, otherwise what would be valid
     * ("expected ...") written into why. NULL: free text. Call val_field_format_ok. */
    bool (*format)(const char *s, char *why, size_t cap);
    const char *what; /* names the format in messages ("is not <what>"); NULL without one */
} val_field;

/* The number of device fields: val_field_at takes 0 to VAL_FIELD_COUNT - 1. */
#define VAL_FIELD_COUNT 20

/* The field named name exactly (names are case-sensitive), or NULL. */
const val_field *val_field_find(const char *name);

/* The field whose name equals name ignoring ASCII case, for a "names are case-sensitive"
 * hint once val_field_find said no; NULL when none. */
const val_field *val_field_find_casefold(const char *name);

/* The i-th field in the documentation's order (i < VAL_FIELD_COUNT), and the position of
 * a field of the table in that order. */
const val_field *val_field_at(size_t i);
size_t val_field_index(const val_field *f);

/* The type as the documentation spells it: "String", "Int", "Long", "String Array". */
const char *val_field_type_name(val_field_type t);

/* true for the integer types, with their bounds in *min and *max (either may be NULL);
 * false for the string types. */
bool val_field_type_range(val_field_type t, int64_t *min, int64_t *max);

/* Checks the string value s against f's format: true when it passes or f has no format;
 * false with what would be valid written into why (cap bytes; 160 always suffice). */
bool val_field_format_ok(const val_field *f, const char *s, char *why, size_t cap);

#endif
