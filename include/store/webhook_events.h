/* Webhook events (migrations/0008_webhooks.sql): their retention purge. The events and their
 * deliveries are written by the statements that make the changes they tell of
 * (src/store/statements_webhooks.h), each in its change's transaction. */
#ifndef SEGMENTD_STORE_WEBHOOK_EVENTS_H
#define SEGMENTD_STORE_WEBHOOK_EVENTS_H

#include <stdbool.h>

#include "core/error.h"

/* Days an event (and its deliveries: the delivery log) is kept once none of its deliveries is
 * pending: well past the 24 h a delivery is retried for, long enough for a receiver's owner
 * to read the log of an incident. */
#define WEBHOOK_EVENT_DAYS 30

/* Deletes the events older than days none of whose deliveries is pending, with their
 * deliveries, on pg, the sweeper's session, batch at a time until none is left or stop()
 * says so. Returns how many events, or -1 with err. */
long long store_webhook_events_purge(void *pg, int days, int batch, bool (*stop)(void), seg_error *err);

#endif
