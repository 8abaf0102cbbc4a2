"""Webhook events (issue #25), the outbox: every change to a segment (both dialects), every
finished device import and every size move writes its event in the change's own transaction,
with one delivery per subscription of the tenant to its type; a tenant without subscriptions
writes nothing, a rolled-back change writes nothing. Read here from the tables (the delivery
worker and its API are tested in test_webhooks.py); subscriptions are made by SQL."""
import datetime as dt
import json
import os
import time
import uuid

import pytest

from lifecycle_util import (AUD, DAY, DIALECTS, V1, backdate, fresh_database, metric_sum, now, sql,
                            tenant_api, wait_until)
from segtest import DB_URL, Server, psql
from test_bulk import envelope

ALL_TYPES = ["segment.created", "segment.updated", "segment.deleted", "segment.extended",
             "segment.expired", "device.import.finished", "segment.size.changed"]
H = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.stop()


def subscribe(tenant, events=None, url=DB_URL):
    """A subscription of tenant to events (all types by default), made by SQL; its id. The URL
    is a closed port: a delivery worker that runs meanwhile only fails to deliver."""
    wid = "wh_" + uuid.uuid4().hex[:13]
    sql(url, "INSERT INTO webhooks (tenant, id, url, events, secret) VALUES (%s, %s, %s, %s, %s)",
        tenant, wid, "http://127.0.0.1:9/hook", events or ALL_TYPES, "whsec_" + "A" * 32)
    return wid


def events(tenant, url=DB_URL):
    """The tenant's events in seq order: [(type, data, id)]."""
    return [(r[0], r[1], r[2]) for r in sql(url, "SELECT type, data, id FROM webhook_events "
                                                 "WHERE tenant = %s ORDER BY seq", tenant)]


def deliveries(tenant, url=DB_URL):
    """The tenant's deliveries in seq order: [(webhook, event id, status)]."""
    return [tuple(r) for r in sql(url, "SELECT webhook, event, status FROM webhook_deliveries "
                                       "WHERE tenant = %s ORDER BY seq", tenant)]


def seg_data(d, representation):
    return {"dialect": d.dialect_label, "segment": representation}


def check_ids(evs, dls, hooks):
    """Ids in their formats, and one delivery per (event, subscription), in event order."""
    for _, _, eid in evs:
        assert eid.startswith("evt_") and len(eid) == 17 and eid[4:].isalnum(), eid
    assert dls == [(w, e[2], "pending") for e in evs for w in sorted(hooks)]


# ---------------------------------------------------------------- creates

@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_create_writes_event_and_deliveries(server, d):
    api = tenant_api(server, "whc")
    hooks = [subscribe(api.tenant), subscribe(api.tenant, ["segment.created"])]
    other = subscribe(api.tenant, ["segment.deleted"])
    s = d.create(api, end_date=now() + DAY)
    evs = events(api.tenant)
    assert [(t, data) for t, data, _ in evs] == [("segment.created", seg_data(d, d.get(api, s["id"])))]
    assert evs[0][1]["segment"] == s
    dls = deliveries(api.tenant)
    check_ids(evs, dls, hooks)
    assert other not in [w for w, _, _ in dls]
    ids = [r[0] for r in sql(DB_URL, "SELECT id FROM webhook_deliveries WHERE tenant = %s", api.tenant)]
    assert all(i.startswith("dlv_") and len(i) == 17 and i[4:].isalnum() for i in ids), ids


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_replayed_create_tells_once(server, d):
    """A create repeated under its Idempotency-Key is answered from the key: no second event."""
    api = tenant_api(server, "whk")
    subscribe(api.tenant)
    body, key = d.body("keyed"), {"Idempotency-Key": "k-" + uuid.uuid4().hex}
    first = api.post(d.path, body, headers=key)
    again = api.post(d.path, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [(t, data) for t, data, _ in events(api.tenant)] == [("segment.created", seg_data(d, first.json()))]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_bulk_create_in_parts_tells_in_item_order(server, d):
    """A bulk create of 250 items is stored in parts of 100 (one statement each, in one
    transaction): 250 events in the order of the items."""
    api = tenant_api(server, "whp")
    subscribe(api.tenant, ["segment.created"])
    names = [f"p{i:03d}" for i in range(250)]
    b = envelope(api.post(d.path + "/bulk", {"data": [d.bulk_item(n) for n in names]}))
    assert [x["name"] for x in b["data"]] == names
    evs = events(api.tenant)
    assert [data["segment"]["name"] for _, data, _ in evs] == names
    assert [data["segment"] for _, data, _ in evs] == b["data"]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_tenant_without_subscriptions_writes_nothing(server, d):
    api = tenant_api(server, "whn")
    other = tenant_api(server, "whn")
    subscribe(other.tenant)  # another tenant's subscriptions are not this one's
    s = d.create(api)
    assert d.update(api, s["id"], name="renamed").status_code == 200
    assert api.delete(d.one(api, s["id"])).status_code == 204
    assert events(api.tenant) == [] and deliveries(api.tenant) == []
    assert events(other.tenant) == []


# ---------------------------------------------------------------- updates and deletes

@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_updates_and_delete_in_order(server, d):
    """Every form of change, its event in order, each one's data the representation GET answers
    right after it (a delete's: the last one)."""
    api = tenant_api(server, "whu")
    hooks = [subscribe(api.tenant)]
    s = d.create(api, end_date=now() + DAY)
    want = [("segment.created", seg_data(d, s))]
    # the partial update whose body names the id (PATCH /audiences/segments, PATCH /v1/segments)
    assert d.update(api, s["id"], name="renamed").status_code == 200
    want.append(("segment.updated", seg_data(d, d.get(api, s["id"]))))
    if d is AUD:  # and the merge patch of /audiences/segments/{id}
        r = api.patch(d.one(api, s["id"]), {"description": "merged"},
                      headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        want.append(("segment.updated", seg_data(d, d.get(api, s["id"]))))
    # the end date; extend changing is an update too
    assert d.set_end(api, s["id"], end_date=now() + 2 * DAY).status_code == 200
    want.append(("segment.updated", seg_data(d, d.get(api, s["id"]))))
    assert d.update(api, s["id"], extend=True, extend_days=3).status_code == 200
    want.append(("segment.updated", seg_data(d, d.get(api, s["id"]))))
    # a refused change (a stale If-Match) writes nothing
    assert d.update(api, s["id"], headers={"If-Match": '"1"'}, name="stale").status_code == 412
    last = d.get(api, s["id"])
    assert api.delete(d.one(api, s["id"])).status_code == 204
    want.append(("segment.deleted", seg_data(d, last)))
    evs = events(api.tenant)
    assert [(t, data) for t, data, _ in evs] == want
    check_ids(evs, deliveries(api.tenant), hooks)


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_member_changes_write_no_event(server, d):
    """Explicit members are not fields of the representation: adding or removing them changes
    neither it nor the version, and tells no event."""
    api = tenant_api(server, "whm", scope="segments:read segments:write devices:read devices:write")
    subscribe(api.tenant)
    s = d.create(api)
    dev = "dev-" + uuid.uuid4().hex[:8]
    assert api.request("PUT", "/v1/devices/" + dev, {"country": "PL"}).status_code in (200, 201)
    for op in ("add", "remove"):
        r = api.patch(f"{d.path}/{s['id']}/members", {"operation": op, "ids": [dev]})
        assert r.status_code == 200, r.text
    assert [t for t, _, _ in events(api.tenant)] == ["segment.created"]


# ---------------------------------------------------------------- bulk

def bulk_ids(b):
    return [x["id"] for x in b["data"]]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_bulk_changes_in_item_order(server, d):
    api = tenant_api(server, "whb")
    hooks = [subscribe(api.tenant), subscribe(api.tenant, ["segment.updated", "segment.deleted"])]
    items = [d.bulk_item(f"b{i}") for i in range(5)]
    made = envelope(api.post(d.path + "/bulk", {"data": items}))["data"]
    ids = bulk_ids({"data": made})
    want = [("segment.created", seg_data(d, m)) for m in made]
    assert want[0][1]["segment"] == d.get(api, ids[0])
    # updates in another order than the creates, one unknown id (not atomic: the rest applies)
    order = [ids[3], ids[0], ids[4]]
    unknown = str(uuid.uuid4()) if d is AUD else "seg_" + "Z" * 13
    upd = envelope(api.patch(d.path + "/bulk", {"data": [d.bulk_update_item(i, f"u-{i}") for i in order]
                                                + [d.bulk_update_item(unknown, "u-x")]}))
    assert bulk_ids(upd) == order and len(upd["errors"]) == 1
    want += [("segment.updated", seg_data(d, d.get(api, i))) for i in order]
    # deletes, again in another order
    gone = [ids[2], ids[1]]
    last = [d.get(api, i) for i in gone]
    dl = envelope(api.post(d.path + "/bulk-delete", {"data": [{"id": i} for i in gone]}))
    assert bulk_ids(dl) == gone
    want += [("segment.deleted", seg_data(d, x)) for x in last]
    evs = events(api.tenant)
    assert [(t, data) for t, data, _ in evs] == want
    got = deliveries(api.tenant)
    assert got == [(w, e[2], "pending") for e in evs for w in sorted(hooks)
                   if w == hooks[0] or e[0] != "segment.created"]


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_rolled_back_bulk_writes_nothing(server, d):
    """An atomic bulk with one bad item changes nothing, and tells nothing."""
    api = tenant_api(server, "whr")
    subscribe(api.tenant)
    made = envelope(api.post(d.path + "/bulk", {"data": [d.bulk_item("r0"), d.bulk_item("r1")]}))["data"]
    before = events(api.tenant)
    assert len(before) == 2
    unknown = str(uuid.uuid4()) if d is AUD else "seg_" + "Z" * 13
    ids = bulk_ids({"data": made})
    r = api.patch(d.path + "/bulk?atomic=true", {"data": [d.bulk_update_item(ids[0], "changed"),
                                                          d.bulk_update_item(unknown, "x")]})
    envelope(r, 422)
    r = api.post(d.path + "/bulk-delete?atomic=true", {"data": [{"id": ids[1]}, {"id": unknown}]})
    envelope(r, 422)
    r = api.post(d.path + "/bulk?atomic=true", {"data": [d.bulk_item("ok"), {"name": ""}]})
    assert r.status_code == 422
    assert d.get(api, ids[0])["name"] == "r0"
    assert events(api.tenant) == before
    assert len(deliveries(api.tenant)) == 2


# ---------------------------------------------------------------- the sweeper's events

def test_sweeper_extends_and_expires_once():
    """The sweeper's renewal tells segment.extended (data: the renewed representation); a
    segment whose end passes without renewal tells segment.expired once, again only when its
    end date moves and passes again; a paused one when it is resumed. Both dialects, in a
    database of its own (no other test's sweeper). Its purge drops the events past their
    retention that have no pending delivery."""
    with fresh_database("whsweep") as url:
        maker = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": "0"}).start()
        sweeper = None
        try:
            api = tenant_api(maker, "whs")
            quiet = tenant_api(maker, "whs")  # no subscription: the sweeper writes it no event
            subscribe(api.tenant, url=url)
            t = now()
            made = {}
            for d in DIALECTS:
                renew = d.create(api, end_date=t + H, extend=True, extend_days=1)
                backdate(url, d, api.tenant, {renew["id"]: d.trunc(t - H)})  # its end passed unswept
                gone = d.create(api, end_date=t + H)
                backdate(url, d, api.tenant, {gone["id"]: d.trunc(t - H)})
                paused = d.create(api, end_date=t + H, active=False)
                backdate(url, d, api.tenant, {paused["id"]: d.trunc(t - H)})
                later = d.create(api, end_date=t + 3 * DAY)
                d.create(quiet, end_date=t - H)
                made[d.name] = (renew, gone, paused, later)
            # the retention: events older than 30 days go with their deliveries, unless one is pending
            old_t = tenant_api(maker, "whs").tenant
            wid = subscribe(old_t, url=url)
            for eid, age, status in (("evt_old0delivered", 31, "delivered"), ("evt_old000pending", 31, "pending"),
                                     ("evt_new0delivered", 29, "delivered")):
                sql(url, "INSERT INTO webhook_events (tenant, id, type, at, data) VALUES "
                         "(%s, %s, 'segment.created', now() - make_interval(days => %s), '{}')", old_t, eid, age)
                sql(url, "INSERT INTO webhook_deliveries (tenant, id, webhook, event, status) VALUES "
                         "(%s, %s, %s, %s, %s)", old_t, "dlv_" + eid[4:], wid, eid, status)
            sweeper = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": "1"}).start()

            def told():
                return [(t_, data["segment"]["id"]) for t_, data, _ in events(api.tenant, url)
                        if t_ != "segment.created"]

            want = []
            for d in DIALECTS:
                renew, gone, paused, later = made[d.name]
                want += [("segment.extended", renew["id"]), ("segment.expired", gone["id"])]
            wait_until(lambda: sorted(told()) == sorted(want), 10, what="extended and expired told")
            time.sleep(1.3)  # another pass: nothing more
            assert sorted(told()) == sorted(want)
            for t_, data, _ in events(api.tenant, url):
                if t_ != "segment.created":
                    d = AUD if data["dialect"] == "audiences" else V1
                    assert data == seg_data(d, d.get(api, data["segment"]["id"]))
                    assert data["segment"]["status"] == ("active" if t_ == "segment.extended" else "expired")
            assert events(quiet.tenant, url) == []
            assert sorted(e[2] for e in events(old_t, url)) == ["evt_new0delivered", "evt_old000pending"]
            assert sorted(d[1] for d in deliveries(old_t, url)) == ["evt_new0delivered", "evt_old000pending"]
            assert metric_sum(sweeper, "segmentd_webhook_events_purged_total") == 1
            assert metric_sum(sweeper, "segmentd_lifecycle_expiries_total") == 4  # the quiet tenant's too
            assert metric_sum(sweeper, "segmentd_lifecycle_expiries_total", dialect="v1") == 2

            # the paused one resumed: updated, then expired; the expired one's end moved and passed
            # again: expired once more; a write that leaves the end date: nothing more
            for d in DIALECTS:
                renew, gone, paused, later = made[d.name]
                assert d.update(api, paused["id"], active=True).status_code == 200
                assert d.update(api, gone["id"], end_date=now() + 2 * DAY).status_code == 200
                backdate(url, d, api.tenant, {gone["id"]: d.trunc(now() - 2 * H)})
                assert d.update(api, later["id"], name="still later").status_code == 200
                want += [("segment.updated", paused["id"]), ("segment.expired", paused["id"]),
                         ("segment.updated", gone["id"]), ("segment.expired", gone["id"]),
                         ("segment.updated", later["id"])]
            wait_until(lambda: sorted(told()) == sorted(want), 10, what="the second expiries told")
            time.sleep(1.3)
            assert sorted(told()) == sorted(want)
        finally:
            assert maker.stop() == 0
            if sweeper:
                assert sweeper.stop() == 0


# ---------------------------------------------------------------- device imports

def test_import_finished(server):
    """An import tells device.import.finished when it is done (merged, or done at once when no
    line was valid) or failed (a cut upload); data: the import as GET …/imports/{id} answers."""
    from test_device_imports import cut_upload, get_import, ndjson, run_import, start_import
    api = tenant_api(server, "whi", scope="devices:read devices:write")
    hooks = [subscribe(api.tenant, ["device.import.finished"])]
    merged = run_import(api, ndjson([{"id": f"d{i}", "country": "PL"} for i in range(30)]))
    invalid = start_import(api, ndjson([{"id": "x", "country": 7}]))
    assert invalid["status"] == "done"
    cut = cut_upload(server, api, ndjson([{"id": "c1"}]))
    assert cut["status"] == "failed"
    evs = events(api.tenant)
    assert [(t, data) for t, data, _ in evs] == \
        [("device.import.finished", get_import(api, i["id"])) for i in (merged, invalid, cut)]
    check_ids(evs, deliveries(api.tenant), hooks)


# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_size_changed_when_count_moves_over_1_percent(server, d):
    """A stored size (a count, or the refresher's) tells segment.size.changed when it moves
    by more than 1 % from the size stored before it, or when there was none."""
    api = tenant_api(server, "whz", scope="segments:read segments:write devices:read devices:write")
    subscribe(api.tenant, ["segment.size.changed"])
    rule = {} if d is AUD else [{"type": "AND", "constraints": [
        {"field": "country", "relation": "==", "value": "DE"}]}]
    body = d.body("sized")
    body["properties" if d is AUD else "constraints"] = rule
    r = api.post(d.path, body)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    devs = [f"z{i:03d}" for i in range(111)]
    envelope(api.post("/v1/devices/bulk", {"data": [{"id": x, "country": "PL"} for x in devs]}))

    def members_then_count(ids):
        r = api.patch(f"{d.path}/{sid}/members", {"operation": "add", "ids": ids})
        assert r.status_code == 200, r.text
        r = api.get(f"{d.path}/{sid}/count")
        assert r.status_code == 200, r.text
        return r.json()

    first = members_then_count(devs[:100])
    assert first["count"] == 100
    members_then_count(devs[100:101])   # 101: 1 %, not more
    third = members_then_count(devs[101:])  # 111
    assert third["count"] == 111
    evs = events(api.tenant)
    assert [t for t, _, _ in evs] == ["segment.size.changed"] * 2
    at = "computed_at" if d is AUD else "computedAt"
    a, b = evs[0][1], evs[1][1]
    assert a == {"dialect": d.dialect_label, "id": sid, "previous": None,
                 "size": {"count": 100, "precision": "exact", at: a["size"][at]}}
    assert b["previous"]["count"] == 101 and b["size"]["count"] == 111
    assert b["size"] == d.get(api, sid)["size"]


def test_size_refresher_tells_size_changed():
    """The size refresher's counts go through the same statement: the first count, then a move
    of more than 1 %, each told once (a database of its own: the refresher counts every
    segment of its database)."""
    with fresh_database("whsize") as url:
        s = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_SIZE_REFRESH_S": "1"}).start()
        try:
            api = tenant_api(s, "whf", scope="segments:read segments:write devices:read devices:write")
            subscribe(api.tenant, ["segment.size.changed"], url=url)
            envelope(api.post("/v1/devices/bulk", {"data": [{"id": f"p{i}", "country": "PL"} for i in range(50)]}))
            seg = V1.create(api)  # GROUPS: country == PL

            def sizes():  # (previous count, count) of each event
                return [((data["previous"] or {}).get("count"), data["size"]["count"])
                        for _, data, _ in events(api.tenant, url)]

            wait_until(lambda: sizes() == [(None, 50)], 10, what="the first count told")
            envelope(api.post("/v1/devices/bulk", {"data": [{"id": f"q{i}", "country": "PL"} for i in range(5)]}))
            wait_until(lambda: sizes() == [(None, 50), (50, 55)], 10, what="the move told")
            time.sleep(1.3)  # another count of 55: nothing more
            assert sizes() == [(None, 50), (50, 55)]
            assert V1.get(api, seg["id"])["size"]["count"] == 55
        finally:
            assert s.stop() == 0
