"""Segment history (issue #24): every change to a segment writes a revision in its own
transaction (who, when, the request id, the operation, an RFC 6902 patch), on both dialects;
GET …/segments/{id}/history pages them newest first, also after a delete, until the retention
purge; applying a segment's patches in order rebuilds its representation (without status
and size, which are computed at read time)."""
import base64
import copy
import datetime as dt
import os
import subprocess
import threading
import time
import uuid

import psycopg2

import pytest

from lifecycle_util import (AUD, DAY, DIALECTS, V1, backdate, fresh_database, metric_sum, now, sql,
                            tenant_api, wait_until)
from segtest import BIN, DB_URL, SECRET, Api, Server, make_token, problem, psql, walk_pages
from test_bulk import envelope

ALL = "segments:read segments:write devices:read devices:write"
READ_ONLY_KEYS = ("status", "size")


# ---------------------------------------------------------------- RFC 6902, the part we use

def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _parent(doc, path):
    """The container holding path's last token, and that token (RFC 6901)."""
    assert path.startswith("/"), path
    tokens = [_unescape(t) for t in path[1:].split("/")]
    target = doc
    for t in tokens[:-1]:
        target = target[int(t)] if isinstance(target, list) else target[t]
    return target, tokens[-1]


def apply_patch(doc, patch):
    """doc after patch (add, remove and replace: what segmentd writes), as RFC 6902 says,
    failing on any other operation or on a target that must exist and does not."""
    doc = copy.deepcopy(doc)
    for op in patch:
        kind, path = op["op"], op["path"]
        assert kind in ("add", "remove", "replace"), op
        if path == "":
            assert kind != "remove", op
            doc = copy.deepcopy(op["value"])
            continue
        parent, key = _parent(doc, path)
        if isinstance(parent, list):
            i = len(parent) if key == "-" else int(key)
            if kind == "add":
                parent.insert(i, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[i]
            else:
                parent[i] = copy.deepcopy(op["value"])
        else:
            if kind != "add":
                assert key in parent, f"{kind} of a missing member: {op}"
            if kind == "remove":
                del parent[key]
            else:
                parent[key] = copy.deepcopy(op["value"])
    return doc


def test_apply_patch_itself():
    d = apply_patch({}, [{"op": "add", "path": "", "value": {"a": 1, "b/c": {"x": [1, 2]}}}])
    d = apply_patch(d, [{"op": "replace", "path": "/a", "value": 2},
                        {"op": "add", "path": "/b~1c/x/1", "value": 9},
                        {"op": "remove", "path": "/b~1c/x/0"}, {"op": "add", "path": "/n", "value": None}])
    assert d == {"a": 2, "b/c": {"x": [9, 2]}, "n": None}
    with pytest.raises(AssertionError):
        apply_patch(d, [{"op": "replace", "path": "/missing", "value": 1}])
    assert apply_patch(d, [{"op": "replace", "path": "", "value": {}}]) == {}


# ---------------------------------------------------------------- helpers

def history_r(api, d, seg_id, **params):
    return api.get(f"{d.path}/{seg_id}/history", params=params)


def history(api, d, seg_id, limit=3):
    """Every revision, newest first, read in pages of limit."""
    return walk_pages(lambda **p: history_r(api, d, seg_id, **p), limit)


def rebuilt(items):
    """The document the patches give, applied oldest first from {}."""
    doc = {}
    for it in reversed(items):
        doc = apply_patch(doc, it["patch"])
    return doc


def document(representation):
    """A representation as a revision's document: without status and size."""
    return {k: v for k, v in representation.items() if k not in READ_ONLY_KEYS + ("warnings",)}


def check_rebuilds(api, d, seg_id, items=None):
    items = items if items is not None else history(api, d, seg_id)
    assert rebuilt(items) == document(d.get(api, seg_id))
    return items


def ops(items):
    return [it["operation"] for it in items]


def cursor_of(kind, key):
    """A cursor as segmentd writes them: base64url of "kind:key", no padding."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def revisions_of_tenant(tenant):
    """The tenant's revisions: in segment_revisions, and the creates still pending on their
    segments' rows."""
    return psql("SELECT (SELECT count(*) FROM segment_revisions WHERE tenant = %s) "
                "+ (SELECT count(*) FROM audience_segments WHERE tenant = %s AND create_op IS NOT NULL) "
                "+ (SELECT count(*) FROM v1_segments WHERE tenant = %s AND create_op IS NOT NULL)",
                tenant, tenant, tenant)[0][0]


@pytest.fixture
def t(server):
    return tenant_api(server, prefix="hist", scope=ALL)


def put_device(api, dev_id):
    r = api.request("PUT", f"/v1/devices/{dev_id}", json_body={"country": "PL"})
    assert r.status_code in (200, 201), r.text


# ---------------------------------------------------------------- every kind of change

@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_every_change_writes_a_revision_and_the_patches_rebuild_the_segment(t, d):
    rid = "hist-" + uuid.uuid4().hex
    r = t.post(d.path, d.body("first"), headers={"X-Request-Id": rid})
    assert r.status_code == 201, r.text
    seg = r.json()
    sid = seg["id"]
    items = history(t, d, sid)
    assert len(items) == 1
    c = items[0]
    assert c["operation"] == "create" and c["actor"] == "tester" and c["request_id"] == rid
    assert c["version"] == 1 and c["applied"] is None
    assert c["patch"] == [{"op": "add", "path": "", "value": document(seg)}]
    at = dt.datetime.strptime(c["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert abs((at - now()).total_seconds()) < 60
    check_rebuilds(t, d, sid, items)

    # the PATCH that names the id in its body
    # a create's number is the segment's own (no, seq: the dialect's sequence)
    assert c["revision"] == (seg["no"] if d is AUD else psql(
        "SELECT seq FROM v1_segments WHERE tenant = %s AND id = %s", t.tenant, sid)[0][0])

    r = d.update(t, sid, name="second")
    assert r.status_code == 200, r.text
    items = history(t, d, sid)
    assert ops(items) == ["update", "create"]
    assert items[1] == c  # the create, moved from the row to the revisions by the update
    assert items[0]["request_id"] == r.headers["X-Request-Id"] and items[0]["version"] == 2
    paths = sorted(p["path"] for p in items[0]["patch"])
    assert paths == sorted([d.ptr("name"), d.ptr("updated_at")])
    assert all(p["op"] == "replace" for p in items[0]["patch"])

    expected = ["update", "create"]
    if d is AUD:  # the JSON merge patch
        r = t.request("PATCH", f"{d.path}/{sid}", data='{"description": "merged", "properties": {"k": ["v"]}}',
                      headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        expected.insert(0, "merge_patch")
        top = history_r(t, d, sid, limit=1).json()["items"][0]
        assert top["operation"] == "merge_patch"
        assert {"op": "replace", "path": "/properties", "value": {"k": ["v"]}} in top["patch"]

    # the end date
    r = d.set_end(t, sid, end_date=now() + 10 * DAY)
    assert r.status_code == 200, r.text
    expected.insert(0, "end_date")

    # members, added and removed (an unknown id is not applied)
    dev = "hist-dev-" + uuid.uuid4().hex[:8]
    put_device(t, dev)
    for op in ("add", "remove"):
        r = t.patch(f"{d.path}/{sid}/members", {"operation": op, "ids": [dev, "nobody-" + op]})
        assert r.status_code == 200, r.text
        expected.insert(0, "members_" + op)
    # a bulk update item
    r = t.request("PATCH", d.path + "/bulk",
                  json_body={"data": [d.bulk_update_item(sid, name="bulk-named", extend_days=12)]})
    assert not envelope(r)["errors"]
    expected.insert(0, "bulk_update")

    items = history(t, d, sid, limit=2)
    assert ops(items) == expected
    seqs = [it["revision"] for it in items]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    members = [it for it in items if it["operation"].startswith("members_")]
    assert [(m["patch"], m["applied"]) for m in members] == [([], 1), ([], 1)]
    # the version after each change; members change none
    current = d.get(t, sid)
    assert items[0]["version"] == int(t.get(f"{d.path}/{sid}").headers["ETag"].strip('"'))
    assert all(it["actor"] == "tester" for it in items)
    check_rebuilds(t, d, sid, items)
    assert current[d.k("extend_days")] == 12

    # the delete: the history stays, and rebuilds to nothing
    r = t.delete(f"{d.path}/{sid}")
    assert r.status_code == 204
    items = history(t, d, sid)
    assert ops(items) == ["delete"] + expected
    assert items[0]["patch"] == [{"op": "replace", "path": "", "value": {}}]
    assert items[0]["request_id"] == r.headers["X-Request-Id"]
    assert rebuilt(items) == {}
    assert d.get_r(t, sid).status_code == 404


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_bulk_create_and_delete_write_a_revision_per_item(t, d):
    r = t.post(d.path + "/bulk", {"data": [d.bulk_item(f"b{i}") for i in range(3)] + [{"name": ""}]})
    body = envelope(r)
    # the refused item has no segment, so no revision
    assert {e["source"]["pointer"].split("/")[2] for e in body["errors"]} == {"3"}
    made = [x["id"] for x in body["data"]]
    assert len(made) == 3
    for sid in made:
        items = check_rebuilds(t, d, sid)
        assert ops(items) == ["bulk_create"]
        assert items[0]["request_id"] == r.headers["X-Request-Id"] and items[0]["version"] == 1
    assert revisions_of_tenant(t.tenant) == 3
    r = t.post(d.path + "/bulk-delete", {"data": [{"id": x} for x in made[:2]]})
    assert not envelope(r)["errors"]
    for sid in made[:2]:
        items = history(t, d, sid)
        assert ops(items) == ["bulk_delete", "bulk_create"]
        assert rebuilt(items) == {}
    assert ops(history(t, d, made[2])) == ["bulk_create"]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_a_refused_change_writes_no_revision(t, d):
    sid = d.create(t)["id"]
    assert revisions_of_tenant(t.tenant) == 1
    # a stale If-Match
    r = d.update(t, sid, headers={"If-Match": '"7"'}, name="never")
    problem(r, 412)
    r = t.delete(f"{d.path}/{sid}", headers={"If-Match": '"7"'})
    problem(r, 412)
    # dates that break a rule
    r = d.set_end(t, sid, raw={d.k("end_date"): d.enc(now() - 10 * DAY), "extend": "yes"})
    assert r.status_code in (400, 422)
    r = d.update(t, sid, start_date=now() + 10 * DAY, end_date=now() + DAY)
    assert r.status_code == 422
    # an atomic bulk with a refused item: nothing at all
    r = t.post(d.path + "/bulk", {"data": [d.bulk_item("ok"), {"name": ""}]}, params={"atomic": "true"})
    envelope(r, 422)
    missing = str(uuid.uuid4()) if d is AUD else "seg_" + "0" * 13
    r = t.request("PATCH", d.path + "/bulk", params={"atomic": "true"},
                  json_body={"data": [d.bulk_update_item(sid, name="x"), d.bulk_update_item(missing, name="y")]})
    envelope(r, 422)
    # members that are all unknown: nothing applied, nothing changed
    r = t.patch(f"{d.path}/{sid}/members", {"operation": "add", "ids": ["nobody"]})
    assert r.status_code == 200 and r.json()["applied"] == 0
    assert revisions_of_tenant(t.tenant) == 1
    assert ops(history(t, d, sid)) == ["create"]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_the_sweepers_extension_is_a_revision_of_segmentd(d):
    with fresh_database("hist_sweep") as url:
        quiet = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": "0"}).start()
        try:
            api = tenant_api(quiet, prefix="hist")
            E = d.trunc(now() - 2.5 * DAY)
            x = d.create(api, end_date=E, extend=True, extend_days=1)
            backdate(url, d, api.tenant, {x["id"]: E})  # its end passed with no sweeper running
        finally:
            assert quiet.stop() == 0
        sweeper = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": "1"}).start()
        try:
            api = Api(sweeper, tenant=api.tenant)
            wait_until(lambda: len(history(api, d, x["id"])) == 2, 10, what="the renewal's revision")
            items = history(api, d, x["id"])
            ext = items[0]
            assert ext["operation"] == "extend" and ext["actor"] == "segmentd"
            assert ext["request_id"] is None and ext["version"] == 2
            assert [p["path"] for p in ext["patch"]] == [d.ptr("end_date"), d.ptr("updated_at")]
            assert ext["patch"][0]["value"] == d.enc(E + 3 * DAY)
            check_rebuilds(api, d, x["id"], items)
        finally:
            assert sweeper.stop() == 0


def test_a_change_waiting_on_another_patches_from_what_that_one_left():
    """Two PATCHes of one segment without If-Match, the second waiting for the first's row
    lock: its patch starts from the document the first left, not from the one its snapshot
    saw, so setting a name back to what it was is in the patch and the segment rebuilds."""
    s = Server(env={"SEGMENTD_LOOPS": "1", "SEGMENTD_POOL_SIZE": "4"}).start()
    try:
        for d in DIALECTS:
            api = tenant_api(s, prefix="hist")
            sid = d.create(api, name="a")["id"]
            answers = {}

            def patch(name):
                answers[name] = d.update(Api(s, token=api.token), sid, name=name)

            with psycopg2.connect(DB_URL) as conn, conn.cursor() as cur:
                cur.execute(f"SELECT 1 FROM {d.table} WHERE tenant = %s AND id = %s FOR UPDATE",
                            (api.tenant, sid))
                first = threading.Thread(target=patch, args=("b",))
                first.start()
                time.sleep(0.5)  # waiting on the lock: the second goes to another connection
                second = threading.Thread(target=patch, args=("a",))
                second.start()
                time.sleep(0.5)
                conn.rollback()
            conn.close()
            first.join(10)
            second.join(10)
            assert answers["b"].status_code == 200 and answers["a"].status_code == 200
            items = history(api, d, sid)
            assert ops(items) == ["update", "update", "create"]
            check_rebuilds(api, d, sid, items)
            assert d.get(api, sid)["name"] == "a"
            assert {"op": "replace", "path": "/name", "value": "a"} in items[0]["patch"]
    finally:
        assert s.stop() == 0


@pytest.mark.single_process
def test_revisions_past_retention_are_purged():
    with fresh_database("hist_purge") as url:
        s = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": "1",
                        "SEGMENTD_HISTORY_DAYS": "2"}).start()
        try:
            api = tenant_api(s, prefix="hist")
            sid = AUD.create(api)["id"]
            assert AUD.update(api, sid, name="later").status_code == 200
            gone = V1.create(api)["id"]
            assert api.delete(f"/v1/segments/{gone}").status_code == 204
            untouched = V1.create(api)["id"]  # its create still pending on its row
            assert ops(history(api, V1, untouched)) == ["create"]
            sql(url, "UPDATE segment_revisions SET at = at - interval '3 days' WHERE operation IN "
                     "('create', 'delete') AND tenant = %s", api.tenant)
            sql(url, "UPDATE v1_segments SET updated_at = updated_at - interval '3 days' "
                     "WHERE tenant = %s AND id = %s", api.tenant, untouched)
            wait_until(lambda: ops(history(api, AUD, sid)) == ["update"], 10, what="the purge")
            # a pending create past retention is not shown either; the segment is still there
            assert history(api, V1, untouched) == []
            # a deleted segment whose revisions are all gone is unknown again
            wait_until(lambda: history_r(api, V1, gone).status_code == 404, 10, what="the purge")
            problem(history_r(api, V1, gone), 404)
            assert metric_sum(s, "segmentd_history_purged_total") >= 3
        finally:
            assert s.stop() == 0


@pytest.mark.parametrize("value", ["-1", "36501", "x"])
def test_history_days_setting_out_of_range_refused(value):
    env = dict(os.environ, SEGMENTD_DATABASE_URL=DB_URL, SEGMENTD_JWT_SECRET=SECRET,
               SEGMENTD_LISTEN="127.0.0.1:0", SEGMENTD_HISTORY_DAYS=value)
    p = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "SEGMENTD_HISTORY_DAYS" in p.stderr, p.stderr


# ---------------------------------------------------------------- pages, tenants, validation

@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_keyset_pages_never_repeat_or_skip(t, d):
    sid = d.create(t)["id"]
    for i in range(6):
        assert d.update(t, sid, name=f"n{i}").status_code == 200
    whole = history_r(t, d, sid, limit=500).json()
    assert whole["next_cursor"] is None and len(whole["items"]) == 7
    # pages of 2, with more changes arriving between them: those are newer than the cursor
    seen, cursor, pages = [], None, 0
    while True:
        p = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = history_r(t, d, sid, **p).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        pages += 1
        if not cursor:
            break
        assert d.update(t, sid, name=f"during{pages}").status_code == 200
    assert seen == whole["items"]
    assert pages == 4
    # the newest first, and the default page holds them all
    default = history_r(t, d, sid).json()
    assert len(default["items"]) == 7 + pages - 1
    check_rebuilds(t, d, sid, default["items"])
    # the last page ends the history; a cursor at the oldest revision: an empty page
    last = history_r(t, d, sid, limit=len(default["items"]) - 1).json()
    tail = history_r(t, d, sid, limit=1, cursor=last["next_cursor"]).json()
    assert tail == {"items": [default["items"][-1]], "next_cursor": None}
    empty = history_r(t, d, sid, cursor=cursor_of("h", default["items"][-1]["revision"])).json()
    assert empty == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_another_tenants_history_is_not_found(server, t, d):
    other = tenant_api(server, prefix="hist")
    sid = d.create(t)["id"]
    problem(history_r(other, d, sid), 404, "not_found")
    assert t.delete(f"{d.path}/{sid}").status_code == 204
    problem(history_r(other, d, sid), 404, "not_found")
    assert ops(history(t, d, sid)) == ["delete", "create"]
    unknown = str(uuid.uuid4()) if d is AUD else "seg_" + "Z" * 13
    problem(history_r(t, d, unknown), 404, "not_found")
    # a segment with no revision (made before the history was, say): an empty history
    kept = d.create(t)["id"]
    psql(f"UPDATE {d.table} SET create_op = NULL WHERE tenant = %s AND id = %s", t.tenant, kept)
    assert history_r(t, d, kept).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_history_needs_segments_read(server, t, d):
    sid = d.create(t)["id"]
    reader = Api(server, token=make_token(tenant=t.tenant, scope="segments:read"))
    assert history_r(reader, d, sid).status_code == 200
    devices_only = Api(server, token=make_token(tenant=t.tenant, scope="devices:read"))
    problem(history_r(devices_only, d, sid), 403)
    r = t.get(f"{d.path}/{sid}/history", token=False)
    problem(r, 401)


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_query_parameters_are_validated(t, d):
    sid = d.create(t)["id"]
    for bad in ("0", "501", "-1", "abc", "1.5", ""):
        body = problem(history_r(t, d, sid, limit=bad), 400, "invalid_query_parameter")
        assert [e["pointer"] for e in body["errors"]] == ["/query/limit"]
    foreign = cursor_of("a", 5)  # a list's cursor, not a history's
    for bad in ("garbage", foreign, cursor_of("h", "x1"), "h:1", "x" * 600):
        body = problem(history_r(t, d, sid, cursor=bad), 400, "invalid_query_parameter")
        assert [e["pointer"] for e in body["errors"]] == ["/query/cursor"]
    body = problem(history_r(t, d, sid, limit="0", cursor="garbage"), 400)
    assert sorted(e["pointer"] for e in body["errors"]) == ["/query/cursor", "/query/limit"]
    problem(history_r(t, d, sid, since="yesterday"), 400)
    bad_id = "not-a-uuid" if d is AUD else "seg_short"
    problem(t.get(f"{d.path}/{bad_id}/history"), 400)
