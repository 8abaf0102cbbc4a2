/* Fibers and the per-thread event loop that runs them: a request's handler runs on a
 * fiber of its loop thread, and where it would block (a database round trip, a wait
 * for a pooled connection) it yields to the loop, which runs other requests meanwhile.
 * Everything of a loop happens on its one thread: no locks between its fibers.
 *
 * Off a loop thread the waits below block the calling thread (poll(2), a sleep), so
 * code that waits works unchanged on either. */
#ifndef SEGMENTD_CORE_FIBER_H
#define SEGMENTD_CORE_FIBER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fiber fiber;
typedef void (*fiber_fn)(void *arg);
/* A source the loop watches for its owner (not a fiber): called on the loop thread. */
typedef void (*fiber_source_fn)(void *arg, uint32_t events);

/* Makes the calling thread loop `index` of `count` (one epoll instance). 0 or -1 (errno). */
int fiber_loop_init(int index, int count);
/* Which loop the calling thread is (-1: none), and how many there are. Layers that keep
 * per-loop state (the store's connections) partition it by these. */
int fiber_loop_index(void);
int fiber_loop_count(void);
/* Releases the loop of the calling thread; its fibers must have ended. */
void fiber_loop_free(void);
/* Watches fd (level-triggered, EPOLLIN) and calls fn on the loop thread. 0 or -1. */
int fiber_loop_watch(int fd, fiber_source_fn fn, void *arg);
/* One turn: waits for events at most max_wait_ms (-1: until one, capped by the
 * fibers' deadlines), dispatches them, resumes the fibers they woke and those whose
 * deadline passed. Returns the number of events (0: it timed out). */
int fiber_loop_turn(int max_wait_ms);
/* Fibers alive on this loop (started, not ended). */
int fiber_loop_live(void);

/* Starts fn(arg) on a new fiber of this loop and runs it until it ends or waits.
 * Returns 1 if it ended, 0 if it waits (it resumes from fiber_loop_turn), -1 if no
 * fiber could be made (then fn did not run). */
int fiber_spawn(fiber_fn fn, void *arg);

/* True on a fiber (then the waits below yield instead of blocking). */
bool fiber_on(void);
/* The running fiber; off a fiber, the calling thread's own record (it parks by blocking). */
fiber *fiber_self(void);

/* Monotonic clock in ns, for deadlines. */
uint64_t fiber_now_ns(void);

/* Waits until fd is ready for events (POLLIN / POLLOUT) or the deadline passes
 * (deadline_ns 0: none). Returns the poll(2)-style events that are ready, 0 on
 * timeout, -1 on error. */
int fiber_wait_fd(int fd, int events, uint64_t deadline_ns);

/* Sleeps until fiber_wake or the deadline (0: none). 0 when woken, -1 on timeout. On a
 * fiber it yields to the loop; off one it blocks the thread (a wake that came first is
 * kept, so it is never lost; a late one may end a later park early: callers check what
 * they waited for, as the store does). */
int fiber_park(uint64_t deadline_ns);
/* Makes a parked fiber of this loop runnable (it resumes in the next turn), or wakes a
 * parked thread (from any thread). A fiber of another loop must not be woken from here. */
void fiber_wake(fiber *f);

#endif
