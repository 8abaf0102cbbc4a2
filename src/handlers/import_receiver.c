/* A device import's own thread: it takes the pieces of the NDJSON body that the request
 * side (import_stream.c) queues, splits lines, has the workers (import_lines.c) validate
 * each as a device and stages the valid ones through the store, on a PostgreSQL session of
 * its own. Once the whole body is stored the import is merging and the answer is 202; a
 * body that never ends fails the import, and nothing of it reaches devices. An
 * Idempotency-Key is import_idempotency.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fiber.h"
#include "core/log.h"
#include "handlers/import_receiver.h"

#define MAX_IN_FLIGHT 4          /* batches of lines out with the workers at once */
#define PROGRESS_LINES 50000     /* the counts are stored at least this often, */
#define PROGRESS_NS 1000000000u  /* and a COPY stays open at most this long */
#define IDLE_WAIT_NS 200000000u  /* waiting longer than this for the body, the COPY is ended */
#define IMPORTS_PATH "/v1/devices/imports"

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
    size_t max = r->cfg->max_body_bytes;
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

void import_answer(receiver *r, int status, char *doc, const seg_error *e)
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
        import_answer(r, 0, NULL, e);
        return;
    }
    while (r->rq)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void import_drop_pieces(receiver *r)
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

void import_receive(receiver *r)
{
    seg_error err;
    err_clear(&err);
    store_import *im = NULL;
    int claim = import_idem_open(&r->idem, r->cfg, r->tenant, r->id, &im, &err);
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
    r->lines = import_lines_start(store_import_seq(im), r->cfg->max_body_bytes);
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
            import_answer(r, 202, doc, NULL);
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

void import_receiver_free(receiver *r)
{
    import_lines_stop(r->lines);
    import_idem_free(&r->idem);
    import_drop_pieces(r);
    free(r->line);
    json_text_release(&r->errors);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
