/* The JWK Set in use: installed from SEGMENTD_JWT_JWKS_FILE at start, or fetched from
 * SEGMENTD_JWT_JWKS_URL at start and then by a refresher thread (libcurl), when the
 * document's Cache-Control max-age runs out and when a token names an unknown kid, at most
 * once every SEGMENTD_JWT_JWKS_MIN_REFRESH_S. A failed fetch keeps the last good set. */
#include "auth/jwks.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/jwks_private.h"
#include "core/log.h"
#include "core/metrics.h"

#define DEFAULT_MAX_AGE_S 300   /* a document without Cache-Control max-age */
#define MAX_AGE_CEILING_S 86400 /* a max-age above a day waits a day */

enum { REFRESH_OK, REFRESH_FETCH_FAILED, REFRESH_INVALID, N_REFRESH_RESULTS };
static const char *const result_label[N_REFRESH_RESULTS] = {"result=\"ok\"", "result=\"fetch_failed\"",
                                                    "result=\"invalid\""};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    jwk_set *cur;
    atomic_ullong generation;
    const seg_config *cfg;
    bool thread_running, stop, kick;
    pthread_t thread;
    double last_attempt, next_due; /* CLOCK_MONOTONIC seconds */
    atomic_ullong refreshes[N_REFRESH_RESULTS], unknown_kids, failures_in_row, keys, last_ok_unix;
} js = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drops a reference; the last one frees the set. */
static void set_drop(const jwk_set *set)
{
    jwk_set *s = (jwk_set *)set;
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        jwk_set_free(s);
}

const jwk_set *jwks_acquire(void)
{
    pthread_mutex_lock(&js.mu);
    jwk_set *s = js.cur;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&js.mu);
    return s;
}

void jwks_release(const jwk_set *set)
{
    set_drop(set);
}

uint64_t jwks_generation(void)
{
    return atomic_load(&js.generation);
}

void jwks_unknown_kid(void)
{
    atomic_fetch_add(&js.unknown_kids, 1);
    pthread_mutex_lock(&js.mu);
    if (js.thread_running && !js.kick) {
        js.kick = true;
        pthread_cond_signal(&js.cv);
    }
    pthread_mutex_unlock(&js.mu);
}

int auth_jwks_install(const char *doc, size_t len, bool allow_secret, seg_error *err)
{
    jwk_set *set = jwk_set_parse(doc, len, allow_secret, err);
    if (!set)
        return -1;
    set->refs = 1; /* the installed set's own reference */
    char n[16], skipped[16];
    snprintf(n, sizeof n, "%zu", set->n);
    snprintf(skipped, sizeof skipped, "%zu", set->skipped);
    atomic_store(&js.keys, set->n);
    pthread_mutex_lock(&js.mu);
    jwk_set *old = js.cur;
    bool same = old && old->n == set->n && old->skipped == set->skipped;
    for (size_t i = 0; same && i < set->n; i++)
        same = !strcmp(old->keys[i].kid, set->keys[i].kid);
    /* logged before another install can replace (and free) the set */
    log_msg(set->skipped ? LOG_WARN : same ? LOG_DEBUG : LOG_INFO,
            same ? "jwks: key set refreshed, the same kids" : "jwks: key set installed", "keys", n,
            "skipped", skipped, set->skipped ? "first_skipped" : NULL, set->skipped_why, NULL);
    js.cur = set;
    atomic_fetch_add(&js.generation, 1);
    pthread_mutex_unlock(&js.mu);
    set_drop(old);
    return 0;
}

/* ---------------------------------------------------------------- fetching the URL */

typedef struct fetch_buf {
    char *p;
    size_t len;
    bool too_large;
    long max_age; /* -1: none given */
} fetch_buf;

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    fetch_buf *b = cls;
    size_t add = size * n;
    if (b->len + add > JWKS_MAX_BYTES) {
        b->too_large = true;
        return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
    }
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    return add;
}

/* Cache-Control: max-age=N (RFC 9111 5.2.2.1); no-cache and no-store count as 0. */
static size_t on_header(char *data, size_t size, size_t n, void *cls)
{
    fetch_buf *b = cls;
    size_t len = size * n;
    if (len > 14 && !strncasecmp(data, "cache-control:", 14)) {
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len - 14 < 255 ? len - 14 : 255), data + 14);
        for (char *p = line; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        char *m = strstr(line, "max-age=");
        if (m) {
            long v = strtol(m + 8, NULL, 10);
            b->max_age = v < 0 ? 0 : v;
        }
        if (strstr(line, "no-cache") || strstr(line, "no-store"))
            b->max_age = 0;
    }
    return len;
}

static int on_progress(void *cls, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    pthread_mutex_lock(&js.mu);
    bool stop = js.stop;
    pthread_mutex_unlock(&js.mu);
    return stop; /* nonzero aborts the transfer */
}

/* One GET of the URL. Returns 0 with the body in b, or -1 with why. */
static int fetch(const seg_config *cfg, fetch_buf *b, char *why, size_t why_len)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, why_len, "libcurl cannot start a transfer");
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, cfg->jwt_jwks_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->jwt_jwks_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->jwt_jwks_timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JWKS_MAX_BYTES);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "segmentd/" SEGMENTD_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (b->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(why, why_len, "the document is larger than %d bytes", JWKS_MAX_BYTES);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(why, why_len, "HTTP status %ld", status);
        return -1;
    }
    if (!b->p) { /* an empty body: not JSON, said by the parse */
        b->p = malloc(1);
        if (!b->p) {
            snprintf(why, why_len, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The URL as logged: without the user:password@ it may carry. */
static void url_for_log(const char *url, char *out, size_t n)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *at = strchr(host, '@'), *path = host + strcspn(host, "/?#");
    if (at && at < path)
        snprintf(out, n, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, n, "%s", url);
}

/* Fetches and installs. Returns 0 or -1 with why; *next_s is when the next refresh is due. */
static int refresh(const seg_config *cfg, double *next_s, char *why, size_t why_len)
{
    fetch_buf b = {.max_age = -1};
    seg_error err;
    int result = REFRESH_FETCH_FAILED, rc = -1;
    err_clear(&err);
    if (fetch(cfg, &b, why, why_len) == 0) {
        result = REFRESH_INVALID;
        if (auth_jwks_install(b.p, b.len, false, &err) == 0) {
            result = REFRESH_OK;
            rc = 0;
        } else {
            snprintf(why, why_len, "%s", err.detail);
        }
    }
    free(b.p);
    atomic_fetch_add(&js.refreshes[result], 1);
    long floor = cfg->jwt_jwks_min_refresh_s, age = b.max_age < 0 ? DEFAULT_MAX_AGE_S : b.max_age;
    if (rc == 0) {
        atomic_store(&js.failures_in_row, 0);
        atomic_store(&js.last_ok_unix, (unsigned long long)time(NULL));
        *next_s = (double)(age < floor ? floor : age > MAX_AGE_CEILING_S ? MAX_AGE_CEILING_S : age);
    } else {
        atomic_fetch_add(&js.failures_in_row, 1);
        *next_s = (double)floor; /* retried then; the last good set serves meanwhile */
    }
    return rc;
}

static void *refresher(void *arg)
{
    const seg_config *cfg = arg;
    pthread_mutex_lock(&js.mu);
    while (!js.stop) {
        double now = mono_now(), earliest = js.last_attempt + cfg->jwt_jwks_min_refresh_s;
        double wake = js.kick ? earliest : (js.next_due > earliest ? js.next_due : earliest);
        if (now < wake) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double until = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (wake - now);
            ts.tv_sec = (time_t)until;
            ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&js.cv, &js.mu, &ts);
            continue;
        }
        bool kicked = js.kick;
        js.kick = false;
        js.last_attempt = now;
        pthread_mutex_unlock(&js.mu);
        char why[sizeof ((seg_error *)0)->detail] = "", failures[24];
        double next_s = 0;
        int rc = refresh(cfg, &next_s, why, sizeof why);
        snprintf(failures, sizeof failures, "%llu", (unsigned long long)atomic_load(&js.failures_in_row));
        char url[2100];
        url_for_log(cfg->jwt_jwks_url, url, sizeof url);
        if (rc)
            log_msg(LOG_WARN, "jwks: refresh failed, the last good key set stays in use", "url",
                    url, "reason", why, "failures_in_row", failures, NULL);
        else
            log_msg(LOG_DEBUG, "jwks: refreshed", "trigger", kicked ? "unknown kid" : "max-age", NULL);
        pthread_mutex_lock(&js.mu);
        js.next_due = mono_now() + next_s;
    }
    pthread_mutex_unlock(&js.mu);
    return NULL;
}

static void jwks_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_jwks_refreshes_total", "counter",
                   "fetches of SEGMENTD_JWT_JWKS_URL (at start and in the background) by result: "
                   "ok, fetch_failed (network, HTTP status, timeout, too large) or invalid (the "
                   "document refused); a failure keeps the last good set");
    for (int r = 0; r < N_REFRESH_RESULTS; r++)
        metrics_sample(o, "segmentd_jwks_refreshes_total", result_label[r],
                       atomic_load(&js.refreshes[r]));
    metrics_family(o, "segmentd_jwks_refresh_failures", "gauge",
                   "failed fetches of the JWKS URL since the last good one");
    metrics_sample(o, "segmentd_jwks_refresh_failures", "", atomic_load(&js.failures_in_row));
    metrics_family(o, "segmentd_jwks_keys", "gauge", "keys of the JWK Set in use");
    metrics_sample(o, "segmentd_jwks_keys", "", atomic_load(&js.keys));
    metrics_family(o, "segmentd_jwks_unknown_kid_total", "counter",
                   "tokens refused because their kid is not in the set (each may ask for a refresh)");
    metrics_sample(o, "segmentd_jwks_unknown_kid_total", "", atomic_load(&js.unknown_kids));
    metrics_family(o, "segmentd_jwks_last_success_timestamp_seconds", "gauge",
                   "Unix time of the last good fetch of the JWKS URL (0: a file, or none yet)");
    metrics_sample(o, "segmentd_jwks_last_success_timestamp_seconds", "",
                   atomic_load(&js.last_ok_unix));
}

/* Reads the file whole, up to JWKS_MAX_BYTES. */
static char *read_file(const char *path, size_t *len, seg_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        err_startup(err, "config", "SEGMENTD_JWT_JWKS_FILE: cannot read \"%s\": %s", path,
                    strerror(errno));
        return NULL;
    }
    buf = malloc(JWKS_MAX_BYTES + 1);
    if (buf) {
        *len = fread(buf, 1, JWKS_MAX_BYTES + 1, f);
        if (ferror(f) || *len > JWKS_MAX_BYTES) {
            err_startup(err, "config", "SEGMENTD_JWT_JWKS_FILE: \"%s\" %s", path,
                        ferror(f) ? "cannot be read" : "is larger than 1 MiB");
            free(buf);
            buf = NULL;
        }
    } else {
        err_startup(err, "config", "SEGMENTD_JWT_JWKS_FILE: out of memory");
    }
    fclose(f);
    return buf;
}

int auth_jwks_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (!cfg->jwt_jwks_file && !cfg->jwt_jwks_url)
        return 0;
    if (!provided)
        metrics_provide(jwks_metrics);
    provided = true;
    js.cfg = cfg;
    if (cfg->jwt_jwks_file) {
        size_t len = 0;
        char *doc = read_file(cfg->jwt_jwks_file, &len, err);
        if (!doc)
            return -1;
        int rc = auth_jwks_install(doc, len, true, err);
        free(doc);
        if (rc) {
            char why[sizeof err->detail];
            snprintf(why, sizeof why, "%s", err->detail);
            err_startup(err, "config", "SEGMENTD_JWT_JWKS_FILE: \"%s\": %s", cfg->jwt_jwks_file, why);
        }
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        err_startup(err, "jwks", "libcurl cannot start");
        return -1;
    }
    char why[sizeof ((seg_error *)0)->detail] = "";
    double next_s = 0;
    js.stop = false;
    js.last_attempt = mono_now();
    if (refresh(cfg, &next_s, why, sizeof why)) {
        char url[2100];
        url_for_log(cfg->jwt_jwks_url, url, sizeof url);
        err_startup(err, "config", "SEGMENTD_JWT_JWKS_URL: cannot load the key set from %.200s: %s",
                    url, why);
        curl_global_cleanup();
        return -1;
    }
    js.next_due = mono_now() + next_s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&js.cv, &ca);
    pthread_condattr_destroy(&ca);
    /* the thread starts with every signal blocked: SIGTERM/SIGINT are main's (sigwait),
     * and this thread starts before main blocks them */
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    int rc = pthread_create(&js.thread, NULL, refresher, (void *)cfg);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (rc) {
        err_startup(err, "jwks", "cannot start the JWKS refresher thread");
        curl_global_cleanup();
        return -1;
    }
    js.thread_running = true;
    return 0;
}

void auth_jwks_stop(void)
{
    pthread_mutex_lock(&js.mu);
    bool running = js.thread_running;
    js.stop = true;
    js.thread_running = false;
    if (running)
        pthread_cond_signal(&js.cv);
    pthread_mutex_unlock(&js.mu);
    if (running) {
        pthread_join(js.thread, NULL);
        pthread_cond_destroy(&js.cv);
        curl_global_cleanup();
    }
    pthread_mutex_lock(&js.mu);
    jwk_set *s = js.cur;
    js.cur = NULL;
    pthread_mutex_unlock(&js.mu);
    set_drop(s);
}
