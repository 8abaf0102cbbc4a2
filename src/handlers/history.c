/* GET …/segments/{id}/history on either dialect: a segment's revisions, newest first, a page
 * at a time, also after the segment was deleted (until SEGMENTD_HISTORY_DAYS pass). */
#include "handlers/common.h"
#include "handlers/handlers.h"
#include "store/history.h"
#include "validate/list_query.h"

/* The cursor's kind: "h:<seq>", the last revision shown. */
#define HISTORY_CURSOR 'h'

static void history(http_request *rq, bool v1)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    char before[24], buf[37];
    int limit;
    store_page page;
    store_conn *c;
    const char *id = h_segment_id(rq, v1, buf);
    if (h_only_query(rq, allowed) ||
        val_list_paging(h_query, rq, HISTORY_CURSOR, &limit, before, &rq->err) ||
        !(c = h_store(rq)) ||
        h_missed(rq, store_history_page(c, v1, rq->principal.tenant, id, before[0] ? before : NULL,
                                        limit, &page, &rq->err)))
        return;
    h_reply_page(rq, &page, HISTORY_CURSOR);
}

void h_aud_history(http_request *rq)
{
    history(rq, false);
}

void h_v1_history(http_request *rq)
{
    history(rq, true);
}
