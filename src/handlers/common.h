/* Private to handlers/: the steps every resource handler shares. */
#ifndef SEGMENTD_HANDLERS_COMMON_H
#define SEGMENTD_HANDLERS_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "http/request.h"
#include "store/segments.h"

/* Answers with column col of row 0 (JSON text) without copying it; takes rows. */
void h_reply_row(http_request *rq, int status, store_rows *owned_rows, int col);

/* Answers {"items":[col 0 …], "next_cursor": …} from rows fetched with limit + 1;
 * the paging key is column 1; kind tags the cursor. Takes rows. */
void h_reply_page(http_request *rq, store_rows *owned_rows, int limit, char kind);

/* Reads ?limit= (default 50, 1 to 500) and ?cursor= (opaque, of this kind) into
 * *limit and before (decimal text, "" when absent). Returns 0 or -1 with a 400. */
int h_paging(http_request *rq, char kind, int *limit, char before[24]);

/* If-Match as the text of a PostgreSQL bigint[] for the statements' version check:
 * *versions is NULL when there is no precondition. Returns 0, or -1 with a 400. */
#define H_IF_MATCH_BUF 400
int h_if_match(http_request *rq, char buf[H_IF_MATCH_BUF], const char **versions);

/* Records a 400 for a query parameter. */
void h_bad_query(http_request *rq, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rejects query parameters not in allowed. Returns 0 or -1 with a 400. */
int h_only_query(http_request *rq, const char *const *allowed);

#endif
