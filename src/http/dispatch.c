/* One request through libmicrohttpd: routing, auth, body limits, the handler on a fiber,
 * and the answer.
 *
 * libmicrohttpd calls the access handler three ways: first with the headers (we route,
 * authenticate and check the body's type and length, and may answer at once), then with
 * each chunk of the body (kept, up to the route's limit), and last with nothing more to
 * read. Then the handler runs on a fiber of the connection's loop; where it waits for
 * PostgreSQL the connection is suspended and the loop serves others, and the fiber
 * resumes it with its answer. The completion callback logs, counts and frees. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber.h"
#include "core/metrics.h"
#include "http/admit.h"
#include "http/http_private.h"
#include "http/request_parse.h"
#include "http/response.h"
#include "http/router.h"

enum { RUN_NONE = 0, RUN_ON_FIBER, RUN_DONE };
/* A BODY_STREAM request's stream: not opened, taking the body, or over (ended or refused:
 * the stream owns what is left). */
enum { STREAM_NONE = 0, STREAM_OPEN, STREAM_OVER, STREAM_REFUSED };
/* A refused stream's body is read on (and dropped) up to this much, so that its answer can
 * be sent once it ends (libmicrohttpd queues no answer in the middle of a body); past it the
 * connection is cut. */
#define STREAM_DRAIN_MAX ((size_t)64 * 1024 * 1024)

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
    bool suspended;            /* suspended while its fiber waits */
    int run;                   /* RUN_*; a stream's answer sets RUN_DONE from its own thread */
    int stream;                /* STREAM_* */
    int loop;                  /* the loop whose daemon has the connection */
    http_request rq;
} rq_priv;

static const seg_config *scfg;
static http_router srouter;
static const http_route *sroutes;   /* the table, for the metrics' route index */
static volatile int draining;
static int inflight;

int http_dispatch_init(const seg_config *cfg, const http_route *routes, size_t n_routes)
{
    scfg = cfg;
    if (router_init(&srouter, routes, n_routes))
        return -1;
    sroutes = routes;
    for (size_t i = 0; i < n_routes; i++)
        metrics_route(i + 1, routes[i].method, routes[i].pattern);
    return 0;
}

int http_inflight(void)
{
    return __atomic_load_n(&inflight, __ATOMIC_SEQ_CST);
}

void http_set_draining(void)
{
    draining = 1;
}

struct MHD_Connection *http_conn_of(http_request *rq)
{
    return ((rq_priv *)rq->priv)->conn;
}

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

static size_t body_limit(const http_route *r)
{
    return http_body_limit(scfg, r);
}

/* A streamed answer's read and done, behind libmicrohttpd's content reader. */
typedef struct out_tramp {
    struct MHD_Connection *conn;
    long (*read)(void *cls, char *buf, size_t max, void *conn);
    http_free_fn done;
    void *cls;
} out_tramp;

static ssize_t out_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    out_tramp *t = cls;
    (void)pos;
    long n = t->read(t->cls, buf, max, t->conn);
    if (n == HTTP_OUT_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n; /* 0: the reader suspended the connection */
}

static void out_free(void *cls)
{
    out_tramp *t = cls;
    t->done(t->cls);
    free(t);
}

void http_out_suspend(void *conn)
{
    MHD_suspend_connection(conn);
}

void http_wake(const http_waker *w)
{
    MHD_resume_connection(w->conn);
    http_loops_wake(w->loop);
}

void http_reply_stream(http_request *rq, int status, const char *content_type,
                       long (*read)(void *cls, char *buf, size_t max, void *conn),
                       http_free_fn done, void *cls, http_waker *waker)
{
    rq_priv *p = rq->priv;
    rq->status = status;
    rq->content_type = content_type;
    rq->out_read = read;
    rq->out_done = done;
    rq->out_cls = cls;
    waker->conn = p->conn;
    waker->loop = p->loop;
}

/* The streamed answer's response; NULL when memory ran out (done has run then). */
static struct MHD_Response *stream_response(http_request *rq)
{
    out_tramp *t = malloc(sizeof *t);
    struct MHD_Response *resp = NULL;
    if (t) {
        *t = (out_tramp){((rq_priv *)rq->priv)->conn, rq->out_read, rq->out_done, rq->out_cls};
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, out_read, t, out_free);
    }
    if (!resp) {
        free(t);
        rq->out_done(rq->out_cls);
    }
    rq->out_read = NULL;
    return resp;
}

static enum MHD_Result send_answer(rq_priv *p)
{
    http_request *rq = &p->rq;
    struct MHD_Response *resp;
    char *problem = NULL;
    size_t len;
    enum MHD_Result ret;

    if (rq->out_read && rq->err.status) { /* answered with a problem after all */
        rq->out_read = NULL;
        rq->out_done(rq->out_cls);
    }
    if (rq->out_read) {
        resp = stream_response(rq);
        if (resp && rq->content_type)
            MHD_add_response_header(resp, "Content-Type", rq->content_type);
    } else if (rq->err.status) {
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
    for (const char *const *h = rq->extra_headers; h && *h && !rq->err.status; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    if (rq->replica_lag[0] && !rq->err.status)
        MHD_add_response_header(resp, "Replica-Lag", rq->replica_lag);
    if (rq->route && rq->route->scope)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (rq->rate.limited) {
        char now[RATE_FIELD_MAX];
        MHD_add_response_header(resp, "RateLimit-Policy", rate_fields(&rq->rate, now));
        MHD_add_response_header(resp, "RateLimit", now);
    }
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

static const char *header(void *p, const char *name)
{
    return MHD_lookup_connection_value(((rq_priv *)p)->conn, MHD_HEADER_KIND, name);
}

/* The first call: the request line and headers are here, the body is not. */
static enum MHD_Result first_call(rq_priv *p, const char *method, const char *url)
{
    http_admission adm;
    int rc = http_admit(&srouter, scfg, method, url, header, p, &p->rq, &adm);
    p->close_after = adm.close_after;
    p->too_big = adm.too_big;
    p->authenticated = adm.authenticated;
    if (rc)
        return answer_early(p);
    if (p->rq.route->body == BODY_STREAM) {
        if (p->rq.route->stream->open(&p->rq))
            return answer_early(p);
        p->stream = STREAM_OPEN;
    }
    return MHD_YES;
}

void http_stream_pause(http_request *rq)
{
    MHD_suspend_connection(((rq_priv *)rq->priv)->conn);
}

/* From the stream's thread: the loop must run its daemon to see the connection resumed. */
void http_stream_resume(http_request *rq)
{
    rq_priv *p = rq->priv;
    MHD_resume_connection(p->conn);
    http_loops_wake(p->loop);
}

void http_stream_answered(http_request *rq)
{
    rq_priv *p = rq->priv;
    __atomic_store_n(&p->run, RUN_DONE, __ATOMIC_RELEASE);
    MHD_resume_connection(p->conn);
    http_loops_wake(p->loop);
}

/* A piece of a streamed body, handed over as it came. */
static enum MHD_Result stream_chunk(rq_priv *p, const char *data, size_t n)
{
    if (p->stream == STREAM_REFUSED) {
        p->drained += n;
        return p->drained > STREAM_DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (p->rq.route->stream->data(&p->rq, data, n) == 0)
        return MHD_YES;
    p->stream = STREAM_REFUSED; /* answered (rq->err) once the body ends */
    p->close_after = true;
    return MHD_YES;
}

/* A chunk of the body: kept up to the route's limit; past it only counted. */
static enum MHD_Result body_chunk(rq_priv *p, const char *data, size_t n)
{
    if (p->stream == STREAM_OPEN || p->stream == STREAM_REFUSED)
        return stream_chunk(p, data, n);
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
    memcpy(p->buf + p->len, data, n);
    p->len += n;
    return MHD_YES;
}

/* The handler on its fiber; the answer is sent from the access handler, called again once
 * the connection is resumed. */
static void run_on_fiber(void *arg)
{
    rq_priv *p = arg;
    p->rq.route->handler(&p->rq);
    if (!p->rq.err.status && !p->rq.status)
        err_set(&p->rq.err, 500, "internal", "the handler produced no answer");
    p->run = RUN_DONE;
    if (p->suspended) {
        p->suspended = false;
        MHD_resume_connection(p->conn);
    }
}

/* The final call: the whole request is here. */
static enum MHD_Result last_call(rq_priv *p)
{
    if (p->too_big) {
        err_set(&p->rq.err, 413, "body_too_large", "the body is larger than %zu bytes",
                body_limit(p->rq.route));
        return send_answer(p);
    }
    if (p->stream == STREAM_REFUSED)
        return send_answer(p);
    int run = __atomic_load_n(&p->run, __ATOMIC_ACQUIRE);
    if (run == RUN_DONE) /* called again after its fiber (or stream) resumed the connection */
        return send_answer(p);
    if (run == RUN_ON_FIBER)
        return MHD_YES;
    if (p->stream == STREAM_OPEN) { /* the stream answers when it has stored the body */
        p->run = RUN_ON_FIBER;
        p->stream = STREAM_OVER;
        MHD_suspend_connection(p->conn);
        p->rq.route->stream->end(&p->rq);
        return MHD_YES;
    }
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

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
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
        arena_init(&p->rq.arena);
        p->rq.status = 0;
        p->rq.content_type = NULL;
        p->rq.body_out = NULL;
        p->rq.body_out_len = 0;
        p->rq.body_free = NULL;
        p->rq.out_read = NULL;
        p->rq.etag[0] = '\0';
        p->rq.location[0] = '\0';
        p->rq.replica_lag[0] = '\0';
        p->rq.extra_headers = NULL;
        p->rq.rate.limited = false;
        p->rq.priv = p;
        p->rq.method = method;
        p->rq.path = url;
        p->conn = conn;
        p->loop = fiber_loop_index();
        p->start_ns = fiber_now_ns();
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
        return body_chunk(p, upload_data, n);
    }
    return last_call(p);
}

void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    rq_priv *p = *con_cls;
    if (!p)
        return;
    uint64_t dur_us = (fiber_now_ns() - p->start_ns) / 1000u;
    if (!p->rq.status)
        p->rq.status = p->rq.err.status ? p->rq.err.status : 499; /* client went away */
    if (p->stream == STREAM_OPEN) /* the body never ended */
        p->rq.route->stream->abort(&p->rq);
    metrics_observe(p->rq.route ? (size_t)(p->rq.route - sroutes) + 1 : 0, p->rq.status, dur_us);
    http_access_log(&p->rq, p->authenticated, dur_us);
    if (p->rq.body_free)
        p->rq.body_free(p->rq.body_free_cls);
    if (p->rq.out_read) { /* a streamed answer that never started: the client went first */
        p->rq.out_read = NULL;
        p->rq.out_done(p->rq.out_cls);
    }
    arena_release(&p->rq.arena); /* the answer is gone: its body may have lived there */
    free(p->buf);
    rq_release(p);
    *con_cls = NULL;
    __atomic_fetch_sub(&inflight, 1, __ATOMIC_SEQ_CST);
}

/* Percent-decoding that never produces a NUL byte: "%00" stays as the three
 * characters, so "/v1/segments/x%00y" cannot route as "/v1/segments/x". */
size_t http_unescape_no_nul(void *cls, struct MHD_Connection *c, char *s)
{
    return http_unescape(s);
}
