"""Idempotency-Key, issue #24: a repeat of a POST's key with the same request replays the first
answer (status, body, Location, ETag, Idempotent-Replayed: true) and does nothing; with another
request 422; while the first still runs 409; after its expiry the request runs again; a first 4xx
of the handler is kept too, a 5xx (or an answer of what runs before the handler) is not; keys are
per tenant; a key and the change it guards survive a PostgreSQL restart together. Device imports
take keys on their own session: a repeat of the same body replays the 202, a second upload while
the first streams gets 409, a cut upload keeps no key."""
import json
import threading
import time
import uuid

import psycopg2
import pytest
import requests

from segtest import DB_URL, Api, Server, check_against_spec, pointers, problem, psql
from hostile_util import AUD, V1, RawConn, aud_body, request_bytes, v1_body
from lifecycle_util import wait_until
from test_device_imports import Upload
from test_faults import pg_ctl

RUN = uuid.uuid4().hex[:8]
KEY = "Idempotency-Key"
END = {"endDate": 4102444800000}  # a /v1 end-date body: 2100-01-01
IMP = "/v1/devices/imports"
DIALECTS = [(V1, v1_body, "v1_segments"), (AUD, aud_body, "audience_segments")]


def tenant_api(server, scope=None):
    t = "idem-" + uuid.uuid4().hex[:12]
    api = Api(server, tenant=t, scope=scope) if scope else Api(server, tenant=t)
    api.tenant = t
    return api


def keyed(key, **headers):
    return dict(headers, **{KEY: key})


def named(table, tenant, name):
    return psql(f"SELECT count(*) FROM {table} WHERE tenant = %s AND name = %s", tenant, name)[0][0]


def kept(tenant, key):
    return psql("SELECT status, location, etag FROM idempotency_keys WHERE tenant = %s AND key = %s",
                tenant, key)


def lock_key(conn, tenant, key):
    """Holds the key's advisory lock in conn's transaction, as a request still running does."""
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s || E'\\n' || %s, 0))", (tenant, key))


# ---------------------------------------------------------------- replays

@pytest.mark.parametrize("path,body,table", DIALECTS)
def test_same_key_same_body_replays_and_creates_once(server, path, body, table):
    api = tenant_api(server)
    key, name = "create-" + uuid.uuid4().hex, "once-" + RUN
    first = api.post(path, body(name), headers=keyed(key))
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = api.post(path, body(name), headers=keyed(key))
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    for h in ("Location", "ETag", "Content-Type"):
        assert again.headers[h] == first.headers[h], h
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert named(table, api.tenant, name) == 1
    assert kept(api.tenant, key) == [(201, first.headers["Location"], first.headers["ETag"])]


def test_no_key_creates_each_time(server):
    api = tenant_api(server)
    name = "twice-" + uuid.uuid4().hex
    for _ in range(2):
        r = api.post(V1, v1_body(name))
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert named("v1_segments", api.tenant, name) == 2


def test_same_key_other_request_is_422(server):
    api = tenant_api(server)
    key = "other-" + uuid.uuid4().hex
    assert api.post(V1, v1_body("a"), headers=keyed(key)).status_code == 201
    b = problem(api.post(V1, v1_body("b"), headers=keyed(key)), 422, "idempotency_key_reused")
    assert "another request" in b["detail"]
    # another path with the same body bytes is another request too
    problem(api.post(AUD, v1_body("a"), headers=keyed(key)), 422, "idempotency_key_reused")
    # a body that differs only in its bytes (spacing) is another request: the digest is of bytes
    r = api.request("POST", V1, data=json.dumps(v1_body("a"), indent=1),
                    headers=keyed(key, **{"Content-Type": "application/json"}))
    problem(r, 422, "idempotency_key_reused")
    assert named("v1_segments", api.tenant, "b") == 0


def test_keys_are_per_tenant(server):
    a, b = tenant_api(server), tenant_api(server)
    key = "shared-" + uuid.uuid4().hex
    ra = a.post(V1, v1_body("mine"), headers=keyed(key))
    rb = b.post(V1, v1_body("theirs"), headers=keyed(key))
    assert ra.status_code == rb.status_code == 201
    assert "Idempotent-Replayed" not in rb.headers
    assert ra.json()["id"] != rb.json()["id"]


@pytest.mark.parametrize("path,body,table", DIALECTS)
def test_end_date_replays_without_a_second_change(server, path, body, table):
    api = tenant_api(server)
    seg = api.post(path, body("ends")).json()
    end = END if path == V1 else {"end_date": "2100-01-01T00:00:00Z"}
    key = "end-" + uuid.uuid4().hex
    first = api.post(f"{path}/{seg['id']}/end-date", end, headers=keyed(key))
    assert first.status_code == 200, first.text
    again = api.post(f"{path}/{seg['id']}/end-date", end, headers=keyed(key))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"] and again.content == first.content
    now = api.get(f"{path}/{seg['id']}")
    assert now.headers["ETag"] == first.headers["ETag"]  # no second write


@pytest.mark.parametrize("path,body,table", DIALECTS)
def test_preview_replays_and_its_query_counts(server, path, body, table):
    api = tenant_api(server)
    key = "preview-" + uuid.uuid4().hex
    first = api.post(path + "/preview", body("p"), headers=keyed(key))
    assert first.status_code == 200, first.text
    again = api.post(path + "/preview", body("p"), headers=keyed(key))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    other = api.post(path + "/preview", body("p"), headers=keyed(key), params={"precision": "exact"})
    problem(other, 422, "idempotency_key_reused")


def test_other_methods_ignore_the_key(server):
    api = tenant_api(server)
    seg = api.post(V1, v1_body("m")).json()
    key = "patch-" + uuid.uuid4().hex
    for name in ("m1", "m2"):
        r = api.patch(V1, {"id": seg["id"], "name": name}, headers=keyed(key))
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
        assert r.json()["name"] == name
    assert kept(api.tenant, key) == []


# ---------------------------------------------------------------- what is not kept

def test_a_4xx_answer_of_the_handler_is_kept_and_replayed(server):
    api = tenant_api(server)
    key = "fix-" + uuid.uuid4().hex
    first = api.post(V1, {"name": "no constraints"}, headers=keyed(key))
    problem(first, 422, "validation_failed")
    assert kept(api.tenant, key) == [(422, None, None)]
    again = api.post(V1, {"name": "no constraints"}, headers=keyed(key))
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # the first answer, its request_id too
    assert again.headers["Content-Type"] == "application/problem+json"
    # the corrected request is another request: it needs a key of its own
    problem(api.post(V1, v1_body("fixed"), headers=keyed(key)), 422, "idempotency_key_reused")
    assert api.post(V1, v1_body("fixed"), headers=keyed("new-" + key)).status_code == 201
    missing = V1 + "/seg_0000000000000/end-date"
    first = api.post(missing, END, headers=keyed("404-" + key))
    problem(first, 404)
    again = api.post(missing, END, headers=keyed("404-" + key))
    assert again.status_code == 404 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert kept(api.tenant, "404-" + key) == [(404, None, None)]


def test_a_412_is_kept_and_headers_are_not_part_of_the_request(server):
    """A stale If-Match on end-date: 412, kept. The key's request is method, path and body:
    the same body with a fresh If-Match is a repeat, replayed (a new attempt needs a new key)."""
    api = tenant_api(server)
    sid = api.post(V1, v1_body("stale")).json()["id"]
    key = "412-" + uuid.uuid4().hex
    first = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key, **{"If-Match": '"999"'}))
    problem(first, 412)
    fresh = api.get(f"{V1}/{sid}").headers["ETag"]
    again = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key, **{"If-Match": fresh}))
    assert again.status_code == 412 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    ok = api.post(f"{V1}/{sid}/end-date", END, headers=keyed("new-" + key, **{"If-Match": fresh}))
    assert ok.status_code == 200 and ok.headers["ETag"] != fresh


def test_answers_from_before_the_handler_are_not_kept(server):
    """A 403 (the token's scope) and a 422 of another request's key are not the handler's:
    the key stays free, or keeps its first answer."""
    key = "scope-" + uuid.uuid4().hex
    reader = tenant_api(server, scope="segments:read")
    problem(reader.post(V1, v1_body("scoped"), headers=keyed(key)), 403)
    assert kept(reader.tenant, key) == []
    writer = Api(server, tenant=reader.tenant)
    r = writer.post(V1, v1_body("scoped"), headers=keyed(key))
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    problem(writer.post(V1, v1_body("other"), headers=keyed(key)), 422, "idempotency_key_reused")
    assert kept(reader.tenant, key) == [(201, r.headers["Location"], r.headers["ETag"])]


def row_locked(conn, tenant, sid):
    """Holds a v1 segment's row lock in conn's transaction (a row lock, not the table's: a
    new session's PREPAREs would wait on a table lock)."""
    conn.cursor().execute("SELECT 1 FROM v1_segments WHERE tenant = %s AND id = %s FOR UPDATE",
                          (tenant, sid))


def test_a_5xx_answer_is_not_kept_and_the_retry_runs():
    s = Server(env={"SEGMENTD_STATEMENT_TIMEOUT_MS": "500"}).start()
    lock = psycopg2.connect(DB_URL)
    try:
        api = tenant_api(s)
        sid = api.post(V1, v1_body("5xx")).json()["id"]
        key = "5xx-" + uuid.uuid4().hex
        row_locked(lock, api.tenant, sid)
        first = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key))
        assert first.status_code == 503, first.text
        lock.rollback()
        assert kept(api.tenant, key) == []
        again = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key))
        assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
        assert kept(api.tenant, key) == [(200, None, again.headers["ETag"])]
    finally:
        lock.close()
        assert s.stop() == 0


# ---------------------------------------------------------------- concurrency and expiry

def test_key_held_by_a_running_request_is_409(server):
    api = tenant_api(server)
    key = "busy-" + uuid.uuid4().hex
    holder = psycopg2.connect(DB_URL)
    try:
        lock_key(holder, api.tenant, key)
        r = api.post(V1, v1_body("busy"), headers=keyed(key))
        problem(r, 409, "idempotency_key_in_use")
        assert r.headers["Retry-After"] == "1"
    finally:
        holder.rollback()
        holder.close()
    r = api.post(V1, v1_body("busy"), headers=keyed(key))
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert named("v1_segments", api.tenant, "busy") == 1


def test_two_concurrent_requests_with_one_key(server):
    """The first waits inside PostgreSQL (its segment's row locked) holding the key; the
    second, sent meanwhile, gets 409; once the first is through, a third replays it."""
    api = tenant_api(server)
    sid = api.post(V1, v1_body("race")).json()["id"]
    key = "race-" + uuid.uuid4().hex
    lock = psycopg2.connect(DB_URL)
    out = {}
    try:
        row_locked(lock, api.tenant, sid)
        t = threading.Thread(target=lambda: out.setdefault(
            "first", api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key))))
        t.start()
        waited = 0
        while waited < 50 and not psql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND backend_type = 'client backend'"):
            time.sleep(0.1)
            waited += 1
        second = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key))
        problem(second, 409, "idempotency_key_in_use")
    finally:
        lock.rollback()
        lock.close()
    t.join(30)
    assert out["first"].status_code == 200, out["first"].text
    third = api.post(f"{V1}/{sid}/end-date", END, headers=keyed(key))
    assert third.headers["Idempotent-Replayed"] == "true" and third.content == out["first"].content
    assert api.get(f"{V1}/{sid}").headers["ETag"] == out["first"].headers["ETag"]


def test_a_key_after_its_expiry_runs_again(server):
    api = tenant_api(server)
    key, name = "expiring-" + uuid.uuid4().hex, "expiring-" + RUN
    first = api.post(V1, v1_body(name), headers=keyed(key))
    assert first.status_code == 201
    psql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
         "WHERE tenant = %s AND key = %s", api.tenant, key)
    second = api.post(V1, v1_body(name), headers=keyed(key))
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert named("v1_segments", api.tenant, name) == 2
    # the key now answers with the second answer
    third = api.post(V1, v1_body(name), headers=keyed(key))
    assert third.headers["Idempotent-Replayed"] == "true" and third.content == second.content


def test_expired_keys_are_purged_by_the_sweeper():
    s = Server(env={"SEGMENTD_LIFECYCLE_SWEEP_S": "1"}).start()
    try:
        api = tenant_api(s)
        key = "purged-" + uuid.uuid4().hex
        assert api.post(V1, v1_body("p"), headers=keyed(key)).status_code == 201
        psql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
             "WHERE tenant = %s AND key = %s", api.tenant, key)
        deadline = time.time() + 10
        while kept(api.tenant, key) and time.time() < deadline:
            time.sleep(0.2)
        assert kept(api.tenant, key) == []
        metrics = requests.get(s.url + "/metrics", timeout=10).text
        assert "segmentd_idempotency_keys_purged_total" in metrics
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------- refused keys

@pytest.mark.parametrize("value", ["k" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(api, value):
    r = api.post(V1, v1_body("bad key"), headers=keyed(value))
    b = problem(r, 400, "invalid_idempotency_key")
    assert pointers(b) == ["/header/Idempotency-Key"]


def test_a_key_of_255_printable_characters_is_taken(server):
    api = tenant_api(server)
    key = ("~! " + uuid.uuid4().hex + "x" * 255)[:255]
    assert api.post(V1, v1_body("long key"), headers=keyed(key)).status_code == 201
    assert api.post(V1, v1_body("long key"), headers=keyed(key)).headers["Idempotent-Replayed"] == "true"


ALL_SCOPES = "segments:read segments:write devices:read devices:write"


@pytest.mark.parametrize("path,body,table", DIALECTS)
@pytest.mark.parametrize("atomic", ["", "?atomic=true"])
def test_bulk_create_replays_and_creates_once(server, path, body, table, atomic):
    """The parts of a bulk create run as a savepoint of the key's transaction."""
    api = tenant_api(server)
    key, name = "bulk-" + uuid.uuid4().hex, "bulk-" + RUN
    items = {"data": [body(name) for _ in range(250)]}  # three parts of 100
    first = api.post(path + "/bulk" + atomic, items, headers=keyed(key))
    assert first.status_code == 200, first.text
    again = api.post(path + "/bulk" + atomic, items, headers=keyed(key))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert named(table, api.tenant, name) == 250
    problem(api.post(path + "/bulk" + atomic, {"data": [body(name)]}, headers=keyed(key)), 422,
            "idempotency_key_reused")


def test_bulk_partly_refused_and_refused_whole_are_kept(server):
    api = tenant_api(server)
    key, name = "partial-" + uuid.uuid4().hex, "partial-" + RUN
    items = {"data": [v1_body(name), {"name": name}]}  # the second has no constraints
    first = api.post(V1 + "/bulk", items, headers=keyed(key))
    assert first.status_code == 200 and len(first.json()["errors"]) == 1, first.text
    again = api.post(V1 + "/bulk", items, headers=keyed(key))
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert named("v1_segments", api.tenant, name) == 1
    # refused whole: the change rolled back, the answer kept on its own
    whole = "whole-" + key
    r = api.post(V1 + "/bulk?atomic=true", items, headers=keyed(whole))
    assert r.status_code == 422
    assert kept(api.tenant, whole) == [(422, None, None)]
    again = api.post(V1 + "/bulk?atomic=true", items, headers=keyed(whole))
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == r.content
    assert named("v1_segments", api.tenant, name) == 1


@pytest.mark.parametrize("atomic", ["", "?atomic=true"])
def test_bulk_delete_replays(server, atomic):
    api = tenant_api(server)
    ids = [s["id"] for s in api.post(V1 + "/bulk", {"data": [v1_body("del")] * 3}).json()["data"]]
    key = "bulk-delete-" + uuid.uuid4().hex
    items = {"data": [{"id": i} for i in ids]}
    first = api.post(V1 + "/bulk-delete" + atomic, items, headers=keyed(key))
    assert first.status_code == 200 and len(first.json()["data"]) == 3, first.text
    again = api.post(V1 + "/bulk-delete" + atomic, items, headers=keyed(key))
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    # without the key the same request is another delete: every item not found now
    assert len(api.post(V1 + "/bulk-delete", items).json()["errors"]) == 3


def test_device_bulk_replays(server):
    api = tenant_api(server, scope=ALL_SCOPES)
    key = "devices-" + uuid.uuid4().hex
    items = {"data": [{"id": f"idem-dev-{i}", "country": "PL"} for i in range(3)]}
    first = api.post("/v1/devices/bulk", items, headers=keyed(key))
    assert first.status_code == 200, first.text
    again = api.post("/v1/devices/bulk", items, headers=keyed(key))
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    dev = api.get("/v1/devices/idem-dev-0")
    assert dev.headers["ETag"] == '"1"'  # written once
    gone = api.post("/v1/devices/bulk-delete", {"data": [{"id": "idem-dev-0"}]}, headers=keyed("d" + key))
    assert gone.status_code == 200, gone.text
    assert api.post("/v1/devices/bulk-delete", {"data": [{"id": "idem-dev-0"}]},
                    headers=keyed("d" + key)).headers["Idempotent-Replayed"] == "true"


# ---------------------------------------------------------------- device imports

def import_lines(tag, n=3):
    return b"".join(b'{"id":"%s-%d","country":"PL"}\n' % (tag.encode(), i) for i in range(n))


def post_import(api, body, key):
    return api.request("POST", IMP, data=body,
                       headers=keyed(key, **{"Content-Type": "application/x-ndjson"}))


def imports_of(tenant):
    return psql("SELECT id, status FROM device_imports WHERE tenant = %s ORDER BY seq", tenant)


class KeyedUpload(Upload):
    """An import sent by hand on a socket (test_device_imports.Upload), with an
    Idempotency-Key and a Content-Length."""

    def __init__(self, server, api, key, length):  # Upload.__init__ sends its own head
        self.chunked, self.sent = False, 0
        self.conn = RawConn(server.port, timeout=30)
        self.conn.send(request_bytes("POST", IMP, token=api.token, headers=[
            "Content-Type: application/x-ndjson", f"Content-Length: {length}", f"{KEY}: {key}"]))


def wait_import(tenant, status, timeout=15):
    return wait_until(lambda: [i for i, st in imports_of(tenant) if st == status], timeout,
                      interval=0.05, what=f"an import {status}")


def test_device_import_same_key_same_body_replays(server):
    api = tenant_api(server, scope=ALL_SCOPES)
    key, body = "import-" + uuid.uuid4().hex, import_lines("rep")
    first = post_import(api, body, key)
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = post_import(api, body, key)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"] == IMP + "/" + first.json()["id"]
    assert again.content == first.content  # the answer as it was, merging or done
    assert [i for i, _ in imports_of(api.tenant)] == [first.json()["id"]]  # one import
    assert kept(api.tenant, key) == [(202, first.headers["Location"], None)]


def test_device_import_same_key_other_body_is_422(server):
    api = tenant_api(server, scope=ALL_SCOPES)
    key = "import-" + uuid.uuid4().hex
    assert post_import(api, import_lines("a"), key).status_code == 202
    problem(post_import(api, import_lines("b"), key), 422, "idempotency_key_reused")
    problem(post_import(api, import_lines("a", 4), key), 422, "idempotency_key_reused")
    assert len(imports_of(api.tenant)) == 1
    # a key of another route is another request too, and the reverse
    other = "bulk-" + key
    assert api.post("/v1/devices/bulk", {"data": [{"id": "x"}]}, headers=keyed(other)).status_code == 200
    problem(post_import(api, import_lines("a"), other), 422, "idempotency_key_reused")
    problem(api.post("/v1/devices/bulk", {"data": [{"id": "x"}]}, headers=keyed(key)), 422,
            "idempotency_key_reused")
    assert len(imports_of(api.tenant)) == 1


def streaming_upload(server, name):
    """A keyed upload of 50 lines whose first 100 bytes were sent: its import is receiving."""
    api = tenant_api(server, scope=ALL_SCOPES)
    key, body = name + "-" + uuid.uuid4().hex, import_lines(name, 50)
    up = KeyedUpload(server, api, key, len(body))
    up.conn.send(body[:100])
    wait_import(api.tenant, "receiving")
    return api, key, body, up


def test_device_import_second_upload_while_the_first_streams_is_409(server):
    api, key, body, up = streaming_upload(server, "stream")
    try:
        r = post_import(api, body, key)
        problem(r, 409, "idempotency_key_in_use")
        assert r.headers["Retry-After"] == "1"
        # the key's lock is one for every route of the tenant
        problem(api.post(V1, v1_body("while"), headers=keyed(key)), 409, "idempotency_key_in_use")
        up.conn.send(body[100:])
        first = up.answer()
    finally:
        up.conn.close()
    assert first.status == 202, first.body
    third = post_import(api, body, key)
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.headers["Location"] == first.headers["Location"]
    assert len(imports_of(api.tenant)) == 1  # the refused upload made none


def test_device_import_cut_upload_keeps_no_key(server):
    api, key, body, up = streaming_upload(server, "cut")
    up.conn.close()
    wait_import(api.tenant, "failed")
    assert kept(api.tenant, key) == []
    r = post_import(api, body, key)  # the retry runs, and is kept
    assert r.status_code == 202 and "Idempotent-Replayed" not in r.headers
    assert kept(api.tenant, key) == [(202, r.headers["Location"], None)]
    assert [st for _, st in imports_of(api.tenant)][0] == "failed"


def test_device_import_replay_while_cut_takes_nothing(server):
    """A repeat cut in the middle of its body neither replays nor changes anything, and frees
    the key's lock."""
    api = tenant_api(server, scope=ALL_SCOPES)
    key, body = "recut-" + uuid.uuid4().hex, import_lines("recut", 50)
    first = post_import(api, body, key)
    assert first.status_code == 202
    up = KeyedUpload(server, api, key, len(body))
    up.conn.send(body[:100])
    time.sleep(0.2)
    up.conn.close()
    again = wait_until(lambda: (lambda r: r if r.status_code != 409 else None)(post_import(api, body, key)),
                       10, interval=0.1, what="the key's lock freed")
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert len(imports_of(api.tenant)) == 1


# ---------------------------------------------------------------- crash

def keyed_load_through_a_restart(s, api, path, ctype, body_of, created, workers):
    """Keyed POSTs of path from a few threads, each key new (its body body_of(key)), while
    PostgreSQL stops and starts again: {key: id} of the answers `created` acknowledged."""
    acked, stop, lk = {}, threading.Event(), threading.Lock()

    def load(w):
        sess = requests.Session()
        h = {"Authorization": "Bearer " + api.token, "Content-Type": ctype}
        i = 0
        while not stop.is_set():
            key = f"crash-{w}-{i}"
            i += 1
            try:
                r = sess.post(s.url + path, data=body_of(key), headers=dict(h, **{KEY: key}), timeout=30)
            except requests.RequestException:
                continue
            check_against_spec("POST", path, r)
            if r.status_code == created:
                with lk:
                    acked[key] = r.json()["id"]

    threads = [threading.Thread(target=load, args=(w,)) for w in range(workers)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        pg_ctl("stop")
        time.sleep(1.0)
        pg_ctl("start")
        time.sleep(3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    return acked


def test_device_import_key_and_import_survive_a_postgres_restart_together():
    """Keyed imports run while PostgreSQL stops and starts again: afterwards every import that
    was received whole has its key (Location naming it), every key its import, and every
    acknowledged 202 is among them; a retry of an acknowledged key replays it."""
    s = Server(env={"SEGMENTD_POOL_WAIT_MS": "1000"}).start()
    api = tenant_api(s, scope=ALL_SCOPES)
    try:
        acked = keyed_load_through_a_restart(s, api, IMP, "application/x-ndjson",
                                             lambda key: import_lines(key, 20), 202, 3)
        assert acked, "no import was acknowledged"
        # imports left receiving by a session the restart cut are failed by the merge worker
        wait_until(lambda: not psql("SELECT 1 FROM device_imports WHERE tenant = %s AND status = "
                                    "'receiving'", api.tenant), 30, what="no import receiving")
        whole = {i for i, st in imports_of(api.tenant) if st != "failed"}
        keys = dict(psql("SELECT key, location FROM idempotency_keys WHERE tenant = %s", api.tenant))
        assert {IMP + "/" + i for i in whole} == set(keys.values())
        for key, imp in acked.items():
            assert keys[key] == IMP + "/" + imp
        for key in list(acked)[:5]:
            r = post_import(api, import_lines(key, 20), key)
            assert r.headers["Idempotent-Replayed"] == "true" and r.json()["id"] == acked[key]
    finally:
        assert s.stop() == 0


def test_a_key_and_its_write_survive_a_postgres_restart_together():
    """Keyed creates run while PostgreSQL stops and starts again: afterwards every segment
    the load made has its key, every key its segment (named after the key), and every
    acknowledged create is among them; a retry of each acknowledged key replays it."""
    s = Server(env={"SEGMENTD_POOL_WAIT_MS": "1000"}).start()
    api = tenant_api(s)
    acked = keyed_load_through_a_restart(s, api, V1, "application/json",
                                         lambda key: json.dumps(v1_body(key)), 201, 4)
    try:
        assert acked, "no create was acknowledged"
        segs = dict(psql("SELECT name, id FROM v1_segments WHERE tenant = %s", api.tenant))
        keys = dict(psql("SELECT key, location FROM idempotency_keys WHERE tenant = %s", api.tenant))
        assert set(segs) == set(keys), (set(segs) ^ set(keys))
        for key, location in keys.items():
            assert location == V1 + "/" + segs[key]
        for key, sid in acked.items():
            assert segs[key] == sid
        for key in list(acked)[:5]:
            r = api.post(V1, v1_body(key), headers=keyed(key))
            assert r.headers["Idempotent-Replayed"] == "true" and r.json()["id"] == acked[key]
    finally:
        assert s.stop() == 0
