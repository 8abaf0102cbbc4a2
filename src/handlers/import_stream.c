/* POST /v1/devices/imports, the request side (the loop thread): one receiver per upload,
 * at most SEGMENTD_IMPORTS_MAX at once, each with a thread of its own that runs
 * import_receive (import_receiver.c). The body is handed to the receiver's queue as it
 * arrives, and reading pauses while a megabyte waits; at shutdown every receiver is
 * interrupted and waited for. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/handlers.h"
#include "handlers/import_receiver.h"

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

/* ---- the thread, from its start to its end ---- */

static void *receiver_main(void *arg)
{
    receiver *r = arg;
    import_receive(r);
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
    import_receiver_free(r);
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
    r->cfg = reg.cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (import_idem_init(&r->idem, rq, r->tenant)) {
        import_receiver_free(r);
        err_set(&rq->err, 500, "internal", "cannot start the import");
        return -1;
    }
    r->rq = rq;
    pthread_mutex_lock(&reg.mu);
    if (reg.n >= reg.cfg->imports_max) {
        pthread_mutex_unlock(&reg.mu);
        import_receiver_free(r);
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
        import_receiver_free(r);
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
        import_answer(r, 0, NULL, &e);
}

static void import_abort(http_request *rq)
{
    receiver *r = rq->stream_cls;
    pthread_mutex_lock(&r->mu);
    r->aborted = true;
    if (!r->abort_code)
        r->abort_code = "body_incomplete";
    r->rq = NULL;
    import_drop_pieces(r);
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
