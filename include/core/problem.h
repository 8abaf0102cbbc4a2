/* Problems as a client sees them: one struct and one writer for a whole request's
 * problem document, a bulk item's error and a warning. */
#ifndef SEGMENTD_CORE_PROBLEM_H
#define SEGMENTD_CORE_PROBLEM_H

#include <stdbool.h>

#include "core/error.h"
#include "core/json_text.h"

typedef enum problem_kind {
    /* A whole request's answer (application/problem+json, RFC 9457):
     * {"type","title","status","detail","code","request_id"[,"errors":[{"pointer","detail"}…]
     *  [,"errors_truncated":true]]} */
    PROBLEM_REQUEST,
    /* One bulk item's error in the envelope's "errors" (seed 002):
     * {"code","title","detail","source":{"pointer"}[,"traceId"]} */
    PROBLEM_ITEM,
    /* A warning: the segment was stored, but something in it is worth saying. The same
     * shape as an item's error; "traceId" only in a bulk envelope. */
    PROBLEM_WARNING,
} problem_kind;

typedef struct problem {
    problem_kind kind;
    const char *code;     /* stable code; NULL: "error" */
    const char *title;    /* NULL: err_title_for(status) */
    int status;           /* HTTP status: written by request problems only */
    const char *detail;   /* for the client; a request problem's NULL or "" is written
                           * "no detail", the others' NULL "" */
    const char *pointer;  /* items, warnings: JSON Pointer of source.pointer (NULL: "") */
    long item;            /* items, warnings of a bulk request: the pointer is written
                           * under /data/<item>; -1 when not */
    const char *trace_id; /* request_id of a request problem, traceId of the others;
                           * NULL: left out */
    const err_item *fields; /* request problems: the problem of each field, written as
                             * "errors" when n_fields > 0 */
    int n_fields;
    bool fields_truncated;  /* more fields were wrong than n_fields */
} problem;

/* A request's problem from its error. Borrows e's strings and request_id. */
problem problem_of_error(const seg_error *e, const char *request_id);

/* Writes p as a JSON object in the shape of its kind (see problem_kind). A string that
 * is not UTF-8 fails out (err_set and err_add make every detail UTF-8). */
void problem_write(json_text *out, const problem *p);

#endif
