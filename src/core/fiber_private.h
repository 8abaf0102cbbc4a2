/* Private to core/: what the fibers (fiber.c) and their loop's waiting (fiber_wait.c) share. */
#ifndef SEGMENTD_CORE_FIBER_PRIVATE_H
#define SEGMENTD_CORE_FIBER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fiber.h"

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

enum { K_FIBER = 1, K_SOURCE, K_THREAD };
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

/* The loop of the calling thread (NULL: none). */
extern __thread loop *this_loop;

/* Runs f until it waits or ends; true if it ended (then it is recycled). */
bool fiber_resume(fiber *f);
/* From the running fiber back to its loop (dying: it ends and never comes back). */
void fiber_to_loop(fiber *f, bool dying);

#endif
