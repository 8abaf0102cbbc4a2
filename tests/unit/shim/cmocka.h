/* The few cmocka calls test_fiber.c makes, for builds where cmocka is not installed: the
 * AArch64 cross build that scripts/test-fibers-arm64 runs under qemu. A failed check
 * prints where and exits non-zero. */
#ifndef SEGMENTD_CMOCKA_SHIM_H
#define SEGMENTD_CMOCKA_SHIM_H

#include <stdio.h>
#include <stdlib.h>

struct CMUnitTest {
    const char *name;
    void (*fn)(void **state);
};

#define cmocka_unit_test(f) {#f, f}

#define shim_fail(...)                                                                   \
    do {                                                                                 \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                  \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                             \
        exit(1);                                                                         \
    } while (0)
#define assert_true(x)                                                                   \
    do {                                                                                 \
        if (!(x))                                                                        \
            shim_fail("assert_true(%s) failed", #x);                                     \
    } while (0)
#define assert_false(x)                                                                  \
    do {                                                                                 \
        if (x)                                                                           \
            shim_fail("assert_false(%s) failed", #x);                                    \
    } while (0)
#define assert_int_equal(a, b)                                                           \
    do {                                                                                 \
        long long shim_a = (long long)(a), shim_b = (long long)(b);                      \
        if (shim_a != shim_b)                                                            \
            shim_fail("%s == %lld, expected %s == %lld", #a, shim_a, #b, shim_b);        \
    } while (0)

static inline int shim_run(const struct CMUnitTest *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *state = NULL;
        t[i].fn(&state);
        printf("[       OK ] %s\n", t[i].name);
    }
    printf("[  PASSED  ] %zu test(s).\n", n);
    return 0;
}
#define cmocka_run_group_tests(tests, setup, teardown)                                   \
    shim_run(tests, sizeof(tests) / sizeof((tests)[0]))

#endif
