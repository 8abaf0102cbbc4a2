"""Webhooks (issue #25): the subscriptions API (validation, the secret shown once, scopes,
tenants kept apart, pages, the limit), and delivery to a receiver made here: signatures
checked as a Standard Webhooks receiver checks them, a receiver that fails, times out and
comes back, segmentd killed with deliveries pending, two segmentd processes, the SSRF
refusals, redirects not followed, the retry of the log.

The delivery tests each have a database of their own (no other test's segmentd claims
their deliveries) and make their events by SQL, as the statements that change segments
write them: a webhook_events row and one webhook_deliveries row per subscription."""
import base64
import hashlib
import hmac
import http.server
import json
import random
import re
import signal
import string
import threading
import time

import pytest

from lifecycle_util import fresh_database, metric_sum, sql, tenant_api, wait_until
from segtest import SANITIZED, Api, Server, problem, walk_pages

SCOPE = "webhooks:write"
EVENTS = ["segment.created", "segment.updated", "segment.deleted", "segment.extended",
          "segment.expired", "segment.size.changed", "device.import.finished"]
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
WAIT = 60 if SANITIZED else 30


def hooks_api(server, scope=SCOPE):
    return tenant_api(server, prefix="wh", scope=scope)


def create(api, url="https://hooks.example.com/in", events=("segment.created",)):
    r = api.post("/v1/webhooks", {"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- the API

def test_create_shows_the_secret_once_and_rotates_it(server):
    api = hooks_api(server)
    r = api.post("/v1/webhooks", {"url": "https://hooks.example.com/in?x=1",
                                  "events": ["segment.updated", "segment.created"]})
    assert r.status_code == 201, r.text
    w = r.json()
    assert r.headers["Location"] == "/v1/webhooks/" + w["id"]
    assert re.fullmatch(r"wh_[0-9A-Za-z]{13}", w["id"])
    assert w["url"] == "https://hooks.example.com/in?x=1"
    assert w["events"] == ["segment.updated", "segment.created"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", w["secret"])
    assert len(base64.b64decode(w["secret"][6:])) == 32
    g = api.get("/v1/webhooks/" + w["id"])
    assert g.status_code == 200
    assert g.json() == {k: v for k, v in w.items() if k != "secret"}
    assert "secret" not in json.dumps(api.get("/v1/webhooks").json())
    rot = api.post(f"/v1/webhooks/{w['id']}/rotate-secret")
    assert rot.status_code == 200, rot.text
    assert rot.json()["secret"] != w["secret"] and rot.json()["id"] == w["id"]
    assert rot.json()["updated_at"] > w["updated_at"]
    assert "secret" not in api.get("/v1/webhooks/" + w["id"]).json()
    assert sql_secret(w["id"]) == rot.json()["secret"]
    assert api.delete("/v1/webhooks/" + w["id"]).status_code == 204
    assert problem(api.get("/v1/webhooks/" + w["id"]), 404, "not_found")
    assert problem(api.delete("/v1/webhooks/" + w["id"]), 404, "not_found")
    assert problem(api.post(f"/v1/webhooks/{w['id']}/rotate-secret"), 404, "not_found")


def sql_secret(wid):
    from segtest import psql
    return psql("SELECT secret FROM webhooks WHERE id = %s", wid)[0][0]


def test_a_create_retried_with_its_idempotency_key_makes_one(server):
    api = hooks_api(server)
    body = {"url": "https://hooks.example.com/once", "events": ["segment.created"]}
    first = api.post("/v1/webhooks", body, headers={"Idempotency-Key": "hook-1"})
    again = api.post("/v1/webhooks", body, headers={"Idempotency-Key": "hook-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json() and again.headers["Location"] == first.headers["Location"]
    assert [w["id"] for w in api.get("/v1/webhooks").json()["items"]] == [first.json()["id"]]
    other = dict(body, url="https://hooks.example.com/twice")
    assert problem(api.post("/v1/webhooks", other, headers={"Idempotency-Key": "hook-1"}), 422,
                   "idempotency_key_reused")
    rot = api.post(f"/v1/webhooks/{first.json()['id']}/rotate-secret", headers={"Idempotency-Key": "rot-1"})
    rot2 = api.post(f"/v1/webhooks/{first.json()['id']}/rotate-secret", headers={"Idempotency-Key": "rot-1"})
    assert rot.status_code == rot2.status_code == 200 and rot2.json()["secret"] == rot.json()["secret"]
    assert rot2.headers.get("Idempotent-Replayed") == "true"


BAD = [
    ({"events": ["segment.created"]}, ["/url"]),
    ({"url": "https://a.example/"}, ["/events"]),
    ({"url": 7, "events": "segment.created"}, ["/url", "/events"]),
    ({"url": "ftp://a.example/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "/relative", "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://user:pw@a.example/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://user@a.example/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://a.example/" + "x" * 2040, "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://a.example/a b", "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://a.éxample/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://127.0.0.1:9/x", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://10.1.2.3/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://169.254.169.254/latest/meta-data", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://[::1]:8080/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://[::ffff:192.168.0.1]/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://[fd00::1]/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://0.0.0.0/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "http://224.0.0.1/", "events": ["segment.created"]}, ["/url"]),
    ({"url": "https://a.example/", "events": []}, ["/events"]),
    ({"url": "https://a.example/", "events": ["segment.created", "segment.created"]}, ["/events/1"]),
    ({"url": "https://a.example/", "events": ["segment.renamed", 3]}, ["/events/0", "/events/1"]),
    ({"url": "https://a.example/", "events": EVENTS + ["segment.created"]}, ["/events"]),
    ({"url": "https://a.example/", "events": ["segment.created"], "secret": "x"}, ["/secret"]),
]


@pytest.mark.parametrize("body,where", BAD, ids=[str(i) for i in range(len(BAD))])
def test_validation_names_every_problem(server, body, where):
    api = hooks_api(server)
    r = api.post("/v1/webhooks", body)
    assert problem(r, 422, "validation_failed")
    assert sorted(e["pointer"] for e in r.json()["errors"]) == sorted(where), r.text
    assert api.get("/v1/webhooks").json()["items"] == []


def test_every_event_type_and_public_addresses_are_taken(server):
    api = hooks_api(server)
    for url in ("http://93.184.216.34/in", "https://[2606:4700::1111]/x", "HTTPS://Example.COM:8443/p#f"):
        assert create(api, url, EVENTS)["events"] == EVENTS


def test_body_not_an_object_and_bad_json(server):
    api = hooks_api(server)
    assert problem(api.post("/v1/webhooks", ["x"]), 400, "malformed_json")
    r = api.request("POST", "/v1/webhooks", data="{", headers={"Content-Type": "application/json"})
    assert problem(r, 400, "malformed_json")


def test_scopes(server):
    segs = Api(server, tenant="wh-scope", scope="segments:read segments:write devices:read devices:write")
    hooks = Api(server, tenant="wh-scope", scope=SCOPE)
    wid = "wh_0000000000000"
    for method, path in [("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("GET", f"/v1/webhooks/{wid}"),
                         ("DELETE", f"/v1/webhooks/{wid}"), ("POST", f"/v1/webhooks/{wid}/rotate-secret"),
                         ("GET", f"/v1/webhooks/{wid}/deliveries"),
                         ("POST", f"/v1/webhooks/{wid}/deliveries/dlv_0000000000000/retry")]:
        body = {"url": "https://a.example/", "events": ["segment.created"]} if path == "/v1/webhooks" else None
        r = segs.request(method, path, json_body=body)
        assert problem(r, 403, "insufficient_scope"), (method, path)
        assert 'scope="webhooks:write"' in r.headers["WWW-Authenticate"]
    assert problem(hooks.get("/v1/segments"), 403, "insufficient_scope")
    assert problem(hooks.get("/v1/webhooks", token=False), 401)


def test_tenants_are_kept_apart(server):
    a, b = hooks_api(server), hooks_api(server)
    w = create(a)
    assert problem(b.get("/v1/webhooks/" + w["id"]), 404, "not_found")
    assert problem(b.delete("/v1/webhooks/" + w["id"]), 404, "not_found")
    assert problem(b.post(f"/v1/webhooks/{w['id']}/rotate-secret"), 404, "not_found")
    assert problem(b.get(f"/v1/webhooks/{w['id']}/deliveries"), 404, "not_found")
    assert b.get("/v1/webhooks").json() == {"items": [], "next_cursor": None}
    assert a.get("/v1/webhooks/" + w["id"]).status_code == 200


def test_list_pages_newest_first(server):
    api = hooks_api(server)
    made = [create(api, f"https://a.example/{i}")["id"] for i in range(5)]
    items = walk_pages(lambda **p: api.get("/v1/webhooks", params=p), 2, short_page_last=True)
    assert [w["id"] for w in items] == made[::-1]
    assert problem(api.get("/v1/webhooks", params={"cursor": "bm9wZQ"}), 400, "invalid_query_parameter")
    assert problem(api.get("/v1/webhooks", params={"limit": "0"}), 400, "invalid_query_parameter")
    assert problem(api.get("/v1/webhooks", params={"other": "1"}), 400, "invalid_query_parameter")


def test_a_tenant_has_at_most_50(server):
    api = hooks_api(server)
    for i in range(50):
        create(api, f"https://a.example/{i}")
    r = api.post("/v1/webhooks", {"url": "https://a.example/51", "events": ["segment.created"]})
    assert problem(r, 422, "too_many_webhooks")
    assert len(walk_pages(lambda **p: api.get("/v1/webhooks", params=p), 500)) == 50


def test_path_ids_are_checked(server):
    api = hooks_api(server)
    r = api.get("/v1/webhooks/nope")
    assert problem(r, 400, "invalid_path_parameter") and r.json()["errors"][0]["pointer"] == "/path/id"
    w = create(api)
    r = api.post(f"/v1/webhooks/{w['id']}/deliveries/evt_0000000000000/retry")
    assert problem(r, 400, "invalid_path_parameter") and r.json()["errors"][0]["pointer"] == "/path/delivery"


# ---------------------------------------------------------------- events made by SQL

def rid(prefix):
    return prefix + "".join(random.choice(B62) for _ in range(13))


def emit(url, tenant, webhooks, type_="segment.created", data=None):
    """An event of tenant and its deliveries to webhooks, as the write statements make them.
    Returns (event id, [delivery ids])."""
    eid = rid("evt_")
    data = data if data is not None else {"dialect": "v1", "segment": {"id": rid("seg_"), "name": "n"}}
    dids = [rid("dlv_") for _ in webhooks]
    sql(url, "WITH e AS (INSERT INTO webhook_events (tenant, id, type, data) VALUES (%s, %s, %s, %s) "
             "RETURNING tenant, id) INSERT INTO webhook_deliveries (tenant, id, webhook, event) "
             "SELECT e.tenant, d.id, d.w, e.id FROM e, unnest(%s::text[], %s::text[]) AS d(id, w)",
        tenant, eid, type_, json.dumps(data), dids, list(webhooks))
    return eid, dids


def test_the_delivery_log_and_its_retry(server):
    """Without a worker (the suite's servers deliver nothing): the log as the rows say."""
    from segtest import DB_URL
    api = hooks_api(server)
    w = create(api)
    other = create(api)
    ids = [emit(DB_URL, api.tenant, [w["id"], other["id"]], t)[1][0] for t in ("segment.created", "segment.updated", "segment.deleted")]
    sql(DB_URL, "UPDATE webhook_deliveries SET status = 'delivered', attempts = 1, last_at = now(), "
                "last_status = 204 WHERE id = %s", ids[0])
    sql(DB_URL, "UPDATE webhook_deliveries SET status = 'failed', attempts = 30, last_at = now(), "
                "last_error = 'timeout: …', next_at = now() + interval '1 day' WHERE id = %s", ids[1])
    items = walk_pages(lambda **p: api.get(f"/v1/webhooks/{w['id']}/deliveries", params=p), 2)
    assert [d["id"] for d in items] == ids[::-1]
    assert [d["type"] for d in items] == ["segment.deleted", "segment.updated", "segment.created"]
    assert [d["status"] for d in items] == ["pending", "failed", "delivered"]
    assert items[0]["next_at"] is not None and items[1]["next_at"] is None and items[2]["next_at"] is None
    assert items[2]["last_status"] == 204 and items[1]["last_error"] == "timeout: …"
    assert items[0]["attempts"] == 0 and items[0]["last_at"] is None
    # retry: a failed one is pending again, due now; a delivered one is a 409
    r = api.post(f"/v1/webhooks/{w['id']}/deliveries/{ids[1]}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["attempts"] == 30
    assert problem(api.post(f"/v1/webhooks/{w['id']}/deliveries/{ids[0]}/retry"), 409, "delivery_delivered")
    assert api.post(f"/v1/webhooks/{w['id']}/deliveries/{ids[2]}/retry").status_code == 200
    assert problem(api.post(f"/v1/webhooks/{other['id']}/deliveries/{ids[2]}/retry"), 404, "not_found")
    assert problem(api.post(f"/v1/webhooks/{w['id']}/deliveries/{rid('dlv_')}/retry"), 404, "not_found")
    # deleting the subscription deletes its log
    assert api.delete("/v1/webhooks/" + w["id"]).status_code == 204
    assert sql(DB_URL, "SELECT count(*) FROM webhook_deliveries WHERE webhook = %s", w["id"])[0][0] == 0


# ---------------------------------------------------------------- a receiver

class Receiver:
    """An HTTP server on 127.0.0.1 that records what it is sent and answers as mode says:
    ok (204), fail (500), slow (sleeps 1.5 s, past the tests' timeout of 1 s, then 204), hang
    (the same for 4 s), redirect (302)."""

    def __init__(self):
        self.mode = "ok"
        self.got = []          # (path, headers, body) in arrival order
        self.secrets = {}      # path -> secret: the signature is checked for those
        self.bad = []          # what failed the check
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec.lock:
                    rec.got.append((self.path, dict(self.headers), body))
                    secret = rec.secrets.get(self.path)
                    mode = rec.mode
                if secret:
                    rec.verify(secret, self.headers, body)
                if mode in ("slow", "hang"):
                    time.sleep(1.5 if mode == "slow" else 4)
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code = 500 if mode == "fail" else 204
                payload = b'{"error":"down for maintenance"}' + b" " * (1 << 20) if code == 500 else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path="/in"):
        return f"http://127.0.0.1:{self.port}{path}"

    def verify(self, secret, headers, body):
        """Standard Webhooks verification, as a receiver does it."""
        mid, ts, sig = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        key = base64.b64decode(secret[len("whsec_"):])
        want = base64.b64encode(hmac.new(key, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        ok = sig is not None and ("v1," + want) in sig.split(" ") and abs(time.time() - int(ts)) < 300
        if not ok:
            with self.lock:
                self.bad.append((mid, ts, sig))

    def ids(self, path=None):
        with self.lock:
            return [h.get("webhook-id") for p, h, _ in self.got if path is None or p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


FAST = {
    "SEGMENTD_WEBHOOK_CONCURRENCY": "8",
    "SEGMENTD_WEBHOOK_ALLOW_PRIVATE": "1",
    "SEGMENTD_WEBHOOK_POLL_MS": "100",
    "SEGMENTD_WEBHOOK_RETRY_BASE_MS": "200",
    "SEGMENTD_WEBHOOK_TIMEOUT_MS": "1000",
    "SEGMENTD_WEBHOOK_CONNECT_TIMEOUT_MS": "500",
}


def deliverer(url, **env):
    e = dict(FAST, SEGMENTD_DATABASE_URL=url)
    e.update(env)
    return Server(env=e).start()


def statuses(url, tenant):
    return dict(sql(url, "SELECT id, status FROM webhook_deliveries WHERE tenant = %s", tenant))


def all_delivered(url, tenant, n):
    s = statuses(url, tenant)
    return len(s) == n and set(s.values()) == {"delivered"}


def test_delivered_signed_and_logged(receiver):
    with fresh_database("whsig") as url:
        srv = deliverer(url)
        try:
            api = hooks_api(srv)
            w = create(api, receiver.url("/signed"), EVENTS)
            receiver.secrets["/signed"] = w["secret"]
            data = {"dialect": "audiences", "segment": {"id": "x", "name": "Ünïcode ✓", "n": [1, 2.5, None]}}
            eid, (did,) = emit(url, api.tenant, [w["id"]], "segment.updated", data)
            wait_until(lambda: all_delivered(url, api.tenant, 1), WAIT, what="delivered")
            assert receiver.bad == []
            (path, headers, body), = receiver.got
            assert headers["webhook-id"] == eid
            assert headers["Content-Type"] == "application/json"
            payload = json.loads(body)
            assert set(payload) == {"type", "timestamp", "data"}
            assert payload["type"] == "segment.updated" and payload["data"] == data
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", payload["timestamp"])
            d, = api.get(f"/v1/webhooks/{w['id']}/deliveries").json()["items"]
            assert d["id"] == did and d["event"] == eid and d["status"] == "delivered"
            assert d["attempts"] == 1 and d["last_status"] == 204 and d["last_error"] is None
            assert d["next_at"] is None and d["last_at"] is not None
            assert metric_sum(srv, "segmentd_webhook_attempts_total", result="delivered") == 1
            # a rotated secret signs the next ones
            rot = api.post(f"/v1/webhooks/{w['id']}/rotate-secret").json()
            receiver.secrets["/signed"] = rot["secret"]
            emit(url, api.tenant, [w["id"]])
            wait_until(lambda: all_delivered(url, api.tenant, 2), WAIT, what="delivered after rotation")
            assert receiver.bad == []
        finally:
            assert srv.stop() == 0


def test_failing_slow_then_back_everything_delivered_once(receiver):
    with fresh_database("whflaky") as url:
        srv = deliverer(url)
        try:
            api = hooks_api(srv)
            w = create(api, receiver.url())
            receiver.secrets["/in"] = w["secret"]
            receiver.mode = "fail"
            made = [emit(url, api.tenant, [w["id"]])[0] for _ in range(6)]
            wait_until(lambda: len(receiver.got) >= 12, WAIT, what="failed attempts")
            receiver.mode = "slow"  # past SEGMENTD_WEBHOOK_TIMEOUT_MS: timeouts
            wait_until(lambda: metric_sum(srv, "segmentd_webhook_attempts_total", result="timeout") >= 2,
                       WAIT, what="timeouts")
            receiver.mode = "ok"
            wait_until(lambda: all_delivered(url, api.tenant, 6), WAIT, what="all delivered")
            assert receiver.bad == []
            assert set(receiver.ids()) == set(made)
            log = walk_pages(lambda **p: api.get(f"/v1/webhooks/{w['id']}/deliveries", params=p), 500)
            assert len(log) == 6 and len({d["event"] for d in log}) == 6
            assert all(d["status"] == "delivered" and d["attempts"] >= 2 for d in log)
            assert metric_sum(srv, "segmentd_webhook_attempts_total", result="http_error") >= 6
            failed = [d for d in log if d["last_status"] is not None]
            assert all(d["last_status"] == 204 for d in failed)
        finally:
            assert srv.stop() == 0


def test_a_failed_answer_is_read_only_a_little_and_backs_off(receiver):
    with fresh_database("whback") as url:
        srv = deliverer(url, SEGMENTD_WEBHOOK_RETRY_BASE_MS="60000")
        try:
            api = hooks_api(srv)
            w = create(api, receiver.url())
            receiver.mode = "fail"
            emit(url, api.tenant, [w["id"]])
            d = wait_until(lambda: [x for x in api.get(f"/v1/webhooks/{w['id']}/deliveries").json()["items"]
                                    if x["attempts"] == 1 and x["last_at"]], WAIT, what="first attempt")[0]
            assert d["status"] == "pending" and d["last_status"] == 500
            assert d["last_error"].startswith('HTTP 500: {"error":"down for maintenance"}')
            assert len(d["last_error"]) <= 220
            # the next attempt in 30 to 60 s (the base, with jitter), not before
            (wait_s,), = sql(url, "SELECT extract(epoch FROM next_at - last_at) FROM webhook_deliveries WHERE id = %s", d["id"])
            assert 29 <= float(wait_s) <= 61, wait_s
            time.sleep(1)
            assert len(receiver.got) == 1
            # the retry makes it due now
            receiver.mode = "ok"
            assert api.post(f"/v1/webhooks/{w['id']}/deliveries/{d['id']}/retry").status_code == 200
            wait_until(lambda: all_delivered(url, api.tenant, 1), WAIT, what="delivered after retry")
        finally:
            assert srv.stop() == 0


def test_failed_after_the_window_then_retried_by_hand(receiver):
    with fresh_database("whwindow") as url:
        srv = deliverer(url, SEGMENTD_WEBHOOK_RETRY_WINDOW_S="2")
        try:
            api = hooks_api(srv)
            w = create(api, receiver.url())
            receiver.mode = "fail"
            _, (did,) = emit(url, api.tenant, [w["id"]])
            wait_until(lambda: statuses(url, api.tenant) == {did: "failed"}, WAIT, what="failed")
            n = len(receiver.got)
            assert n >= 2
            time.sleep(0.5)
            assert len(receiver.got) == n  # no attempt after failed
            assert metric_sum(srv, "segmentd_webhook_deliveries_failed_total") == 1
            receiver.mode = "ok"
            r = api.post(f"/v1/webhooks/{w['id']}/deliveries/{did}/retry")
            assert r.status_code == 200 and r.json()["status"] == "pending"
            wait_until(lambda: statuses(url, api.tenant) == {did: "delivered"}, WAIT, what="delivered")
        finally:
            assert srv.stop() == 0


def test_killed_with_deliveries_pending_delivers_them_after_restart(receiver):
    with fresh_database("whkill") as url:
        a = deliverer(url)
        api = hooks_api(a)
        w = create(api, receiver.url())
        receiver.mode = "slow"  # claimed, in flight when the process dies
        first = [emit(url, api.tenant, [w["id"]])[0] for _ in range(3)]
        wait_until(lambda: len(receiver.got) >= 2, WAIT, what="attempts in flight")
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        later = [emit(url, api.tenant, [w["id"]])[0] for _ in range(3)]  # never claimed
        receiver.mode = "ok"
        b = deliverer(url)
        try:
            wait_until(lambda: all_delivered(url, api.tenant, 6), WAIT, what="all delivered after restart")
            assert set(receiver.ids()) == set(first + later)
        finally:
            assert b.stop() == 0


def test_sigterm_gives_attempts_in_flight_back(receiver):
    with fresh_database("whterm") as url:
        a = deliverer(url, SEGMENTD_SHUTDOWN_GRACE="1", SEGMENTD_WEBHOOK_TIMEOUT_MS="5000")
        api = hooks_api(a)
        w = create(api, receiver.url())
        receiver.mode = "hang"
        emit(url, api.tenant, [w["id"]])
        wait_until(lambda: len(receiver.got) >= 1, WAIT, what="an attempt in flight")
        t0 = time.time()
        assert a.stop() == 0
        assert time.time() - t0 < 4
        (attempts, due), = sql(url, "SELECT attempts, next_at <= now() FROM webhook_deliveries WHERE tenant = %s", api.tenant)
        assert (attempts, due) == (0, True)  # given back, due at once: no lease to wait out
        receiver.mode = "ok"
        b = deliverer(url)
        try:
            wait_until(lambda: all_delivered(url, api.tenant, 1), 10, what="delivered by the next process")
        finally:
            assert b.stop() == 0


def test_two_processes_deliver_each_event_once(receiver):
    with fresh_database("whtwo") as url:
        a = deliverer(url)
        b = deliverer(url)
        try:
            api = hooks_api(a)
            hooks = [create(api, receiver.url(f"/r{i}"), EVENTS)["id"] for i in range(3)]
            made = [emit(url, api.tenant, hooks)[0] for _ in range(15)]
            wait_until(lambda: all_delivered(url, api.tenant, 45), WAIT, what="all delivered")
            for i in range(3):
                got = receiver.ids(f"/r{i}")
                assert sorted(got) == sorted(made), f"/r{i}: some event twice or missing"
            total = sum(metric_sum(s, "segmentd_webhook_attempts_total", result="delivered") for s in (a, b))
            assert total == 45
        finally:
            assert a.stop() == 0
            assert b.stop() == 0


def test_ssrf_private_addresses_are_refused_at_delivery(receiver):
    with fresh_database("whssrf") as url:
        srv = deliverer(url, SEGMENTD_WEBHOOK_ALLOW_PRIVATE=None)
        try:
            api = hooks_api(srv)
            # a host name is taken by the API, and checked on the address it resolves to
            w = create(api, f"http://localhost:{receiver.port}/in")
            assert problem(api.post("/v1/webhooks", {"url": receiver.url(), "events": ["segment.created"]}), 422)
            # one made behind the API's back (say, before a setting changed)
            direct = rid("wh_")
            sql(url, "INSERT INTO webhooks (tenant, id, url, events, secret) VALUES (%s, %s, %s, "
                     "'{segment.created}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')",
                api.tenant, direct, f"http://[::ffff:127.0.0.1]:{receiver.port}/in")
            emit(url, api.tenant, [w["id"], direct])
            wait_until(lambda: (metric_sum(srv, "segmentd_webhook_attempts_total", result="refused") or 0) >= 2,
                       WAIT, what="refusals")
            for hook in (w["id"], direct):
                d, = api.get(f"/v1/webhooks/{hook}/deliveries").json()["items"]
                assert d["status"] == "pending" and d["last_status"] is None
                assert d["last_error"].startswith("refused: ") and "loopback" in d["last_error"], d
            assert receiver.got == []
        finally:
            assert srv.stop() == 0


def test_redirects_are_not_followed(receiver):
    with fresh_database("whredir") as url:
        srv = deliverer(url, SEGMENTD_WEBHOOK_RETRY_BASE_MS="60000")
        try:
            api = hooks_api(srv)
            w = create(api, receiver.url())
            receiver.mode = "redirect"
            emit(url, api.tenant, [w["id"]])
            d = wait_until(lambda: [x for x in api.get(f"/v1/webhooks/{w['id']}/deliveries").json()["items"]
                                    if x["last_status"]], WAIT, what="an attempt")[0]
            assert d["status"] == "pending" and d["last_status"] == 302
            time.sleep(0.5)
            assert [p for p, _, _ in receiver.got] == ["/in"]
        finally:
            assert srv.stop() == 0


def test_real_changes_are_delivered_in_order(receiver):
    """With the outbox of the write statements: a create, a patch and a delete of each dialect
    reach the receiver, in order, each with the representation GET answered."""
    with fresh_database("whreal") as url:
        srv = deliverer(url)
        try:
            api = tenant_api(srv, prefix="wh", scope="segments:read segments:write " + SCOPE)
            w = create(api, receiver.url("/real"), ["segment.created", "segment.updated", "segment.deleted"])
            receiver.secrets["/real"] = w["secret"]
            v1 = api.post("/v1/segments", {"name": "Poles", "constraints": [
                {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]})
            assert v1.status_code == 201, v1.text
            sid = v1.json()["id"]
            assert api.request("PATCH", "/v1/segments", json_body={"id": sid, "name": "Poland"}).status_code == 200
            after_patch = api.get(f"/v1/segments/{sid}").json()
            assert api.delete(f"/v1/segments/{sid}").status_code == 204
            aud = api.post("/audiences/segments", {"name": "A", "management_type": "selfmanaged",
                                                   "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                                                   "properties": {"interest": ["cars"]}})
            assert aud.status_code == 201, aud.text
            wait_until(lambda: all_delivered(url, api.tenant, 4), WAIT, what="four deliveries")
            assert receiver.bad == []
            sent = {h["webhook-id"]: json.loads(b) for _, h, b in receiver.got}
            by_seq = [r[0] for r in sql(url, "SELECT id FROM webhook_events WHERE tenant = %s ORDER BY seq", api.tenant)]
            assert sorted(sent) == sorted(by_seq) and len(receiver.got) == 4
            got = [sent[e] for e in by_seq]
            assert [(g["type"], g["data"]["dialect"]) for g in got] == [
                ("segment.created", "v1"), ("segment.updated", "v1"), ("segment.deleted", "v1"),
                ("segment.created", "audiences")]
            assert got[0]["data"]["segment"]["id"] == sid and got[1]["data"]["segment"] == after_patch
            assert got[2]["data"]["segment"] == after_patch  # deleted: the last representation
            assert got[3]["data"]["segment"] == aud.json()
        finally:
            assert srv.stop() == 0
