/* Segment history: a segment's revisions a page at a time, and their purge once older than
 * SEGMENTD_HISTORY_DAYS. */
#include "store/history.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/session.h"
#include "store/store_private.h"

int store_history_page(store_conn *c, bool v1, const char *tenant, const char *id,
                       const char *before_seq, int limit, store_page *out, seg_error *err)
{
    char lim[16], days[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    snprintf(days, sizeof days, "%d", store_p.cfg->history_days); /* a pending create's retention */
    const char *p[5] = {tenant, id, before_seq, lim, days};
    PGresult *res = store_run(c, v1 ? STMT_HISTORY_V1 : STMT_HISTORY_AUD, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) { /* one row: no revision left */
        if (PQntuples(res) == 0 || PQgetvalue(res, 0, 2)[0] != 't')
            return STORE_MISSING;
        return store_page_empty(c, out, err);
    }
    return store_page_of(c, res, limit, out, err);
}

long long store_history_purge(void *session, int days, int batch, bool (*stop)(void), seg_error *err)
{
    PGconn *pg = session;
    char d[16], b[16];
    snprintf(d, sizeof d, "%d", days);
    snprintf(b, sizeof b, "%d", batch);
    const char *params[2] = {d, b};
    return session_purge(pg, STMT_HISTORY_PURGE, params, batch, stop, "history purge", err);
}
