/* The device → segments lookup's copy of each tenant's segments, compiled: kept until word
 * comes that the tenant's segments changed: at once for this process's writes, and from the
 * segment watch (store/segment_watch.h) when a fingerprint read since differs from the one
 * read with the copy. While the watch is not reading nothing is kept, and a copy nobody used
 * for EV_CACHE_IDLE_S is dropped (so the watch reads only tenants in use). */
#ifndef SEGMENTD_EVAL_SEGMENT_CACHE_H
#define SEGMENTD_EVAL_SEGMENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/rule.h"
#include "eval/lookup_index.h"

typedef struct ev_segment {
    bool v1;
    char *id;
    char *id_json;   /* the id as a JSON string, quoted (set by ev_cache_put) */
    size_t id_json_len;
    ev_rule rule;
    bool active, extend, has_start, has_end;
    int64_t start_us, end_us;
} ev_segment;

/* A tenant's segments, sorted by dialect then id; shared, counted. */
typedef struct ev_segment_set {
    size_t n;
    ev_segment *segs;
    size_t n_aud;             /* the /audiences ones come first */
    ev_lookup_index *index;   /* over their rules; NULL if memory ran out (match them all) */
    int refs;      /* under the cache's lock */
} ev_segment_set;

/* The tenant's set (a reference: ev_cache_release it), or NULL with *stamp to hand to
 * ev_cache_put after loading the segments. */
ev_segment_set *ev_cache_get(const char *tenant, uint64_t *stamp);
/* Makes a set of the n segments (taken over: their ids and rules are the set's now, and
 * segs is freed; their rules are indexed, eval/lookup_index.h) and keeps it for the tenant
 * unless word came since ev_cache_get gave stamp. Returns a reference to it, or NULL when memory ran out (segs freed). */
ev_segment_set *ev_cache_put(const char *tenant, uint64_t stamp, const char *fingerprint,
                             ev_segment *segs, size_t n);
void ev_cache_release(ev_segment_set *s);
/* The index in s of the segment with this id (either dialect), or -1. */
long ev_set_find(const ev_segment_set *s, const char *id);

#define EV_CACHE_IDLE_S 60

/* Word: tenant's segments changed (NULL: anyone's). */
void ev_cache_changed(const char *tenant);
/* The watch read tenant's fingerprint: a copy read with another one is dropped. */
void ev_cache_seen(const char *tenant, const char *fingerprint);
/* The tenants with a copy, as a PostgreSQL text[] literal (malloc'd), or NULL when none;
 * drops the copies idle for EV_CACHE_IDLE_S first. */
char *ev_cache_tenants(void);
/* Whether the watch reads: off drops everything and keeps nothing until on. */
void ev_cache_watching(bool on);

/* Counters for /metrics: lookups answered from the cache, and loads. */
void ev_cache_stats(unsigned long long *hits, unsigned long long *loads);

#endif
