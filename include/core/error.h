/* The one error type: HTTP status, stable code, client-safe detail, log-only detail
 * and the list of per-field validation problems; a client sees it as a problem
 * (core/problem.h), written by http/response.c. */
#ifndef SEGMENTD_CORE_ERROR_H
#define SEGMENTD_CORE_ERROR_H

#include <stddef.h>

#define ERR_MAX_ITEMS 50       /* problems reported per request; more set `truncated` */
#define ERR_POINTER_MAX 160    /* JSON Pointer text, e.g. /constraints/1/constraints/0/relation */
#define ERR_DETAIL_MAX 240

#define MUSTCHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

typedef struct err_item {
    char pointer[ERR_POINTER_MAX];
    char detail[ERR_DETAIL_MAX];
} err_item;

/* What an error is about. */
typedef enum err_kind {
    ERR_REQUEST = 0, /* a request's: status is the HTTP status of its answer */
    ERR_STARTUP,     /* starting or a command (configuration, listening, migrations, a
                      * token): no HTTP status, the detail is printed and segmentd stops */
} err_kind;

typedef struct seg_error {
    err_kind kind;
    int status;             /* HTTP status; 0 = no error of a request (see err_is_set) */
    const char *code;       /* stable machine-readable code, static string */
    const char *title;      /* short human title, static string */
    char detail[512];       /* safe to show the client */
    char log_detail[512];   /* only for the log, never sent */
    const char *www_authenticate; /* static header value for 401/403, or NULL */
    int retry_after;        /* seconds for Retry-After on 503/429, 0 = none */
    int n_items;
    int truncated;
    err_item items[ERR_MAX_ITEMS];
} seg_error;

/* Resets an error to "no error" without touching the item storage. */
void err_clear(seg_error *e);

/* Sets an HTTP status, code and a formatted client-safe detail; title from the status.
 * Errors outside a request (start-up, configuration) are err_startup's. */
void err_set(seg_error *e, int status, const char *code, const char *fmt, ...) PRINTF_LIKE(4, 5);

/* Sets a start-up error: kind ERR_STARTUP, no HTTP status (0), code and detail. */
void err_startup(seg_error *e, const char *code, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Whether e holds an error of either kind. */
int err_is_set(const seg_error *e);

/* Appends a log-only detail (never sent to the client). */
void err_log(seg_error *e, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Adds one validation problem at a JSON Pointer. The first call turns the error into
 * 422 "validation_failed" unless a status is already set. */
void err_add(seg_error *e, const char *pointer, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* The standard reason phrase / problem title for an HTTP status. */
const char *err_title_for(int status);

#endif
