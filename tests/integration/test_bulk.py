"""Bulk create, update and delete on both dialects (the {data, errors, warnings} envelope)."""
import json
import os
import subprocess
import threading
import time
import uuid

import pytest
import requests

from hostile_util import metric
from segtest import Api, Server, new_uuid, problem, psql
from segtest import pointers as problem_pointers


def pointers(body):
    """Pointers of a problem (errors[].pointer) or of an envelope (errors[].source.pointer)."""
    errs = body.get("errors", [])
    if errs and "source" in errs[0]:
        return sorted(e["source"]["pointer"] for e in errs)
    return problem_pointers(body)

A = "/audiences/segments"
V = "/v1/segments"
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
GROUPS = [{"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]


def aud(name=None, **extra):
    b = {"management_type": "selfmanaged", "name": name or "bulk " + uuid.uuid4().hex[:8], "owner_id": OWNER}
    b.update(extra)
    return b


def v1(name=None, **extra):
    b = {"name": name or "bulk " + uuid.uuid4().hex[:8], "constraints": GROUPS}
    b.update(extra)
    return b


def envelope(r, status=200):
    assert r.status_code == status, r.text[:1000]
    body = r.json()
    assert set(body) == {"data", "errors", "warnings"}
    for e in body["errors"] + body["warnings"]:
        assert e["code"] and e["title"] and e["detail"] and e["source"]["pointer"].startswith("/data/")
        assert e["traceId"] == r.headers["X-Request-Id"]
    return body


def test_aud_bulk_create_mixed(api):
    items = [aud("ok-0"), aud("bad", management_type="x"), aud("ok-2", properties={"k": ["v"]}),
             {"name": "missing"}, "not an object", aud("ok-5")]
    b = envelope(api.post(A + "/bulk", {"data": items}))
    assert [s["name"] for s in b["data"]] == ["ok-0", "ok-2", "ok-5"]
    ps = pointers(b)
    assert "/data/1/management_type" in ps and "/data/3/management_type" in ps
    assert "/data/3/owner_id" in ps and "/data/4" in ps
    for s in b["data"]:
        assert api.get(A + "/" + s["id"]).json() == s
    nos = [s["no"] for s in b["data"]]
    assert nos == sorted(nos)


def test_aud_bulk_update_and_delete(api):
    made = envelope(api.post(A + "/bulk", {"data": [aud(f"u{i}") for i in range(4)]}))["data"]
    upd = [dict(aud("renamed-0"), id=made[0]["id"]), dict(aud("renamed-1"), id=made[1]["id"], description=None),
           dict(aud("ghost"), id=new_uuid()), dict(aud("dup"), id=made[0]["id"]),
           dict(aud("bad"), id=made[2]["id"], approximated_size=-1)]
    b = envelope(api.patch(A + "/bulk", {"data": upd}))
    assert [s["name"] for s in b["data"]] == ["renamed-0", "renamed-1"]
    codes = {(e["source"]["pointer"], e["code"]) for e in b["errors"]}
    assert ("/data/2/id", "not_found") in codes
    assert ("/data/3/id", "duplicate_id") in codes
    assert ("/data/4/approximated_size", "validation_failed") in codes
    assert api.get(A + "/" + made[2]["id"]).json()["name"] == "u2"
    d = envelope(api.post(A + "/bulk-delete", {"data": [{"id": made[0]["id"]}, {"id": new_uuid()},
                                                        {"id": "nope"}, {"id": made[3]["id"]},
                                                        {"id": made[3]["id"]}]}))
    assert d["data"] == [{"id": made[0]["id"]}, {"id": made[3]["id"]}]
    assert {(e["source"]["pointer"], e["code"]) for e in d["errors"]} == \
        {("/data/1/id", "not_found"), ("/data/2/id", "validation_failed"), ("/data/4/id", "duplicate_id")}
    problem(api.get(A + "/" + made[0]["id"]), 404)
    assert api.get(A + "/" + made[1]["id"]).status_code == 200


def test_atomic_all_or_nothing(api):
    name = "atomic-" + uuid.uuid4().hex[:6]
    r = api.post(A + "/bulk?atomic=true", {"data": [aud(name), aud(name, owner_id="x")]})
    b = envelope(r, 422)
    assert b["data"] == [] and pointers(b) == ["/data/1/owner_id"]
    assert psql("SELECT count(*) FROM audience_segments WHERE name = %s", name)[0][0] == 0
    b = envelope(api.post(A + "/bulk?atomic=true", {"data": [aud(name), aud(name)]}))
    assert len(b["data"]) == 2
    ids = [s["id"] for s in b["data"]]
    # atomic update with one unknown id: nothing changes
    r = api.patch(A + "/bulk?atomic=true", {"data": [dict(aud("changed"), id=ids[0]),
                                                     dict(aud("changed"), id=new_uuid())]})
    b = envelope(r, 422)
    assert [e["code"] for e in b["errors"]] == ["not_found"]
    assert api.get(A + "/" + ids[0]).json()["name"] == name
    r = api.post(A + "/bulk-delete?atomic=true", {"data": [{"id": ids[0]}, {"id": new_uuid()}]})
    envelope(r, 422)
    assert api.get(A + "/" + ids[0]).status_code == 200
    problem(api.post(A + "/bulk?atomic=yes", {"data": [aud()]}), 400)


def test_limits_1000_and_1001(api):
    tag = uuid.uuid4().hex[:8]
    b = envelope(api.post(A + "/bulk", {"data": [aud(f"lim-{tag}-{i}") for i in range(1000)]}))
    assert len(b["data"]) == 1000 and b["errors"] == []
    assert psql("SELECT count(*) FROM audience_segments WHERE name LIKE %s", f"lim-{tag}-%")[0][0] == 1000
    r = api.post(A + "/bulk", {"data": [aud(f"over-{tag}") for _ in range(1001)]})
    body = problem(r, 422, "too_many_items")
    assert pointers(body) == ["/data"]
    assert psql("SELECT count(*) FROM audience_segments WHERE name = %s", f"over-{tag}")[0][0] == 0
    problem(api.post(A + "/bulk", {"data": []}), 422)
    problem(api.post(A + "/bulk", {"items": []}), 422)
    problem(api.post(A + "/bulk", {"data": [aud()], "extra": 1}), 422)


@pytest.mark.single_process
def test_creates_sent_in_parts(api):
    """Creates are stored in parts of 100 items while the rest of the body is still being
    read: the answer and the stored order follow the request, an item refused anywhere is
    its own error, and a body found bad only after parts were sent stores nothing."""
    tag = uuid.uuid4().hex[:8]
    items = [aud(f"parts-{tag}-{i}", approximated_size=i) for i in range(450)]
    items[237]["owner_id"] = "x"
    parts0 = metric(api.server, "segmentd_db_parts_total")
    b = envelope(api.post(A + "/bulk", {"data": items}))
    assert metric(api.server, "segmentd_db_parts_total") - parts0 == 5  # 449 kept: 4 × 100 + 49
    kept = [i for i in range(450) if i != 237]
    assert [s["name"] for s in b["data"]] == [items[i]["name"] for i in kept]
    assert [s["approximated_size"] for s in b["data"]] == kept
    assert pointers(b) == ["/data/237/owner_id"]
    stored = psql("SELECT name, id::text FROM audience_segments WHERE name LIKE %s ORDER BY no",
                  f"parts-{tag}-%")
    assert [r[0] for r in stored] == [s["name"] for s in b["data"]]
    assert [r[1] for r in stored] == [s["id"] for s in b["data"]]
    for s in b["data"][::97]:
        assert api.get(A + "/" + s["id"]).json() == s

    def none_stored(prefix):
        return psql("SELECT count(*) FROM audience_segments WHERE name LIKE %s", prefix + "%")[0][0] == 0

    late = [aud(f"late-{tag}-{i}") for i in range(450)]
    late[430]["owner_id"] = "x"
    b = envelope(api.post(A + "/bulk?atomic=true", {"data": late}), 422)
    assert b["data"] == [] and pointers(b) == ["/data/430/owner_id"]
    assert none_stored(f"late-{tag}-")
    text = json.dumps({"data": [aud(f"trunc-{tag}-{i}") for i in range(450)]})
    hdr = {"Content-Type": "application/json"}
    problem(api.request("POST", A + "/bulk", data=text[:-2], headers=hdr), 400, "malformed_json")
    problem(api.request("POST", A + "/bulk", data=text[:-1] + ',"data":[]}', headers=hdr), 400,
            "malformed_json")
    problem(api.request("POST", A + "/bulk", data=text[:-1] + ',"extra":1}', headers=hdr), 422)
    problem(api.request("POST", A + "/bulk", data=text + "\x00", headers=hdr), 400, "malformed_json")
    assert none_stored(f"trunc-{tag}-")
    # an item nested as deep as jansson allows on its own, but two levels too deep inside
    # the body: the whole body is refused as it would be parsed at once
    for depth, status in ((2045, 200), (2046, 400)):
        deep = "[" * (depth - 1) + "]" * (depth - 1)
        body = ('{"data":[' + ",".join(json.dumps(aud(f"deep-{tag}-{depth}-{i}")) for i in range(250)) +
                ',{"management_type":"selfmanaged","name":"d","owner_id":"' + OWNER +
                '","properties":{"a":' + deep + '}}]}')
        r = api.request("POST", A + "/bulk", data=body, headers=hdr)
        if status == 200:
            b = envelope(r)
            assert len(b["data"]) == 250 and pointers(b) == ["/data/250/properties"], pointers(b)
        else:
            assert "depth" in problem(r, 400, "malformed_json")["detail"]
            assert none_stored(f"deep-{tag}-{depth}-")
    # /v1/segments the same way
    vs = [v1(f"v1parts-{tag}-{i}") for i in range(250)]
    vs[180]["constraints"] = []
    b = envelope(api.post(V + "/bulk", {"data": vs}))
    assert [s["name"] for s in b["data"]] == [vs[i]["name"] for i in range(250) if i != 180]
    assert [p.split("/")[2] for p in pointers(b)] == ["180"]


def test_part_refused_by_database_stores_nothing(api):
    """A trigger refuses one item of the fourth part: the whole request fails with the
    database's error, the parts already inserted are rolled back, and the connection is
    fine for the next request."""
    tag = uuid.uuid4().hex[:8]
    fn = f"bulk_refuse_{tag}"
    psql(f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         f"IF NEW.name = 'refuse-{tag}' THEN "
         f"RAISE EXCEPTION 'refused by test' USING ERRCODE = 'check_violation'; END IF; "
         f"RETURN NEW; END $$")
    psql(f"CREATE TRIGGER {fn} BEFORE INSERT ON audience_segments FOR EACH ROW EXECUTE FUNCTION {fn}()")
    try:
        items = [aud(f"dbparts-{tag}-{i}") for i in range(500)]
        items[333]["name"] = f"refuse-{tag}"
        problem(api.post(A + "/bulk", {"data": items}), 422, "rejected_by_database")
        assert psql("SELECT count(*) FROM audience_segments WHERE name LIKE %s",
                    f"dbparts-{tag}-%")[0][0] == 0
        for _ in range(3):  # every connection of the pool answers again
            assert len(envelope(api.post(A + "/bulk", {"data": items[:150]}))["data"]) == 150
    finally:
        psql(f"DROP TRIGGER IF EXISTS {fn} ON audience_segments")
        psql(f"DROP FUNCTION IF EXISTS {fn}()")


def test_body_over_size_limit_refused_whole():
    s = Server(env={"SEGMENTD_MAX_BULK_BODY_BYTES": "4096"}).start()
    try:
        api = Api(s)
        r = api.post(A + "/bulk", {"data": [aud(description="d" * 1000) for _ in range(10)]})
        problem(r, 413, "body_too_large")
    finally:
        assert s.stop() == 0


def test_cross_tenant_ids_are_per_item_not_found(api, api2):
    mine = envelope(api.post(A + "/bulk", {"data": [aud("mine")]}))["data"][0]
    theirs = envelope(api2.post(A + "/bulk", {"data": [aud("theirs")]}))["data"][0]
    b = envelope(api.patch(A + "/bulk", {"data": [dict(aud("x"), id=theirs["id"]), dict(aud("y"), id=mine["id"])]}))
    assert [s["id"] for s in b["data"]] == [mine["id"]]
    assert [(e["source"]["pointer"], e["code"]) for e in b["errors"]] == [("/data/0/id", "not_found")]
    b = envelope(api.post(A + "/bulk-delete", {"data": [{"id": theirs["id"]}]}))
    assert b["data"] == [] and b["errors"][0]["code"] == "not_found"
    assert api2.get(A + "/" + theirs["id"]).json()["name"] == "theirs"


def test_v1_bulk_with_warnings(api):
    bad_group = [{"type": "AND", "constraints": [
        {"field": "deviceModel", "relation": "==", "value": "A"},
        {"field": "deviceModel", "relation": "==", "value": "B"}]}]
    items = [v1("v-0"), v1("v-1", constraints=bad_group), v1("v-2", constraints=[{"type": "XOR", "constraints": []}])]
    b = envelope(api.post(V + "/bulk", {"data": items}))
    assert [s["name"] for s in b["data"]] == ["v-0", "v-1"]
    assert [(w["source"]["pointer"], w["code"]) for w in b["warnings"]] == \
        [("/data/1/constraints/0/constraints/1", "unsatisfiable_group")]
    assert all(p.startswith("/data/2/constraints/0") for p in pointers(b))
    ids = [s["id"] for s in b["data"]]
    u = envelope(api.patch(V + "/bulk", {"data": [{"id": ids[0], "name": "v-0b"}, {"id": "seg_AAAAAAAAAAAAA", "name": "x"}]}))
    assert [s["name"] for s in u["data"]] == ["v-0b"]
    assert u["data"][0]["constraints"] == GROUPS
    assert u["errors"][0]["code"] == "not_found"
    d = envelope(api.post(V + "/bulk-delete", {"data": [{"id": i} for i in ids]}))
    assert d["data"] == [{"id": i} for i in ids]


# Strings JSON must escape, and non-ASCII text, as the records carry them to PostgreSQL
TRICKY = 'quote " backslash \\ slash / tab\there \u00e9\u4e2d \U0001f3af \u2028 end'


def test_bulk_text_round_trip_matches_single_routes(api):
    """The bulk records are written as JSON text by segmentd itself: every string and nested
    value must reach the database exactly as a single POST/PATCH stores it."""
    props = {"country": ["v\\1", TRICKY], "interest": ['a"b', "\u00e9"]}
    single_body = aud(TRICKY, description=TRICKY + " d", properties=props,
                      deprecated_properties={"old": [TRICKY], "mixed": [1.5, 1e300, 0.1, -3, True, None, {"b": "\x01\x1f"}]},
                      approximated_size=0)
    r = api.post(A, single_body)
    assert r.status_code == 201, r.text
    single = r.json()
    bulk = envelope(api.post(A + "/bulk", {"data": [single_body]}))["data"][0]
    strip = lambda s: {k: v for k, v in s.items() if k not in ("id", "no", "created_at", "updated_at")}
    assert strip(bulk) == strip(single) and bulk["name"] == TRICKY
    assert api.get(A + "/" + bulk["id"]).json() == bulk
    # a create's answer is written by segmentd from its record and what PostgreSQL returns:
    # byte for byte what GET answers (PostgreSQL's json_build_object), whatever the strings,
    # sizes, nulls, documents and created_at (offsets, fractions, the first years)
    ctl = "".join(chr(c) for c in range(1, 32)) + "\x7f"
    made = [dict(single_body, name=ctl + " c", description=ctl),
            dict(single_body, approximated_size=None, description=None, properties={}, deprecated_properties={}),
            dict(single_body, created_at="2020-02-29T23:59:59.5+05:30", approximated_size=9007199254740993),
            dict(single_body, created_at="0001-01-01T00:30:00+00:30"),
            dict(single_body, created_at="1969-12-31T23:59:59.999999Z"),
            dict(single_body, created_at="9999-12-31T22:59:59.000001-01:00"),
            dict(single_body, created_at="2016-12-31T23:59:60Z")]
    r = api.post(A + "/bulk", {"data": made})
    b = envelope(r)
    assert b["errors"] == [] and len(b["data"]) == len(made), b["errors"]
    for s in b["data"]:
        g = api.get(A + "/" + s["id"])
        assert g.status_code == 200 and g.text in r.text, (g.text, r.text[:2000])
    assert [s["created_at"] for s in b["data"][2:]] == [
        "2020-02-29T18:29:59.500000Z", "0001-01-01T00:00:00.000000Z", "1969-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59.000001Z", "2017-01-01T00:00:00.000000Z"]
    # update: a field set to a tricky value, description cleared, properties replaced
    upd = dict(aud(TRICKY + " 2", properties={"x": [TRICKY]}), id=bulk["id"], description=None)
    ub = envelope(api.patch(A + "/bulk", {"data": [upd]}))
    assert ub["errors"] == [] and len(ub["data"]) == 1, ub
    u = ub["data"][0]
    assert (u["name"], u["description"], u["properties"]) == (TRICKY + " 2", None, {"x": [TRICKY]})
    assert api.get(A + "/" + bulk["id"]).json() == u
    # v1: name and description, constraints spliced as validated
    groups = [{"type": "OR", "constraints": [{"field": "country", "relation": "==", "value": "PL"},
                                             {"field": "language", "relation": "==", "value": "pol"}]}]
    one = api.post(V, v1(TRICKY, description=TRICKY, constraints=groups))
    assert one.status_code == 201, one.text
    made = envelope(api.post(V + "/bulk", {"data": [v1(TRICKY, description=TRICKY, constraints=groups)]}))["data"][0]
    assert (made["name"], made["description"], made["constraints"]) == \
        (one.json()["name"], one.json()["description"], one.json()["constraints"])
    assert api.get(V + "/" + made["id"]).json() == made
    u = envelope(api.patch(V + "/bulk", {"data": [{"id": made["id"], "description": TRICKY + "!"}]}))["data"][0]
    assert (u["name"], u["description"], u["constraints"]) == (TRICKY, TRICKY + "!", made["constraints"])


def test_bulk_interrupted_by_database_restart():
    """Every item a response acknowledged is stored; items of failed requests are not."""
    stop = os.environ["SEGMENTD_TEST_PGCTL_STOP"]
    start = os.environ["SEGMENTD_TEST_PGCTL_START"]
    s = Server().start()
    api = Api(s)
    acked, failed_names, statuses = [], [], []
    done = threading.Event()

    def load():
        sess = requests.Session()
        k = 0
        while not done.is_set():
            names = [f"rs-{uuid.uuid4().hex}" for _ in range(250)]  # three parts each
            try:
                r = sess.post(s.url + A + "/bulk", data=json.dumps({"data": [aud(n) for n in names]}),
                              headers={"Authorization": "Bearer " + api.token,
                                       "Content-Type": "application/json"}, timeout=20)
            except requests.RequestException:
                failed_names.extend(names)
                continue
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked.extend(x["id"] for x in r.json()["data"])
            else:
                assert r.status_code == 503, r.text
                failed_names.extend(names)
            k += 1

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(1.0)
        subprocess.run(stop, shell=True, check=True, capture_output=True)
        time.sleep(1.0)
        subprocess.run(start, shell=True, check=True, capture_output=True)
        time.sleep(2.0)
    finally:
        done.set()
        t.join(30)
    try:
        assert 503 in statuses and statuses[-1] == 200, statuses
        stored = {r[0] for r in psql("SELECT id::text FROM audience_segments WHERE id = ANY(%s::uuid[])", acked)}
        assert stored == set(acked), "acknowledged items lost: %d" % (len(acked) - len(stored))
        leaked = psql("SELECT count(*) FROM audience_segments WHERE name = ANY(%s)", failed_names)[0][0]
        assert leaked == 0, "%d items of failed requests were stored" % leaked
    finally:
        assert s.stop() == 0
