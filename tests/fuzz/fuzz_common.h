/* Shared by the libFuzzer targets: the entry-point prototypes, an invariant check that
 * aborts with file and line (so libFuzzer keeps the input), the one check every
 * target applies to a filled seg_error (it must render as a complete problem), and the
 * body targets' parse. */
#ifndef SEGMENTD_FUZZ_COMMON_H
#define SEGMENTD_FUZZ_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"
#include "http/response.h"
#include "validate/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken invariant is a bug: abort so that libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* The input as a NUL-terminated string (an embedded NUL ends it, as it would a C
 * string the server received). malloc'd; the caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Key order of jansson objects is insertion order; a fixed hash seed makes every run
 * of an input behave the same (the server seeds randomly in main). */
static inline void fuzz_seed_jansson(void)
{
    json_object_seed(0x5e9d5eedu);
}

/* Every error the server sends goes through http_problem_render. Whatever the input,
 * the problem must be valid JSON that keeps the detail and every per-field item: an
 * item or detail that is not valid UTF-8 (say a multi-byte character cut by "%.40s")
 * is silently dropped by jansson, and the client is left not knowing what failed. */
static inline void fuzz_check_problem(const seg_error *e)
{
    size_t len = 0;
    json_error_t je;
    if (!e->status)
        return;
    FUZZ_CHECK(e->code != NULL, "status %d without a code", e->status);
    char *text = http_problem_render(e, "0123456789abcdef", &len);
    FUZZ_CHECK(text != NULL, "problem not rendered");
    json_t *p = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    FUZZ_CHECK(json_is_object(p), "problem is not a JSON object: %s", text);
    FUZZ_CHECK(json_integer_value(json_object_get(p, "status")) == e->status,
               "status lost (detail not UTF-8?): %s | detail=%s", text, e->detail);
    FUZZ_CHECK(json_is_string(json_object_get(p, "detail")),
               "detail dropped (not UTF-8?): %s | detail=%s", text, e->detail);
    for (int i = 0; i < e->n_items; i++) {
        json_t *ptr = json_string(e->items[i].pointer), *det = json_string(e->items[i].detail);
        FUZZ_CHECK(ptr && det, "error item %d is not UTF-8, so the client never sees it: "
                   "pointer=\"%s\" detail=\"%s\"", i, e->items[i].pointer, e->items[i].detail);
        json_decref(ptr);
        json_decref(det);
    }
    FUZZ_CHECK(json_array_size(json_object_get(p, "errors")) == (size_t)e->n_items,
               "%d items, %zu rendered: %s", e->n_items,
               json_array_size(json_object_get(p, "errors")), text);
    json_decref(p);
    free(text);
}

/* The input as a request body: val_parse_body's object (a new reference), or NULL once the
 * refusal is checked to be a complete 400 problem. The body targets all start here. */
static inline json_t *fuzz_parse_body(const uint8_t *data, size_t size)
{
    seg_error err;
    err_clear(&err);
    json_t *root = val_parse_body((const char *)data, size, &err);
    if (!root) {
        FUZZ_CHECK(err.status == 400, "parse failure with status %d", err.status);
        fuzz_check_problem(&err);
        return NULL;
    }
    FUZZ_CHECK(json_is_object(root), "val_parse_body returned a non-object");
    return root;
}

/* What a validated lifecycle promises the store: values in range, and when complete (a
 * create, a merged whole) the rules between them, which the database checks too. */
static inline void fuzz_check_lifecycle(const lifecycle_in *lc, int complete)
{
    FUZZ_CHECK(lc->extend_days >= 1 && lc->extend_days <= LC_EXTEND_DAYS_MAX, "extend_days %d",
               lc->extend_days);
    FUZZ_CHECK(!lc->has_start || (lc->start_us >= LC_MIN_US && lc->start_us <= LC_MAX_US),
               "start %lld", (long long)lc->start_us);
    FUZZ_CHECK(!lc->has_end || (lc->end_us >= LC_MIN_US && lc->end_us <= LC_MAX_US), "end %lld",
               (long long)lc->end_us);
    FUZZ_CHECK((lc->set & ~(unsigned)LC_SET_ALL) == 0, "lifecycle bits 0x%x", lc->set);
    if (lc->has_start && lc->has_end && (complete || ((lc->set & LC_SET_START) && (lc->set & LC_SET_END))))
        FUZZ_CHECK(lc->end_us > lc->start_us, "end %lld not after start %lld", (long long)lc->end_us,
                   (long long)lc->start_us);
    if (complete)
        FUZZ_CHECK(!lc->extend || lc->has_end, "extend without an end date");
}

#endif
