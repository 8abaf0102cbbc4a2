/* The lines of an import, validated in parallel: the receiver cuts them into batches, two
 * worker threads parse and check each line as a device and write its row as COPY text, and
 * the receiver takes the batches back in the order it gave them, so that counts, errors and
 * rows come out as if one thread had done it all. Parsing a line costs about 15 µs of CPU,
 * several times what PostgreSQL's COPY spends on its row: one thread kept the upload at a
 * third of COPY's speed. */
#include "handlers/import_lines.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "handlers/common.h"
#include "validate/device.h"

#define WORKERS 2
#define BATCH_LINES 2000
#define BATCH_BYTES (512 * 1024)

/* A batch is on the work queue (by its next) and on the order list (by a link of its own)
 * at once. */
typedef struct order_link {
    import_batch *b;
    struct order_link *next;
} order_link;

struct import_lines {
    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    import_batch *todo_head, *todo_tail;  /* handed over, not yet taken by a worker */
    order_link *order_head, *order_tail;  /* every batch in flight, in line order */
    int in_flight;
    bool stop;
    pthread_t threads[WORKERS];
    int n_threads;
    import_batch *cur;                      /* the batch being filled (receiver only) */
    char seq[24];
    size_t line_max;
};

void import_batch_free(import_batch *b)
{
    if (!b)
        return;
    free(b->copy.p);
    free(b->errors);
    free(b->text);
    free(b->lines);
    free(b);
}

static void keep_error(import_batch *b, long long no, const seg_error *e)
{
    b->invalid++;
    if (b->n_errors >= IMPORT_ERRORS_KEPT)
        return;
    if (!b->errors && !(b->errors = calloc(IMPORT_ERRORS_KEPT, sizeof *b->errors))) {
        b->failed = true;
        return;
    }
    import_line_error *x = &b->errors[b->n_errors++];
    x->line = no;
    snprintf(x->pointer, sizeof x->pointer, "%s", e->n_items ? e->items[0].pointer : "");
    snprintf(x->detail, sizeof x->detail, "%.*s", (int)sizeof x->detail - 1,
             e->n_items ? e->items[0].detail : e->detail);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* One line: a row of the batch's COPY text, or an invalid line. */
static void validate_line(import_lines *L, import_batch *b, size_t i)
{
    const char *s = b->text + b->lines[i].off;
    size_t n = b->lines[i].len;
    long long no = b->lines[i].no;
    seg_error e;
    json_t *root = NULL;
    device_in in;
    device_row row;
    if (n && s[n - 1] == '\r')
        n--;
    if (!b->lines[i].over && blank(s, n))
        return;
    b->received++;
    err_clear(&e);
    if (b->lines[i].over) {
        err_add(&e, "", "the line is longer than %zu bytes, the limit of a device (SEGMENTD_MAX_BODY_BYTES)",
                L->line_max);
        keep_error(b, no, &e);
        return;
    }
    if (val_device_line(s, n, L->line_max, &root, &in, &e) == 0 && h_device_row(&in, &row, &e) == 0) {
        if (store_copy_row(&b->copy, L->seq, no, in.id, &row))
            b->failed = true;
    } else if (e.status == 500) {
        b->failed = true;
    } else {
        keep_error(b, no, &e);
    }
    val_device_release(&in);
    json_decref(root);
}

static void *worker_main(void *arg)
{
    import_lines *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->todo_head && !L->stop)
            pthread_cond_wait(&L->work, &L->mu);
        if (L->stop)
            break;
        import_batch *b = L->todo_head;
        L->todo_head = b->next;
        if (!L->todo_head)
            L->todo_tail = NULL;
        b->next = NULL;
        pthread_mutex_unlock(&L->mu);
        for (size_t i = 0; i < b->n_lines && !b->failed; i++)
            validate_line(L, b, i);
        free(b->text); /* the lines are rows or problems now */
        b->text = NULL;
        pthread_mutex_lock(&L->mu);
        b->done = true;
        pthread_cond_broadcast(&L->ready);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

import_lines *import_lines_start(const char *seq, size_t line_max)
{
    import_lines *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->work, NULL);
    pthread_cond_init(&L->ready, NULL);
    snprintf(L->seq, sizeof L->seq, "%s", seq);
    L->line_max = line_max;
    for (int i = 0; i < WORKERS; i++) {
        if (pthread_create(&L->threads[i], NULL, worker_main, L))
            break;
        L->n_threads++;
    }
    if (!L->n_threads) {
        import_lines_stop(L);
        return NULL;
    }
    return L;
}

int import_lines_flush(import_lines *L)
{
    import_batch *b = L->cur;
    if (!b || !b->n_lines)
        return 0;
    L->cur = NULL;
    order_link *o = malloc(sizeof *o);
    if (!o) {
        import_batch_free(b);
        return -1;
    }
    o->b = b;
    o->next = NULL;
    pthread_mutex_lock(&L->mu);
    if (L->todo_tail)
        L->todo_tail->next = b;
    else
        L->todo_head = b;
    L->todo_tail = b;
    if (L->order_tail)
        L->order_tail->next = o;
    else
        L->order_head = o;
    L->order_tail = o;
    L->in_flight++;
    pthread_cond_signal(&L->work);
    pthread_mutex_unlock(&L->mu);
    return 1;
}

int import_lines_add(import_lines *L, long long no, const char *s, size_t n, bool over)
{
    import_batch *b = L->cur;
    if (!b && !(b = L->cur = calloc(1, sizeof *b)))
        return -1;
    if (b->n_lines == b->cap_lines) {
        size_t cap = b->cap_lines ? 2 * b->cap_lines : 256;
        void *nl = realloc(b->lines, cap * sizeof *b->lines);
        if (!nl)
            return -1;
        b->lines = nl;
        b->cap_lines = cap;
    }
    if (b->text_len + n > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 64 * 1024;
        while (cap < b->text_len + n)
            cap *= 2;
        char *nt = realloc(b->text, cap);
        if (!nt)
            return -1;
        b->text = nt;
        b->text_cap = cap;
    }
    if (n)
        memcpy(b->text + b->text_len, s, n);
    b->lines[b->n_lines].off = b->text_len;
    b->lines[b->n_lines].len = n;
    b->lines[b->n_lines].no = no;
    b->lines[b->n_lines].over = over;
    b->n_lines++;
    b->text_len += n;
    b->last_line = no;
    if (b->n_lines >= BATCH_LINES || b->text_len >= BATCH_BYTES)
        return import_lines_flush(L);
    return 0;
}

import_batch *import_lines_next(import_lines *L, bool wait)
{
    pthread_mutex_lock(&L->mu);
    order_link *o;
    while ((o = L->order_head) && !o->b->done && wait)
        pthread_cond_wait(&L->ready, &L->mu);
    import_batch *b = NULL;
    if (o && o->b->done) {
        b = o->b;
        L->order_head = o->next;
        if (!o->next)
            L->order_tail = NULL;
        L->in_flight--;
        free(o);
    }
    pthread_mutex_unlock(&L->mu);
    return b;
}

int import_lines_in_flight(import_lines *L)
{
    pthread_mutex_lock(&L->mu);
    int n = L->in_flight;
    pthread_mutex_unlock(&L->mu);
    return n;
}

void import_lines_stop(import_lines *L)
{
    if (!L)
        return;
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_broadcast(&L->work);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->n_threads; i++)
        pthread_join(L->threads[i], NULL);
    order_link *o = L->order_head;
    while (o) { /* every batch in flight is on the order list (the work queue's too) */
        order_link *next = o->next;
        import_batch_free(o->b);
        free(o);
        o = next;
    }
    import_batch_free(L->cur);
    pthread_cond_destroy(&L->work);
    pthread_cond_destroy(&L->ready);
    pthread_mutex_destroy(&L->mu);
    free(L);
}
