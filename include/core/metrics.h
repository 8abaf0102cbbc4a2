/* Prometheus metrics, rendered here and only here: request counters and latency histograms
 * (observed by http/), and the counters other modules provide (the store's pool). */
#ifndef SEGMENTD_CORE_METRICS_H
#define SEGMENTD_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_ROUTES 64

/* Labels route index i (1 …; 0 is an unmatched path) with its method and path pattern;
 * the strings must outlive the process's serving. Indexes past METRICS_MAX_ROUTES are
 * counted as unmatched. */
void metrics_route(size_t i, const char *method, const char *pattern);
/* One finished request of route index i (0: unmatched path). */
void metrics_observe(size_t route, int status, uint64_t duration_us);

/* What a provider writes into: one family (HELP and TYPE) then its samples. */
typedef struct metrics_out metrics_out;
void metrics_family(metrics_out *o, const char *name, const char *type, const char *help);
/* A sample of the family: labels is "" or like state="size". */
void metrics_sample(metrics_out *o, const char *name, const char *labels, unsigned long long v);

/* Registers a provider, called at every rendering (at most 8). Not thread-safe: register
 * before serving. */
void metrics_provide(void (*fn)(metrics_out *o));

/* The exposition text, malloc'd (the caller frees), or NULL when memory runs out. */
char *metrics_render(void);

#endif
