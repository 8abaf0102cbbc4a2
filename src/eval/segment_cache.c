/* The lookup's cache of compiled segments, per tenant: a small hash table under one lock.
 * Each tenant's entry counts the word that came for it; a set loaded while word came is
 * used for the request that loaded it but not kept. */
#include "eval/segment_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024
#define TENANTS_MAX 8192   /* past it the cache starts again empty */

typedef struct entry {
    struct entry *next;
    char *tenant;
    uint64_t word;         /* changes with each word that comes for it (C.epoch numbers) */
    ev_segment_set *set;   /* kept, or NULL */
    char *fingerprint;     /* read with the set */
    time_t used;           /* last hit or load (monotonic seconds) */
} entry;

static struct {
    pthread_mutex_t mu;
    entry *b[BUCKETS];
    size_t n;
    bool listening;
    uint64_t epoch;   /* the last word number given: they never repeat, clears included */
    unsigned long long hits, loads;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

static size_t bucket(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % BUCKETS);
}

static void segs_free(ev_segment *segs, size_t n)
{
    for (size_t i = 0; segs && i < n; i++) {
        free(segs[i].id);
        ev_rule_free(&segs[i].rule);
    }
    free(segs);
}

static void set_free(ev_segment_set *s)
{
    segs_free(s->segs, s->n);
    free(s);
}

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Drops a reference (under the lock). */
static void unref(ev_segment_set *s)
{
    if (s && --s->refs == 0)
        set_free(s);
}

/* Drops an entry's set (under the lock); a load under way for it is not kept either. */
static void drop(entry *e)
{
    e->word = ++C.epoch;
    unref(e->set);
    e->set = NULL;
    free(e->fingerprint);
    e->fingerprint = NULL;
}

static entry *find(const char *tenant, bool create)
{
    entry **pp = &C.b[bucket(tenant)];
    for (entry *e = *pp; e; e = e->next)
        if (strcmp(e->tenant, tenant) == 0)
            return e;
    if (!create || C.n >= TENANTS_MAX)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->tenant = strdup(tenant))) {
        free(e);
        return NULL;
    }
    e->word = ++C.epoch; /* never a number an entry of this tenant had before a clear */
    e->next = *pp;
    *pp = e;
    C.n++;
    return e;
}

/* Forgets every tenant (under the lock): their word counts go with them, so a set loaded
 * meanwhile finds no entry and is not kept. */
static void forget_all(void)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        for (entry *e = C.b[i], *next; e; e = next) {
            next = e->next;
            unref(e->set);
            free(e->fingerprint);
            free(e->tenant);
            free(e);
        }
        C.b[i] = NULL;
    }
    C.n = 0;
}

ev_segment_set *ev_cache_get(const char *tenant, uint64_t *stamp)
{
    pthread_mutex_lock(&C.mu);
    ev_segment_set *s = NULL;
    entry *e = C.listening ? find(tenant, true) : NULL;
    if (!e && C.listening && C.n >= TENANTS_MAX) { /* full: start again */
        forget_all();
        e = find(tenant, true);
    }
    if (e)
        e->used = now_s();
    if (e && e->set) {
        s = e->set;
        s->refs++;
        C.hits++;
    } else {
        C.loads++;
    }
    *stamp = e ? e->word : UINT64_MAX;
    pthread_mutex_unlock(&C.mu);
    return s;
}

static int by_dialect_id(const void *a, const void *b)
{
    const ev_segment *x = a, *y = b;
    if (x->v1 != y->v1)
        return x->v1 ? 1 : -1;
    return strcmp(x->id, y->id);
}

ev_segment_set *ev_cache_put(const char *tenant, uint64_t stamp, const char *fingerprint,
                             ev_segment *segs, size_t n)
{
    ev_segment_set *s = segs ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        segs_free(segs, n);
        return NULL;
    }
    if (n)
        qsort(segs, n, sizeof *segs, by_dialect_id);
    s->n = n;
    s->segs = segs;
    s->refs = 1;
    pthread_mutex_lock(&C.mu);
    entry *e = C.listening && stamp != UINT64_MAX ? find(tenant, false) : NULL;
    char *fp = e && e->word == stamp ? strdup(fingerprint) : NULL;
    if (fp) {
        unref(e->set);
        free(e->fingerprint);
        e->set = s;
        e->fingerprint = fp;
        s->refs++;
    }
    pthread_mutex_unlock(&C.mu);
    return s;
}

void ev_cache_release(ev_segment_set *s)
{
    pthread_mutex_lock(&C.mu);
    unref(s);
    pthread_mutex_unlock(&C.mu);
}

void ev_cache_changed(const char *tenant)
{
    pthread_mutex_lock(&C.mu);
    if (!tenant) {
        forget_all();
    } else {
        entry *e = find(tenant, false);
        if (e)
            drop(e);
    }
    pthread_mutex_unlock(&C.mu);
}

void ev_cache_seen(const char *tenant, const char *fingerprint)
{
    pthread_mutex_lock(&C.mu);
    entry *e = find(tenant, false);
    if (e && e->set && strcmp(e->fingerprint, fingerprint) != 0)
        drop(e);
    pthread_mutex_unlock(&C.mu);
}

/* Appends s to a text[] literal being written at w, quoted and escaped. */
static char *put_element(char *w, const char *s)
{
    *w++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *w++ = '\\';
        *w++ = *s;
    }
    *w++ = '"';
    return w;
}

char *ev_cache_tenants(void)
{
    size_t len = 3;
    time_t idle_before = now_s() - EV_CACHE_IDLE_S;
    pthread_mutex_lock(&C.mu);
    for (size_t i = 0; i < BUCKETS; i++)
        for (entry *e = C.b[i]; e; e = e->next) {
            if (e->set && e->used < idle_before)
                drop(e);
            if (e->set)
                len += 2 * strlen(e->tenant) + 3;
        }
    char *out = len > 3 ? malloc(len) : NULL, *w = out;
    if (out) {
        *w++ = '{';
        for (size_t i = 0; i < BUCKETS; i++)
            for (entry *e = C.b[i]; e; e = e->next)
                if (e->set) {
                    if (w > out + 1)
                        *w++ = ',';
                    w = put_element(w, e->tenant);
                }
        *w++ = '}';
        *w = '\0';
    }
    pthread_mutex_unlock(&C.mu);
    return out;
}

void ev_cache_watching(bool on)
{
    pthread_mutex_lock(&C.mu);
    forget_all();
    C.listening = on;
    pthread_mutex_unlock(&C.mu);
}

void ev_cache_stats(unsigned long long *hits, unsigned long long *loads)
{
    pthread_mutex_lock(&C.mu);
    *hits = C.hits;
    *loads = C.loads;
    pthread_mutex_unlock(&C.mu);
}
