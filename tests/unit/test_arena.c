/* The request arena: alignment, zeroing, growth past the inline block, the size limit, and
 * the deferred cleanups' order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"

static char order[16];
static size_t n_order;

static void note(void *arg)
{
    order[n_order++] = *(const char *)arg;
}

static void test_alloc_aligned_zeroed_and_growing(void **state)
{
    seg_arena a;
    arena_init(&a);
    char *prev = NULL;
    for (int i = 0; i < 2000; i++) { /* ~100 KiB: the inline block and several more */
        size_t n = (size_t)(i % 97) + 1;
        unsigned char *p = arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xab, n);
        assert_true((char *)p != prev);
        prev = (char *)p;
    }
    assert_non_null(a.blocks);
    char *big = arena_alloc(&a, 1 << 20); /* a block of its own */
    assert_non_null(big);
    big[(1 << 20) - 1] = 'x';
    assert_null(arena_alloc(&a, SIZE_MAX - 8)); /* refused, not wrapped around */
    assert_null(arena_alloc(&a, (size_t)1 << 40));
    arena_release(&a);
    assert_null(a.blocks);
    assert_ptr_equal(a.cur, a.first); /* usable again */
    assert_non_null(arena_alloc(&a, 8));
    arena_release(&a);
}

static void test_strings(void **state)
{
    seg_arena a;
    arena_init(&a);
    char *s = arena_strndup(&a, "segment!", 7);
    assert_string_equal(s, "segment");
    char *f = arena_printf(&a, "%s/%d", "v1", 42);
    assert_string_equal(f, "v1/42");
    char *longer = arena_printf(&a, "%5000d", 7);
    assert_int_equal(strlen(longer), 5000);
    arena_release(&a);
}

static void test_defers_run_newest_first_once(void **state)
{
    seg_arena a;
    static const char A = 'a', B = 'b', C = 'c', D = 'd';
    arena_init(&a);
    n_order = 0;
    assert_int_equal(arena_defer(&a, note, (void *)&A), 0);
    assert_int_equal(arena_defer(&a, note, (void *)&B), 0);
    assert_int_equal(arena_defer(&a, note, (void *)&C), 0);
    for (int i = 0; i < 300; i++) /* the defers survive the arena growing */
        assert_non_null(arena_alloc(&a, 100));
    assert_int_equal(arena_run_now(&a, (void *)&B), 0); /* early, and only once */
    assert_int_equal(arena_run_now(&a, (void *)&B), -1);
    assert_int_equal(arena_run_now(&a, (void *)&D), -1);
    arena_release(&a);
    order[n_order] = '\0';
    assert_string_equal(order, "bca");
    arena_release(&a); /* nothing left to run */
    assert_int_equal(n_order, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed_and_growing),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_defers_run_newest_first_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
