/* The event loops: SEGMENTD_LOOPS threads, each an epoll loop (core/fiber.h) driving a
 * libmicrohttpd daemon of its own in external-epoll mode, fed connections by the acceptor.
 * Nothing of a request leaves its loop's thread. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/fiber.h"
#include "core/log.h"
#include "http/http_private.h"

/* One loop: its daemon, and the connections the acceptor dealt it, waiting in its inbox. */
typedef struct http_loop {
    int index;
    struct MHD_Daemon *d;
    pthread_t thread;
    bool started;
    int inbox_fd;              /* eventfd: new connections, or stop */
    pthread_mutex_t mu;
    struct inbox_conn {
        int fd;
        socklen_t sl;
        struct sockaddr_storage ss;
    } *inbox;
    int n_inbox, cap_inbox;
    bool stop;                 /* under mu */
} http_loop;

static http_loop *loops_;
static int n_loops_;

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_WARN, "libmicrohttpd", "detail", msg, NULL);
}

/* The daemon tells when a connection it took ends; *socket_context marks the ones it
 * took (a refused one is given back by the loop, which sees MHD_add_connection fail). */
static __thread bool conn_started;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_started = true;
        *socket_context = conn;
        return;
    }
    if (!*socket_context)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    http_limits_give(ci ? ci->client_addr : NULL);
    *socket_context = NULL;
}

void http_loops_deal(int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    static unsigned next;
    if (!http_limits_take((const struct sockaddr *)ss)) {
        close(fd); /* past a limit: closed at once, unanswered, as libmicrohttpd does */
        return;
    }
    http_loop *l = &loops_[next++ % (unsigned)n_loops_];
    pthread_mutex_lock(&l->mu);
    if (l->n_inbox == l->cap_inbox) {
        int ncap = l->cap_inbox ? l->cap_inbox * 2 : 64;
        void *ni = realloc(l->inbox, (size_t)ncap * sizeof *l->inbox);
        if (!ni) {
            pthread_mutex_unlock(&l->mu);
            http_limits_give((const struct sockaddr *)ss);
            close(fd);
            return;
        }
        l->inbox = ni;
        l->cap_inbox = ncap;
    }
    struct inbox_conn *c = &l->inbox[l->n_inbox++];
    c->fd = fd;
    c->sl = sl;
    memcpy(&c->ss, ss, sl);
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    ssize_t w = write(l->inbox_fd, &one, sizeof one);
    (void)w;
}

void http_loops_wake(int index)
{
    if (index >= 0 && index < n_loops_ && loops_[index].inbox_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(loops_[index].inbox_fd, &one, sizeof one);
        (void)w;
    }
}

static void on_inbox(void *arg, uint32_t events)
{
    http_loop *l = arg;
    uint64_t v;
    ssize_t r = read(l->inbox_fd, &v, sizeof v);
    (void)r;
    (void)events;
    for (;;) {
        struct inbox_conn c;
        pthread_mutex_lock(&l->mu);
        if (!l->n_inbox) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        c = l->inbox[--l->n_inbox];
        pthread_mutex_unlock(&l->mu);
        conn_started = false;
        if (MHD_add_connection(l->d, c.fd, (struct sockaddr *)&c.ss, c.sl) != MHD_YES &&
            !conn_started)
            http_limits_give((struct sockaddr *)&c.ss); /* MHD closed the socket */
    }
}

/* The daemon's epoll fd is readable: its turn comes after the fibers' (loop_main), so
 * that one MHD_run a turn serves both the new events and the resumed connections. */
static void on_daemon(void *arg, uint32_t events)
{
    (void)arg;
    (void)events;
}

static void *loop_main(void *arg)
{
    http_loop *l = arg;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (fiber_loop_init(l->index, n_loops_) || !di || fiber_loop_watch(di->epoll_fd, on_daemon, l) ||
        fiber_loop_watch(l->inbox_fd, on_inbox, l)) {
        log_msg(LOG_ERROR, "event loop: cannot start", "detail", strerror(errno), NULL);
        abort(); /* a loop that cannot watch its daemon would hang its connections */
    }
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        MHD_UNSIGNED_LONG_LONG to;
        int ms = -1;
        if (MHD_get_timeout(l->d, &to) == MHD_YES)
            ms = to > 1000 ? 1000 : (int)to;
        (void)fiber_loop_turn(ms);
        /* always: the answers of resumed connections, idle timeouts, and the daemon's own
         * ready list (its sockets are edge-triggered: work left from the last run shows
         * only as a zero timeout, not as a readable epoll fd) */
        MHD_run(l->d);
    }
    /* A fiber may still be finishing after its request's answer went out (its clean-up
     * waiting on the database): give such fibers up to a second to end, so that the loop is
     * freed; one still parked then keeps the loop (its memory) for the process's last
     * moments. */
    for (int i = 0; i < 100 && fiber_loop_live(); i++)
        (void)fiber_loop_turn(10);
    if (!fiber_loop_live())
        fiber_loop_free();
    return NULL;
}

static struct MHD_Daemon *start_daemon(const seg_config *cfg)
{
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET,
        0, NULL, NULL, http_on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        /* the limits are counted by the acceptor (http_limits_take): this is a backstop */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->connection_limit,
        /* a connection's buffer for the request line, headers and body chunks: 16 KiB
         * (a larger header block is 431). libmicrohttpd zeroes the whole of it after
         * every request, so its size is paid per request (measured with callgrind: 48 KB
         * of memset a request at 32 KiB). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape_no_nul, NULL,
        MHD_OPTION_END);
}

int http_loops_start(const seg_config *cfg, seg_error *err)
{
    n_loops_ = cfg->loops;
    loops_ = calloc((size_t)n_loops_, sizeof *loops_);
    if (!loops_)
        goto fail;
    for (int i = 0; i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        l->index = i;
        l->inbox_fd = -1;
        pthread_mutex_init(&l->mu, NULL);
        l->d = start_daemon(cfg);
        l->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!l->d || l->inbox_fd < 0)
            goto fail;
    }
    for (int i = 0; i < n_loops_; i++) {
        if (pthread_create(&loops_[i].thread, NULL, loop_main, &loops_[i]))
            goto fail;
        loops_[i].started = true;
    }
    return 0;
fail:
    err_startup(err, "listen", "cannot start the event loops: %s", strerror(errno));
    http_loops_stop(true);
    return -1;
}

int http_loops_stop(bool all)
{
    int left = 0;
    for (int i = 0; loops_ && i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        if (l->started) {
            pthread_mutex_lock(&l->mu);
            l->stop = true;
            pthread_mutex_unlock(&l->mu);
            uint64_t one = 1;
            ssize_t w = write(l->inbox_fd, &one, sizeof one);
            (void)w;
            pthread_join(l->thread, NULL);
            l->started = false;
        }
    }
    for (int i = 0; loops_ && i < n_loops_; i++) {
        http_loop *l = &loops_[i];
        for (int k = 0; k < l->n_inbox; k++)
            close(l->inbox[k].fd);
        free(l->inbox);
        /* a daemon must not be stopped with suspended connections (a request still on a
         * fiber after the grace period) */
        if (l->d && (all || !http_inflight()))
            MHD_stop_daemon(l->d);
        else if (l->d)
            left++;
        if (l->inbox_fd >= 0)
            close(l->inbox_fd);
        pthread_mutex_destroy(&l->mu);
    }
    if (!left) {
        free(loops_);
        loops_ = NULL;
        n_loops_ = 0;
    }
    return left;
}
