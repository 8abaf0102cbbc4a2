/* Fibers and the epoll loop of a thread that runs them. A fiber waits on a
 * file descriptor with a one-shot epoll registration that stays in the set between
 * waits (one epoll_ctl per wait), or parks until woken; deadlines live in a list the
 * loop scans (a loop has at most as many waiting fibers as requests in flight on it).
 *
 * Stacks: 8 MiB of address space each (as a thread's), with a guard page below; only
 * the pages a request touches are resident. A stack that went deeper than STACK_KEEP
 * (a deeply nested JSON body) gives its pages back when it is recycled.
 *
 * Switching: on x86-64 and AArch64 a few instructions of our own (fiber_switch below)
 * save the callee-saved registers and the floating-point control state and swap stack
 * pointers, as Boost.Context and libco do; glibc's swapcontext also saves and restores
 * the signal mask, one rt_sigprocmask system call per switch (five a request that waits
 * for PostgreSQL, measured with strace -c). Elsewhere, or built with -DFIBER_UCONTEXT,
 * fibers use ucontext. The unit tests run the x86-64 switch and ucontext natively, and
 * the AArch64 switch under qemu (scripts/test-fibers-arm64). */
#include "core/fiber.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if !defined(FIBER_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define FIBER_UCONTEXT 1
#endif
#ifdef FIBER_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#ifdef FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define STACK_SIZE ((size_t)8 * 1024 * 1024)
#define STACK_KEEP ((size_t)64 * 1024) /* resident at most this much between requests */
#define STACK_CANARY 0x5e9d1f1b5e9d1f1bULL
#define FREE_MAX 64                    /* idle stacks kept per loop */
#define EVENTS_MAX 64

enum { K_FIBER = 1, K_SOURCE };
enum { F_RUNNING, F_WAIT_FD, F_PARKED, F_READY, F_DONE };

/* A saved execution context: where a fiber, or the loop, resumes. */
#ifdef FIBER_UCONTEXT
typedef ucontext_t context;
#else
typedef struct context {
    void *sp; /* its stack pointer; the registers are saved on that stack */
} context;

/* fiber_switch(save, to): saves the running context in *save, resumes *to. A fresh
 * context's stack holds the values its first resume pops (see context_make). */
void fiber_switch(context *save, const context *to);
#if defined(__x86_64__)
/* the callee-saved registers of the System V ABI, then the MXCSR and x87 control word */
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".globl fiber_switch\n"
        ".hidden fiber_switch\n"
        ".type fiber_switch, @function\n"
        "fiber_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r15\n"
        "    pushq %r14\n"
        "    pushq %r13\n"
        "    pushq %r12\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r12\n"
        "    popq %r13\n"
        "    popq %r14\n"
        "    popq %r15\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size fiber_switch, .-fiber_switch\n"
        ".popsection\n");
#else
/* AAPCS64's callee-saved x19-x28, the frame pointer and the link register, d8-d15 and the
 * FPCR, in a 176-byte frame; ret goes to the restored x30 */
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".globl fiber_switch\n"
        ".hidden fiber_switch\n"
        ".type fiber_switch, %function\n"
        "fiber_switch:\n"
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x9, fpcr\n"
        "    str x9, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    ldr x9, [x1]\n"
        "    mov sp, x9\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldr x9, [sp, #160]\n"
        "    msr fpcr, x9\n"
        "    add sp, sp, #176\n"
        "    ret\n"
        ".size fiber_switch, .-fiber_switch\n"
        ".popsection\n");
#endif
#endif

struct fiber {
    int kind;                  /* K_FIBER: first, as in struct source */
    int state;
    context ctx;
    char *map;                 /* the mapping: guard page, then the stack */
    fiber_fn fn;
    void *arg;
    uint64_t deadline;         /* 0: none */
    uint32_t revents;          /* what woke a F_WAIT_FD fiber; 0: the deadline */
    bool woken;                /* a F_PARKED fiber was woken (not timed out) */
    fiber *next_ready;
    fiber *next_timer, *prev_timer;
    fiber *next_free;
#ifdef FIBER_ASAN
    void *fake_stack;
#endif
};

typedef struct source {
    int kind;                  /* K_SOURCE */
    fiber_source_fn fn;
    void *arg;
} source;

typedef struct loop {
    int index, count;
    int epfd;
    context main_ctx;
    fiber *current;
    fiber *ready_head, *ready_tail;
    fiber *timers;
    fiber *free_list;
    int n_free;
    int live;
    source sources[4];
    int n_sources;
#ifdef FIBER_ASAN
    void *main_fake;
    const void *main_bottom;
    size_t main_size;
#endif
} loop;

static __thread loop *L;
static size_t page_size;

uint64_t fiber_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int fiber_loop_init(int index, int count)
{
    if (L)
        return 0;
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    loop *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return -1;
    }
    l->index = index;
    l->count = count;
    L = l;
    return 0;
}

int fiber_loop_index(void)
{
    return L ? L->index : -1;
}

int fiber_loop_count(void)
{
    return L ? L->count : 0;
}

static void stack_unmap(fiber *f)
{
    munmap(f->map, STACK_SIZE);
}

void fiber_loop_free(void)
{
    if (!L)
        return;
    while (L->free_list) {
        fiber *f = L->free_list;
        L->free_list = f->next_free;
        stack_unmap(f); /* the fiber struct lives at the top of its own stack */
    }
    close(L->epfd);
    free(L);
    L = NULL;
}

int fiber_loop_watch(int fd, fiber_source_fn fn, void *arg)
{
    if (!L || L->n_sources == (int)(sizeof L->sources / sizeof L->sources[0]))
        return -1;
    source *s = &L->sources[L->n_sources++];
    s->kind = K_SOURCE;
    s->fn = fn;
    s->arg = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    return epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int fiber_loop_live(void)
{
    return L ? L->live : 0;
}

bool fiber_on(void)
{
    return L && L->current;
}

fiber *fiber_self(void)
{
    return L ? L->current : NULL;
}

/* ---- switching ------------------------------------------------------------------------ */

static void *stack_bottom(const fiber *f)
{
    return f->map + page_size;
}

static size_t stack_usable(void)
{
    return STACK_SIZE - page_size;
}

/* The stack proper: from stack_bottom up to the fiber's record, 64-aligned. */
static size_t stack_size(const fiber *f)
{
    return (size_t)((const char *)f - (const char *)stack_bottom(f)) & ~(size_t)63;
}

static uint64_t *stack_canary(const fiber *f)
{
    return (uint64_t *)(void *)(f->map + STACK_SIZE - STACK_KEEP);
}

static void context_swap(context *save, const context *to)
{
#ifdef FIBER_UCONTEXT
    swapcontext(save, to);
#else
    fiber_switch(save, to);
#endif
}

static void trampoline(void);

/* Makes f->ctx start trampoline on f's stack when first resumed. 0 or -1. */
static int context_make(fiber *f)
{
#ifdef FIBER_UCONTEXT
    if (getcontext(&f->ctx))
        return -1;
    f->ctx.uc_stack.ss_sp = stack_bottom(f);
    f->ctx.uc_stack.ss_size = stack_size(f);
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, trampoline, 0);
#else
    uint64_t *top = (uint64_t *)(void *)((char *)stack_bottom(f) + stack_size(f)); /* 64-aligned */
#if defined(__x86_64__)
    /* What fiber_switch pops, from the lowest address: the MXCSR and x87 control word
     * (their defaults), r12-r15, rbx, rbp (zeros), then the return address: trampoline,
     * entered as if called (its return address slot 16-aligned, so rsp = 8 mod 16 inside),
     * with a zero return address above it to end backtraces. */
    enum { WORDS = 11, RET = 7 };
#else
    /* What fiber_switch loads, in its 176-byte frame at the top of the stack: zeros for
     * x19-x28 and the frame pointer (ends backtraces), trampoline as the link register
     * its ret branches to (x30, at +88), zeros for d8-d15 and the FPCR (the default: round
     * to nearest, no traps). sp = top then: 16-aligned, as AAPCS64 wants. */
    enum { WORDS = 22, RET = 11 };
#endif
    uint64_t *sp = top - WORDS;
    memset(sp, 0, WORDS * sizeof *sp);
#if defined(__x86_64__)
    sp[0] = 0x1f80u | ((uint64_t)0x037fu << 32); /* MXCSR; x87 control word at +4 */
#endif
    sp[RET] = (uint64_t)(uintptr_t)trampoline;
    f->ctx.sp = sp;
#endif
    return 0;
}

/* From the fiber back to the loop (dying: the fiber ends and never comes back). */
static void to_loop(fiber *f, bool dying)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &f->fake_stack, L->main_bottom, L->main_size);
#else
    (void)dying;
#endif
    context_swap(&f->ctx, &L->main_ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &L->main_bottom, &L->main_size);
#endif
}

static void recycle(fiber *f)
{
    L->live--;
    if (L->n_free >= FREE_MAX) {
        stack_unmap(f);
        return;
    }
    uint64_t *canary = stack_canary(f);
    if (*canary != STACK_CANARY) { /* it went deep: give the pages below the kept part back */
        madvise(stack_bottom(f), stack_usable() - STACK_KEEP, MADV_DONTNEED);
        *canary = STACK_CANARY;
    }
    f->next_free = L->free_list;
    L->free_list = f;
    L->n_free++;
}

/* Runs f until it waits or ends; true if it ended (then it is recycled). */
static bool resume(fiber *f)
{
    L->current = f;
    f->state = F_RUNNING;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&L->main_fake, stack_bottom(f), stack_size(f));
#endif
    context_swap(&L->main_ctx, &f->ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(L->main_fake, NULL, NULL);
#endif
    L->current = NULL;
    if (f->state != F_DONE)
        return false;
    recycle(f);
    return true;
}

static void trampoline(void)
{
    fiber *f = L->current;
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &L->main_bottom, &L->main_size);
#endif
    f->fn(f->arg);
    f->state = F_DONE;
    to_loop(f, true);
}

static fiber *fiber_make(void)
{
    fiber *f = L->free_list;
    if (f) {
        L->free_list = f->next_free;
        L->n_free--;
    } else {
        char *map = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (map == MAP_FAILED)
            return NULL;
        if (mprotect(map, page_size, PROT_NONE)) { /* the guard page */
            munmap(map, STACK_SIZE);
            return NULL;
        }
        /* the fiber's own record sits at the top of its stack */
        f = (fiber *)(void *)(map + STACK_SIZE - ((sizeof(fiber) + 63) & ~(size_t)63));
        memset(f, 0, sizeof *f);
        f->map = map;
        *stack_canary(f) = STACK_CANARY;
    }
    f->kind = K_FIBER;
    f->deadline = 0;
    f->next_ready = NULL;
    f->next_timer = f->prev_timer = NULL;
    if (context_make(f)) {
        f->next_free = L->free_list;
        L->free_list = f;
        L->n_free++;
        return NULL;
    }
    return f;
}

int fiber_spawn(fiber_fn fn, void *arg)
{
    if (!L || L->current)
        return -1;
    fiber *f = fiber_make();
    if (!f)
        return -1;
    f->fn = fn;
    f->arg = arg;
    L->live++;
    return resume(f) ? 1 : 0;
}

/* ---- waiting --------------------------------------------------------------------------- */

static void timer_add(fiber *f, uint64_t deadline)
{
    f->deadline = deadline;
    if (!deadline)
        return;
    f->prev_timer = NULL;
    f->next_timer = L->timers;
    if (L->timers)
        L->timers->prev_timer = f;
    L->timers = f;
}

static void timer_del(fiber *f)
{
    if (!f->deadline)
        return;
    if (f->prev_timer)
        f->prev_timer->next_timer = f->next_timer;
    else
        L->timers = f->next_timer;
    if (f->next_timer)
        f->next_timer->prev_timer = f->prev_timer;
    f->next_timer = f->prev_timer = NULL;
    f->deadline = 0;
}

static void make_ready(fiber *f)
{
    f->state = F_READY;
    f->next_ready = NULL;
    if (L->ready_tail)
        L->ready_tail->next_ready = f;
    else
        L->ready_head = f;
    L->ready_tail = f;
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
    fiber *f = L->current;
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = f};
    if (events & POLLIN)
        ev.events |= EPOLLIN;
    if (events & POLLOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(L->epfd, EPOLL_CTL_MOD, fd, &ev) &&
        (errno != ENOENT || epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev)))
        return -1;
    f->revents = 0;
    f->state = F_WAIT_FD;
    timer_add(f, deadline_ns);
    to_loop(f, false);
    timer_del(f);
    if (!f->revents) { /* timed out: the registration is still armed */
        epoll_ctl(L->epfd, EPOLL_CTL_DEL, fd, NULL);
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

int fiber_park(uint64_t deadline_ns)
{
    fiber *f = fiber_self();
    if (!f)
        return -1;
    f->woken = false;
    f->state = F_PARKED;
    timer_add(f, deadline_ns);
    to_loop(f, false);
    timer_del(f);
    return f->woken ? 0 : -1;
}

void fiber_wake(fiber *f)
{
    if (f && f->state == F_PARKED) {
        f->woken = true;
        make_ready(f);
    }
}

/* ---- the loop -------------------------------------------------------------------------- */

static int loop_wait_ms(int max_wait_ms)
{
    if (L->ready_head)
        return 0;
    int ms = max_wait_ms;
    for (fiber *f = L->timers; f; f = f->next_timer) {
        int t = poll_ms_until(f->deadline);
        if (ms < 0 || t < ms)
            ms = t;
    }
    return ms;
}

int fiber_loop_turn(int max_wait_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int n = epoll_wait(L->epfd, evs, EVENTS_MAX, loop_wait_ms(max_wait_ms));
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
    if (L->timers) {
        uint64_t now = fiber_now_ns();
        for (fiber *f = L->timers; f; f = f->next_timer)
            if (f->deadline <= now && (f->state == F_WAIT_FD || f->state == F_PARKED))
                make_ready(f); /* revents 0 / woken false: timed out */
    }
    /* only the fibers ready now: those they wake run in the next turn */
    fiber *head = L->ready_head;
    L->ready_head = L->ready_tail = NULL;
    while (head) {
        fiber *f = head;
        head = f->next_ready;
        (void)resume(f);
    }
    return n > 0 ? n : 0;
}
