/* The listening socket, the acceptor thread that deals connections to the loops, and
 * starting and stopping the server. */
#include "http/listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/fiber.h"
#include "core/log.h"
#include "http/http_private.h"
#include "http/rate_limit.h"
#include "http/router.h"

static const seg_config *scfg;
static int bound_port;
static int listen_fd = -1;
static int stop_fd = -1;       /* eventfd: wakes the acceptor to stop */
static pthread_t acceptor;
static bool acceptor_running;
static bool serving;

/* ---- the listening socket and the acceptor ---------------------------------------------- */

/* True if another socket already listens on ai's address: a bind without SO_REUSEPORT
 * fails then (SO_REUSEADDR still passes connections in TIME_WAIT). */
static bool address_taken(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool taken = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                 bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/* The listening socket: SO_REUSEADDR and SO_REUSEPORT (a new process can bind before
 * the old one stops, for zero-downtime restarts), non-blocking for the acceptor. As the
 * kernel then shares the connections between every process on the address without a
 * word, a start beside another listener says so in the log (seen: a forgotten segmentd
 * took half of a benchmark's connections). */
static int open_listener(const struct addrinfo *ai)
{
    int one = 1;
    if (address_taken(ai))
        log_msg(LOG_WARN, "another process already listens on this address: the kernel shares "
                          "the connections with it (SO_REUSEPORT), as during a restart's overlap",
                NULL);
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static void back_off(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Accepts until stop_fd is signalled and deals every connection to a loop. */
static void *accept_loop(void *arg)
{
    (void)arg;
    struct pollfd pfd[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERROR, "acceptor: poll failed", "detail", strerror(errno), NULL);
            back_off();
            continue;
        }
        if (pfd[1].revents)
            break;
        for (;;) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    /* out of descriptors or memory: back off instead of spinning */
                    log_msg(LOG_WARN, "acceptor: cannot accept", "detail", strerror(errno), NULL);
                    back_off();
                }
                break; /* EAGAIN: all taken; ECONNABORTED, EINTR: poll again */
            }
            http_loops_deal(fd, &ss, sl);
        }
    }
    return NULL;
}

int http_server_start(const seg_config *cfg, const http_route *routes, size_t n_routes,
                      seg_error *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    scfg = cfg;
    http_limits_init(cfg);
    rate_limits_configure(cfg);
    if (http_dispatch_init(cfg, routes, n_routes)) {
        err_startup(err, "internal", "more than %d routes", ROUTER_MAX);
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (gai) {
        err_startup(err, "config", "SEGMENTD_LISTEN: cannot resolve \"%s\": %s", cfg->listen_host,
                gai_strerror(gai));
        return -1;
    }
    listen_fd = open_listener(ai);
    freeaddrinfo(ai);
    if (listen_fd < 0) {
        err_startup(err, "listen", "SEGMENTD_LISTEN: cannot listen on %s:%d: %s", cfg->listen_host,
                cfg->listen_port, strerror(errno));
        return -1;
    }
    if (http_loops_start(cfg, err))
        goto fail;
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0 || pthread_create(&acceptor, NULL, accept_loop, NULL)) {
        err_startup(err, "listen", "cannot start the acceptor thread: %s", strerror(errno));
        http_loops_stop(true);
        goto fail;
    }
    acceptor_running = serving = true;
    return 0;
fail:
    close(listen_fd);
    listen_fd = -1;
    if (stop_fd >= 0)
        close(stop_fd);
    stop_fd = -1;
    return -1;
}

int http_server_port(void)
{
    return bound_port;
}

static void stop_accepting(void)
{
    if (acceptor_running) {
        uint64_t one = 1;
        ssize_t w = write(stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(acceptor, NULL);
        acceptor_running = false;
    }
    if (listen_fd >= 0) {
        close(listen_fd); /* new clients get ECONNREFUSED at once */
        listen_fd = -1;
    }
    if (stop_fd >= 0) {
        close(stop_fd);
        stop_fd = -1;
    }
}

void http_server_stop(int grace_s)
{
    if (!serving)
        return;
    serving = false;
    stop_accepting();
    http_set_draining();
    uint64_t deadline = fiber_now_ns() + (uint64_t)grace_s * 1000000000u;
    while (http_inflight() > 0 && fiber_now_ns() < deadline)
        back_off();
    int left = http_inflight();
    http_loops_stop(false);
    rate_reset(); /* no request is admitted any more */
    if (left > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", left);
        log_msg(LOG_WARN, "shutdown grace period over with requests in flight", "requests", n, NULL);
    }
}
