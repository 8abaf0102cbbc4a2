/* POST /v1/webhooks bodies (url, events) and the subscriptions' list cursor. The URL is parsed
 * by libcurl's own URL parser, the one that parses it again when delivering, so that what is
 * checked here is what a delivery connects to. */
#include "validate/webhook.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "core/netaddr.h"
#include "validate/validate.h"

const char *const webhook_event_types[WEBHOOK_EVENT_TYPES] = {
    "segment.created", "segment.updated", "segment.deleted", "segment.extended",
    "segment.expired", "segment.size.changed", "device.import.finished",
};

static void check_keys(val_path *p, json_t *root)
{
    const char *key;
    json_t *v;
    char ex[VAL_EXCERPT_BUF];
    json_object_foreach(root, key, v) {
        if (strcmp(key, "url") != 0 && strcmp(key, "events") != 0)
            val_fail_at(p, key, "unknown field \"%s\": expected url, events", val_excerpt(ex, key));
    }
}

/* The part of a parsed URL (NULL when absent), freed by the caller with curl_free. */
static char *url_part(CURLU *u, CURLUPart what)
{
    char *s = NULL;
    return curl_url_get(u, what, &s, 0) == CURLUE_OK ? s : NULL;
}

/* The URL's host as libcurl will connect to it: an IP address that is not public is refused
 * unless allow_private. Records the problem at /url. */
static void check_host(val_path *p, CURLU *u, bool allow_private)
{
    char *host = url_part(u, CURLUPART_HOST);
    bool is_ip;
    const char *why = host && !allow_private ? netaddr_refused_literal(host, &is_ip) : NULL;
    if (!host || !*host)
        val_fail_at(p, "url", "\"url\" has no host");
    else if (why)
        val_fail_at(p, "url", "\"url\" names a %s address: webhooks are delivered to public "
                              "addresses only (SEGMENTD_WEBHOOK_ALLOW_PRIVATE=1 allows others)", why);
    curl_free(host);
}

static void check_url(val_path *p, json_t *v, bool allow_private, webhook_in *out)
{
    const char *s = json_string_value(v);
    if (!v) {
        val_fail_at(p, "url", "\"url\" is required: expected an absolute http or https URL");
        return;
    }
    if (!json_is_string(v)) {
        val_fail_at(p, "url", "\"url\" must be a string, got %s", val_type_name(v));
        return;
    }
    size_t n = json_string_length(v);
    if (n == 0 || n > WEBHOOK_URL_MAX) {
        val_fail_at(p, "url", "\"url\" must be 1 to %d characters, got %zu", WEBHOOK_URL_MAX, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            val_fail_at(p, "url", "\"url\" holds a space, control or non-ASCII character at %zu: "
                                  "percent-encode it (and a host name in punycode)", i);
            return;
        }
    if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0) {
        val_fail_at(p, "url", "\"url\" must be an absolute URL starting with http:// or https://");
        return;
    }
    CURLU *u = curl_url();
    if (!u) {
        err_set(p->err, 500, "internal", "out of memory");
        return;
    }
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, s, 0);
    if (rc != CURLUE_OK) {
        val_fail_at(p, "url", "\"url\" is not a valid URL: %s", curl_url_strerror(rc));
    } else {
        char *user = url_part(u, CURLUPART_USER), *password = url_part(u, CURLUPART_PASSWORD);
        if (user || password)
            val_fail_at(p, "url", "\"url\" must not carry a user or password: the receiver checks "
                                  "the webhook-signature header instead");
        else
            check_host(p, u, allow_private);
        curl_free(user);
        curl_free(password);
    }
    curl_url_cleanup(u);
    out->url = s;
}

static int event_index(const char *s)
{
    for (int i = 0; i < WEBHOOK_EVENT_TYPES; i++)
        if (!strcmp(s, webhook_event_types[i]))
            return i;
    return -1;
}

static void check_events(val_path *p, json_t *events, webhook_in *out)
{
    char ex[VAL_EXCERPT_BUF];
    size_t n = json_array_size(events);
    if (!events || !json_is_array(events) || n == 0 || n > WEBHOOK_EVENT_TYPES) {
        if (events && json_is_array(events))
            val_fail_at(p, "events", "\"events\" must hold 1 to %d distinct event types, got %zu",
                        WEBHOOK_EVENT_TYPES, n);
        else
            val_fail_at(p, "events", "\"events\" %s: expected an array of event types",
                        events ? "must be an array" : "is required");
        return;
    }
    bool seen[WEBHOOK_EVENT_TYPES] = {false};
    size_t old = val_path_push(p, "events"), len = 0;
    size_t i;
    json_t *v;
    out->events[len++] = '{';
    json_array_foreach(events, i, v) {
        int k = json_is_string(v) ? event_index(json_string_value(v)) : -1;
        size_t o = val_path_push_index(p, i);
        if (!json_is_string(v))
            val_fail(p, "an event type must be a string, got %s", val_type_name(v));
        else if (k < 0)
            val_fail_one_of(p, webhook_event_types, WEBHOOK_EVENT_TYPES,
                            "\"%s\" is not an event type: ", val_excerpt(ex, json_string_value(v)));
        else if (seen[k])
            val_fail(p, "\"%s\" is named twice: events is a set", webhook_event_types[k]);
        else {
            seen[k] = true;
            len += (size_t)snprintf(out->events + len, sizeof out->events - len, "%s%s",
                                    len > 1 ? "," : "", webhook_event_types[k]);
        }
        val_path_pop(p, o);
    }
    val_path_pop(p, old);
    out->events[len++] = '}'; /* 7 types of at most 22 characters fit 256 bytes */
    out->events[len] = '\0';
}

int val_webhook(json_t *root, bool allow_private, webhook_in *out, seg_error *err)
{
    val_path p;
    memset(out, 0, sizeof *out);
    val_path_init(&p, err);
    if (!json_is_object(root)) {
        val_fail(&p, "the body must be an object with \"url\" and \"events\", got %s", val_type_name(root));
        return -1;
    }
    check_keys(&p, root);
    check_url(&p, json_object_get(root, "url"), allow_private, out);
    check_events(&p, json_object_get(root, "events"), out);
    return err->n_items || err->status ? -1 : 0;
}

int val_webhook_paging(val_query_fn q, void *cls, seg_arena *a, int *limit, const char **after,
                       seg_error *err)
{
    bool lbad = false, cbad = false;
    const char *l = q(cls, "limit", &lbad), *c = q(cls, "cursor", &cbad);
    *limit = val_page_limit(l, lbad, err);
    *after = NULL;
    if (c) {
        unsigned char raw[64];
        int n = !cbad && strlen(c) < 48 ? ids_b64url_decode(c, raw, sizeof raw - 1) : -1;
        if (n > 2)
            raw[n] = '\0';
        if (n > 2 && raw[0] == 'w' && raw[1] == ':' && ids_is_prefixed((const char *)raw + 2, "wh_")) {
            if (!(*after = arena_strndup(a, (const char *)raw + 2, (size_t)n - 2)))
                err_set(err, 500, "internal", "out of memory");
        } else {
            val_query_fail(err, "cursor", "not a cursor returned by this list: pass next_cursor as it came");
        }
    }
    return err->status ? -1 : 0;
}
