/* Device imports being received: the import's row and lock, its valid lines staged by COPY
 * in PostgreSQL's text format, its progress and its end; and the reads of the request path. */
#include "store/imports.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"
#include "core/log.h"
#include "store/session.h"
#include "store/store_private.h"

/* A statement of the receiver or merger may take longer than a request's. */
#define IMPORT_STATEMENT_TIMEOUT_MS 120000

struct store_import {
    PGconn *pg;
    pthread_mutex_t mu;      /* guards cancel: store_import_cancel comes from another thread */
    PGcancel *cancel;
    char seq[24];
    bool copying;            /* a COPY is open on pg */
    bool broken;             /* the session failed: nothing more is sent */
    char *key_tenant, *key;  /* the Idempotency-Key whose lock pg holds (key_locked) */
    bool key_locked;
    PGresult *kept;          /* the key's live answer, when the open found one */
};

static int fail_db(store_import *im, seg_error *err, PGresult *r, const char *what)
{
    err_set(err, 503, "database_unavailable", "the database failed while storing the import; retry it");
    err->retry_after = 1;
    err_log(err, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(im->pg));
    PQclear(r);
    im->broken = true;
    return -1;
}

/* A statement of the import's session that answers nothing: 0, or -1 with err (the
 * session marked failed). */
static int run_plain(store_import *im, stmt_id id, const char *const *p, const char *what,
                     seg_error *err)
{
    PGresult *r = session_run(im->pg, id, p);
    if (!session_result_ok(r))
        return fail_db(im, err, r, what);
    PQclear(r);
    return 0;
}

/* Takes the lock of q's key on the session, and looks the key up: a store_idem_outcome (the
 * lock held on STORE_IDEM_NEW and STORE_IDEM_REPLAY, im->kept the answer of the latter), or
 * -1 with err. */
static int claim_key(store_import *im, const store_idem_request *q, seg_error *err)
{
    const char *p[4] = {q->tenant, q->key, q->method, q->path};
    im->key_tenant = strdup(q->tenant);
    im->key = strdup(q->key);
    if (!im->key_tenant || !im->key) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    PGresult *r = session_run(im->pg, STMT_IMPORT_KEY_LOCK, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return fail_db(im, err, r, "idempotency key lock");
    im->key_locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!im->key_locked)
        return STORE_IDEM_BUSY;
    r = session_run(im->pg, STMT_IMPORT_KEY_FIND, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail_db(im, err, r, "idempotency key lookup");
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_IDEM_NEW;
    }
    im->kept = r;
    return PQgetvalue(r, 0, 0)[0] == 't' ? STORE_IDEM_REPLAY : STORE_IDEM_OTHER;
}

/* A nullable column of im->kept. */
static const char *kept_text(const store_import *im, int col)
{
    return PQgetisnull(im->kept, 0, col) ? NULL : PQgetvalue(im->kept, 0, col);
}

int store_import_open(const seg_config *cfg, const char *tenant, const char *id,
                      const store_idem_request *q, store_import **out, store_idem_answer *kept,
                      const char **kept_sha256, seg_error *err)
{
    *out = NULL;
    store_import *im = calloc(1, sizeof *im);
    if (!im) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    pthread_mutex_init(&im->mu, NULL);
    im->pg = session_open_own(cfg, IMPORT_STATEMENT_TIMEOUT_MS, "device import");
    if (!im->pg) {
        err_set(err, 503, "database_unavailable", "the database is not reachable; retry shortly");
        err->retry_after = 1;
        store_import_close(im);
        return -1;
    }
    int rc = q ? claim_key(im, q, err) : STORE_IDEM_NEW;
    if (rc == STORE_IDEM_REPLAY) {
        *kept = (store_idem_answer){atoi(PQgetvalue(im->kept, 0, 2)), kept_text(im, 3),
                                    kept_text(im, 4), kept_text(im, 5), PQgetvalue(im->kept, 0, 6),
                                    (size_t)PQgetlength(im->kept, 0, 6)};
        *kept_sha256 = PQgetvalue(im->kept, 0, 1);
    } else if (rc == STORE_IDEM_NEW) {
        const char *p[2] = {tenant, id};
        PGresult *r = session_run(im->pg, STMT_IMPORT_CREATE, p);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            rc = fail_db(im, err, r, "create import");
        } else {
            snprintf(im->seq, sizeof im->seq, "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
        }
    }
    if (rc != STORE_IDEM_NEW && rc != STORE_IDEM_REPLAY) {
        store_import_close(im);
        return rc;
    }
    im->cancel = PQgetCancel(im->pg);
    *out = im;
    return rc;
}

void store_import_key_release(store_import *im)
{
    if (!im->key_locked || PQstatus(im->pg) != CONNECTION_OK)
        return;
    const char *p[2] = {im->key_tenant, im->key};
    PQclear(session_run(im->pg, STMT_IMPORT_KEY_UNLOCK, p));
    im->key_locked = false;
}

/* Grows b to hold n more bytes. -1 when memory ran out. */
static int room(store_copy_text *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    char *nb = realloc(b->p, cap);
    if (!nb)
        return -1;
    b->p = nb;
    b->cap = cap;
    return 0;
}

/* COPY text escaping (backslash, and the characters that end a field or a row); in_array
 * adds the array literal's own escaping of '"' and '\' first. Returns the bytes written to
 * out, which has room for 4 * n. */
static size_t escape(char *out, const char *s, size_t n, bool in_array)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_array && (ch == '"' || ch == '\\')) {
            out[o++] = '\\'; /* the array literal's backslash, itself escaped for COPY */
            out[o++] = '\\';
        }
        switch (ch) {
        case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
        case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
        case '\t': out[o++] = '\\'; out[o++] = 't'; break;
        default: out[o++] = ch;
        }
    }
    return o;
}

static int put_field(store_copy_text *b, const char *s, bool last)
{
    size_t n = s ? strlen(s) : 0;
    if (room(b, 4 * n + 3))
        return -1;
    if (s)
        b->len += escape(b->p + b->len, s, n, false);
    else {
        memcpy(b->p + b->len, "\\N", 2);
        b->len += 2;
    }
    b->p[b->len++] = last ? '\n' : '\t';
    return 0;
}

/* tags as an array literal {"a","b"}, every element quoted. */
static int put_tags(store_copy_text *b, const char *const *tags, size_t n_tags)
{
    size_t need = 3;
    for (size_t i = 0; i < n_tags; i++)
        need += 4 * strlen(tags[i]) + 3;
    if (room(b, need))
        return -1;
    char *o = b->p;
    o[b->len++] = '{';
    for (size_t i = 0; i < n_tags; i++) {
        if (i)
            o[b->len++] = ',';
        o[b->len++] = '"';
        b->len += escape(o + b->len, tags[i], strlen(tags[i]), true);
        o[b->len++] = '"';
    }
    o[b->len++] = '}';
    o[b->len++] = '\t';
    return 0;
}

int store_copy_row(store_copy_text *b, const char *seq, long long line, const char *id,
                   const device_row *row)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", line);
    if (put_field(b, seq, false) || put_field(b, num, false) || put_field(b, id, false))
        return -1;
    for (int i = 0; i < DEVICE_SCALARS; i++)
        if (put_field(b, row->scalar[i], false))
            return -1;
    return put_tags(b, row->tags, row->n_tags) || put_field(b, row->attributes_json, true) ? -1 : 0;
}

const char *store_import_seq(const store_import *im)
{
    return im->seq;
}

int store_import_copy(store_import *im, const char *text, size_t len, seg_error *err)
{
    if (im->broken)
        return fail_db(im, err, NULL, "session already failed");
    if (!im->copying) {
        /* not session_run: in COPY IN state PQgetResult answers COPY IN until the end */
        PGresult *r = session_send(im->pg, STMT_IMPORT_COPY, NULL) ? PQgetResult(im->pg) : NULL;
        if (PQresultStatus(r) != PGRES_COPY_IN)
            return fail_db(im, err, r, "copy");
        PQclear(r);
        im->copying = true;
    }
    if (len && PQputCopyData(im->pg, text, (int)len) != 1)
        return fail_db(im, err, NULL, "copy data");
    return 0;
}

bool store_import_pending(const store_import *im)
{
    return im->copying;
}

/* Ends the open COPY: its rows are committed. */
static int end_copy(store_import *im, seg_error *err)
{
    if (!im->copying)
        return 0;
    im->copying = false;
    if (PQputCopyEnd(im->pg, NULL) != 1)
        return fail_db(im, err, NULL, "copy end");
    PGresult *r = session_await(im->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail_db(im, err, r, "copy");
    PQclear(r);
    return 0;
}

/* The counts as the statements' parameters $2 to $6. */
static void count_params(const store_import_counts *n, char t[4][24], const char **p)
{
    snprintf(t[0], 24, "%lld", n->bytes);
    snprintf(t[1], 24, "%lld", n->received);
    snprintf(t[2], 24, "%lld", n->invalid);
    snprintf(t[3], 24, "%lld", n->last_line);
    p[0] = t[0];
    p[1] = t[1];
    p[2] = t[2];
    p[3] = n->errors_json;
    p[4] = t[3];
}

/* Ends the COPY under way and runs statement id with the counts: its result, or NULL
 * with err set (the session marked failed). */
static PGresult *run_counts(store_import *im, stmt_id id, const store_import_counts *n,
                            ExecStatusType want, const char *what, seg_error *err)
{
    char t[4][24];
    const char *p[6] = {im->seq};
    if (im->broken) {
        (void)fail_db(im, err, NULL, "session already failed");
        return NULL;
    }
    if (end_copy(im, err))
        return NULL;
    count_params(n, t, p + 1);
    PGresult *r = session_run(im->pg, id, p);
    if (PQresultStatus(r) != want || (want == PGRES_TUPLES_OK && PQntuples(r) != 1)) {
        (void)fail_db(im, err, r, what);
        return NULL;
    }
    return r;
}

int store_import_progress(store_import *im, const store_import_counts *n, seg_error *err)
{
    PGresult *r = run_counts(im, STMT_IMPORT_PROGRESS, n, PGRES_COMMAND_OK, "import progress", err);
    PQclear(r);
    return r ? 0 : -1;
}

/* The representation in the first column of r's single row, malloc'd; NULL when r has none. */
static char *doc_of(const PGresult *r)
{
    return PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0))
                                                                      : NULL;
}

/* Keeps the import's answer (202, its representation doc) for q's key in the transaction
 * open on the session, and commits it: 0, STORE_IDEM_BUSY (a live answer of the key
 * exists: nothing written, rolled back), or -1 with err. */
static int keep_answer(store_import *im, const store_idem_request *q, const char *location,
                       const char *doc, seg_error *err)
{
    store_idem_answer a = {202, "application/json", location, NULL, doc, strlen(doc)};
    char t[2][16];
    const char *p[11];
    store_idem_params(q, &a, t, p);
    PGresult *r = session_run(im->pg, STMT_IMPORT_KEY_SAVE, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail_db(im, err, r, "idempotency key save");
    bool saved = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!saved) {
        PQclear(session_run(im->pg, STMT_ROLLBACK, NULL));
        return STORE_IDEM_BUSY;
    }
    return run_plain(im, STMT_COMMIT, NULL, "import received commit", err);
}

int store_import_received(store_import *im, const store_import_counts *n,
                          const store_idem_request *q, const char *location, char **doc,
                          seg_error *err)
{
    *doc = NULL;
    /* with a key: the staged rows committed first, then the import and its key together */
    if (q && (end_copy(im, err) || run_plain(im, STMT_BEGIN, NULL, "import received begin", err)))
        return -1;
    PGresult *r = run_counts(im, STMT_IMPORT_RECEIVED, n, PGRES_TUPLES_OK, "import received", err);
    int rc = -1;
    if (r) {
        *doc = doc_of(r);
        PQclear(r);
        if (!*doc)
            err_set(err, 500, "internal", "out of memory");
        else
            rc = q ? keep_answer(im, q, location, *doc, err) : 0;
    }
    if (rc != 0) {
        if (q && PQstatus(im->pg) == CONNECTION_OK && PQtransactionStatus(im->pg) != PQTRANS_IDLE)
            PQclear(session_run(im->pg, STMT_ROLLBACK, NULL));
        free(*doc);
        *doc = NULL;
    }
    return rc;
}

void store_import_fail(store_import *im, const char *code, const char *detail,
                       const store_import_counts *n, char **doc)
{
    char t[4][24], failure[512];
    const char *p[6] = {im->seq, failure, NULL, NULL, NULL, NULL};
    if (doc)
        *doc = NULL;
    if (im->copying) { /* what this COPY carried is dropped with it */
        im->copying = false;
        if (!im->broken && PQputCopyEnd(im->pg, "the import failed") == 1)
            PQclear(session_await(im->pg));
    }
    if (im->broken && PQstatus(im->pg) != CONNECTION_OK)
        return;
    json_text f;
    json_text_fixed(&f, failure, sizeof failure, 0);
    JSON_TEXT_LIT(&f, "{");
    json_text_key(&f, "code");
    json_text_cstr(&f, code, JSON_ESC_PG);
    json_text_key(&f, "detail");
    json_text_cstr(&f, detail, JSON_ESC_PG);
    JSON_TEXT_LIT(&f, "}");
    if (n) {
        const char *cp[5];
        count_params(n, t, cp);
        memcpy(p + 2, cp, 4 * sizeof *p);
    }
    PGresult *r = session_run(im->pg, STMT_IMPORT_FAIL, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        log_msg(LOG_WARN, "device import: could not record its failure; the merge worker will",
                "detail", r ? PQresultErrorMessage(r) : PQerrorMessage(im->pg), NULL);
    else if (doc)
        *doc = doc_of(r);
    PQclear(r);
}

void store_import_cancel(store_import *im)
{
    char why[256];
    pthread_mutex_lock(&im->mu);
    if (im->cancel)
        (void)PQcancel(im->cancel, why, sizeof why);
    pthread_mutex_unlock(&im->mu);
}

void store_import_close(store_import *im)
{
    if (!im)
        return;
    if (im->pg && im->seq[0] && PQstatus(im->pg) == CONNECTION_OK) {
        const char *p[1] = {im->seq};
        PQclear(session_run(im->pg, STMT_IMPORT_UNLOCK, p));
    }
    if (im->pg)
        store_import_key_release(im);
    PQclear(im->kept);
    free(im->key_tenant);
    free(im->key);
    pthread_mutex_lock(&im->mu);
    if (im->cancel)
        PQfreeCancel(im->cancel);
    im->cancel = NULL;
    pthread_mutex_unlock(&im->mu);
    PQfinish(im->pg);
    pthread_mutex_destroy(&im->mu);
    free(im);
}

int store_import_get(store_conn *c, const char *tenant, const char *id, store_doc *out,
                     seg_error *err)
{
    const char *p[2] = {tenant, id};
    PGresult *res = store_run(c, STMT_IMPORT_GET, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    out->json = PQgetvalue(res, 0, 0);
    out->len = (size_t)PQgetlength(res, 0, 0);
    out->version = 0;
    return STORE_DONE;
}

int store_import_list(store_conn *c, const char *tenant, const char *before_seq, int limit,
                      store_page *out, seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[3] = {tenant, before_seq, lim};
    PGresult *res = store_run(c, STMT_IMPORT_LIST, p, err);
    return res ? store_page_of(c, res, limit, out, err) : -1;
}
