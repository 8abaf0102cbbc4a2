/* What a handler sees of an HTTP request, and how it answers. No libmicrohttpd types
 * cross this line, so handlers never include <microhttpd.h>. */
#ifndef SEGMENTD_HTTP_REQUEST_H
#define SEGMENTD_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/error.h"
#include "http/rate_limit.h"

typedef struct http_request http_request;
typedef void (*http_handler)(http_request *rq);
typedef void (*http_free_fn)(void *cls);

/* BODY_STREAM: an NDJSON body handed to the route's stream piece by piece as it arrives,
 * never kept whole (its limit: SEGMENTD_MAX_IMPORT_BYTES). */
enum http_body_kind { BODY_NONE = 0, BODY_JSON, BODY_MERGE_PATCH, BODY_BULK_JSON, BODY_STREAM };

/* What a BODY_STREAM route does with its body instead of a handler on a fiber. open and
 * data run on the connection's loop thread, inside libmicrohttpd's access handler. */
typedef struct http_stream_ops {
    /* The headers passed (route, token, media type, announced length): 0 takes the body,
     * -1 (rq->err set) refuses it at once. */
    int (*open)(http_request *rq);
    /* A piece of the body. 0 goes on; -1 (rq->err set) answers at once and reads no more;
     * from then on the stream must not touch rq. It may call http_stream_pause. */
    int (*data)(http_request *rq, const char *data, size_t n);
    /* The whole body arrived: the stream answers later, from any thread, by filling rq's
     * answer and calling http_stream_answered, its last touch of rq. */
    void (*end)(http_request *rq);
    /* The request ended before its body did (the client went, or the body was cut): when
     * this returns the stream must never touch rq again. Not called after a refusal. */
    void (*abort)(http_request *rq);
} http_stream_ops;

/* One row of the routing table (declared in main.c). A pattern segment "{id}" matches
 * one path segment, checked by check_param before the handler runs. */
typedef struct http_route {
    const char *method;
    const char *pattern;
    http_handler handler;
    unsigned scope;               /* AUTH_SCOPE_*; 0 = no token needed */
    enum http_body_kind body;
    bool (*check_param)(const char *value, const char **why);
    const char *param_what;       /* "segment id" for messages */
    const http_stream_ops *stream; /* BODY_STREAM: what takes the body (handler is NULL) */
    /* a second "{name}" of the pattern, checked after the first */
    bool (*check_param2)(const char *value, const char **why);
    const char *param2_what;
    const char *param2_name;      /* its name in the pattern, for the problem's pointer */
    bool evaluation;              /* rate-limited as an evaluation, not as a read or write */
} http_route;

/* The request's context: what it asked (route, path, body), who asks (principal), its
 * memory and deferred cleanups (arena: released in libmicrohttpd's completion callback,
 * after the answer is sent), the error it answers with, and the answer. */
struct http_request {
    const http_route *route;
    const char *method;
    const char *path;
    char param[264];              /* the {id} of the path, already checked (device ids: 255 characters) */
    char param2[264];             /* a second path parameter ({deviceId}), already checked */
    const char *body;             /* not NUL-terminated */
    size_t body_len;
    void *stream_cls;             /* a BODY_STREAM route's own state for this request */
    const char *idempotency_key;  /* a POST's Idempotency-Key, checked at admission (NULL: none) */
    void *txn;                    /* handlers/: the store handle whose transaction guards the
                                   * key (h_store hands it to the handler), else NULL */
    auth_principal principal;
    char request_id[72];
    seg_error err;                /* handlers fill this to answer with a problem */
    seg_arena arena;              /* everything the handler takes: arena_alloc, arena_defer */

    /* the answer */
    int status;
    const char *content_type;
    const char *body_out;
    size_t body_out_len;
    http_free_fn body_free;
    void *body_free_cls;
    /* a streamed answer (http_reply_stream) */
    long (*out_read)(void *cls, char *buf, size_t max, void *conn);
    http_free_fn out_done;
    void *out_cls;
    char etag[48];
    char location[320];           /* a device's: "/v1/devices/" and an id of 255 */
    char replica_lag[16];         /* Replica-Lag (ms) of an answer read on a replica, or "" */
    rate_state rate;              /* a rate-limited route's: RateLimit-Policy and RateLimit */
    /* more headers of a successful answer: name, value, name, value, ..., NULL (static) */
    const char *const *extra_headers;

    void *priv;                   /* http/dispatch.c's own state */
};

/* Answers with a buffer; free_fn(cls) runs once the response is gone (NULL: static, or
 * memory of the request's arena, released after the answer is sent). */
void http_reply(http_request *rq, int status, const char *content_type, const char *body,
                size_t len, http_free_fn free_fn, void *cls);
/* Answers with a JSON value (reference stolen), serialised compactly. */
void http_reply_json(http_request *rq, int status, json_t *owned_body);
/* Answers with no body (204). */
void http_reply_empty(http_request *rq, int status);

/* A streamed answer, chunked, for a body made while it is sent (a member export). read(cls,
 * buf, max, conn) runs on the connection's loop whenever the socket takes more: it returns
 * the bytes it wrote into buf (1 to max), HTTP_OUT_END at the end, HTTP_OUT_FAIL to cut the
 * answer short (the client sees a truncated chunked body), or HTTP_OUT_WAIT after calling
 * http_out_suspend(conn): the connection then sleeps until http_wake of the waker this
 * fills. done(cls) runs once, when the answer is over (sent, cut, or the client gone), and
 * also when it never started; after done returns, the waker must not be used. */
#define HTTP_OUT_WAIT 0L
#define HTTP_OUT_END (-1L)
#define HTTP_OUT_FAIL (-2L)
typedef struct http_waker {
    void *conn;
    int loop;
} http_waker;
void http_reply_stream(http_request *rq, int status, const char *content_type,
                       long (*read)(void *cls, char *buf, size_t max, void *conn),
                       http_free_fn done, void *cls, http_waker *waker);
void http_out_suspend(void *conn);
/* From any thread: the connection of a streamed answer reads on. */
void http_wake(const http_waker *w);

/* The ETag of the representation: a strong tag quoting the version. */
void http_set_etag(http_request *rq, long long version);
void http_set_location(http_request *rq, const char *prefix, const char *id);
/* Replica-Lag: the answer was read on a read replica this far (ms) behind; lag_ms < 0: on the
 * primary, no header. */
void http_set_replica_lag(http_request *rq, int lag_ms);

/* A stream's flow control (BODY_STREAM). pause: only from the stream's data callback,
 * stops reading the body; resume, from any thread, reads on. answered: from any thread,
 * after end, sends the answer rq holds. */
void http_stream_pause(http_request *rq);
void http_stream_resume(http_request *rq);
void http_stream_answered(http_request *rq);

/* A request header (case-insensitive name), or NULL. */
const char *http_header(http_request *rq, const char *name);
/* A query parameter, or NULL. Sets *bad when present but holding a NUL byte or more
 * than 1024 bytes: the caller answers 400 for it. */
const char *http_query(http_request *rq, const char *name, bool *bad);
/* Names every query parameter not in allowed (NULL-terminated); returns the first
 * unknown name or NULL. */
const char *http_unknown_query(http_request *rq, const char *const *allowed);

/* The request's path and its query parameters as received ("/p?a=1&b"; decoded), in the
 * request's arena; NULL when memory ran out. */
const char *http_target(http_request *rq);

/* Parses If-Match against the current version. Returns true when the request may go
 * on: no If-Match, "*", or a list containing the current strong tag. */
bool http_if_match_ok(http_request *rq, long long current_version);
/* Does the client accept this media type (exactly or by wildcard)? */
bool http_accepts(http_request *rq, const char *media_type);

#endif
