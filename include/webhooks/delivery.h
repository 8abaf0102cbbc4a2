/* The webhook delivery worker: a thread with a PostgreSQL session of its own and libcurl's
 * multi interface, which claims due deliveries, sends each signed (Standard Webhooks) to its
 * subscription's URL, and records the outcome: delivered on a 2xx, else retried with
 * exponential backoff and jitter until SEGMENTD_WEBHOOK_RETRY_WINDOW_S after the event, then
 * failed. Slow receivers never block requests: no request thread ever waits for it. */
#ifndef SEGMENTD_WEBHOOKS_DELIVERY_H
#define SEGMENTD_WEBHOOKS_DELIVERY_H

#include "core/config.h"
#include "core/error.h"

/* Starts the worker (unless cfg->webhook_concurrency is 0); its counters join /metrics.
 * 0, or -1 with err (libcurl or the thread could not start). */
int wh_delivery_start(const seg_config *cfg, seg_error *err) MUSTCHECK;
/* Stops claiming (shutdown's first step); the attempts in flight go on. Safe when not started. */
void wh_delivery_quiesce(void);
/* Waits up to wait_ms for the attempts in flight, gives the others back (due again at once,
 * for the next start or another process), and joins the thread. Safe when not started. */
void wh_delivery_stop(int wait_ms);
/* Looks for due deliveries now (a retry asked through the API). Any thread; safe when not
 * started. */
void wh_delivery_wake(void);

/* The wait before the next attempt after attempts failed ones: base_ms doubled per attempt
 * after the first, at most WH_BACKOFF_MAX_MS, of which a random part (jitter01 in [0, 1)) of
 * the upper half: base·2^(n-1) · (0.5 + jitter01 / 2). Pure. */
#define WH_BACKOFF_MAX_MS 3600000LL
long long wh_backoff_ms(int base_ms, int attempts, double jitter01);

#endif
