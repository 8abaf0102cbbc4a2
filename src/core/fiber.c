/* Fibers: their stacks, the switch between a fiber and its loop, spawning and ending.
 * Waiting (on a descriptor, parked, with deadlines) and the loop's turn: fiber_wait.c.
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
#include "core/fiber_private.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef FIBER_UCONTEXT
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

__thread loop *this_loop;

static size_t page_size;

uint64_t fiber_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int fiber_loop_init(int index, int count)
{
    if (this_loop)
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
    this_loop = l;
    return 0;
}

int fiber_loop_index(void)
{
    return this_loop ? this_loop->index : -1;
}

int fiber_loop_count(void)
{
    return this_loop ? this_loop->count : 0;
}

static void stack_unmap(fiber *f)
{
    munmap(f->map, STACK_SIZE);
}

void fiber_loop_free(void)
{
    if (!this_loop)
        return;
    while (this_loop->free_list) {
        fiber *f = this_loop->free_list;
        this_loop->free_list = f->next_free;
        stack_unmap(f); /* the fiber struct lives at the top of its own stack */
    }
    close(this_loop->epfd);
    free(this_loop);
    this_loop = NULL;
}

int fiber_loop_watch(int fd, fiber_source_fn fn, void *arg)
{
    if (!this_loop || this_loop->n_sources == (int)(sizeof this_loop->sources / sizeof this_loop->sources[0]))
        return -1;
    source *s = &this_loop->sources[this_loop->n_sources++];
    s->kind = K_SOURCE;
    s->fn = fn;
    s->arg = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    return epoll_ctl(this_loop->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int fiber_loop_live(void)
{
    return this_loop ? this_loop->live : 0;
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

void fiber_to_loop(fiber *f, bool dying)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &f->fake_stack, this_loop->main_bottom, this_loop->main_size);
#else
    (void)dying;
#endif
    context_swap(&f->ctx, &this_loop->main_ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &this_loop->main_bottom, &this_loop->main_size);
#endif
}

static void recycle(fiber *f)
{
    this_loop->live--;
    if (this_loop->n_free >= FREE_MAX) {
        stack_unmap(f);
        return;
    }
    uint64_t *canary = stack_canary(f);
    if (*canary != STACK_CANARY) { /* it went deep: give the pages below the kept part back */
        madvise(stack_bottom(f), stack_usable() - STACK_KEEP, MADV_DONTNEED);
        *canary = STACK_CANARY;
    }
    f->next_free = this_loop->free_list;
    this_loop->free_list = f;
    this_loop->n_free++;
}

bool fiber_resume(fiber *f)
{
    this_loop->current = f;
    f->state = F_RUNNING;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&this_loop->main_fake, stack_bottom(f), stack_size(f));
#endif
    context_swap(&this_loop->main_ctx, &f->ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(this_loop->main_fake, NULL, NULL);
#endif
    this_loop->current = NULL;
    if (f->state != F_DONE)
        return false;
    recycle(f);
    return true;
}

static void trampoline(void)
{
    fiber *f = this_loop->current;
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &this_loop->main_bottom, &this_loop->main_size);
#endif
    f->fn(f->arg);
    f->state = F_DONE;
    fiber_to_loop(f, true);
}

static fiber *fiber_make(void)
{
    fiber *f = this_loop->free_list;
    if (f) {
        this_loop->free_list = f->next_free;
        this_loop->n_free--;
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
        f->next_free = this_loop->free_list;
        this_loop->free_list = f;
        this_loop->n_free++;
        return NULL;
    }
    return f;
}

int fiber_spawn(fiber_fn fn, void *arg)
{
    if (!this_loop || this_loop->current)
        return -1;
    fiber *f = fiber_make();
    if (!f)
        return -1;
    f->fn = fn;
    f->arg = arg;
    this_loop->live++;
    return fiber_resume(f) ? 1 : 0;
}
