/* Rate limits per tenant: a token bucket for each tenant and class of request (reads, writes,
 * evaluations), each class configured on its own and off by default. The buckets live in this
 * process: with N processes behind a balancer a tenant gets up to N times the rate (README,
 * "Rate limits"). Checked when a request is admitted, before its body is read. */
#ifndef SEGMENTD_HTTP_RATE_LIMIT_H
#define SEGMENTD_HTTP_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

typedef enum rate_class { RATE_READ = 0, RATE_WRITE, RATE_EVAL, RATE_CLASSES } rate_class;

/* One bucket: tokens at `at` (µs, monotonic). A new bucket is full. */
typedef struct rate_bucket {
    double tokens;
    int64_t at;
} rate_bucket;

/* What a request's answer says of its limit (RateLimit-Policy and RateLimit). */
typedef struct rate_state {
    bool limited;          /* the route is limited: the answer carries the fields */
    rate_class cls;
    long remaining;        /* whole requests left now */
    long reset_s;          /* seconds until the bucket is full again */
} rate_state;

/* Takes the settings (SEGMENTD_RATE_LIMIT_<CLASS> and _BURST); call before serving. */
void rate_limits_configure(const seg_config *cfg);
/* Whether class c is limited. */
bool rate_limited(rate_class c);

/* One request of tenant in class c at now_us (monotonic): 0 with *st filled, or -1 with err
 * set to 429 rate_limited and its Retry-After (st filled too). */
int rate_take(const char *tenant, rate_class c, int64_t now_us, rate_state *st, seg_error *err);

/* The pure step: refills b at rate per second up to burst by now_us, then takes one token if
 * there is one (true) or none (false). *wait_s: whole seconds until a token is there (0 when
 * one was taken). */
bool rate_bucket_take(rate_bucket *b, double rate, double burst, int64_t now_us, long *wait_s);

/* The field values for st: RateLimit-Policy ("read";q=100;w=2, returned: written once when
 * configured) and RateLimit ("read";r=57;t=1, written into now). */
#define RATE_FIELD_MAX 64
const char *rate_fields(const rate_state *st, char now[RATE_FIELD_MAX]);

/* Forgets every bucket (tests). */
void rate_reset(void);

#endif
