/* POST /v1/devices/imports: an NDJSON body received as it arrives. The loop thread hands
 * each piece to a queue (reading pauses while a megabyte waits); a thread of the import's
 * own splits lines, validates each as a device and stages the valid ones through the
 * store, on a PostgreSQL session of its own. Once the whole body is stored the import is
 * merging and the answer is 202; a body that never ends fails the import, and nothing of
 * it reaches devices. An Idempotency-Key is import_idempotency.c's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fiber.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/log.h"
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "handlers/import_idempotency.h"
#include "handlers/import_lines.h"
#include "store/imports.h"
#include "validate/device.h"

#define QUEUE_HIGH (1024 * 1024) /* bytes waiting that pause reading */
#define QUEUE_LOW (256 * 1024)   /* ... and resume it */
#define MAX_IN_FLIGHT 4          /* batches of lines out with the workers at once */
#define PROGRESS_LINES 50000     /* the counts are stored at least this often, */
#define PROGRESS_NS 1000000000u  /* and a COPY stays open at most this long */
#define IDLE_WAIT_NS 200000000u  /* waiting longer than this for the body, the COPY is ended */
#define IMPORTS_PATH "/v1/devices/imports"

typedef struct piece {
    struct piece *next;
    size_t len;
    char data[];
} piece;

typedef struct receiver {
    struct receiver *next;          /* in the list of receivers (under reg.mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: what the request side and the thread share */
    http_request *rq;               /* NULL once the request side let go */
    piece *head, *tail;
    size_t queued;
    unsigned long long arrived;     /* bytes handed over */
    bool paused, ended, aborted;
    const char *abort_code;         /* why an abort ended the body */
    bool failed;                    /* the thread failed: fail_err says why */
    seg_error fail_err;
    store_import *im;               /* set once open (for a cancel at shutdown) */
    /* the thread's own */
    char tenant[AUTH_TENANT_MAX + 1];
    char id[IDS_IMPORT_LEN + 1];
    import_idem idem;               /* its Idempotency-Key, if any */
    char *line;
    size_t line_len, line_cap;
    bool line_over;                 /* the line passed the limit: the rest is skipped */
    long long line_no, received, invalid, bytes;
    int n_errors;
    json_text errors;               /* "[...]" of the first IMPORT_ERRORS_KEPT invalid lines */
    import_lines *lines;            /* the workers validating its lines */
    long long staged_line;          /* lines up to this one are staged (or invalid) */
    long long lines_at_progress;
    bool merge_due;                 /* received whole: the merge worker is woken at the end */
    uint64_t progress_ns;
} receiver;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* a receiver left */
    receiver *list;
    int n;
    const seg_config *cfg;
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void h_imports_init(const seg_config *cfg)
{
    reg.cfg = cfg;
}

/* ---- the thread ---- */

static void counts_of(receiver *r, store_import_counts *n, long long last_line)
{
    n->bytes = r->bytes;
    n->received = r->received;
    n->invalid = r->invalid;
    n->last_line = last_line;
    n->errors_json = r->errors.p ? r->errors.p : "[]";
}

static void keep_error(receiver *r, const import_line_error *x)
{
    if (r->errors.len) {
        r->errors.len--; /* the closing ']' */
        JSON_TEXT_LIT(&r->errors, ",");
    } else {
        JSON_TEXT_LIT(&r->errors, "[");
    }
    JSON_TEXT_LIT(&r->errors, "{");
    json_text_key(&r->errors, "line");
    json_text_int(&r->errors, x->line);
    json_text_key(&r->errors, "pointer");
    json_text_cstr(&r->errors, x->pointer, JSON_ESC_PG);
    json_text_key(&r->errors, "detail");
    json_text_cstr(&r->errors, x->detail, JSON_ESC_PG);
    JSON_TEXT_LIT(&r->errors, "}]");
    r->n_errors++;
}

/* Takes back the validated batches, in line order, and stages their rows: those ready, then
 * (wait) the oldest ones while more than MAX_IN_FLIGHT are out, or (all) every one. */
static int drain(receiver *r, bool all, seg_error *err)
{
    for (;;) {
        int out = import_lines_in_flight(r->lines);
        import_batch *b = import_lines_next(r->lines, all || out > MAX_IN_FLIGHT);
        if (!b)
            return 0;
        int rc = 0;
        if (b->failed)
            rc = (err_set(err, 500, "internal", "the server ran out of memory reading the import"), -1);
        else if (b->copy.len)
            rc = store_import_copy(r->im, b->copy.p, b->copy.len, err);
        r->received += b->received;
        r->invalid += b->invalid;
        for (int i = 0; i < b->n_errors && r->n_errors < IMPORT_ERRORS_KEPT; i++)
            keep_error(r, &b->errors[i]);
        r->staged_line = b->last_line;
        import_batch_free(b);
        if (rc)
            return -1;
    }
}

/* One line (its ending taken off), handed to the workers. -1 with err set. */
static int take_line(receiver *r, const char *s, size_t n, bool over, seg_error *err)
{
    int rc = import_lines_add(r->lines, ++r->line_no, s, n, over);
    if (rc < 0)
        return (err_set(err, 500, "internal", "the server ran out of memory reading the import"), -1);
    return rc ? drain(r, false, err) : 0;
}

/* Splits a piece of the body into lines. */
static int feed(receiver *r, const char *s, size_t n, seg_error *err)
{
    size_t max = reg.cfg->max_body_bytes;
    while (n) {
        const char *nl = memchr(s, '\n', n);
        size_t k = nl ? (size_t)(nl - s) : n;
        if (!r->line_over && !r->line_len && nl) { /* a whole line in the piece: no copy */
            if (take_line(r, s, k, k > max + 1, err)) /* + 1: its '\r' (take_line checks the rest) */
                return -1;
        } else {
            if (!r->line_over && r->line_len + k > max + 1) /* + 1: its '\r' */
                r->line_over = true;
            if (!r->line_over) {
                if (r->line_len + k > r->line_cap) {
                    size_t cap = r->line_cap ? r->line_cap : 4096;
                    while (cap < r->line_len + k)
                        cap *= 2;
                    char *b = realloc(r->line, cap);
                    if (!b) {
                        err_set(err, 500, "internal", "out of memory");
                        return -1;
                    }
                    r->line = b;
                    r->line_cap = cap;
                }
                memcpy(r->line + r->line_len, s, k);
                r->line_len += k;
            }
            if (nl) {
                if (take_line(r, r->line, r->line_len, r->line_over, err))
                    return -1;
                r->line_len = 0;
                r->line_over = false;
            }
        }
        if (!nl)
            break;
        s = nl + 1;
        n -= k + 1;
    }
    return 0;
}

/* The counts stored, the COPY under way ended, when they are due. */
static int progress(receiver *r, bool now_, seg_error *err)
{
    uint64_t t = fiber_now_ns();
    if (!now_ && r->staged_line - r->lines_at_progress < PROGRESS_LINES && t - r->progress_ns < PROGRESS_NS)
        return 0;
    store_import_counts n;
    counts_of(r, &n, r->staged_line);
    r->lines_at_progress = r->staged_line;
    r->progress_ns = t;
    return store_import_progress(r->im, &n, err);
}

/* Takes the next piece; NULL when the body ended or was aborted (see r->ended, aborted).
 * While nothing arrives the COPY under way is ended, so that no statement waits on a
 * client. */
static piece *next_piece(receiver *r, seg_error *err, bool *store_failed)
{
    pthread_mutex_lock(&r->mu);
    while (!r->head && !r->ended && !r->aborted) {
        if (store_import_pending(r->im)) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += IDLE_WAIT_NS;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0 && !r->head && !r->ended &&
                !r->aborted) {
                pthread_mutex_unlock(&r->mu);
                if (progress(r, true, err)) {
                    *store_failed = true;
                    return NULL;
                }
                pthread_mutex_lock(&r->mu);
            }
        } else {
            pthread_cond_wait(&r->cv, &r->mu);
        }
    }
    piece *pc = r->aborted ? NULL : r->head;
    if (pc) {
        r->head = pc->next;
        if (!r->head)
            r->tail = NULL;
        r->queued -= pc->len;
        if (r->paused && r->queued < QUEUE_LOW && r->rq) {
            r->paused = false;
            http_stream_resume(r->rq);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return pc;
}

/* Answers the request (when it still waits) and lets it go. */
static void answer(receiver *r, int status, char *doc, const seg_error *e)
{
    pthread_mutex_lock(&r->mu);
    http_request *rq = r->rq;
    r->rq = NULL;
    if (rq) {
        if (e) {
            rq->err = *e;
        } else {
            snprintf(rq->location, sizeof rq->location, IMPORTS_PATH "/%s", r->id);
            http_reply(rq, status, "application/json", doc, strlen(doc), free, doc);
            doc = NULL;
        }
        http_stream_answered(rq);
    }
    pthread_mutex_unlock(&r->mu);
    free(doc);
}

/* Answers the request (when it still waits) with the answer its key kept, and lets it go. */
static void answer_replayed(receiver *r)
{
    pthread_mutex_lock(&r->mu);
    http_request *rq = r->rq;
    r->rq = NULL;
    if (rq) {
        import_idem_replay(&r->idem, rq);
        http_stream_answered(rq);
    }
    pthread_mutex_unlock(&r->mu);
}

/* A failure of the thread: kept for the request side, which refuses the body with it; the
 * thread then waits until the request side lets go. */
static void fail_thread(receiver *r, const seg_error *e)
{
    pthread_mutex_lock(&r->mu);
    r->failed = true;
    r->fail_err = *e;
    if (r->paused && r->rq) { /* the next piece, or the end, is refused with it */
        r->paused = false;
        http_stream_resume(r->rq);
    }
    if (r->ended) { /* the request waits for its answer */
        pthread_mutex_unlock(&r->mu);
        answer(r, 0, NULL, e);
        return;
    }
    while (r->rq)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void drop_pieces(receiver *r)
{
    while (r->head) {
        piece *pc = r->head;
        r->head = pc->next;
        free(pc);
    }
    r->tail = NULL;
    r->queued = 0;
}

/* A repeat of a key that answered a body: this body is only digested, and when it is the
 * same, the kept answer replayed; another body gets 422. Nothing is stored either way. */
static void replay(receiver *r)
{
    seg_error err;
    err_clear(&err);
    bool unused = false, failed = false;
    piece *pc;
    while ((pc = next_piece(r, &err, &unused))) {
        failed = failed || import_idem_digest(&r->idem, pc->data, pc->len, &err);
        free(pc);
    }
    pthread_mutex_lock(&r->mu);
    bool aborted = r->aborted;
    pthread_mutex_unlock(&r->mu);
    if (aborted)
        return;
    if (import_idem_repeat_check(&r->idem, failed, &err)) {
        fail_thread(r, &err);
    } else {
        store_import_key_release(r->im);
        answer_replayed(r);
    }
}

static void receive(receiver *r)
{
    seg_error err;
    err_clear(&err);
    store_import *im = NULL;
    int claim = import_idem_open(&r->idem, reg.cfg, r->tenant, r->id, &im, &err);
    if (!im) {
        fail_thread(r, &err);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->im = im;
    pthread_mutex_unlock(&r->mu);
    if (claim == STORE_IDEM_REPLAY) {
        replay(r);
        return;
    }
    r->lines = import_lines_start(store_import_seq(im), reg.cfg->max_body_bytes);
    if (!r->lines) {
        err_set(&err, 503, "overloaded", "the server cannot take an import now");
        err.retry_after = 5;
        store_import_fail(im, "interrupted", "the server could not start the import's workers", NULL, NULL);
        store_import_counted(false);
        fail_thread(r, &err);
        return;
    }
    r->progress_ns = fiber_now_ns();
    bool store_failed = false;
    for (;;) {
        piece *pc = next_piece(r, &err, &store_failed);
        if (!pc)
            break;
        r->bytes += (long long)pc->len;
        int rc = import_idem_digest(&r->idem, pc->data, pc->len, &err);
        if (!rc)
            rc = feed(r, pc->data, pc->len, &err);
        free(pc);
        if (rc || progress(r, false, &err)) {
            store_failed = true;
            break;
        }
    }
    pthread_mutex_lock(&r->mu);
    bool aborted = r->aborted;
    const char *why = r->abort_code;
    pthread_mutex_unlock(&r->mu);
    store_import_counts n;
    if (!store_failed && !aborted) { /* the body ended: its last line, then merging */
        char *doc = NULL, location[sizeof IMPORTS_PATH + IDS_IMPORT_LEN + 1];
        if ((r->line_len || r->line_over) && take_line(r, r->line, r->line_len, r->line_over, &err))
            store_failed = true;
        if (!store_failed && (import_lines_flush(r->lines) < 0 || drain(r, true, &err)))
            store_failed = true;
        counts_of(r, &n, r->line_no);
        snprintf(location, sizeof location, IMPORTS_PATH "/%s", r->id);
        if (!store_failed && import_idem_received(&r->idem, im, &n, location, &doc, &err) == 0) {
            store_import_counted_invalid(n.invalid);
            if (n.received == n.invalid)
                store_import_counted(true);
            r->merge_due = true;
            store_import_key_release(im);
            answer(r, 202, doc, NULL);
            return;
        }
        store_failed = true;
    }
    counts_of(r, &n, r->staged_line);
    pthread_mutex_lock(&r->mu);
    aborted = r->aborted; /* a stop may have cancelled the statement that failed */
    why = r->abort_code;
    pthread_mutex_unlock(&r->mu);
    if (store_failed && !aborted) {
        log_msg(LOG_WARN, "device import failed", "import", r->id, "detail", err.log_detail, NULL);
        store_import_fail(im, "interrupted", "the database failed while the body was stored: "
                                             "nothing of it was applied; send it again", &n, NULL);
        store_import_counted(false);
        fail_thread(r, &err);
        return;
    }
    static const struct { const char *code, *detail; } whys[] = {
        {"body_incomplete", "the body ended before it was complete: nothing of it was applied"},
        {"body_too_large", "the body passed SEGMENTD_MAX_IMPORT_BYTES: nothing of it was applied"},
        {"interrupted", "segmentd stopped before the body had arrived: nothing of it was applied"},
    };
    size_t w = 0;
    while (w < 2 && strcmp(whys[w].code, why ? why : "body_incomplete"))
        w++;
    store_import_fail(im, whys[w].code, whys[w].detail, &n, NULL);
    store_import_counted(false);
}

static void receiver_free(receiver *r)
{
    import_lines_stop(r->lines);
    import_idem_free(&r->idem);
    drop_pieces(r);
    free(r->line);
    json_text_release(&r->errors);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    receive(r);
    pthread_mutex_lock(&r->mu);
    store_import *im = r->im;
    r->im = NULL;
    while (r->rq) /* an abort or an answer came; wait for the request side to let go */
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    store_import_close(im);
    if (r->merge_due) /* now that its lock is free */
        store_import_merge_wake();
    pthread_mutex_lock(&reg.mu);
    receiver **pp = &reg.list;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    reg.n--;
    pthread_cond_broadcast(&reg.cv);
    pthread_mutex_unlock(&reg.mu);
    receiver_free(r);
    return NULL;
}

/* ---- the request side (the loop thread) ---- */

static int import_open(http_request *rq)
{
    static const char *const no_query[] = {NULL};
    if (h_only_query(rq, no_query))
        return -1;
    receiver *r = calloc(1, sizeof *r);
    if (!r || ids_import_id(r->id)) {
        free(r);
        err_set(&rq->err, 500, "internal", "cannot start the import");
        return -1;
    }
    snprintf(r->tenant, sizeof r->tenant, "%s", rq->principal.tenant);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (import_idem_init(&r->idem, rq, r->tenant)) {
        receiver_free(r);
        err_set(&rq->err, 500, "internal", "cannot start the import");
        return -1;
    }
    r->rq = rq;
    pthread_mutex_lock(&reg.mu);
    if (reg.n >= reg.cfg->imports_max) {
        pthread_mutex_unlock(&reg.mu);
        receiver_free(r);
        err_set(&rq->err, 503, "imports_busy",
                "%d imports are being received (SEGMENTD_IMPORTS_MAX); retry shortly", reg.cfg->imports_max);
        rq->err.retry_after = 5;
        return -1;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, receiver_main, r);
    pthread_attr_destroy(&attr);
    if (rc) {
        pthread_mutex_unlock(&reg.mu);
        receiver_free(r);
        err_set(&rq->err, 503, "overloaded", "the server cannot take an import now");
        rq->err.retry_after = 5;
        return -1;
    }
    r->next = reg.list;
    reg.list = r;
    reg.n++;
    pthread_mutex_unlock(&reg.mu);
    rq->stream_cls = r;
    return 0;
}

static int import_data(http_request *rq, const char *data, size_t n)
{
    receiver *r = rq->stream_cls;
    pthread_mutex_lock(&r->mu);
    if (r->failed) {
        rq->err = r->fail_err;
    } else if (r->arrived + n > reg.cfg->max_import_bytes) {
        err_set(&rq->err, 413, "body_too_large", "the body is larger than %zu bytes",
                reg.cfg->max_import_bytes);
        r->aborted = true;
        r->abort_code = "body_too_large";
    } else {
        piece *pc = malloc(sizeof *pc + n);
        if (pc) {
            pc->next = NULL;
            pc->len = n;
            memcpy(pc->data, data, n);
            if (r->tail)
                r->tail->next = pc;
            else
                r->head = pc;
            r->tail = pc;
            r->queued += n;
            r->arrived += n;
            if (r->queued > QUEUE_HIGH) {
                r->paused = true;
                http_stream_pause(rq);
            }
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            return 0;
        }
        err_set(&rq->err, 500, "internal", "out of memory");
        r->aborted = true;
    }
    r->rq = NULL; /* refused: the request side lets go */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return -1;
}

static void import_end(http_request *rq)
{
    receiver *r = rq->stream_cls;
    pthread_mutex_lock(&r->mu);
    r->ended = true;
    bool failed = r->failed;
    seg_error e = r->fail_err;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (failed) /* the thread failed before the end: it waits to be let go */
        answer(r, 0, NULL, &e);
}

static void import_abort(http_request *rq)
{
    receiver *r = rq->stream_cls;
    pthread_mutex_lock(&r->mu);
    r->aborted = true;
    if (!r->abort_code)
        r->abort_code = "body_incomplete";
    r->rq = NULL;
    drop_pieces(r);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

const http_stream_ops h_import_stream = {import_open, import_data, import_end, import_abort};

void h_imports_stop(int wait_s)
{
    pthread_mutex_lock(&reg.mu);
    for (receiver *r = reg.list; r; r = r->next) {
        pthread_mutex_lock(&r->mu);
        r->aborted = true;
        r->abort_code = "interrupted";
        r->rq = NULL; /* the loops are stopped: no request will be answered */
        if (r->im)
            store_import_cancel(r->im);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_s;
    while (reg.n > 0 && pthread_cond_timedwait(&reg.cv, &reg.mu, &until) == 0)
        ;
    pthread_mutex_unlock(&reg.mu);
}
