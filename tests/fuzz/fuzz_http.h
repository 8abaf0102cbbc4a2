/* A request driven through src/http/dispatch.c without a socket: the .c is included
 * (to reach its statics: scfg, srouter, rq_priv), the
 * libmicrohttpd calls that read the connection or queue the answer are replaced by
 * definitions here, and the two that make a response from a buffer are wrapped to keep
 * a copy of the body. The executable's definitions win over the shared library's, so
 * dispatch.c runs unchanged against a fake connection; handlers run on fibers of one
 * loop made for the fuzzer. Only one translation unit of a
 * target may include this file. */
#ifndef SEGMENTD_FUZZ_HTTP_H
#define SEGMENTD_FUZZ_HTTP_H

#include "http/dispatch.c"

#include <dlfcn.h>

#include "auth/auth.h"
#include "core/config.h"
#include "core/fiber.h"
#include "core/log.h"
#include "fuzz_common.h"
#include "core/metrics.h"

#define FAKE_MAX_VALUES 64

typedef struct fake_value {
    enum MHD_ValueKind kind;
    char *key;
    char *value;   /* NULL: a query argument without '=' */
    size_t value_len;
} fake_value;

/* Stands in for struct MHD_Connection: the values MHD would have parsed, and what the
 * server queued. */
typedef struct fake_conn {
    fake_value v[FAKE_MAX_VALUES];
    size_t n;
    int queued;
    unsigned status;
    bool header_refused;    /* a response header MHD would not accept */
    char *body;             /* a copy of the last response body made */
    size_t body_len;
} fake_conn;

static fake_conn *fuzz_inflight;  /* the request in flight (the fuzzers are single-threaded) */

static inline fake_conn *fc_of(struct MHD_Connection *c)
{
    return (fake_conn *)(void *)c;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
                                        enum MHD_ValueKind kind, const char *key)
{
    const char *v = NULL;
    size_t len;
    if (MHD_lookup_connection_value_n(connection, kind, key, key ? strlen(key) : 0, &v, &len) !=
        MHD_YES)
        return NULL;
    return v;
}

/* libmicrohttpd 0.9.75 compares names without regard to case for every kind and
 * returns the first match. */
enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *connection,
                                              enum MHD_ValueKind kind, const char *key,
                                              size_t key_size, const char **value_ptr,
                                              size_t *value_size_ptr)
{
    fake_conn *fc = fc_of(connection);
    for (size_t i = 0; i < fc->n; i++) {
        fake_value *fv = &fc->v[i];
        if (!(fv->kind & kind) || !key || strlen(fv->key) != key_size ||
            strncasecmp(fv->key, key, key_size))
            continue;
        if (value_ptr)
            *value_ptr = fv->value;
        if (value_size_ptr)
            *value_size_ptr = fv->value_len;
        return MHD_YES;
    }
    return MHD_NO;
}

int MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    fake_conn *fc = fc_of(connection);
    int n = 0;
    for (size_t i = 0; i < fc->n; i++) {
        if (!(fc->v[i].kind & kind))
            continue;
        n++;
        if (iterator && iterator(iterator_cls, fc->v[i].kind, fc->v[i].key, fc->v[i].value) != MHD_YES)
            break;
    }
    return n;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
    fake_conn *fc = fc_of(connection);
    FUZZ_CHECK(!fc->queued, "a second response queued (first %u, now %u)", fc->status, status_code);
    FUZZ_CHECK(status_code >= 100 && status_code <= 599, "status %u", status_code);
    fc->queued = 1;
    fc->status = status_code;
    /* MHD_add_response_header refuses values with CR or LF; server.c ignores the
     * result, so a header that should be there but is not shows up here. */
    fc->header_refused = MHD_get_response_header(response, "X-Request-Id") == NULL;
    return MHD_YES;
}

/* Response bodies are copied on the way into libmicrohttpd (the real functions, found
 * with RTLD_NEXT, still make the response): the server frees its buffer as soon as
 * the fake queue lets go of the response, before a harness could look at it. */
static inline void keep_body(const void *buf, size_t size)
{
    if (!fuzz_inflight)
        return;
    free(fuzz_inflight->body);
    fuzz_inflight->body = malloc(size + 1);
    if (!fuzz_inflight->body)
        abort();
    memcpy(fuzz_inflight->body, buf, size);
    fuzz_inflight->body[size] = '\0';
    fuzz_inflight->body_len = size;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
    static struct MHD_Response *(*real)(size_t, void *, enum MHD_ResponseMemoryMode);
    if (!real)
        real = (struct MHD_Response * (*)(size_t, void *, enum MHD_ResponseMemoryMode))
            dlsym(RTLD_NEXT, "MHD_create_response_from_buffer");
    if (!real)
        abort();
    keep_body(buffer, size);
    return real(size, buffer, mode);
}

struct MHD_Response *MHD_create_response_from_buffer_with_free_callback_cls(
    size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc, void *crfc_cls)
{
    static struct MHD_Response *(*real)(size_t, void *, MHD_ContentReaderFreeCallback, void *);
    if (!real)
        real = (struct MHD_Response * (*)(size_t, void *, MHD_ContentReaderFreeCallback, void *))
            dlsym(RTLD_NEXT, "MHD_create_response_from_buffer_with_free_callback_cls");
    if (!real)
        abort();
    keep_body(buffer, size);
    return real(size, buffer, crfc, crfc_cls);
}

static inline void fake_add(fake_conn *fc, enum MHD_ValueKind kind, const char *key, size_t klen,
                     const char *value, size_t vlen)
{
    if (fc->n >= FAKE_MAX_VALUES)
        return;
    fake_value *fv = &fc->v[fc->n++];
    fv->kind = kind;
    fv->key = strndup(key, klen);
    fv->value = value ? strndup(value, vlen) : NULL;
    if (!fv->key || (value && !fv->value))
        abort();
    fv->value_len = value ? strlen(fv->value) : 0;
}

/* Splits a query string as MHD_parse_arguments_ does: '&' between arguments, the
 * first '=' between name and value, '+' to space, then the server's own unescape
 * callback on each part. */
static inline void fake_parse_query(fake_conn *fc, const char *q, size_t len)
{
    char *copy = strndup(q, len);
    char *args = copy;
    if (!copy)
        abort();
    while (args && *args) {
        char *amp = strchr(args, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(args, '=');
        if (eq)
            *eq++ = '\0';
        for (char *c = args; *c; c++)
            if (*c == '+')
                *c = ' ';
        size_t klen = http_unescape_no_nul(NULL, NULL, args), vlen = 0;
        if (eq) {
            for (char *c = eq; *c; c++)
                if (*c == '+')
                    *c = ' ';
            vlen = http_unescape_no_nul(NULL, NULL, eq);
        }
        fake_add(fc, MHD_GET_ARGUMENT_KIND, args, klen, eq, vlen);
        args = amp ? amp + 1 : NULL;
    }
    free(copy);
}

static inline void fake_free(fake_conn *fc)
{
    for (size_t i = 0; i < fc->n; i++) {
        free(fc->v[i].key);
        free(fc->v[i].value);
    }
    free(fc->body);
    memset(fc, 0, sizeof *fc);
}

/* ---- configuration and tokens ---------------------------------------------------- */

static seg_config fuzz_cfg;
static bool fuzz_verbose; /* SEGMENTD_FUZZ_VERBOSE=1: print each request's answer */

/* HS256 with a 32-byte secret, small body limits so that 413 is reachable, quiet logs. */
static inline void fuzz_http_init(const http_route *routes, size_t n)
{
    seg_error err;
    err_clear(&err);
    fuzz_seed_jansson();
    fuzz_verbose = getenv("SEGMENTD_FUZZ_VERBOSE") != NULL;
    if (config_load_from_string(&fuzz_cfg,
                                "SEGMENTD_JWT_SECRET=fuzz-secret-0123456789abcdef0123456789\n"
                                "SEGMENTD_MAX_BODY_BYTES=4096\n"
                                "SEGMENTD_MAX_BULK_BODY_BYTES=16384\n"
                                "SEGMENTD_LOG_LEVEL=error\n",
                                &err)) {
        fprintf(stderr, "fuzz config: %s\n", err.detail);
        abort();
    }
    log_set_level(LOG_ERROR);
    auth_init(&fuzz_cfg);
    if (http_dispatch_init(&fuzz_cfg, routes, n) || fiber_loop_init(0, 1))
        abort();
}

/* A token the server accepts, so that inputs get past authentication: the header
 * value "@rw", "@r" or "@w" is replaced with one carrying those scopes. */
static inline char *fuzz_token_for(const char *value, size_t len)
{
    seg_error err;
    const char *scope;
    err_clear(&err);
    if (len == 3 && !memcmp(value, "@rw", 3))
        scope = "segments:read segments:write";
    else if (len == 2 && !memcmp(value, "@r", 2))
        scope = "segments:read";
    else if (len == 2 && !memcmp(value, "@w", 2))
        scope = "segments:write";
    else
        return NULL;
    char *tok = auth_mint("tenant-a", "fuzzer", scope, 3600, (long long)time(NULL), &err);
    FUZZ_CHECK(tok != NULL, "auth_mint: %s", err.detail);
    char *hdr = malloc(strlen(tok) + 8);
    if (!hdr)
        abort();
    sprintf(hdr, "Bearer %s", tok);
    free(tok);
    return hdr;
}

/* ---- one request ------------------------------------------------------------------- */

/* Runs a request through the three phases of on_request and on_completed, with the
 * body fed in chunks of at most chunk bytes. Returns the status queued (0: none: the
 * handler gave up the connection). Leaves fc holding the outcome. */
static inline unsigned fuzz_request(fake_conn *fc, const char *method, const char *url,
                             const char *body, size_t body_len, size_t chunk,
                             void (*inspect)(rq_priv *p, void *cls), void *cls)
{
    struct MHD_Connection *conn = (struct MHD_Connection *)(void *)fc;
    void *con_cls = NULL;
    size_t zero = 0;
    fuzz_inflight = fc;
    enum MHD_Result r = http_on_request(NULL, conn, url, method, "HTTP/1.1", NULL, &zero, &con_cls);
    rq_priv *p = con_cls;
    FUZZ_CHECK(p != NULL, "no request state after the first call");
    if (r == MHD_YES && !fc->queued) {
        size_t off = 0;
        while (off < body_len && r == MHD_YES) {
            size_t n = body_len - off < chunk ? body_len - off : chunk;
            size_t left = n;
            r = http_on_request(NULL, conn, url, method, "HTTP/1.1", body + off, &left, &con_cls);
            FUZZ_CHECK(left == 0, "upload data not consumed (%zu of %zu left)", left, n);
            off += n;
        }
        if (r == MHD_YES) {
            zero = 0;
            r = http_on_request(NULL, conn, url, method, "HTTP/1.1", NULL, &zero, &con_cls);
            FUZZ_CHECK(r == MHD_NO || fc->queued, "the final call queued nothing");
        }
    }
    if (fc->queued && p->rq.err.status) {
        json_error_t je;
        json_t *doc = json_loadb(fc->body, fc->body_len, 0, &je);
        FUZZ_CHECK(json_is_object(doc), "problem body is not JSON: %s", fc->body);
        json_decref(doc);
    }
    if (fc->queued) {
        FUZZ_CHECK(!fc->header_refused, "X-Request-Id was refused: \"%s\"", p->rq.request_id);
        FUZZ_CHECK(p->rq.err.status == 0 || fc->status == (unsigned)p->rq.err.status,
                   "queued %u for an error %d", fc->status, p->rq.err.status);
        fuzz_check_problem(&p->rq.err);
    }
    if (fuzz_verbose)
        fprintf(stderr, "%s %s -> %u %.*s\n", method, url, fc->queued ? fc->status : 0,
                (int)(fc->body_len < 600 ? fc->body_len : 600), fc->body ? fc->body : "");
    if (inspect)
        inspect(p, cls);
    http_on_completed(NULL, conn, &con_cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    FUZZ_CHECK(con_cls == NULL, "request state not released");
    fuzz_inflight = NULL;
    return fc->queued ? fc->status : 0;
}

#endif
