/* GET …/segments/{id}/members?format=ndjson: every member of a segment, one JSON object a
 * line ({"id": …}, or with fields=all the device as GET /v1/devices/{id} answers it), never
 * held whole. A thread of the export's own reads the store's cursor in batches (store/export.h)
 * into a short queue of blocks; the connection's loop sends them as the client takes them, and
 * sleeps (suspended) while the queue is empty. At most EXPORT_QUEUED blocks wait: a slow client
 * slows the reading, memory stays flat. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/common.h"
#include "handlers/evaluate.h"
#include "handlers/handlers.h"
#include "store/export.h"

#define EXPORT_QUEUED 4          /* blocks waiting to be sent, at most */
#define EXPORT_FETCH_IDS 5000    /* rows a FETCH reads: ids */
#define EXPORT_FETCH_WHOLE 1000  /* rows a FETCH reads: whole devices */

typedef struct block {
    struct block *next;
    size_t len, sent;
    char *text;
} block;

typedef struct export_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* the reader took a block, or the answer is over */
    block *head, *tail;
    int queued;
    bool done, failed;           /* the thread read everything / failed */
    bool waiting;                /* the connection sleeps until a block comes */
    bool gone;                   /* the answer is over: the waker is dead */
    int refs;                    /* the thread and the answer */
    bool whole;
    store_export *x;
    http_waker waker;
    json_text building;          /* the block being filled by the thread */
    struct export_job *next_live;
} export_job;

/* Every export under way, for the shutdown. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    export_job *live;
    int n;
    bool stopping;
} reg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, false};

static void job_unref(export_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    for (block *b = j->head, *n; b; b = n) {
        n = b->next;
        free(b->text);
        free(b);
    }
    json_text_release(&j->building);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static bool stopping(void)
{
    return __atomic_load_n(&reg.stopping, __ATOMIC_ACQUIRE);
}

/* Takes a job off the registry (under reg.mu). */
static void unregister(export_job *j)
{
    for (export_job **pp = &reg.live; *pp; pp = &(*pp)->next_live)
        if (*pp == j) {
            *pp = j->next_live;
            break;
        }
    reg.n--;
    pthread_cond_broadcast(&reg.cv);
}

/* ---- the connection's side (its loop) -------------------------------------------------- */

static long out_read(void *cls, char *buf, size_t max, void *conn)
{
    export_job *j = cls;
    long n;
    pthread_mutex_lock(&j->mu);
    block *b = j->head;
    if (b) {
        size_t k = b->len - b->sent < max ? b->len - b->sent : max;
        memcpy(buf, b->text + b->sent, k);
        b->sent += k;
        if (b->sent == b->len) {
            j->head = b->next;
            if (!j->head)
                j->tail = NULL;
            j->queued--;
            free(b->text);
            free(b);
            pthread_cond_signal(&j->cv);
        }
        n = (long)k;
    } else if (j->done) {
        n = j->failed ? HTTP_OUT_FAIL : HTTP_OUT_END;
    } else {
        j->waiting = true;
        http_out_suspend(conn);
        n = HTTP_OUT_WAIT;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

static void out_done(void *cls)
{
    export_job *j = cls;
    pthread_mutex_lock(&j->mu);
    j->gone = true;
    pthread_cond_signal(&j->cv);
    if (j->x)
        store_export_cancel(j->x); /* a FETCH under way ends now */
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

/* ---- the export's thread ---------------------------------------------------------------- */

static void add_row(void *cls, const char *s, size_t len)
{
    export_job *j = cls;
    if (j->whole) {
        json_text_put(&j->building, s, len);
    } else {
        JSON_TEXT_LIT(&j->building, "{\"id\":");
        json_text_string(&j->building, s, len, JSON_ESC_PG);
        JSON_TEXT_LIT(&j->building, "}");
    }
    JSON_TEXT_LIT(&j->building, "\n");
}

/* Queues the block built, waiting while EXPORT_QUEUED wait already. false when the answer
 * is over (or the text failed): stop reading. */
static bool push(export_job *j)
{
    size_t len;
    char *text = json_text_take(&j->building, &len);
    block *b = text ? malloc(sizeof *b) : NULL;
    if (!b) {
        free(text);
        return false;
    }
    *b = (block){NULL, len, 0, text};
    pthread_mutex_lock(&j->mu);
    while (j->queued >= EXPORT_QUEUED && !j->gone && !stopping())
        pthread_cond_wait(&j->cv, &j->mu);
    bool gone = j->gone;
    if (!gone) {
        if (j->tail)
            j->tail->next = b;
        else
            j->head = b;
        j->tail = b;
        j->queued++;
        if (j->waiting) {
            j->waiting = false;
            http_wake(&j->waker);
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (gone) {
        free(b->text);
        free(b);
    }
    return !gone;
}

static void *export_main(void *arg)
{
    export_job *j = arg;
    seg_error err;
    bool ok = true;
    err_clear(&err);
    for (;;) {
        int n = stopping() ? -1 : store_export_fetch(j->x, j->whole ? EXPORT_FETCH_WHOLE : EXPORT_FETCH_IDS,
                                                     add_row, j, &err);
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        if (!push(j)) {
            ok = false;
            break;
        }
    }
    pthread_mutex_lock(&j->mu);
    store_export *x = j->x;
    j->x = NULL; /* nobody cancels through it from now on */
    pthread_mutex_unlock(&j->mu);
    store_export_close(x);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->failed = !ok;
    if (j->waiting && !j->gone) {
        j->waiting = false;
        http_wake(&j->waker);
    }
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&reg.mu);
    unregister(j);
    pthread_mutex_unlock(&reg.mu);
    job_unref(j);
    return NULL;
}

/* ---- the handler ---------------------------------------------------------------------- */

int h_members_export(http_request *rq, const ev_rule *r, const char *segment, bool whole)
{
    export_job *j = calloc(1, sizeof *j);
    pthread_t t;
    pthread_attr_t attr;
    if (!j) {
        err_set(&rq->err, 500, "internal", "out of memory");
        return -1;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->whole = whole;
    j->refs = 2;
    pthread_mutex_lock(&reg.mu);
    bool refused = reg.stopping;
    pthread_mutex_unlock(&reg.mu);
    if (refused) {
        err_set(&rq->err, 503, "shutting_down", "segmentd is stopping; retry shortly");
        rq->err.retry_after = 1;
    }
    if (refused || store_export_open(r, rq->principal.tenant, segment, whole, &j->x, &rq->err)) {
        j->refs = 1;
        job_unref(j);
        return -1;
    }
    http_set_replica_lag(rq, store_export_lag(j->x));
    http_reply_stream(rq, 200, "application/x-ndjson", out_read, out_done, j, &j->waker);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&reg.mu);
    j->next_live = reg.live;
    reg.live = j;
    reg.n++;
    pthread_mutex_unlock(&reg.mu);
    if (pthread_create(&t, &attr, export_main, j)) {
        pthread_mutex_lock(&reg.mu);
        unregister(j);
        pthread_mutex_unlock(&reg.mu);
        store_export_close(j->x);
        j->x = NULL;
        j->done = j->failed = true; /* the answer ends at once, cut */
        job_unref(j);
    }
    pthread_attr_destroy(&attr);
    return 0;
}

void h_exports_stop(int wait_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_s;
    pthread_mutex_lock(&reg.mu);
    __atomic_store_n(&reg.stopping, true, __ATOMIC_RELEASE);
    for (export_job *j = reg.live; j; j = j->next_live) {
        pthread_mutex_lock(&j->mu);
        pthread_cond_signal(&j->cv);
        if (j->x)
            store_export_cancel(j->x);
        pthread_mutex_unlock(&j->mu);
    }
    while (reg.n > 0 && pthread_cond_timedwait(&reg.cv, &reg.mu, &until) == 0)
        ;
    pthread_mutex_unlock(&reg.mu);
}
