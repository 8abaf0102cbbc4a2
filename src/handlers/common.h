/* Private to handlers/: the steps every resource handler shares. */
#ifndef SEGMENTD_HANDLERS_COMMON_H
#define SEGMENTD_HANDLERS_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "core/json_text.h"
#include "http/request.h"
#include "store/idempotency.h"
#include "store/segments.h"

/* n zeroed bytes of the request whose release(ptr) runs with the request (a validator's
 * output struct). NULL with rq->err set (500). */
void *h_keep(http_request *rq, size_t n, void (*release)(void *));

/* Answers 404 (no such segment) or 412 (If-Match stale) for those outcomes of the store.
 * True when the request is answered: by one of these, or by the error of a failed call
 * (outcome -1); false for STORE_DONE, which the caller answers. */
bool h_missed(http_request *rq, int outcome);
/* The same for another kind of resource: "no <what> with this id". */
bool h_missed_as(http_request *rq, int outcome, const char *what);

/* h_missed, and for STORE_INVALID a 422 at the lifecycle member whose rule the update
 * would break with the stored values (doc->broken_rule, named in the dialect's words). */
bool h_update_refused(http_request *rq, int outcome, const store_doc *doc, bool v1);

/* The pointer (in the dialect's words) of a lifecycle rule the store reports broken, and
 * what to tell the client. */
const char *h_rule_pointer(const char *rule, bool v1);
const char *h_rule_detail(const char *rule);

/* The request's handle on the store (released with the request), or h_idempotent's, in its
 * transaction. NULL with rq->err set. */
store_conn *h_store(http_request *rq);

/* Runs handler fn under the request's Idempotency-Key, when it has one: in one transaction
 * the key is claimed (a repeat of the same request answered again, with Idempotent-Replayed;
 * another request 422; the key's first request still running 409), fn runs with h_store
 * handing it that transaction, and its 2xx answer is kept with the change; a 4xx of fn is
 * kept too, on its own after the rollback (a 5xx never: the retry runs). Without a key, fn
 * runs as it is. */
void h_idempotent(http_request *rq, http_handler fn);
/* The SHA-256 of data as 64 lower-case hex digits. 0, or -1 when OpenSSL fails. Pure. */
int h_sha256_hex(const char *data, size_t len, char out[65]) MUSTCHECK;
/* The same of a body that arrives in pieces: new (NULL when OpenSSL fails), add each piece
 * (0 or -1), end (its hex digits; 0 or -1), free (NULL is a no-op). OpenSSL's EVP_MD_CTX. */
typedef struct evp_md_ctx_st h_sha256;
h_sha256 *h_sha256_new(void);
int h_sha256_add(h_sha256 *x, const char *data, size_t len) MUSTCHECK;
int h_sha256_end(h_sha256 *x, char out[65]) MUSTCHECK;
void h_sha256_free(h_sha256 *x);
/* Answers with answer a kept for the request's key, marked Idempotent-Replayed; its body
 * borrowed as http_reply's (free_fn(cls) once sent). */
void h_idem_replay(http_request *rq, const store_idem_answer *a, http_free_fn free_fn, void *cls);
/* Why a request cannot run under its key: outcome STORE_IDEM_OTHER (422, another request
 * had it) or STORE_IDEM_BUSY (409, its request still runs). */
void h_idem_refuse(seg_error *err, int outcome);

/* The parsed JSON body (freed with the request). NULL with rq->err set (400). */
json_t *h_body(http_request *rq);

/* Writes a /v1 segment's warnings (val_v1_segment's array) through problem_write, comma
 * separated; item >= 0 and trace_id for a bulk item's (pointer under /data/item). */
void h_put_warnings(json_text *o, json_t *warnings, long item, const char *trace_id);

/* Answers with a stored representation as it is, without copying it. */
void h_reply_doc(http_request *rq, int status, const store_doc *doc);

/* Answers {"items":[…], "next_cursor": …} from a page; kind tags the cursor. */
void h_reply_page(http_request *rq, const store_page *page, char kind);

/* If-Match as the text of a PostgreSQL bigint[] for the statements' version check:
 * *versions is NULL when there is no precondition. Returns 0, or -1 with a 400. */
#define H_IF_MATCH_BUF 400
int h_if_match(http_request *rq, char buf[H_IF_MATCH_BUF], const char **versions);
/* The same from an If-Match value (NULL: none); -1 when it is malformed. Pure. */
int h_versions_array(const char *if_match, char buf[H_IF_MATCH_BUF], const char **versions);

/* A query parameter of rq (a void * so that it is a val_query_fn). */
const char *h_query(void *rq, const char *name, bool *bad);

/* Records a 400 for a query parameter. */
void h_bad_query(http_request *rq, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A validated device as the row the store writes (the scalar fields in the table's order;
 * borrowed from in). 0, or -1 with a 500 when the field table and the device table
 * disagree (a bug). */
struct device_in;
struct device_row;
int h_device_row(const struct device_in *in, struct device_row *row, seg_error *err);

/* Lower-cases a checked uuid of the path, so that upper-case uuids name the same segment. */
void h_canonical_uuid(const char *in, char out[37]);
/* The path's segment id as the store keys it (an /audiences uuid lower-cased into buf). */
const char *h_segment_id(http_request *rq, bool v1, char buf[37]);

/* Rejects query parameters not in allowed. Returns 0 or -1 with a 400. */
int h_only_query(http_request *rq, const char *const *allowed);

#endif
