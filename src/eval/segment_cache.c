/* The lookup's cache of compiled segments, per tenant: a small hash table under one lock.
 * Each tenant's entry counts the word that came for it; a set loaded while word came is
 * used for the request that loaded it but not kept. */
#include "eval/segment_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json_text.h"

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
        free(segs[i].id_json);
        ev_rule_free(&segs[i].rule);
    }
    free(segs);
}

static void set_free(ev_segment_set *s)
{
    segs_free(s->segs, s->n);
    ev_index_free(s->index);
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
    while (s->n_aud < n && !segs[s->n_aud].v1)
        s->n_aud++;
    for (size_t i = 0; i < n; i++) {
        json_text t = {0};
        json_text_cstr(&t, segs[i].id, JSON_ESC_PG);
        if (!(segs[i].id_json = json_text_take(&t, &segs[i].id_json_len))) {
            set_free(s);
            return NULL;
        }
    }
    ev_rule **rules = malloc((n ? n : 1) * sizeof *rules);
    for (size_t i = 0; rules && i < n; i++)
        rules[i] = &segs[i].rule;
    s->index = rules ? ev_index_build(rules, n) : NULL; /* NULL: every rule is matched */
    free(rules);
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

/* A binary search of segs[lo, hi) for id. */
static long find_in(const ev_segment *segs, size_t lo, size_t hi, const char *id)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(segs[mid].id, id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

long ev_set_find(const ev_segment_set *s, const char *id)
{
    long i = find_in(s->segs, 0, s->n_aud, id);
    return i >= 0 ? i : find_in(s->segs, s->n_aud, s->n, id);
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
