/* Waiting on a loop: fibers wait for a descriptor or park until woken, with deadlines (threads
 * off a fiber block instead), and the loop's turn resumes what became ready.
 *
 * A fiber waits on a file descriptor with a one-shot epoll registration that stays in the
 * set between waits (one epoll_ctl per wait); deadlines live in a list the loop scans (a
 * loop has at most as many waiting fibers as requests in flight on it). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <time.h>

#include "core/fiber_private.h"

/* A thread that is not on a fiber (no loop, or its loop's own code) parks on a condition
 * variable: its fiber_self is this record, and fiber_wake from any thread wakes it. */
typedef struct thread_waiter {
    fiber f;                   /* kind K_THREAD; only kind and woken are used */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
} thread_waiter;
static __thread thread_waiter tw;

static fiber *thread_self(void)
{
    if (!tw.ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&tw.cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&tw.mu, NULL);
        tw.f.kind = K_THREAD;
        tw.ready = true;
    }
    return &tw.f;
}
bool fiber_on(void)
{
    return this_loop && this_loop->current;
}

fiber *fiber_self(void)
{
    return this_loop && this_loop->current ? this_loop->current : thread_self();
}

/* ---- waiting --------------------------------------------------------------------------- */

static void timer_add(fiber *f, uint64_t deadline)
{
    f->deadline = deadline;
    if (!deadline)
        return;
    f->prev_timer = NULL;
    f->next_timer = this_loop->timers;
    if (this_loop->timers)
        this_loop->timers->prev_timer = f;
    this_loop->timers = f;
}

static void timer_del(fiber *f)
{
    if (!f->deadline)
        return;
    if (f->prev_timer)
        f->prev_timer->next_timer = f->next_timer;
    else
        this_loop->timers = f->next_timer;
    if (f->next_timer)
        f->next_timer->prev_timer = f->prev_timer;
    f->next_timer = f->prev_timer = NULL;
    f->deadline = 0;
}

static void make_ready(fiber *f)
{
    f->state = F_READY;
    f->next_ready = NULL;
    if (this_loop->ready_tail)
        this_loop->ready_tail->next_ready = f;
    else
        this_loop->ready_head = f;
    this_loop->ready_tail = f;
}

static int poll_ms_until(uint64_t deadline_ns)
{
    if (!deadline_ns)
        return -1;
    uint64_t now = fiber_now_ns();
    if (deadline_ns <= now)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > 86400000 ? 86400000 : (int)ms;
}

int fiber_wait_fd(int fd, int events, uint64_t deadline_ns)
{
    if (!fiber_on()) {
        struct pollfd p = {.fd = fd, .events = (short)events};
        int r;
        while ((r = poll(&p, 1, poll_ms_until(deadline_ns))) < 0 && errno == EINTR)
            ;
        return r < 0 ? -1 : r == 0 ? 0 : p.revents;
    }
    fiber *f = this_loop->current;
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = f};
    if (events & POLLIN)
        ev.events |= EPOLLIN;
    if (events & POLLOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(this_loop->epfd, EPOLL_CTL_MOD, fd, &ev) &&
        (errno != ENOENT || epoll_ctl(this_loop->epfd, EPOLL_CTL_ADD, fd, &ev)))
        return -1;
    f->revents = 0;
    f->state = F_WAIT_FD;
    timer_add(f, deadline_ns);
    fiber_to_loop(f, false);
    timer_del(f);
    if (!f->revents) { /* timed out: the registration is still armed */
        epoll_ctl(this_loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    int r = 0;
    if (f->revents & EPOLLIN)
        r |= POLLIN;
    if (f->revents & EPOLLOUT)
        r |= POLLOUT;
    if (f->revents & EPOLLERR)
        r |= POLLERR;
    if (f->revents & EPOLLHUP)
        r |= POLLHUP;
    return r;
}

/* Off a fiber: waits on the thread's condition variable until woken or the deadline. A wake
 * that came before the park is not lost: it is kept in woken. */
static int thread_park(uint64_t deadline_ns)
{
    thread_waiter *w = (thread_waiter *)(void *)thread_self();
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->f.woken && rc == 0) {
        if (!deadline_ns) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else {
            struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
            rc = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
    }
    bool woken = w->f.woken;
    w->f.woken = false;
    pthread_mutex_unlock(&w->mu);
    return woken ? 0 : -1;
}

int fiber_park(uint64_t deadline_ns)
{
    if (!fiber_on())
        return thread_park(deadline_ns);
    fiber *f = this_loop->current;
    f->woken = false;
    f->state = F_PARKED;
    timer_add(f, deadline_ns);
    fiber_to_loop(f, false);
    timer_del(f);
    return f->woken ? 0 : -1;
}

void fiber_wake(fiber *f)
{
    if (f && f->kind == K_THREAD) {
        thread_waiter *w = (thread_waiter *)(void *)f;
        pthread_mutex_lock(&w->mu);
        w->f.woken = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (f && f->state == F_PARKED) {
        f->woken = true;
        make_ready(f);
    }
}

/* ---- the loop -------------------------------------------------------------------------- */

static int loop_wait_ms(int max_wait_ms)
{
    if (this_loop->ready_head)
        return 0;
    int ms = max_wait_ms;
    for (fiber *f = this_loop->timers; f; f = f->next_timer) {
        int t = poll_ms_until(f->deadline);
        if (ms < 0 || t < ms)
            ms = t;
    }
    return ms;
}

int fiber_loop_turn(int max_wait_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int n = epoll_wait(this_loop->epfd, evs, EVENTS_MAX, loop_wait_ms(max_wait_ms));
    for (int i = 0; i < n; i++) {
        int kind = *(int *)evs[i].data.ptr;
        if (kind == K_SOURCE) {
            source *s = evs[i].data.ptr;
            s->fn(s->arg, evs[i].events);
        } else {
            fiber *f = evs[i].data.ptr;
            if (f->state == F_WAIT_FD) {
                f->revents = evs[i].events;
                make_ready(f);
            }
        }
    }
    if (this_loop->timers) {
        uint64_t now = fiber_now_ns();
        for (fiber *f = this_loop->timers; f; f = f->next_timer)
            if (f->deadline <= now && (f->state == F_WAIT_FD || f->state == F_PARKED))
                make_ready(f); /* revents 0 / woken false: timed out */
    }
    /* only the fibers ready now: those they wake run in the next turn */
    fiber *head = this_loop->ready_head;
    this_loop->ready_head = this_loop->ready_tail = NULL;
    while (head) {
        fiber *f = head;
        head = f->next_ready;
        (void)fiber_resume(f);
    }
    return n > 0 ? n : 0;
}
