/* Fibers and their loop: run to the end or to a wait, fd waits, parking and waking,
 * deadlines, deep stacks, many fibers at once, what a switch must keep (callee-saved
 * registers, the floating-point control state, stack alignment), and the blocking
 * fallback off a loop. Built twice: with the x86-64 switch and with ucontext. */
#include <fenv.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fiber.h"

static int steps;

static void run_through(void *arg)
{
    int *x = arg;
    assert_true(fiber_on());
    *x += 1;
}

static void test_runs_to_the_end(void **state)
{
    int x = 0;
    assert_int_equal(fiber_loop_index(), -1);
    assert_int_equal(fiber_loop_init(3, 4), 0);
    assert_int_equal(fiber_loop_index(), 3);
    assert_int_equal(fiber_loop_count(), 4);
    assert_false(fiber_on());
    assert_int_equal(fiber_spawn(run_through, &x), 1);
    assert_int_equal(x, 1);
    assert_int_equal(fiber_loop_live(), 0);
    fiber_loop_free();
    assert_int_equal(fiber_loop_index(), -1);
}

typedef struct piped {
    int fd;
    int got;
    char byte;
} piped;

static void read_one(void *arg)
{
    piped *p = arg;
    int ev = fiber_wait_fd(p->fd, POLLIN, 0);
    p->got = ev;
    if (ev & POLLIN)
        assert_int_equal(read(p->fd, &p->byte, 1), 1);
    steps++;
}

/* A pipe whose read end p waits on, and a loop to wait in. */
static void pipe_and_loop(int fds[2], piped *p)
{
    assert_int_equal(pipe(fds), 0);
    p->fd = fds[0];
    assert_int_equal(fiber_loop_init(0, 1), 0);
    steps = 0;
}

static void test_waits_for_an_fd(void **state)
{
    int fds[2];
    piped p = {0};
    pipe_and_loop(fds, &p);
    assert_int_equal(fiber_spawn(read_one, &p), 0); /* it waits */
    assert_int_equal(fiber_loop_live(), 1);
    fiber_loop_turn(0);                              /* nothing ready yet */
    assert_int_equal(steps, 0);
    assert_int_equal(write(fds[1], "z", 1), 1);
    fiber_loop_turn(1000);
    assert_int_equal(steps, 1);
    assert_true(p.got & POLLIN);
    assert_int_equal(p.byte, 'z');
    /* the same fd waited on again by another fiber (the registration is reused) */
    assert_int_equal(fiber_spawn(read_one, &p), 0);
    assert_int_equal(write(fds[1], "y", 1), 1);
    fiber_loop_turn(1000);
    assert_int_equal(steps, 2);
    assert_int_equal(p.byte, 'y');
    assert_int_equal(fiber_loop_live(), 0);
    fiber_loop_free();
    close(fds[0]);
    close(fds[1]);
}

static void wait_briefly(void *arg)
{
    piped *p = arg;
    p->got = fiber_wait_fd(p->fd, POLLIN, fiber_now_ns() + 20 * 1000000ull);
    steps++;
}

static void test_fd_wait_times_out(void **state)
{
    int fds[2];
    piped p = {0};
    pipe_and_loop(fds, &p);
    p.got = -5;
    uint64_t t0 = fiber_now_ns();
    assert_int_equal(fiber_spawn(wait_briefly, &p), 0);
    while (steps == 0)
        fiber_loop_turn(-1); /* the deadline bounds the wait */
    assert_int_equal(p.got, 0);
    assert_true(fiber_now_ns() - t0 >= 19 * 1000000ull);
    /* a byte arriving after the timeout wakes nobody (the registration was removed) */
    assert_int_equal(write(fds[1], "x", 1), 1);
    fiber_loop_turn(10);
    assert_int_equal(steps, 1);
    fiber_loop_free();
    close(fds[0]);
    close(fds[1]);
}

static fiber *parked;
static int park_result;

static void park_self(void *arg)
{
    uint64_t *deadline = arg;
    parked = fiber_self();
    park_result = fiber_park(*deadline ? fiber_now_ns() + *deadline : 0);
    steps++;
}

static void test_park_and_wake(void **state)
{
    uint64_t no_deadline = 0, short_deadline = 10 * 1000000ull;
    assert_int_equal(fiber_loop_init(0, 1), 0);
    steps = 0;
    assert_int_equal(fiber_spawn(park_self, &no_deadline), 0);
    fiber_loop_turn(0);
    assert_int_equal(steps, 0);
    fiber_wake(parked);
    fiber_wake(parked); /* a second wake of a woken fiber does nothing */
    fiber_loop_turn(0);
    assert_int_equal(steps, 1);
    assert_int_equal(park_result, 0);
    /* with a deadline and no wake: -1 */
    assert_int_equal(fiber_spawn(park_self, &short_deadline), 0);
    while (steps == 1)
        fiber_loop_turn(-1);
    assert_int_equal(park_result, -1);
    fiber_loop_free();
}

static size_t recurse(size_t depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    return depth ? recurse(depth - 1) + (size_t)pad[0] * 0 + 1 : 0;
}

static void go_deep(void *arg)
{
    size_t *depth = arg;
    assert_int_equal(recurse(*depth), *depth);
    steps++;
}

static void test_deep_stack(void **state)
{
    size_t depth = 4000; /* ~2-4 MiB of frames: more than a deeply nested JSON body needs */
    assert_int_equal(fiber_loop_init(0, 1), 0);
    steps = 0;
    for (int i = 0; i < 3; i++) /* the stack is recycled (and trimmed) in between */
        assert_int_equal(fiber_spawn(go_deep, &depth), 1);
    assert_int_equal(steps, 3);
    fiber_loop_free();
}

static void test_many_fibers(void **state)
{
    enum { N = 300 };
    static fiber *all[N];
    assert_int_equal(fiber_loop_init(0, 1), 0);
    steps = 0;
    for (int i = 0; i < N; i++) {
        uint64_t none = 0;
        assert_int_equal(fiber_spawn(park_self, &none), 0);
        all[i] = parked;
    }
    assert_int_equal(fiber_loop_live(), N);
    for (int i = 0; i < N; i++)
        fiber_wake(all[i]);
    fiber_loop_turn(0);
    assert_int_equal(steps, N);
    assert_int_equal(fiber_loop_live(), 0);
    fiber_loop_free();
}

/* Values live in callee-saved registers and SSE registers across parks; the rounding
 * mode is the fiber's own; a 16-byte-aligned local stays aligned (movaps would fault). */
static double kept_sum;
static int kept_round_inside;
static fiber *keeper;

static void keep_state(void *arg)
{
    volatile double x = *(double *)arg;
    double acc = 0;
    __attribute__((aligned(16))) volatile char aligned_buf[16];
    assert_int_equal((uintptr_t)aligned_buf % 16, 0);
    keeper = fiber_self();
    fesetround(FE_UPWARD);
    for (int i = 0; i < 4; i++) {
        long k = i * 1000003L;
        acc += x * (double)(i + 1);
        assert_int_equal(fiber_park(0), 0);
        assert_int_equal(k, i * 1000003L);
        assert_int_equal(fegetround(), FE_UPWARD);
    }
    kept_round_inside = fegetround();
    fesetround(FE_TONEAREST);
    kept_sum = acc;
}

static void test_switch_keeps_state(void **state)
{
    double x = 1.5;
    assert_int_equal(fiber_loop_init(0, 1), 0);
    assert_int_equal(fesetround(FE_TONEAREST), 0);
    assert_int_equal(fiber_spawn(keep_state, &x), 0);
    int turns = 0;
    while (fiber_loop_live()) {
        assert_int_equal(fegetround(), FE_TONEAREST); /* the fiber's mode did not leak out */
        fiber_wake(keeper);
        fiber_loop_turn(0);
        assert_true(++turns <= 4);
    }
    assert_int_equal(turns, 4);
    assert_int_equal(kept_round_inside, FE_UPWARD);
    assert_true(kept_sum == 1.5 * (1 + 2 + 3 + 4));
    fiber_loop_free();
}

static void test_off_a_loop_waits_block(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_false(fiber_on());
    assert_int_equal(fiber_wait_fd(fds[0], POLLIN, fiber_now_ns() + 5 * 1000000ull), 0);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_true(fiber_wait_fd(fds[0], POLLIN, 0) & POLLIN);
    assert_int_equal(fiber_spawn(run_through, &steps), -1); /* no loop on this thread */
    close(fds[0]);
    close(fds[1]);
}

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    fiber_wake(arg);
    return NULL;
}

/* Off a loop, park blocks the thread until another thread wakes it or the deadline. */
static void test_off_a_loop_park_and_wake(void **state)
{
    pthread_t t;
    fiber *me = fiber_self();
    assert_true(me != NULL);
    assert_false(fiber_on());
    uint64_t t0 = fiber_now_ns();
    assert_int_equal(fiber_park(t0 + 30 * 1000000ull), -1); /* nobody wakes it: timed out */
    assert_true(fiber_now_ns() - t0 >= 30 * 1000000ull);
    assert_int_equal(pthread_create(&t, NULL, wake_later, me), 0);
    t0 = fiber_now_ns();
    assert_int_equal(fiber_park(t0 + 5000 * 1000000ull), 0); /* woken after ~20 ms */
    assert_true(fiber_now_ns() - t0 < 4000 * 1000000ull);
    pthread_join(t, NULL);
    fiber_wake(me); /* a wake before the park is kept */
    assert_int_equal(fiber_park(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_to_the_end),    cmocka_unit_test(test_waits_for_an_fd),
        cmocka_unit_test(test_fd_wait_times_out),  cmocka_unit_test(test_park_and_wake),
        cmocka_unit_test(test_deep_stack),         cmocka_unit_test(test_many_fibers),
        cmocka_unit_test(test_switch_keeps_state), cmocka_unit_test(test_off_a_loop_waits_block),
        cmocka_unit_test(test_off_a_loop_park_and_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
