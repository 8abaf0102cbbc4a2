/* The request arena: bump allocation in blocks and LIFO deferred cleanups (core/arena.h). */
#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16
#define BLOCK_MIN ((size_t)16 * 1024)
/* No request needs more: past it arena_alloc fails (a bug or a hostile size, not a crash). */
#define ARENA_MAX ((size_t)512 * 1024 * 1024)

struct arena_block {
    arena_block *next;
    size_t size;
    _Alignas(ALIGN) char data[];
};

struct arena_cleanup {
    arena_cleanup *next;
    arena_cleanup_fn fn;
    void *arg;
};

void arena_init(seg_arena *a)
{
    a->blocks = NULL;
    a->defers = NULL;
    a->allocated = 0;
    a->cur = a->first;
    a->end = a->first + sizeof a->first;
}

void arena_release(seg_arena *a)
{
    while (a->defers) { /* a cleanup may not register more: the list is taken first */
        arena_cleanup *d = a->defers;
        a->defers = d->next;
        d->fn(d->arg);
    }
    while (a->blocks) {
        arena_block *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    arena_init(a);
}

void *arena_alloc(seg_arena *a, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n == 0)
        need = ALIGN;
    if (need < n || need > ARENA_MAX)
        return NULL;
    uintptr_t p = ((uintptr_t)a->cur + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    if (p > (uintptr_t)a->end || (uintptr_t)a->end - p < need) {
        size_t size = need > BLOCK_MIN / 2 ? need : BLOCK_MIN;
        if (a->allocated + size > ARENA_MAX)
            return NULL;
        arena_block *b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->next = a->blocks;
        a->blocks = b;
        a->allocated += size;
        if (need == size && a->end - a->cur > (ptrdiff_t)(BLOCK_MIN / 4)) {
            /* a big block of its own: the current block keeps its room for small ones */
            memset(b->data, 0, need);
            return b->data;
        }
        a->cur = b->data;
        a->end = b->data + size;
        p = (uintptr_t)a->cur;
    }
    a->cur = (char *)p + need;
    memset((void *)p, 0, need);
    return (void *)p;
}

char *arena_strndup(seg_arena *a, const char *s, size_t len)
{
    char *d = len < SIZE_MAX ? arena_alloc(a, len + 1) : NULL;
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *arena_printf(seg_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n >= 0 ? arena_alloc(a, (size_t)n + 1) : NULL;
    if (d) {
        va_start(ap, fmt);
        vsnprintf(d, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return d;
}

int arena_defer(seg_arena *a, arena_cleanup_fn fn, void *arg)
{
    arena_cleanup *d = arena_alloc(a, sizeof *d);
    if (!d) {
        fn(arg);
        return -1;
    }
    d->fn = fn;
    d->arg = arg;
    d->next = a->defers;
    a->defers = d;
    return 0;
}

int arena_run_now(seg_arena *a, void *arg)
{
    for (arena_cleanup **pp = &a->defers; *pp; pp = &(*pp)->next) {
        if ((*pp)->arg == arg) {
            arena_cleanup *d = *pp;
            *pp = d->next;
            d->fn(d->arg);
            return 0;
        }
    }
    return -1;
}
