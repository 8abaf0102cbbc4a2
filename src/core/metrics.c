/* Prometheus exposition: request counters and latency histograms updated lock-free in
 * per-thread shards, and the families providers write at each scrape. */
#include "core/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES METRICS_MAX_ROUTES
static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405, 406, 409,
                               412, 413, 414, 415, 422, 428, 431, 500, 501, 503, 0};
#define N_STATUS (sizeof statuses / sizeof statuses[0])
static const double buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define N_BUCKETS (sizeof buckets_s / sizeof buckets_s[0])

static struct {
    const char *method, *pattern;
} mroutes[MAX_ROUTES];
static size_t mn;

/* The counters in shards: a thread adds to its own shard (threads beyond N_SHARDS share
 * one, hence the atomics), so the event loops never write to each other's cache lines
 * on every request; a scrape sums the shards. Index 0 of a route = unmatched path. */
#define N_SHARDS 16
typedef struct {
    _Alignas(64) uint64_t counts[MAX_ROUTES + 1][N_STATUS]; /* whole cache lines a shard */
    uint64_t hist[MAX_ROUTES + 1][N_BUCKETS + 1];
    uint64_t sum_us[MAX_ROUTES + 1];
} shard;
static shard shards[N_SHARDS];
static unsigned next_shard;
static __thread shard *my_shard;

/* The sum over the shards of one counter, named by its place in the first shard. */
static uint64_t sum_shards(const uint64_t *in_first)
{
    size_t off = (size_t)((const char *)in_first - (const char *)&shards[0]);
    uint64_t v = 0;
    for (int i = 0; i < N_SHARDS; i++)
        v += __atomic_load_n((const uint64_t *)(const void *)((const char *)&shards[i] + off),
                             __ATOMIC_RELAXED);
    return v;
}

void metrics_route(size_t i, const char *method, const char *pattern)
{
    if (i < 1 || i > MAX_ROUTES)
        return;
    mroutes[i - 1].method = method;
    mroutes[i - 1].pattern = pattern;
    if (i > mn)
        mn = i;
}

void metrics_observe(size_t route, int status, uint64_t duration_us)
{
    size_t ri = route <= mn ? route : 0, si = N_STATUS - 1, b = 0;
    for (size_t i = 0; i + 1 < N_STATUS; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    while (b < N_BUCKETS && (double)duration_us / 1e6 > buckets_s[b])
        b++;
    shard *sh = my_shard;
    if (!sh)
        sh = my_shard = &shards[__atomic_fetch_add(&next_shard, 1, __ATOMIC_RELAXED) % N_SHARDS];
    __atomic_fetch_add(&sh->counts[ri][si], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->hist[ri][b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->sum_us[ri], duration_us, __ATOMIC_RELAXED);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

struct metrics_out {
    sbuf b;
};

#define MAX_PROVIDERS 16
static void (*providers[MAX_PROVIDERS])(metrics_out *o);
static int n_providers;

void metrics_provide(void (*fn)(metrics_out *o))
{
    if (n_providers < MAX_PROVIDERS)
        providers[n_providers++] = fn;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (b->oom)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

void metrics_family(metrics_out *o, const char *name, const char *type, const char *help)
{
    sb_printf(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(metrics_out *o, const char *name, const char *labels, unsigned long long v)
{
    sb_printf(&o->b, "%s%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", v);
}

char *metrics_render(void)
{
    metrics_out o = {{malloc(16384), 0, 16384, 0}};
    sbuf b = o.b;
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    sb_printf(&b, "# HELP segmentd_http_requests_total HTTP requests by route, method and status.\n"
                  "# TYPE segmentd_http_requests_total counter\n");
    for (size_t r = 0; r <= mn; r++) {
        const char *route = r && mroutes[r - 1].pattern ? mroutes[r - 1].pattern : "unmatched";
        const char *method = r && mroutes[r - 1].method ? mroutes[r - 1].method : "any";
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t c = sum_shards(&shards[0].counts[r][s]);
            if (!c)
                continue;
            if (statuses[s])
                sb_printf(&b, "segmentd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                          route, method, statuses[s], (unsigned long long)c);
            else
                sb_printf(&b, "segmentd_http_requests_total{route=\"%s\",method=\"%s\",status=\"other\"} %llu\n",
                          route, method, (unsigned long long)c);
        }
    }
    sb_printf(&b, "# HELP segmentd_http_request_duration_seconds Request latency by route.\n"
                  "# TYPE segmentd_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= mn; r++) {
        const char *route = r && mroutes[r - 1].pattern ? mroutes[r - 1].pattern : "unmatched";
        const char *method = r && mroutes[r - 1].method ? mroutes[r - 1].method : "any";
        uint64_t cum = 0;
        uint64_t h[N_BUCKETS + 1];
        for (size_t i = 0; i <= N_BUCKETS; i++)
            cum += h[i] = sum_shards(&shards[0].hist[r][i]);
        if (!cum)
            continue;
        cum = 0;
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += h[i];
            sb_printf(&b, "segmentd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                      route, method, buckets_s[i], (unsigned long long)cum);
        }
        cum += h[N_BUCKETS];
        sb_printf(&b, "segmentd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
                  route, method, (unsigned long long)cum);
        sb_printf(&b, "segmentd_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
                  route, method, (double)sum_shards(&shards[0].sum_us[r]) / 1e6);
        sb_printf(&b, "segmentd_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                  route, method, (unsigned long long)cum);
    }
    o.b = b;
    for (int i = 0; i < n_providers; i++)
        providers[i](&o);
    b = o.b;
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
