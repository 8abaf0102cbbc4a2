/* Webhook events: the retention purge of the outbox, run by the lifecycle sweeper. */
#include "store/webhook_events.h"

#include <stdio.h>

#include "store/session.h"

long long store_webhook_events_purge(void *session, int days, int batch, bool (*stop)(void),
                                     seg_error *err)
{
    char d[16], b[16];
    snprintf(d, sizeof d, "%d", days);
    snprintf(b, sizeof b, "%d", batch);
    const char *params[2] = {d, b};
    return session_purge(session, STMT_WEBHOOK_PURGE, params, batch, stop, "webhook event purge", err);
}
