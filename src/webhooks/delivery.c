/* The webhook delivery worker: one thread, a PostgreSQL session of its own and a libcurl multi
 * handle. It claims due deliveries (store/webhook_queue.h: each leased, so one process at a
 * time attempts it), sends them all at once on the multi handle, and records each outcome as
 * it ends. Its SSRF guard is libcurl's socket-open callback: every address libcurl is about to
 * connect to, after its own resolution, is checked there (core/netaddr.h), so that the address
 * checked is the address connected to and a name that resolves again differently (DNS
 * rebinding) gains nothing; the resolution itself stays libcurl's asynchronous one, so a slow
 * DNS server holds up only its own delivery. */
#include "webhooks/delivery.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/netaddr.h"
#include "store/webhook_queue.h"
#include "webhooks/signature.h"

/* Bytes of a receiver's answer read: enough for the excerpt kept in the log; the rest is not
 * read (the transfer ends there). */
#define RESPONSE_MAX 4096
/* Characters of a failed answer kept in last_error. */
#define EXCERPT_MAX 200
/* A claim's lease past the attempt's own timeout: long enough that a live process always
 * records its outcome first, short enough that a dead one's claims come back soon. */
#define LEASE_MARGIN_MS 2000
/* The worker's session: statements are small; a stuck one must not hold the loop long. */
#define SESSION_TIMEOUT_MS 5000
/* How often the pending gauge is read. */
#define PENDING_EVERY_MS 5000
/* Deliveries one claim takes at most: the window of the claim's statement
 * (statements_webhooks_api.inc). */
#define WH_CLAIM_MAX 256
/* The wait before claiming again after the database failed. */
#define RECONNECT_MS 5000
/* The longest the loop sleeps between looks at its flags (stop, wake) when nothing happens. */
#define MAX_SLEEP_MS 1000

enum { RES_DELIVERED, RES_HTTP, RES_TIMEOUT, RES_REFUSED, RES_CONNECT, RES_ERROR, N_RESULTS };
static const char *const result_labels[N_RESULTS] = {
    "result=\"delivered\"", "result=\"http_error\"", "result=\"timeout\"",
    "result=\"refused\"", "result=\"connect_error\"", "result=\"error\"",
};

typedef struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    store_wh_claim *claim;
    long long started_us;
    size_t resp_len;
    bool cut;                          /* the answer was longer than RESPONSE_MAX */
    const char *refused;               /* why an address was refused (SSRF), or NULL */
    char refused_addr[INET6_ADDRSTRLEN];
    char errbuf[CURL_ERROR_SIZE];
    char resp[RESPONSE_MAX];
    struct transfer *next;
} transfer;

static struct {
    const seg_config *cfg;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    bool quiesce, stop;                /* under mu */
    long long deadline_ms;             /* under mu: when stop gives the attempts in flight up */
    atomic_bool woken;
    CURLM *multi;
    transfer *flying;                  /* the worker thread's own */
    int in_flight;
    store_whq *q;
    unsigned long long rng;
    atomic_ullong attempts[N_RESULTS], gave_up, lost;
    atomic_llong pending, flying_gauge;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

long long wh_backoff_ms(int base_ms, int attempts, double jitter01)
{
    long long d = base_ms;
    for (int i = 1; i < attempts && d < WH_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > WH_BACKOFF_MAX_MS)
        d = WH_BACKOFF_MAX_MS;
    return d / 2 + (long long)((double)(d - d / 2) * jitter01);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: the jitter needs no cryptographic quality, only to differ between processes. */
static double rand01(void)
{
    wd.rng ^= wd.rng >> 12;
    wd.rng ^= wd.rng << 25;
    wd.rng ^= wd.rng >> 27;
    return (double)((wd.rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void delivery_metrics(metrics_out *o)
{
    metrics_family(o, "segmentd_webhook_attempts_total", "counter",
                   "webhook delivery attempts made by this process, by result");
    for (int i = 0; i < N_RESULTS; i++)
        metrics_sample(o, "segmentd_webhook_attempts_total", result_labels[i], atomic_load(&wd.attempts[i]));
    metrics_family(o, "segmentd_webhook_deliveries_failed_total", "counter",
                   "deliveries this process marked failed: retried until SEGMENTD_WEBHOOK_RETRY_WINDOW_S");
    metrics_sample(o, "segmentd_webhook_deliveries_failed_total", "", atomic_load(&wd.gave_up));
    metrics_family(o, "segmentd_webhook_outcomes_lost_total", "counter",
                   "attempts whose outcome was not recorded: the database failed (the delivery is "
                   "attempted again after its lease), the lease ran out first (another attempt "
                   "owns it), or the subscription was deleted meanwhile");
    metrics_sample(o, "segmentd_webhook_outcomes_lost_total", "", atomic_load(&wd.lost));
    metrics_family(o, "segmentd_webhook_deliveries_pending", "gauge",
                   "deliveries pending in the database (all processes), read every few seconds");
    long long p = atomic_load(&wd.pending);
    metrics_sample(o, "segmentd_webhook_deliveries_pending", "", p > 0 ? (unsigned long long)p : 0);
    metrics_family(o, "segmentd_webhook_in_flight", "gauge", "webhook deliveries this process is sending now");
    metrics_sample(o, "segmentd_webhook_in_flight", "", (unsigned long long)atomic_load(&wd.flying_gauge));
}

/* The worker's session, opened when missing; NULL when the database cannot be reached. */
static store_whq *session(void)
{
    if (!wd.q)
        wd.q = store_whq_open(wd.cfg, SESSION_TIMEOUT_MS);
    return wd.q;
}

/* After a failed statement: logged, and the session dropped (the next look reconnects). */
static void session_failed(const char *what, const seg_error *err)
{
    log_msg(LOG_WARN, what, "detail", err->log_detail, NULL);
    store_whq_close(wd.q);
    wd.q = NULL;
}

/* libcurl's socket(2): the SSRF guard, on the address it resolved and is about to connect to. */
static curl_socket_t open_socket(void *cls, curlsocktype purpose, struct curl_sockaddr *a)
{
    transfer *t = cls;
    const char *why = purpose == CURLSOCKTYPE_IPCXN ? netaddr_refused(&a->addr) : "not a connection";
    if (why) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&a->addr;
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)&a->addr;
        const void *bytes = a->family == AF_INET6 ? (const void *)&in6->sin6_addr
                                                  : (const void *)&in4->sin_addr;
        if (!inet_ntop(a->family, bytes, t->refused_addr, sizeof t->refused_addr))
            snprintf(t->refused_addr, sizeof t->refused_addr, "?");
        t->refused = why;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The receiver's answer: its first RESPONSE_MAX bytes; past them the transfer ends. */
static size_t on_body(char *p, size_t size, size_t n, void *cls)
{
    transfer *t = cls;
    size_t len = size * n, room = RESPONSE_MAX - t->resp_len;
    if (len > room) {
        memcpy(t->resp + t->resp_len, p, room);
        t->resp_len = RESPONSE_MAX;
        t->cut = true;
        return 0;
    }
    memcpy(t->resp + t->resp_len, p, len);
    t->resp_len += len;
    return len;
}

static void transfer_free(transfer *t)
{
    if (t->easy) {
        curl_multi_remove_handle(wd.multi, t->easy);
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    store_wh_claim_free(t->claim);
    free(t);
}

/* Records an outcome (counted under result); a failure to record it is logged and counted: the
 * lease then runs out and the delivery is attempted again. */
static void record(const store_wh_claim *c, int result, const store_wh_outcome *o)
{
    seg_error err;
    err_clear(&err);
    atomic_fetch_add(&wd.attempts[result], 1);
    store_whq *q = session();
    int rc = q ? store_whq_record(q, c, o, &err) : -1;
    if (rc < 0) {
        atomic_fetch_add(&wd.lost, 1);
        if (q)
            session_failed("webhook delivery: an outcome could not be recorded; the delivery is "
                           "attempted again after its lease", &err);
    } else if (rc == 0) {
        atomic_fetch_add(&wd.lost, 1);
    } else if (rc == 'f') {
        atomic_fetch_add(&wd.gave_up, 1);
        log_msg(LOG_WARN, "webhook delivery failed for good", "tenant", c->tenant, "delivery", c->id,
                "error", o->error ? o->error : "", NULL);
    }
}

/* A failure that never reached libcurl (no memory, a bad secret): recorded as an error. */
static void record_error(store_wh_claim *c, const char *why)
{
    store_wh_outcome o = {.error = why, .window_s = wd.cfg->webhook_retry_window_s,
                          .retry_in_ms = wh_backoff_ms(wd.cfg->webhook_retry_base_ms, c->attempts, rand01()),
                          .started_us = wall_us()};
    record(c, RES_ERROR, &o);
}

/* Whether s may go into a header as it is: printable ASCII, no space. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* Starts claim c's attempt on the multi handle (owning c from here). */
static void start(store_wh_claim *c)
{
    char sig[WH_SIGNATURE_MAX], line[128];
    long long ts = (long long)time(NULL);
    transfer *t = calloc(1, sizeof *t);
    if (!t || !(t->easy = curl_easy_init())) {
        record_error(c, "out of memory");
        free(t);
        store_wh_claim_free(c);
        return;
    }
    t->claim = c;
    if (!header_safe(c->event_id) || wh_sign(c->secret, c->event_id, ts, c->body, c->body_len, sig)) {
        record_error(c, "the event id or the subscription's secret is malformed");
        transfer_free(t);
        return;
    }
    struct curl_slist *h = NULL;
    static const char user_agent[] = "User-Agent: segmentd/" SEGMENTD_VERSION;
    const char *fixed[] = {"Content-Type: application/json", user_agent, "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        h = curl_slist_append(h, fixed[i]);
    snprintf(line, sizeof line, "webhook-id: %s", c->event_id);
    h = h ? curl_slist_append(h, line) : NULL;
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    h = h ? curl_slist_append(h, line) : NULL;
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    h = h ? curl_slist_append(h, line) : NULL;
    CURL *e = t->easy;
    t->headers = h;
    t->started_us = wall_us();
    if (!h || curl_easy_setopt(e, CURLOPT_URL, c->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        record_error(c, h ? "the URL is not one libcurl takes" : "out of memory");
        transfer_free(t);
        return;
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);      /* a 3xx is a failed attempt */
    curl_easy_setopt(e, CURLOPT_PROXY, "");                /* never through a proxy of the environment */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)wd.cfg->webhook_connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)wd.cfg->webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    if (!wd.cfg->webhook_allow_private) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    }
    if (curl_multi_add_handle(wd.multi, e) != CURLM_OK) {
        record_error(c, "libcurl refused the transfer");
        transfer_free(t);
        return;
    }
    t->next = wd.flying;
    wd.flying = t;
    wd.in_flight++;
    atomic_store(&wd.flying_gauge, wd.in_flight);
}

/* The deliveries in flight per subscription, for the claim: [{"t", "w", "n"}]. malloc'd. */
static char *busy_json(void)
{
    json_t *a = json_array();
    for (transfer *t = wd.flying; t && a; t = t->next) {
        size_t i;
        json_t *o;
        bool found = false;
        json_array_foreach(a, i, o) {
            if (!strcmp(json_string_value(json_object_get(o, "t")), t->claim->tenant) &&
                !strcmp(json_string_value(json_object_get(o, "w")), t->claim->webhook)) {
                json_object_set_new(o, "n", json_integer(json_integer_value(json_object_get(o, "n")) + 1));
                found = true;
                break;
            }
        }
        if (!found)
            json_array_append_new(a, json_pack("{s:s, s:s, s:i}", "t", t->claim->tenant, "w",
                                               t->claim->webhook, "n", 1));
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* Claims up to max due deliveries and starts them. How many were claimed, or -1. */
static int claim(int max)
{
    seg_error err;
    store_wh_claim **list = NULL;
    int n = 0;
    err_clear(&err);
    store_whq *q = session();
    char *busy = q ? busy_json() : NULL;
    if (!busy) {
        free(busy);
        return -1;
    }
    int rc = store_whq_claim(q, max, wd.cfg->webhook_per_subscription, busy,
                             wd.cfg->webhook_timeout_ms + LEASE_MARGIN_MS, &list, &n, &err);
    free(busy);
    if (rc) {
        session_failed("webhook delivery: claiming failed; retrying", &err);
        return -1;
    }
    for (int i = 0; i < n; i++)
        start(list[i]);
    free(list);
    return n;
}

/* Printable ASCII of a receiver's answer, for last_error. */
static void excerpt(const transfer *t, char *out, size_t cap)
{
    size_t n = t->resp_len < EXCERPT_MAX ? t->resp_len : EXCERPT_MAX, o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)t->resp[i];
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    out[o] = '\0';
}

/* An attempt ended with libcurl's result rc: its outcome recorded, the transfer freed. */
static void finish(transfer *t, CURLcode rc)
{
    long code = 0;
    char why[EXCERPT_MAX + 160], body[EXCERPT_MAX + 1];
    int result;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    bool answered = (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t->cut)) && code > 0;
    store_wh_outcome o = {.window_s = wd.cfg->webhook_retry_window_s, .started_us = t->started_us,
                          .http_status = answered ? (int)code : 0, .error = why};
    if (answered && code >= 200 && code < 300) {
        result = RES_DELIVERED;
        o.delivered = true;
        o.error = NULL;
    } else if (answered) {
        result = RES_HTTP;
        excerpt(t, body, sizeof body);
        snprintf(why, sizeof why, "HTTP %ld%s%s", code, body[0] ? ": " : "", body);
    } else if (t->refused) {
        result = RES_REFUSED;
        snprintf(why, sizeof why, "refused: %s is a %s address (SEGMENTD_WEBHOOK_ALLOW_PRIVATE=1 "
                 "allows it)", t->refused_addr, t->refused);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        result = RES_TIMEOUT;
        snprintf(why, sizeof why, "timeout: %s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    } else {
        result = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ? RES_CONNECT : RES_ERROR;
        snprintf(why, sizeof why, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    }
    if (!o.delivered)
        o.retry_in_ms = wh_backoff_ms(wd.cfg->webhook_retry_base_ms, t->claim->attempts, rand01());
    record(t->claim, result, &o);
    transfer_free(t);
}

/* The transfers libcurl says are done: their outcomes recorded. How many. */
static int reap(void)
{
    int done = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(wd.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL, **pp;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        for (pp = &wd.flying; *pp && *pp != t; pp = &(*pp)->next)
            ;
        if (!t || !*pp)
            continue;
        *pp = t->next;
        wd.in_flight--;
        atomic_store(&wd.flying_gauge, wd.in_flight);
        finish(t, rc); /* m is not used after this: the handle is removed there */
        done++;
    }
    return done;
}

/* At stop, past the deadline: each attempt still in flight is abandoned and its claim given
 * back (due again at once), so that no receiver waits a lease for it. */
static void abandon_all(void)
{
    seg_error err;
    while (wd.flying) {
        transfer *t = wd.flying;
        wd.flying = t->next;
        err_clear(&err);
        if (wd.q && store_whq_release(wd.q, t->claim, &err))
            session_failed("webhook delivery: a claim could not be given back; it is due again "
                           "after its lease", &err);
        transfer_free(t);
    }
    wd.in_flight = 0;
    atomic_store(&wd.flying_gauge, 0);
}

static void *worker_main(void *arg)
{
    (void)arg;
    const seg_config *cfg = wd.cfg;
    long long next_claim = 0, next_pending = 0;
    for (;;) {
        long long now = mono_ms();
        pthread_mutex_lock(&wd.mu);
        bool quiesce = wd.quiesce, stop = wd.stop;
        long long deadline = wd.deadline_ms;
        pthread_mutex_unlock(&wd.mu);
        if (stop && (wd.in_flight == 0 || now >= deadline))
            break;
        if (atomic_exchange(&wd.woken, false))
            next_claim = now;
        if (!quiesce && wd.in_flight < cfg->webhook_concurrency && now >= next_claim) {
            int want = cfg->webhook_concurrency - wd.in_flight;
            if (want > WH_CLAIM_MAX)
                want = WH_CLAIM_MAX;
            int got = claim(want);
            /* a full claim may have left more due: look again as soon as a slot frees; a
             * database that failed is tried again less often than the poll (each failure logs) */
            next_claim = got == want ? now : now + (got < 0 && cfg->webhook_poll_ms < RECONNECT_MS
                                                        ? RECONNECT_MS : cfg->webhook_poll_ms);
        }
        if (!quiesce && now >= next_pending) {
            seg_error err;
            err_clear(&err);
            store_whq *q = session();
            long long p = q ? store_whq_pending(q, &err) : -1;
            if (p >= 0)
                atomic_store(&wd.pending, p);
            else if (q)
                session_failed("webhook delivery: the pending count failed", &err);
            next_pending = now + PENDING_EVERY_MS;
        }
        int running = 0;
        curl_multi_perform(wd.multi, &running);
        if (reap() > 0) /* slots, and their subscriptions' turns, are free: claim at once */
            next_claim = mono_ms();
        now = mono_ms();
        long long wait = MAX_SLEEP_MS;
        if (!quiesce && wd.in_flight < cfg->webhook_concurrency && next_claim - now < wait)
            wait = next_claim - now;
        if (stop && deadline - now < wait)
            wait = deadline - now;
        if (wait > 0)
            curl_multi_poll(wd.multi, NULL, 0, (int)wait, NULL);
    }
    abandon_all();
    store_whq_close(wd.q);
    wd.q = NULL;
    return NULL;
}

int wh_delivery_start(const seg_config *cfg, seg_error *err)
{
    static bool provided;
    if (cfg->webhook_concurrency == 0)
        return 0;
    if (!provided) /* once per process */
        metrics_provide(delivery_metrics);
    provided = true;
    wd.cfg = cfg;
    wd.quiesce = wd.stop = false;
    if (ids_random((unsigned char *)&wd.rng, sizeof wd.rng) || !wd.rng)
        wd.rng = (unsigned long long)wall_us() | 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(wd.multi = curl_multi_init())) {
        err_startup(err, "webhooks", "libcurl could not start: no webhook delivery");
        return -1;
    }
    if (pthread_create(&wd.thread, NULL, worker_main, NULL)) {
        curl_multi_cleanup(wd.multi);
        wd.multi = NULL;
        err_startup(err, "webhooks", "cannot start the webhook delivery thread");
        return -1;
    }
    wd.started = true;
    return 0;
}

void wh_delivery_wake(void)
{
    if (!wd.started)
        return;
    atomic_store(&wd.woken, true);
    curl_multi_wakeup(wd.multi);
}

void wh_delivery_quiesce(void)
{
    if (!wd.started)
        return;
    pthread_mutex_lock(&wd.mu);
    wd.quiesce = true;
    pthread_mutex_unlock(&wd.mu);
    curl_multi_wakeup(wd.multi);
}

void wh_delivery_stop(int wait_ms)
{
    if (!wd.started)
        return;
    pthread_mutex_lock(&wd.mu);
    wd.quiesce = wd.stop = true;
    wd.deadline_ms = mono_ms() + wait_ms;
    pthread_mutex_unlock(&wd.mu);
    curl_multi_wakeup(wd.multi);
    pthread_join(wd.thread, NULL);
    curl_multi_cleanup(wd.multi);
    wd.multi = NULL;
    wd.started = false;
    curl_global_cleanup();
}
