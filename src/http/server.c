/* libmicrohttpd glue: the daemon, the three-phase request lifecycle (headers, body,
 * final call), early refusals, the access log, and graceful shutdown.
 *
 * Threading: MHD's epoll thread pool (SEGMENTD_THREADS workers). Handlers block on
 * libpq; the pool is oversized against the cores and statement_timeout bounds the
 * worst case. Measured against thread-per-connection in ../shared/notes/libraries.md
 * §1.1 (pool: 22.7–26 µs CPU per DB request, TPC: 34–37 µs).
 *
 * Accepting: segmentd owns the listening socket and one acceptor thread hands each new
 * connection to MHD (MHD_add_connection, which spreads them over the workers by socket
 * number). MHD_quiesce_daemon is not used: libmicrohttpd 0.9.75 aborted in it once in
 * the test suite at SIGTERM ("Failed to remove listen FD from epoll set"), most likely
 * racing a pool worker that takes the listening socket out of its own epoll set at its
 * connection limit. Stopping the acceptor stops accepting, with no such race.
 *
 * Loop mode (SEGMENTD_HTTP_MODE=loop): SEGMENTD_LOOPS threads, each an event loop
 * (core/fiber.h) driving a libmicrohttpd daemon of its own in external-epoll mode. The
 * acceptor deals connections out in turn. A request's handler runs on a fiber; when it
 * waits for PostgreSQL the connection is suspended and the loop serves others, and the
 * fiber resumes it with its answer. Nothing of a request leaves its loop's thread: no
 * hand-off between threads, no thread asleep per statement in flight. The connection
 * limits are counted here (the daemons each see only their share). */
#include "http/server.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/fiber.h"
#include "core/log.h"
#include "http/metrics.h"
#include "http/response.h"
#include "http/router.h"

typedef struct rq_priv {
    struct MHD_Connection *conn;
    uint64_t start_ns;
    char *buf;                 /* body bytes received so far */
    size_t len, cap;
    size_t drained;
    bool too_big;
    bool answered;             /* a response was queued in the first call */
    bool close_after;          /* the connection cannot be reused after the answer */
    bool authenticated;
    bool suspended;            /* loop mode: suspended while its fiber waits */
    int run;                   /* loop mode: RUN_* */
    struct http_loop *loop;
    http_request rq;
} rq_priv;

enum { RUN_NONE = 0, RUN_ON_FIBER, RUN_DONE };

/* A request's record is 22 KiB (the error's table of field problems), too big for
 * malloc's per-thread cache: each thread keeps up to RQ_KEEP (350 KiB) that its finished
 * requests left, instead of a malloc and free of that size per request (callgrind: 0.8k
 * instructions fewer a get-by-id). A thread-exit destructor frees a thread's list. */
#define RQ_KEEP 16
static __thread rq_priv *rq_kept;
static __thread int rq_n_kept;
static pthread_key_t rq_key;
static pthread_once_t rq_once = PTHREAD_ONCE_INIT;

static void rq_kept_free(void *unused)
{
    (void)unused;
    while (rq_kept) {
        rq_priv *p = rq_kept;
        rq_kept = *(rq_priv **)(void *)p;
        free(p);
    }
    rq_n_kept = 0;
}

static void rq_key_make(void)
{
    (void)pthread_key_create(&rq_key, rq_kept_free);
}

static rq_priv *rq_new(void)
{
    rq_priv *p = rq_kept;
    if (p) {
        rq_kept = *(rq_priv **)(void *)p;
        rq_n_kept--;
        return p;
    }
    return malloc(sizeof *p);
}

static void rq_release(rq_priv *p)
{
    if (rq_n_kept >= RQ_KEEP) {
        free(p);
        return;
    }
    if (!rq_n_kept) { /* the destructor that frees this thread's list at its exit */
        pthread_once(&rq_once, rq_key_make);
        (void)pthread_setspecific(rq_key, p);
    }
    *(rq_priv **)(void *)p = rq_kept;
    rq_kept = p;
    rq_n_kept++;
}

/* One event loop of the loop mode: its daemon, and the connections the acceptor dealt
 * it, waiting in its inbox. */
typedef struct http_loop {
    int index;
    struct MHD_Daemon *d;
    pthread_t thread;
    bool started;
    int inbox_fd;              /* eventfd: new connections, or stop */
    pthread_mutex_t mu;
    struct inbox_conn {
        int fd;
        socklen_t sl;
        struct sockaddr_storage ss;
    } *inbox;
    int n_inbox, cap_inbox;
    bool stop;                 /* under mu */
} http_loop;

static http_loop *loops_;
static int n_loops_;

static struct MHD_Daemon *daemon_;
static const seg_config *scfg;
static http_router srouter;
static volatile int draining;
static int inflight;
static int bound_port;
static int listen_fd = -1;
static int stop_fd = -1;       /* eventfd: wakes the acceptor to stop */
static pthread_t acceptor;
static bool acceptor_running;

static size_t body_limit(const http_route *r)
{
    return r && r->body == BODY_BULK_JSON ? scfg->max_bulk_body_bytes : scfg->max_body_bytes;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Request ids: 16 hex digits from a per-thread generator seeded by getrandom(2). */
static void gen_request_id(char *out, size_t cap)
{
    static __thread uint64_t state;
    if (!state) {
        if (getrandom(&state, sizeof state, 0) != sizeof state || !state)
            state = now_ns() | 1;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if (cap < 17)
        return;
    /* "%016llx" without snprintf's format parsing (on every request) */
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        out[15 - i] = hex[(state >> (4 * i)) & 15];
    out[16] = '\0';
}

static bool request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

const char *http_header(http_request *rq, const char *name)
{
    rq_priv *p = rq->priv;
    return MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, name);
}

const char *http_query(http_request *rq, const char *name, bool *bad)
{
    rq_priv *p = rq->priv;
    const char *v = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(p->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &len) != MHD_YES)
        return NULL;
    if (!v)
        v = "";
    if (strlen(v) != len || len > 1024)
        *bad = true;
    return v;
}

typedef struct unknown_scan {
    const char *const *allowed;
    const char *first;
} unknown_scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    unknown_scan *s = cls;
    for (const char *const *a = s->allowed; *a; a++)
        if (!strcmp(*a, key))
            return MHD_YES;
    s->first = key;
    return MHD_NO;
}

const char *http_unknown_query(http_request *rq, const char *const *allowed)
{
    rq_priv *p = rq->priv;
    unknown_scan s = {allowed, NULL};
    MHD_get_connection_values(p->conn, MHD_GET_ARGUMENT_KIND, scan_query, &s);
    return s.first;
}

/* Parses a strong entity tag "123" (optionally W/ – which never matches If-Match). */
static long long parse_tag(const char **pp, bool *bad)
{
    const char *p = *pp;
    long long v = 0;
    int digits = 0;
    bool weak = false;
    if (!strncmp(p, "W/", 2)) {
        weak = true;
        p += 2;
    }
    if (*p != '"') {
        *bad = true;
        return -1;
    }
    p++;
    while (*p >= '0' && *p <= '9' && digits < 18) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (*p != '"') {
        /* an opaque tag we never issued: skip it, it matches nothing */
        const char *q = strchr(p, '"');
        if (!q) {
            *bad = true;
            return -1;
        }
        *pp = q + 1;
        return -2;
    }
    *pp = p + 1;
    return weak || digits == 0 ? -2 : v;
}

int http_if_match_list(http_request *rq, long long *out, int cap, bool *present)
{
    const char *h = http_header(rq, "If-Match");
    bool bad = false;
    int n = 0;
    *present = false;
    if (!h)
        return 0;
    while (*h == ' ')
        h++;
    if (!strcmp(h, "*"))
        return 0;
    *present = true;
    while (*h) {
        long long v = parse_tag(&h, &bad);
        if (bad)
            return -1;
        if (v >= 0) {
            if (n == cap)
                return -1;
            out[n++] = v;
        }
        while (*h == ' ')
            h++;
        if (*h == ',') {
            h++;
            while (*h == ' ')
                h++;
        } else if (*h) {
            return -1;
        }
    }
    return n;
}

bool http_if_match_ok(http_request *rq, long long current)
{
    const char *h = http_header(rq, "If-Match");
    bool bad = false;
    if (!h)
        return true;
    while (*h == ' ')
        h++;
    if (!strcmp(h, "*"))
        return true;
    while (*h && !bad) {
        if (parse_tag(&h, &bad) == current)
            return true;
        while (*h == ' ' || *h == ',')
            h++;
    }
    return false;
}

bool http_accepts(http_request *rq, const char *media_type)
{
    const char *a = http_header(rq, "Accept");
    const char *slash = strchr(media_type, '/');
    if (!a)
        return true;
    while (*a) {
        while (*a == ' ' || *a == ',')
            a++;
        size_t n = strcspn(a, ",;");
        while (n && a[n - 1] == ' ')
            n--;
        if ((n == strlen(media_type) && !strncasecmp(a, media_type, n)) ||
            (n == 3 && !strncmp(a, "*/*", 3)) ||
            (slash && n == (size_t)(slash - media_type) + 2 &&
             !strncasecmp(a, media_type, (size_t)(slash - media_type) + 1) && a[n - 1] == '*'))
            return true;
        a += strcspn(a, ",");
    }
    return false;
}

/* Media type without parameters, compared case-insensitively. */
static bool content_type_is(const char *ct, const char *want)
{
    size_t n;
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ')
        n--;
    return n == strlen(want) && !strncasecmp(ct, want, n);
}

static enum MHD_Result send_answer(rq_priv *p)
{
    http_request *rq = &p->rq;
    struct MHD_Response *resp;
    char *problem = NULL;
    size_t len;
    enum MHD_Result ret;

    if (rq->err.status) {
        problem = http_problem_render(&rq->err, rq->request_id, &len);
        if (rq->body_free)
            rq->body_free(rq->body_free_cls);
        rq->body_free = NULL;
        rq->status = rq->err.status;
        resp = MHD_create_response_from_buffer(len, problem, MHD_RESPMEM_MUST_FREE);
        if (resp)
            MHD_add_response_header(resp, "Content-Type", "application/problem+json");
    } else {
        /* the body's owner is freed by libmicrohttpd once the answer is sent (its free
         * callback has http_free_fn's type): no record of our own per answer */
        http_free_fn fn = rq->body_free;
        rq->body_free = NULL;
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            rq->body_out_len, (void *)(uintptr_t)rq->body_out, fn, rq->body_free_cls);
        if (!resp && fn)
            fn(rq->body_free_cls);
        if (resp && rq->content_type)
            MHD_add_response_header(resp, "Content-Type", rq->content_type);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
    if (rq->etag[0] && !rq->err.status)
        MHD_add_response_header(resp, "ETag", rq->etag);
    if (rq->location[0] && !rq->err.status)
        MHD_add_response_header(resp, "Location", rq->location);
    if (rq->route && rq->route->scope)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (rq->err.status) {
        if (rq->err.www_authenticate)
            MHD_add_response_header(resp, "WWW-Authenticate", rq->err.www_authenticate);
        if (rq->err.retry_after) {
            char ra[16];
            snprintf(ra, sizeof ra, "%d", rq->err.retry_after);
            MHD_add_response_header(resp, "Retry-After", ra);
        }
        if (rq->err.status == 405 && rq->location[0])
            MHD_add_response_header(resp, "Allow", rq->location); /* Allow list kept there */
    }
    if (draining || p->too_big || p->close_after || (p->answered && p->rq.route && p->rq.route->body))
        MHD_add_response_header(resp, "Connection", "close");
    ret = MHD_queue_response(p->conn, (unsigned)rq->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Refuses in the first call, before any body is read. */
static enum MHD_Result answer_early(rq_priv *p)
{
    p->answered = true;
    return send_answer(p);
}

static enum MHD_Result first_call(rq_priv *p, const char *method, const char *url)
{
    http_request *rq = &p->rq;
    const char *rid = MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "X-Request-Id");
    char allow[128];
    const char *why = NULL;
    const http_route *route = NULL;

    if (rid && request_id_ok(rid))
        snprintf(rq->request_id, sizeof rq->request_id, "%s", rid);
    else
        gen_request_id(rq->request_id, sizeof rq->request_id);

    /* RFC 9112 6.1: a transfer coding other than chunked is not implemented. MHD would
     * take the body length as unknown and read until the client closes: refuse it now,
     * before any body is read, and close the connection (its framing is unknown). */
    const char *te = MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") != 0) {
        p->close_after = true;
        err_set(&rq->err, 501, "unsupported_transfer_encoding",
                "Transfer-Encoding \"%.40s\" is not supported: send the body with "
                "Content-Length or Transfer-Encoding: chunked", te);
        return answer_early(p);
    }

    switch (router_match(&srouter, method, url, &route, rq->param, sizeof rq->param, allow,
                         sizeof allow, &why)) {
    case ROUTE_NOT_FOUND:
        err_set(&rq->err, 404, "not_found", "no resource at this path");
        return answer_early(p);
    case ROUTE_BAD_METHOD:
        err_set(&rq->err, 405, "method_not_allowed", "%s is not allowed here: use %s", method,
                allow);
        snprintf(rq->location, sizeof rq->location, "%s", allow);
        return answer_early(p);
    case ROUTE_BAD_PARAM:
        rq->route = route;
        err_set(&rq->err, 400, "invalid_path_parameter", "\"%.64s\" is not a valid %s: %s",
                rq->param, route->param_what ? route->param_what : "id", why ? why : "malformed");
        err_add(&rq->err, "/path/id", "%s", why ? why : "malformed");
        rq->err.status = 400;
        return answer_early(p);
    case ROUTE_FOUND:
        break;
    }
    rq->route = route;
    if (route->scope) {
        const char *authz = MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "Authorization");
        if (auth_verify(authz, (long long)time(NULL), &rq->principal, &rq->err) ||
            auth_require(&rq->principal, route->scope, &rq->err))
            return answer_early(p);
        p->authenticated = true;
    }
    if (route->body) {
        const char *ct = MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "Content-Type");
        const char *cl = MHD_lookup_connection_value(p->conn, MHD_HEADER_KIND, "Content-Length");
        bool ok = content_type_is(ct, "application/json") ||
                  (route->body == BODY_MERGE_PATCH && content_type_is(ct, "application/merge-patch+json"));
        if (!ok) {
            err_set(&rq->err, 415, "unsupported_media_type",
                    "the body must be sent with Content-Type: %s",
                    route->body == BODY_MERGE_PATCH
                        ? "application/merge-patch+json or application/json"
                        : "application/json");
            return answer_early(p);
        }
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == '\0' && n > body_limit(route)) {
                p->too_big = true;
                err_set(&rq->err, 413, "body_too_large",
                        "the body is %llu bytes: at most %zu bytes are accepted", n,
                        body_limit(route));
                return answer_early(p);
            }
        }
    }
    return MHD_YES;
}

static void run_handler(rq_priv *p)
{
    p->rq.route->handler(&p->rq);
    if (!p->rq.err.status && !p->rq.status)
        err_set(&p->rq.err, 500, "internal", "the handler produced no answer");
}

/* Loop mode: the handler on its fiber; the answer is sent from the access handler,
 * called again once the connection is resumed. */
static void run_on_fiber(void *arg)
{
    rq_priv *p = arg;
    run_handler(p);
    p->run = RUN_DONE;
    if (p->suspended) {
        p->suspended = false;
        MHD_resume_connection(p->conn);
    }
}

static __thread http_loop *this_loop;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    rq_priv *p = *con_cls;
    if (!p) {
        p = rq_new();
        if (!p)
            return MHD_NO;
        memset(p, 0, offsetof(rq_priv, rq));
        memset(&p->rq, 0, offsetof(http_request, err));
        err_clear(&p->rq.err);
        p->rq.status = 0;
        p->rq.content_type = NULL;
        p->rq.body_out = NULL;
        p->rq.body_out_len = 0;
        p->rq.body_free = NULL;
        p->rq.etag[0] = '\0';
        p->rq.location[0] = '\0';
        p->rq.priv = p;
        p->rq.method = method;
        p->rq.path = url;
        p->conn = conn;
        p->loop = this_loop;
        p->start_ns = now_ns();
        *con_cls = p;
        __atomic_fetch_add(&inflight, 1, __ATOMIC_SEQ_CST);
        return first_call(p, method, url);
    }
    if (p->answered) {
        *upload_data_size = 0; /* MHD discards the rest and closes */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (p->too_big || !p->rq.route->body) {
            p->drained += n;
            /* a body on a route without one is ignored; an oversized chunked body is
             * read up to 4x the limit so that the 413 can be sent, then cut */
            return p->drained > 4 * body_limit(p->rq.route) ? MHD_NO : MHD_YES;
        }
        if (p->len + n > body_limit(p->rq.route)) {
            p->too_big = true;
            p->drained += n;
            free(p->buf);
            p->buf = NULL;
            return MHD_YES;
        }
        if (p->len + n > p->cap) {
            size_t ncap = p->cap ? p->cap : 4096;
            while (ncap < p->len + n)
                ncap *= 2;
            if (ncap > body_limit(p->rq.route))
                ncap = body_limit(p->rq.route);
            char *nb = realloc(p->buf, ncap);
            if (!nb)
                return MHD_NO;
            p->buf = nb;
            p->cap = ncap;
        }
        memcpy(p->buf + p->len, upload_data, n);
        p->len += n;
        return MHD_YES;
    }
    /* final call: the whole request is here */
    if (p->too_big) {
        err_set(&p->rq.err, 413, "body_too_large", "the body is larger than %zu bytes",
                body_limit(p->rq.route));
        return send_answer(p);
    }
    if (p->loop) {
        if (p->run == RUN_DONE) /* called again after its fiber resumed the connection */
            return send_answer(p);
        if (p->run == RUN_ON_FIBER)
            return MHD_YES;
        p->rq.body = p->buf;
        p->rq.body_len = p->len;
        p->run = RUN_ON_FIBER;
        switch (fiber_spawn(run_on_fiber, p)) {
        case 1:
            return send_answer(p);
        case 0: /* it waits: the fiber resumes the connection when it has the answer */
            MHD_suspend_connection(p->conn);
            p->suspended = true;
            return MHD_YES;
        default:
            p->run = RUN_DONE;
            err_set(&p->rq.err, 503, "overloaded", "the server cannot take this request now");
            p->rq.err.retry_after = 1;
            return send_answer(p);
        }
    }
    p->rq.body = p->buf;
    p->rq.body_len = p->len;
    run_handler(p);
    return send_answer(p);
}

static void access_log(rq_priv *p, uint64_t dur_us)
{
    char line[1024];
    size_t len = 0;
    http_request *rq = &p->rq;
    if (!log_enabled(LOG_INFO))
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len += (size_t)snprintf(line, sizeof line,
                            "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"info\","
                            "\"msg\":\"request\",\"method\":",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, ts.tv_nsec / 1000000);
    len = log_json_str(line, len, sizeof line, rq->method);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"route\":");
    len = log_json_str(line, len, sizeof line, rq->route ? rq->route->pattern : "unmatched");
    len += (size_t)snprintf(line + len, sizeof line - len,
                            ",\"status\":%d,\"duration_ms\":%.3f,\"request_id\":", rq->status,
                            (double)dur_us / 1000.0);
    len = log_json_str(line, len, sizeof line, rq->request_id);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"tenant\":");
    len = log_json_str(line, len, sizeof line, p->authenticated ? rq->principal.tenant : "");
    if (rq->err.status && (rq->err.log_detail[0] || rq->err.code)) {
        len += (size_t)snprintf(line + len, sizeof line - len, ",\"error\":");
        len = log_json_str(line, len, sizeof line, rq->err.code ? rq->err.code : "");
        if (rq->err.log_detail[0]) {
            len += (size_t)snprintf(line + len, sizeof line - len, ",\"detail\":");
            len = log_json_str(line, len, sizeof line, rq->err.log_detail);
        }
    }
    if (len + 2 >= sizeof line)
        len = sizeof line - 3;
    line[len++] = '}';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rq_priv *p = *con_cls;
    if (!p)
        return;
    uint64_t dur_us = (now_ns() - p->start_ns) / 1000u;
    if (!p->rq.status)
        p->rq.status = p->rq.err.status ? p->rq.err.status : 499; /* client went away */
    metrics_observe(p->rq.route, p->rq.status, dur_us);
    access_log(p, dur_us);
    if (p->rq.body_free)
        p->rq.body_free(p->rq.body_free_cls);
    free(p->buf);
    rq_release(p);
    *con_cls = NULL;
    __atomic_fetch_sub(&inflight, 1, __ATOMIC_SEQ_CST);
}

/* Percent-decoding that never produces a NUL byte: "%00" stays as the three
 * characters, so "/v1/segments/x%00y" cannot route as "/v1/segments/x". */
static size_t unescape_no_nul(void *cls, struct MHD_Connection *c, char *s)
{
    char *r = strchr(s, '%'), *w; /* most paths have no escape: nothing to move */
    if (!r)
        return strlen(s);
    w = r;
    while (*r) {
        if (*r == '%' && r[1] && r[2]) {
            char hex[3] = {r[1], r[2], 0};
            char *end;
            unsigned long v = strtoul(hex, &end, 16);
            if (*end == '\0' && v != 0 && isxdigit((unsigned char)r[1])) {
                *w++ = (char)v;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_WARN, "libmicrohttpd", "detail", msg, NULL);
}

/* True if another socket already listens on ai's address: a bind without SO_REUSEPORT
 * fails then (SO_REUSEADDR still passes connections in TIME_WAIT). */
static bool address_taken(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool taken = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                 bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/* The listening socket: SO_REUSEADDR and SO_REUSEPORT (a new process can bind before
 * the old one stops, for zero-downtime restarts), non-blocking for the acceptor. As the
 * kernel then shares the connections between every process on the address without a
 * word, a start beside another listener says so in the log (seen: a forgotten segmentd
 * took half of a benchmark's connections). */
static int open_listener(const struct addrinfo *ai, seg_error *err)
{
    int one = 1;
    if (address_taken(ai))
        log_msg(LOG_WARN, "another process already listens on this address: the kernel shares "
                          "the connections with it (SO_REUSEPORT), as during a restart's overlap",
                NULL);
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    (void)err;
    return fd;
}

/* ---- loop mode: connection limits ------------------------------------------------------ */

/* Open connections, all loops together, and per client address when
 * SEGMENTD_PER_IP_LIMIT is set: counted when the acceptor takes a connection, uncounted
 * when its daemon closes it (or refuses it). */
#define IP_BUCKETS 256
typedef struct ip_count {
    struct ip_count *next;
    int family;
    unsigned char addr[16];
    int n;
} ip_count;
static pthread_mutex_t limits_mu = PTHREAD_MUTEX_INITIALIZER;
static int open_conns;
static ip_count *ip_table[IP_BUCKETS];

static size_t ip_key(const struct sockaddr *sa, unsigned char out[16], int *family)
{
    *family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

static ip_count **ip_slot(const struct sockaddr *sa, unsigned char key[16], int *family, size_t *n)
{
    *n = ip_key(sa, key, family);
    unsigned h = 2166136261u;
    for (size_t i = 0; i < *n; i++)
        h = (h ^ key[i]) * 16777619u;
    ip_count **pp = &ip_table[h % IP_BUCKETS];
    while (*pp && ((*pp)->family != *family || memcmp((*pp)->addr, key, *n)))
        pp = &(*pp)->next;
    return pp;
}

/* Counts a new connection in; false (nothing counted) past a limit. */
static bool limits_take(const struct sockaddr *sa)
{
    bool ok = false;
    pthread_mutex_lock(&limits_mu);
    if (open_conns < scfg->connection_limit) {
        ok = true;
        if (scfg->per_ip_limit > 0) {
            unsigned char key[16];
            int family;
            size_t n;
            ip_count **pp = ip_slot(sa, key, &family, &n);
            if (!*pp && (*pp = calloc(1, sizeof **pp))) {
                (*pp)->family = family;
                memcpy((*pp)->addr, key, n);
            }
            if (!*pp || (*pp)->n >= scfg->per_ip_limit)
                ok = false;
            else
                (*pp)->n++;
        }
        if (ok)
            open_conns++;
    }
    pthread_mutex_unlock(&limits_mu);
    return ok;
}

static void limits_give(const struct sockaddr *sa)
{
    pthread_mutex_lock(&limits_mu);
    open_conns--;
    if (scfg->per_ip_limit > 0 && sa) {
        unsigned char key[16];
        int family;
        size_t n;
        ip_count **pp = ip_slot(sa, key, &family, &n);
        if (*pp && --(*pp)->n <= 0) {
            ip_count *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
    }
    pthread_mutex_unlock(&limits_mu);
}

/* The daemon tells when a connection it took ends; *socket_context marks the ones it
 * took (a refused one is given back by the loop, which sees MHD_add_connection fail). */
static __thread bool conn_started;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_started = true;
        *socket_context = conn;
        return;
    }
    if (!*socket_context)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    limits_give(ci ? ci->client_addr : NULL);
    *socket_context = NULL;
}

/* ---- loop mode: the loops ---------------------------------------------------------------- */

/* Acceptor: the next loop in turn gets the connection (closed at once past a limit,
 * unanswered, as libmicrohttpd does). */
static void deal_connection(int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    static unsigned next;
    if (!limits_take((const struct sockaddr *)ss)) {
        close(fd);
        return;
    }
    http_loop *l = &loops_[next++ % (unsigned)n_loops_];
    pthread_mutex_lock(&l->mu);
    if (l->n_inbox == l->cap_inbox) {
        int ncap = l->cap_inbox ? l->cap_inbox * 2 : 64;
        void *ni = realloc(l->inbox, (size_t)ncap * sizeof *l->inbox);
        if (!ni) {
            pthread_mutex_unlock(&l->mu);
            limits_give((const struct sockaddr *)ss);
            close(fd);
            return;
        }
        l->inbox = ni;
        l->cap_inbox = ncap;
    }
    struct inbox_conn *c = &l->inbox[l->n_inbox++];
    c->fd = fd;
    c->sl = sl;
    memcpy(&c->ss, ss, sl);
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    ssize_t w = write(l->inbox_fd, &one, sizeof one);
    (void)w;
}

static void on_inbox(void *arg, uint32_t events)
{
    http_loop *l = arg;
    uint64_t v;
    ssize_t r = read(l->inbox_fd, &v, sizeof v);
    (void)r;
    (void)events;
    for (;;) {
        struct inbox_conn c;
        pthread_mutex_lock(&l->mu);
        if (!l->n_inbox) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        c = l->inbox[--l->n_inbox];
        pthread_mutex_unlock(&l->mu);
        conn_started = false;
        if (MHD_add_connection(l->d, c.fd, (struct sockaddr *)&c.ss, c.sl) != MHD_YES &&
            !conn_started)
            limits_give((struct sockaddr *)&c.ss); /* MHD closed the socket */
    }
}

/* The daemon's epoll fd is readable: its turn comes after the fibers' (loop_main), so
 * that one MHD_run a turn serves both the new events and the resumed connections. */
static void on_daemon(void *arg, uint32_t events)
{
    (void)arg;
    (void)events;
}

static void *loop_main(void *arg)
{
    http_loop *l = arg;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    this_loop = l;
    if (fiber_loop_init(l->index, n_loops_) || !di || fiber_loop_watch(di->epoll_fd, on_daemon, l) ||
        fiber_loop_watch(l->inbox_fd, on_inbox, l)) {
        log_msg(LOG_ERROR, "event loop: cannot start", "detail", strerror(errno), NULL);
        abort(); /* a loop that cannot watch its daemon would hang its connections */
    }
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        MHD_UNSIGNED_LONG_LONG to;
        int ms = -1;
        if (MHD_get_timeout(l->d, &to) == MHD_YES)
            ms = to > 1000 ? 1000 : (int)to;
        (void)fiber_loop_turn(ms);
        /* always: the answers of resumed connections, idle timeouts, and the daemon's own
         * ready list (its sockets are edge-triggered: work left from the last run shows
         * only as a zero timeout, not as a readable epoll fd) */
        MHD_run(l->d);
    }
    if (!fiber_loop_live())
        fiber_loop_free();
    return NULL;
}

static int stop_loops(bool all);

static struct MHD_Daemon *start_daemon(const seg_config *cfg, unsigned flags,
                                       const struct MHD_OptionItem *threads)
{
    static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    bool loop = cfg->http_mode == HTTP_MODE_LOOP;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_ARRAY, threads ? threads : none,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        /* loop mode counts the limits itself (limits_take): these are a backstop */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, loop ? 0u : (unsigned)cfg->per_ip_limit,
        /* a connection's buffer for the request line, headers and body chunks: 16 KiB
         * (a larger header block is 431). libmicrohttpd zeroes the whole of it after
         * every request, so its size is paid per request (measured with callgrind: 48 KB
         * of memset a request at 32 KiB). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, loop ? on_connection : NULL, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_no_nul, NULL,
        MHD_OPTION_END);
}

static int start_loops(const seg_config *cfg, unsigned flags, seg_error *err)
{
    n_loops_ = cfg->loops;
    loops_ = calloc((size_t)n_loops_, sizeof *loops_);
    if (!loops_)
        goto fail;
    for (int i = 0; i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        l->index = i;
        l->inbox_fd = -1;
        pthread_mutex_init(&l->mu, NULL);
        l->d = start_daemon(cfg, flags, NULL);
        l->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!l->d || l->inbox_fd < 0)
            goto fail;
    }
    for (int i = 0; i < n_loops_; i++) {
        if (pthread_create(&loops_[i].thread, NULL, loop_main, &loops_[i]))
            goto fail;
        loops_[i].started = true;
    }
    return 0;
fail:
    err_set(err, 1, "listen", "cannot start the event loops: %s", strerror(errno));
    stop_loops(true);
    return -1;
}

/* Stops the loops; their daemons too unless a request is still on a fiber (after the
 * grace period): a daemon must not be stopped with suspended connections. */
static int stop_loops(bool all)
{
    int left = 0;
    for (int i = 0; loops_ && i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        if (l->started) {
            pthread_mutex_lock(&l->mu);
            l->stop = true;
            pthread_mutex_unlock(&l->mu);
            uint64_t one = 1;
            ssize_t w = write(l->inbox_fd, &one, sizeof one);
            (void)w;
            pthread_join(l->thread, NULL);
            l->started = false;
        }
    }
    for (int i = 0; loops_ && i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        for (int k = 0; k < l->n_inbox; k++)
            close(l->inbox[k].fd);
        free(l->inbox);
        if (l->d && (all || !__atomic_load_n(&inflight, __ATOMIC_SEQ_CST)))
            MHD_stop_daemon(l->d);
        else if (l->d)
            left++;
        if (l->inbox_fd >= 0)
            close(l->inbox_fd);
        pthread_mutex_destroy(&l->mu);
    }
    if (!left) {
        free(loops_);
        loops_ = NULL;
        n_loops_ = 0;
    }
    return left;
}

/* Accepts until stop_fd is signalled and hands every connection to MHD, which refuses
 * (and closes) it past the connection or per-IP limit. */
static void *accept_loop(void *arg)
{
    (void)arg;
    struct pollfd pfd[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERROR, "acceptor: poll failed", "detail", strerror(errno), NULL);
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (pfd[1].revents)
            break;
        for (;;) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    /* out of descriptors or memory: back off instead of spinning */
                    log_msg(LOG_WARN, "acceptor: cannot accept", "detail", strerror(errno), NULL);
                    struct timespec ts = {0, 10 * 1000 * 1000};
                    nanosleep(&ts, NULL);
                }
                break; /* EAGAIN: all taken; ECONNABORTED, EINTR: poll again */
            }
            if (n_loops_) {
                deal_connection(fd, &ss, sl);
                continue;
            }
            /* MHD closes the socket itself when it refuses it */
            (void)MHD_add_connection(daemon_, fd, (struct sockaddr *)&ss, sl);
        }
    }
    return NULL;
}

int http_server_start(const seg_config *cfg, const http_route *routes, size_t n_routes,
                      seg_error *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    scfg = cfg;
    if (router_init(&srouter, routes, n_routes)) {
        err_set(err, 1, "internal", "more than %d routes", ROUTER_MAX);
        return -1;
    }
    metrics_init(routes, n_routes);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (gai) {
        err_set(err, 1, "config", "SEGMENTD_LISTEN: cannot resolve \"%s\": %s", cfg->listen_host,
                gai_strerror(gai));
        return -1;
    }
    listen_fd = open_listener(ai, err);
    freeaddrinfo(ai);
    if (listen_fd < 0) {
        if (!err->status)
            err_set(err, 1, "listen", "SEGMENTD_LISTEN: cannot listen on %s:%d: %s",
                    cfg->listen_host, cfg->listen_port, strerror(errno));
        return -1;
    }
    /* The epoll pool is the default (see the top of this file); thread-per-connection
     * stays selectable so that the benchmark can compare both on the same machine. */
    if (cfg->http_mode == HTTP_MODE_LOOP) {
        if (start_loops(cfg, MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                 MHD_USE_NO_LISTEN_SOCKET, err)) {
            close(listen_fd);
            listen_fd = -1;
            return -1;
        }
    } else {
        unsigned flags = cfg->http_mode == HTTP_MODE_TPC
                             ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                   MHD_USE_ITC | MHD_USE_ERROR_LOG
                             : MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
        struct MHD_OptionItem pool[] = {
            {MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL},
            {MHD_OPTION_END, 0, NULL},
        };
        daemon_ = start_daemon(cfg, flags | MHD_USE_NO_LISTEN_SOCKET,
                               cfg->http_mode == HTTP_MODE_TPC ? NULL : pool);
        if (!daemon_) {
            err_set(err, 1, "listen", "cannot start the HTTP server: %s", strerror(errno));
            close(listen_fd);
            listen_fd = -1;
            return -1;
        }
    }
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0 || pthread_create(&acceptor, NULL, accept_loop, NULL)) {
        err_set(err, 1, "listen", "cannot start the acceptor thread: %s", strerror(errno));
        if (daemon_)
            MHD_stop_daemon(daemon_);
        daemon_ = NULL;
        stop_loops(true);
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    acceptor_running = true;
    return 0;
}

int http_server_port(void)
{
    return bound_port;
}

static void stop_accepting(void)
{
    if (acceptor_running) {
        uint64_t one = 1;
        ssize_t w = write(stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(acceptor, NULL);
        acceptor_running = false;
    }
    if (listen_fd >= 0) {
        close(listen_fd); /* new clients get ECONNREFUSED at once (notes §1.5) */
        listen_fd = -1;
    }
    if (stop_fd >= 0) {
        close(stop_fd);
        stop_fd = -1;
    }
}

void http_server_stop(int grace_s)
{
    if (!daemon_ && !n_loops_)
        return;
    stop_accepting();
    draining = 1;
    uint64_t deadline = now_ns() + (uint64_t)grace_s * 1000000000u;
    while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) > 0 && now_ns() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = __atomic_load_n(&inflight, __ATOMIC_SEQ_CST);
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    stop_loops(false);
    if (left > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", left);
        log_msg(LOG_WARN, "shutdown grace period over with requests in flight", "requests", n, NULL);
    }
}
