/* Unit tests for the webhook rules that need no network: the SSRF address classes
 * (core/netaddr), the retry backoff (webhooks/delivery), the body of POST /v1/webhooks
 * (validate/webhook) and the subscription ids (core/ids). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/ids.h"
#include "core/netaddr.h"
#include "validate/webhook.h"
#include "webhooks/delivery.h"

/* The class of the text address s, through the sockaddr path (the one delivery uses). */
static const char *refused(const char *s)
{
    struct sockaddr_in in = {0};
    struct sockaddr_in6 in6 = {0};
    if (inet_pton(AF_INET, s, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return netaddr_refused((struct sockaddr *)&in);
    }
    assert_int_equal(inet_pton(AF_INET6, s, &in6.sin6_addr), 1);
    in6.sin6_family = AF_INET6;
    return netaddr_refused((struct sockaddr *)&in6);
}

static void test_address_classes(void **state)
{
    (void)state;
    static const struct { const char *addr, *why; } cases[] = {
        {"127.0.0.1", "loopback"}, {"127.255.1.2", "loopback"}, {"::1", "loopback"},
        {"10.0.0.1", "private"}, {"172.16.0.1", "private"}, {"172.31.255.255", "private"},
        {"192.168.1.1", "private"}, {"100.64.0.1", "private"}, {"fec0::1", "private"},
        {"169.254.169.254", "link-local"}, {"fe80::1", "link-local"}, {"febf::1", "link-local"},
        {"fc00::1", "unique-local"}, {"fd12:3456::1", "unique-local"},
        {"224.0.0.1", "multicast"}, {"239.1.2.3", "multicast"}, {"ff02::1", "multicast"},
        {"0.0.0.0", "unspecified"}, {"0.1.2.3", "unspecified"}, {"::", "unspecified"},
        {"255.255.255.255", "reserved"}, {"240.0.0.1", "reserved"}, {"198.18.0.1", "reserved"},
        /* IPv4 inside IPv6: mapped, compatible, NAT64, 6to4 */
        {"::ffff:127.0.0.1", "loopback"}, {"::ffff:10.1.2.3", "private"},
        {"::ffff:169.254.1.1", "link-local"}, {"::127.0.0.1", "loopback"},
        {"64:ff9b::a00:1", "private"}, {"2002:7f00:1::", "loopback"},
        /* public */
        {"93.184.216.34", NULL}, {"172.32.0.1", NULL}, {"172.15.255.255", NULL},
        {"100.128.0.1", NULL}, {"8.8.8.8", NULL}, {"2606:4700::1111", NULL},
        {"::ffff:8.8.8.8", NULL}, {"2002:808:808::", NULL}, {"fe00::1", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = refused(cases[i].addr);
        if (!cases[i].why && got)
            fail_msg("%s: refused as %s", cases[i].addr, got);
        if (cases[i].why && (!got || strcmp(got, cases[i].why)))
            fail_msg("%s: %s, expected %s", cases[i].addr, got ? got : "public", cases[i].why);
    }
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_non_null(netaddr_refused(&un));
}

static void test_literals(void **state)
{
    (void)state;
    bool ip;
    assert_string_equal(netaddr_refused_literal("[::1]", &ip), "loopback");
    assert_true(ip);
    assert_string_equal(netaddr_refused_literal("[fe80::1%25eth0]", &ip), "link-local");
    assert_string_equal(netaddr_refused_literal("127.0.0.1", &ip), "loopback");
    assert_null(netaddr_refused_literal("8.8.8.8", &ip));
    assert_true(ip);
    assert_null(netaddr_refused_literal("localhost", &ip)); /* a name: checked when resolved */
    assert_false(ip);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(wh_backoff_ms(5000, 1, 0.0), 2500);
    assert_int_equal(wh_backoff_ms(5000, 1, 0.999999), 4999);
    assert_int_equal(wh_backoff_ms(5000, 2, 0.0), 5000);
    assert_int_equal(wh_backoff_ms(5000, 4, 0.5), 30000);
    assert_int_equal(wh_backoff_ms(5000, 30, 0.0), WH_BACKOFF_MAX_MS / 2);
    assert_true(wh_backoff_ms(5000, 1000000, 0.99) <= WH_BACKOFF_MAX_MS);
    for (int n = 1; n < 40; n++) /* never shorter than the one before's floor */
        assert_true(wh_backoff_ms(200, n + 1, 0.0) >= wh_backoff_ms(200, n, 0.0));
}

static int check(const char *body, webhook_in *out, seg_error *err)
{
    json_error_t je;
    json_t *root = json_loads(body, 0, &je);
    assert_non_null(root);
    err_clear(err);
    int rc = val_webhook(root, false, out, err);
    json_decref(root);
    return rc;
}

static void test_body(void **state)
{
    (void)state;
    webhook_in in;
    seg_error err;
    assert_int_equal(check("{\"url\": \"https://a.example/x\", \"events\": [\"segment.expired\", "
                           "\"segment.created\"]}", &in, &err), 0);
    assert_string_equal(in.events, "{segment.expired,segment.created}");
    assert_int_equal(check("{\"url\": \"http://[::ffff:7f00:1]/\", \"events\": [\"segment.created\"]}",
                           &in, &err), -1);
    assert_string_equal(err.items[0].pointer, "/url");
    assert_int_equal(check("{\"url\": \"https://a.example/\", \"events\": [\"segment.created\", "
                           "\"device.import.finished\", \"segment.created\"]}", &in, &err), -1);
    assert_int_equal(err.n_items, 1);
    assert_string_equal(err.items[0].pointer, "/events/2");
}

static void test_ids(void **state)
{
    (void)state;
    char a[IDS_WEBHOOK_LEN + 1], b[IDS_WEBHOOK_LEN + 1];
    assert_int_equal(ids_webhook_id(a), 0);
    assert_true(ids_is_prefixed(a, "wh_"));
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    assert_int_equal(ids_webhook_id(b), 0);
    assert_true(strcmp(a, b) < 0); /* later ids sort after */
    assert_false(ids_is_prefixed("wh_123", "wh_"));
    assert_false(ids_is_prefixed("wh_0123456789abcd", "wh_"));
    assert_true(ids_is_prefixed("dlv_0123456789abc", "dlv_"));
    assert_false(ids_is_prefixed("dlv_0123456789ab-", "dlv_"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_classes),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
