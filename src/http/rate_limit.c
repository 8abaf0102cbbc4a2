/* The buckets: a hash table of tenants split in shards, each under its own lock, so that
 * loops admitting requests of different tenants seldom wait for one another. A shard past
 * SHARD_MAX tenants forgets the ones whose buckets are all full again (they would read the
 * same as new ones). */
#include "http/rate_limit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

#define SHARDS 64
#define SHARD_BUCKETS 256
#define SHARD_MAX 4096

static const char *const class_names[RATE_CLASSES] = {"read", "write", "evaluation"};

typedef struct tenant_entry {
    struct tenant_entry *next;
    rate_bucket b[RATE_CLASSES];
    char tenant[];
} tenant_entry;

typedef struct shard {
    pthread_mutex_t mu;
    tenant_entry *b[SHARD_BUCKETS];
    size_t n;
} shard;

static struct {
    double rate[RATE_CLASSES];    /* tokens a second; 0: the class is not limited */
    double burst[RATE_CLASSES];
    char policy[RATE_CLASSES][64]; /* RateLimit-Policy, written once */
    shard shards[SHARDS];
    unsigned long long refused[RATE_CLASSES]; /* 429s given (atomic) */
    pthread_once_t once;
} R = {.once = PTHREAD_ONCE_INIT};

static void rate_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_rate_limited_total", "counter",
                   "Requests refused with 429 rate_limited, by class of request.");
    for (int c = 0; c < RATE_CLASSES; c++) {
        char label[32];
        snprintf(label, sizeof label, "class=\"%s\"", class_names[c]);
        metrics_sample(o, "segmentd_rate_limited_total", label,
                       __atomic_load_n(&R.refused[c], __ATOMIC_RELAXED));
    }
}

static void init_locks(void)
{
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&R.shards[i].mu, NULL);
    metrics_provide(rate_metrics);
}

void rate_limits_configure(const seg_config *cfg)
{
    pthread_once(&R.once, init_locks);
    for (int c = 0; c < RATE_CLASSES; c++) {
        R.rate[c] = cfg->rate_limit[c];
        R.burst[c] = cfg->rate_burst[c] > 0 ? cfg->rate_burst[c] : cfg->rate_limit[c];
        if (R.rate[c] > 0)
            snprintf(R.policy[c], sizeof R.policy[c], "\"%s\";q=%.0f;w=%.0f", class_names[c],
                     R.burst[c], ceil(R.burst[c] / R.rate[c]));
    }
}

bool rate_limited(rate_class c)
{
    return R.rate[c] > 0;
}

bool rate_bucket_take(rate_bucket *b, double rate, double burst, int64_t now_us, long *wait_s)
{
    if (now_us > b->at) {
        b->tokens += (double)(now_us - b->at) / 1e6 * rate;
        b->at = now_us;
    }
    if (b->tokens > burst)
        b->tokens = burst;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        *wait_s = 0;
        return true;
    }
    *wait_s = (long)ceil((1 - b->tokens) / rate);
    if (*wait_s < 1)
        *wait_s = 1;
    return false;
}

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 31);
}

/* Whether every bucket of e is full at now (under its shard's lock). */
static bool all_full(const tenant_entry *e, int64_t now_us)
{
    for (int c = 0; c < RATE_CLASSES; c++)
        if (R.rate[c] > 0 && e->b[c].tokens + (double)(now_us - e->b[c].at) / 1e6 * R.rate[c] < R.burst[c])
            return false;
    return true;
}

/* Drops the shard's tenants whose buckets are full again (under its lock). */
static void forget_full(shard *s, int64_t now_us)
{
    for (size_t i = 0; i < SHARD_BUCKETS; i++)
        for (tenant_entry **pp = &s->b[i]; *pp;) {
            tenant_entry *e = *pp;
            if (all_full(e, now_us)) {
                *pp = e->next;
                free(e);
                s->n--;
            } else {
                pp = &e->next;
            }
        }
}

/* The tenant's entry, made full when new; NULL when memory ran out (under the lock). */
static tenant_entry *entry_of(shard *s, uint64_t h, const char *tenant, int64_t now_us)
{
    tenant_entry **head = &s->b[(h / SHARDS) % SHARD_BUCKETS];
    for (tenant_entry *e = *head; e; e = e->next)
        if (strcmp(e->tenant, tenant) == 0)
            return e;
    if (s->n >= SHARD_MAX)
        forget_full(s, now_us);
    size_t len = strlen(tenant);
    tenant_entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->tenant, tenant, len + 1);
    for (int c = 0; c < RATE_CLASSES; c++)
        e->b[c] = (rate_bucket){R.burst[c], now_us};
    e->next = *head;
    *head = e;
    s->n++;
    return e;
}

int rate_take(const char *tenant, rate_class c, int64_t now_us, rate_state *st, seg_error *err)
{
    uint64_t h = hash_of(tenant);
    shard *s = &R.shards[h % SHARDS];
    long wait_s = 0;
    bool ok = true; /* out of memory: let the request through rather than refuse it */
    double tokens = R.burst[c];
    pthread_mutex_lock(&s->mu);
    tenant_entry *e = entry_of(s, h, tenant, now_us);
    if (e) {
        ok = rate_bucket_take(&e->b[c], R.rate[c], R.burst[c], now_us, &wait_s);
        tokens = e->b[c].tokens;
    }
    pthread_mutex_unlock(&s->mu);
    *st = (rate_state){true, c, (long)floor(tokens), (long)ceil((R.burst[c] - tokens) / R.rate[c])};
    if (ok)
        return 0;
    __atomic_fetch_add(&R.refused[c], 1, __ATOMIC_RELAXED);
    err_set(err, 429, "rate_limited",
            "this tenant sent more %s requests than its limit of %g a second (bursts of %g): "
            "retry after %ld s", class_names[c], R.rate[c], R.burst[c], wait_s);
    err->retry_after = (int)(wait_s > 3600 ? 3600 : wait_s);
    return -1;
}

/* Writes v in decimal at w; returns the end. */
static char *put_long(char *w, long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n)
        *w++ = digits[--n];
    return w;
}

const char *rate_fields(const rate_state *st, char now[RATE_FIELD_MAX])
{
    /* "evaluation";r=<20 digits>;t=<20 digits> fits RATE_FIELD_MAX */
    const char *name = class_names[st->cls];
    size_t n = strlen(name);
    char *w = now;
    *w++ = '"';
    memcpy(w, name, n);
    w += n;
    memcpy(w, "\";r=", 4);
    w = put_long(w + 4, st->remaining > 0 ? st->remaining : 0);
    memcpy(w, ";t=", 3);
    w = put_long(w + 3, st->reset_s > 0 ? st->reset_s : 0);
    *w = '\0';
    return R.policy[st->cls];
}

void rate_reset(void)
{
    pthread_once(&R.once, init_locks);
    for (size_t i = 0; i < SHARDS; i++) {
        shard *s = &R.shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < SHARD_BUCKETS; j++)
            for (tenant_entry *e = s->b[j], *next; e; e = next) {
                next = e->next;
                free(e);
            }
        memset(s->b, 0, sizeof s->b);
        s->n = 0;
        pthread_mutex_unlock(&s->mu);
    }
}
