/* Private to handlers/: a device import being received. import_stream.c (the request side,
 * on the loop thread) hands its body over in pieces and starts a thread that runs
 * import_receive (import_receiver.c): the two share a receiver, under its mu. */
#ifndef SEGMENTD_HANDLERS_IMPORT_RECEIVER_H
#define SEGMENTD_HANDLERS_IMPORT_RECEIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "handlers/common.h"
#include "handlers/import_idempotency.h"
#include "handlers/import_lines.h"
#include "store/imports.h"

#define QUEUE_HIGH (1024 * 1024) /* bytes waiting that pause reading */
#define QUEUE_LOW (256 * 1024)   /* ... and resume it */

typedef struct piece {
    struct piece *next;
    size_t len;
    char data[];
} piece;

typedef struct receiver {
    struct receiver *next;          /* in import_stream.c's list of receivers (under its mu) */
    const seg_config *cfg;
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

/* The thread's work: the import opened, its pieces taken until the body ends or is aborted,
 * then the request answered (202, or the failure) and the import merging or failed. */
void import_receive(receiver *r);
/* Answers the request (when it still waits) and lets it go; doc (owned) is the 2xx body. */
void import_answer(receiver *r, int status, char *doc, const seg_error *e);
/* Frees the pieces still queued (under r->mu). */
void import_drop_pieces(receiver *r);
void import_receiver_free(receiver *r);

#endif
