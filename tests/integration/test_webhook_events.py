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

from lifecycle_util import (AUD, DAY, DIALECTS, V1, backdate, fresh_database, now, sql, tenant_api,
                            wait_until)
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
def test_tenant_without_subscriptions_writes_nothing(server, d):
    api = tenant_api(server, "whn")
    other = tenant_api(server, "whn")
    subscribe(other.tenant)  # another tenant's subscriptions are not this one's
    s = d.create(api)
    assert d.update(api, s["id"], name="renamed").status_code == 200
    assert api.delete(d.one(api, s["id"])).status_code == 204
    assert events(api.tenant) == [] and deliveries(api.tenant) == []
    assert events(other.tenant) == []
