/* Unit tests for eval/lookup_index: a set of many rules sharing values, indexed once, and
 * random devices: every rule that holds (ev_match, the rule alone) is a candidate and holds
 * with the index's marks, and no other rule does; which rules are always candidates, never
 * (no rule), or only for devices with one of their values; a rule indexed twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eval/lookup_index.h"
#include "eval/match.h"
#include "eval/rule.h"
#include "validate/formats.h"

#define RULES 300
#define DEVICES 2000

static const char *const countries[] = {"US", "DE", "PL", "JP"};
static const char *const types[] = {"phone", "tablet"};
static const char *const tags[] = {"a", "b", "c", "vip"};
static const char *const interests[] = {"\"cooking\"", "\"sports\"", "4", "4.0", "\"4\"", "5"};

static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) % n;
}

static size_t fi(const char *name)
{
    const val_field *f = val_field_find(name);
    assert_non_null(f);
    return val_field_index(f);
}

/* A random constraint of the vocabulary, as JSON text appended at w. */
static int constraint(char *w, size_t cap, unsigned *seed)
{
    static const char *const rels[] = {"==", "!=", "==", "starts_with"};
    switch (rnd(seed, 5)) {
    case 0:
        return snprintf(w, cap, "{\"field\":\"country\",\"relation\":\"%s\",\"value\":\"%s\"}",
                        rels[rnd(seed, 4)], countries[rnd(seed, 4)]);
    case 1:
        return snprintf(w, cap, "{\"field\":\"type\",\"relation\":\"%s\",\"value\":\"%s\"}",
                        rels[rnd(seed, 3)], types[rnd(seed, 2)]);
    case 2:
        return snprintf(w, cap, "{\"field\":\"tags\",\"relation\":\"%s\",\"value\":\"%s\"}",
                        rnd(seed, 3) ? "==" : "!=", tags[rnd(seed, 4)]);
    case 3:
        return snprintf(w, cap, "{\"field\":\"sessionCount\",\"relation\":\">=\",\"value\":%u}",
                        rnd(seed, 20));
    default:
        return snprintf(w, cap, "{\"field\":\"email\",\"relation\":\"exists\",\"value\":%s}",
                        rnd(seed, 2) ? "true" : "false");
    }
}

static void random_rule(ev_rule *r, unsigned *seed)
{
    char buf[4096];
    size_t n = 0;
    seg_error err;
    err_clear(&err);
    if (rnd(seed, 3) == 0) { /* /audiences */
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"interest\":[");
        for (unsigned i = 0, k = 1 + rnd(seed, 2); i < k; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? "," : "", interests[rnd(seed, 6)]);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "]%s}", rnd(seed, 2) ? ",\"plan\":[\"x\"]" : "");
        assert_int_equal(ev_rule_aud(buf, n, r, &err), 0);
        return;
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (unsigned g = 0, ng = 1 + rnd(seed, 3); g < ng; g++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"type\":\"%s\",\"constraints\":[", g ? "," : "",
                              rnd(seed, 2) ? "AND" : "OR");
        for (unsigned i = 0, nc = 1 + rnd(seed, 3); i < nc; i++) {
            if (i)
                buf[n++] = ',';
            n += (size_t)constraint(buf + n, sizeof buf - n, seed);
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "]}");
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "]");
    assert_int_equal(ev_rule_v1(buf, n, r, &err), 0);
}

/* A random device: each field present or not, some tags, some interests. */
static void random_device(ev_device *d, unsigned *seed, char *tags_buf, char *attrs_buf, char *count)
{
    const char *c[EV_DEVICE_COLUMNS] = {0};
    if (rnd(seed, 4))
        c[fi("country")] = countries[rnd(seed, 4)];
    if (rnd(seed, 4))
        c[fi("type")] = rnd(seed, 5) ? types[rnd(seed, 2)] : "phone2";
    if (rnd(seed, 2))
        c[fi("email")] = "x@example.com";
    snprintf(count, 8, "%u", rnd(seed, 25));
    c[fi("sessionCount")] = count;
    size_t n = (size_t)sprintf(tags_buf, "[");
    for (unsigned i = 0, k = rnd(seed, 4); i < k; i++)
        n += (size_t)sprintf(tags_buf + n, "%s\"%s\"", i ? "," : "", tags[rnd(seed, 4)]);
    sprintf(tags_buf + n, "]");
    c[fi("tags")] = tags_buf;
    n = (size_t)sprintf(attrs_buf, "{\"interest\":[");
    for (unsigned i = 0, k = rnd(seed, 3); i < k; i++)
        n += (size_t)sprintf(attrs_buf + n, "%s%s", i ? "," : "", interests[rnd(seed, 6)]);
    sprintf(attrs_buf + n, "]%s}", rnd(seed, 2) ? ",\"plan\":[\"x\",true]" : "");
    c[VAL_FIELD_COUNT] = attrs_buf;
    seg_error err;
    err_clear(&err);
    assert_int_equal(ev_device_read(d, c, &err), 0);
}

static void test_random_sets(void **state)
{
    (void)state;
    unsigned seed = 22;
    ev_rule rules[RULES];
    ev_rule *ptrs[RULES];
    for (size_t i = 0; i < RULES; i++) {
        random_rule(&rules[i], &seed);
        ptrs[i] = &rules[i];
    }
    ev_lookup_index *ix = ev_index_build(ptrs, RULES);
    assert_non_null(ix);
    size_t vw = ev_index_value_words(ix), rw = ev_index_rule_words(ix);
    assert_int_equal(rw, RULES / 64 + 1);
    uint64_t *values = calloc(vw, sizeof *values), *cands = calloc(rw, sizeof *cands);
    assert_true(values && cands);
    size_t holds = 0, candidates = 0;
    for (int k = 0; k < DEVICES; k++) {
        ev_device d;
        char tags_buf[128], attrs_buf[256], count[8];
        random_device(&d, &seed, tags_buf, attrs_buf, count);
        memset(values, 0, vw * sizeof *values);
        ev_index_device(ix, &d, values, cands);
        for (size_t i = 0; i < RULES; i++) {
            bool m = ev_match(&rules[i], &d), cand = cands[i / 64] >> (i % 64) & 1;
            if (m && !cand)
                fail_msg("device %d: rule %zu holds but is no candidate", k, i);
            if (cand && ev_match_with(&rules[i], &d, values) != m)
                fail_msg("device %d: rule %zu holds %d alone, %d with the marks", k, i, m, !m);
            holds += m;
            candidates += cand;
        }
        ev_device_free(&d);
    }
    /* the vocabulary makes both happen often, and the index leaves rules out */
    assert_true(holds > DEVICES * RULES / 20);
    assert_true(candidates < (size_t)DEVICES * RULES * 9 / 10);
    free(values);
    free(cands);
    ev_index_free(ix);
    for (size_t i = 0; i < RULES; i++)
        ev_rule_free(&rules[i]);
}

static void build_one(const char *json, bool v1, bool want_always, const char *country)
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    assert_int_equal(v1 ? ev_rule_v1(json, strlen(json), &r, &err) : ev_rule_aud(json, strlen(json), &r, &err), 0);
    ev_rule *p = &r;
    /* indexed twice: the second numbering replaces the first's */
    ev_index_free(ev_index_build(&p, 1));
    ev_lookup_index *ix = ev_index_build(&p, 1);
    assert_non_null(ix);
    const char *c[EV_DEVICE_COLUMNS] = {0};
    c[fi("country")] = country;
    ev_device d;
    assert_int_equal(ev_device_read(&d, c, &err), 0);
    uint64_t values[4] = {0}, cands[1] = {0};
    assert_true(ev_index_value_words(ix) <= 4);
    ev_index_device(ix, &d, values, cands);
    assert_int_equal(cands[0] & 1, want_always);
    ev_device_free(&d);
    ev_index_free(ix);
    ev_rule_free(&r);
}

static void test_candidates(void **state)
{
    (void)state;
    /* an AND group's ==: only devices with the value */
    build_one("[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"}]}]",
              true, false, "DE");
    build_one("[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"}]}]",
              true, true, "US");
    /* != needs nothing: a candidate for every device, the lacking one too */
    build_one("[{\"type\":\"AND\",\"constraints\":[{\"field\":\"country\",\"relation\":\"!=\",\"value\":\"US\"}]}]",
              true, true, NULL);
    /* an OR with one != is not narrowed; an OR of == only is */
    build_one("[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
              "{\"field\":\"country\",\"relation\":\"!=\",\"value\":\"DE\"}]}]", true, true, "PL");
    build_one("[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
              "{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"}]}]", true, false, "PL");
    build_one("[{\"type\":\"OR\",\"constraints\":[{\"field\":\"country\",\"relation\":\"==\",\"value\":\"US\"},"
              "{\"field\":\"country\",\"relation\":\"==\",\"value\":\"DE\"}]}]", true, true, "DE");
    /* numbers are not numbered: a range is always a candidate */
    build_one("[{\"type\":\"AND\",\"constraints\":[{\"field\":\"sessionCount\",\"relation\":\"==\",\"value\":3}]}]",
              true, true, NULL);
    /* an /audiences rule needs its first property; no properties: never a candidate */
    build_one("{\"interest\":[\"x\"]}", false, false, "US");
    build_one("{}", false, false, "US");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_sets),
        cmocka_unit_test(test_candidates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
