/* The reference page's embedded files (handlers/docs_assets.c): each is the file of
 * docs/reference/ byte for byte, found by its name (the page only at /docs), with its own
 * strong ETag; the page links only to files that exist; If-None-Match matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handlers/docs_assets.h"

/* The file under docs/reference/ (ctest runs in the source folder), malloc'd. */
static unsigned char *slurp(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "docs/reference/%s", rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_bytes(const docs_asset *a, const char *rel)
{
    size_t len;
    unsigned char *want = slurp(rel, &len);
    assert_int_equal(a->len, len);
    assert_memory_equal(a->data, want, len);
    assert_int_equal(a->data[a->len], 0);
    free(want);
}

static void test_each_asset_is_its_file(void **state)
{
    (void)state;
    check_bytes(docs_page(), "index.html");
    assert_string_equal(docs_page()->content_type, "text/html; charset=utf-8");
    size_t n = 0;
    for (const docs_asset *a; (a = docs_asset_at(n)) != NULL; n++) {
        if (!*a->name)
            continue;
        char rel[256];
        snprintf(rel, sizeof rel, "%s%s", strcmp(a->name, "reference.js") ? "vendor/" : "", a->name);
        check_bytes(a, rel);
        assert_ptr_equal(docs_asset_find(a->name), a);
    }
    assert_int_equal(n, 8);
    assert_string_equal(docs_asset_find("swagger-ui-bundle.js")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(docs_asset_find("swagger-ui.css")->content_type, "text/css; charset=utf-8");
    assert_string_equal(docs_asset_find("favicon-32x32.png")->content_type, "image/png");
}

static void test_page_is_not_an_asset(void **state)
{
    (void)state;
    assert_null(docs_asset_find(""));
    assert_null(docs_asset_find("index.html"));
    assert_null(docs_asset_find("vendor/swagger-ui.css"));
    assert_null(docs_asset_find("swagger-ui.cs"));
    assert_null(docs_asset_find("swagger-ui.css.map"));
}

static void test_etags_are_strong_and_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; docs_asset_at(i); i++) {
        const char *t = docs_asset_at(i)->etag;
        assert_int_equal(strlen(t), 18);
        assert_true(t[0] == '"' && t[17] == '"');
        assert_int_equal(strspn(t + 1, "0123456789abcdef"), 16);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(docs_asset_at(j)->etag, t);
    }
}

/* Every src="docs/…" and href="docs/…" of the page names an asset. */
static void test_page_links_exist(void **state)
{
    (void)state;
    const char *p = (const char *)docs_page()->data;
    int links = 0;
    while ((p = strstr(p, "=\"docs/")) != NULL) {
        p += 7;
        char name[128];
        size_t n = strcspn(p, "\"");
        assert_true(n < sizeof name);
        memcpy(name, p, n);
        name[n] = '\0';
        assert_non_null(docs_asset_find(name));
        links++;
    }
    assert_int_equal(links, 4); /* icon, style sheet, bundle, reference.js */
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *t = "\"0123456789abcdef\"";
    assert_false(docs_etag_matches(NULL, t));
    assert_false(docs_etag_matches("", t));
    assert_true(docs_etag_matches("*", t));
    assert_true(docs_etag_matches("\"0123456789abcdef\"", t));
    assert_true(docs_etag_matches("W/\"0123456789abcdef\"", t));
    assert_true(docs_etag_matches("\"x\", \"0123456789abcdef\"", t));
    assert_true(docs_etag_matches("\"x\",W/\"0123456789abcdef\" ", t));
    assert_false(docs_etag_matches("\"0123456789abcde\"", t));
    assert_false(docs_etag_matches("\"0123456789abcdef0\"", t));
    assert_false(docs_etag_matches("0123456789abcdef", t));
    assert_false(docs_etag_matches("\"x\", \"y\"", t));
    assert_false(docs_etag_matches("\"0123456789abcdef", t));
    assert_false(docs_etag_matches(",,, ,W/", t));
    assert_false(docs_etag_matches("W/", t));
    assert_false(docs_etag_matches("\"", t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_asset_is_its_file),
        cmocka_unit_test(test_page_is_not_an_asset),
        cmocka_unit_test(test_etags_are_strong_and_distinct),
        cmocka_unit_test(test_page_links_exist),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
