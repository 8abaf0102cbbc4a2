/* A request's memory: a bump arena (its first block inline, more blocks as needed) and a
 * LIFO list of deferred cleanups, all released at once. One per request (http_request), so
 * that a handler never frees and an early return leaks nothing (h2o's per-request pool,
 * lwan's coro_defer). Not thread-safe: a request lives on one loop's thread. */
#ifndef SEGMENTD_CORE_ARENA_H
#define SEGMENTD_CORE_ARENA_H

#include <stddef.h>

#include "core/error.h"

#define ARENA_INLINE 2048   /* bytes of the first block, inside the arena itself */

typedef void (*arena_cleanup_fn)(void *arg);

typedef struct arena_block arena_block;
typedef struct arena_cleanup arena_cleanup;

typedef struct seg_arena {
    arena_block *blocks;     /* blocks allocated beyond the inline one, newest first */
    char *cur, *end;         /* free room of the current block */
    arena_cleanup *defers;    /* newest first: run in reverse order of registration */
    size_t allocated;        /* bytes of the extra blocks, for the limit */
    _Alignas(16) char first[ARENA_INLINE];
} seg_arena;

/* Makes an empty arena (no allocation). */
void arena_init(seg_arena *a);
/* Runs the deferred cleanups, newest first, then frees every block; the arena is empty
 * and usable again afterwards. */
void arena_release(seg_arena *a);

/* n bytes aligned for any type, zeroed; lives until arena_release. NULL when memory runs
 * out (or n is absurd): callers answer 500/503, never abort on a client-sized request. */
void *arena_alloc(seg_arena *a, size_t n) MUSTCHECK;
/* A copy of s (len bytes, then a NUL). NULL when memory runs out. */
char *arena_strndup(seg_arena *a, const char *s, size_t len) MUSTCHECK;
/* A formatted string. NULL when memory runs out. */
char *arena_printf(seg_arena *a, const char *fmt, ...) PRINTF_LIKE(2, 3) MUSTCHECK;

/* Registers fn(arg) to run at arena_release (LIFO). On failure to record it (out of
 * memory) runs fn(arg) at once and returns -1, so the resource is never leaked. A NULL arg
 * is accepted and passed as is. */
int arena_defer(seg_arena *a, arena_cleanup_fn fn, void *arg);
/* Runs the newest deferred cleanup registered for arg now and forgets it (say, returning
 * a connection before the answer is written). 0, or -1 when none is registered for arg. */
int arena_run_now(seg_arena *a, void *arg);

#endif
