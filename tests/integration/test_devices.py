"""/v1/devices, issue #21 step 1: the single-device routes, the list and the scopes
(the contract is /work/devices-spec.md). Bulk routes and imports come later."""
import json
import threading
import time
import uuid
from urllib.parse import unquote

import pytest

from segtest import Api, make_token, pointers, problem, psql

DV = "/v1/devices"
DEV_SCOPES = "devices:read devices:write"
ALL_SCOPES = "segments:read segments:write devices:read devices:write"

KEYS = ["id", "country", "language", "timezone", "appVersion", "appVersionCode", "osApi", "osVersion",
        "customUserId", "email", "type", "firstSession", "lastSession", "sessionCount", "createdAt",
        "pushToken", "unRegisteredAt", "deviceModel", "deviceManufacturer", "tags", "attributes",
        "updatedAt"]

# every field set, each to a value its rule accepts
FULL = {
    "country": "PL", "language": "pol", "timezone": "Europe/Warsaw", "appVersion": "1.3.54",
    "appVersionCode": 10354, "osApi": "35", "osVersion": "14.0.1", "customUserId": "user-42",
    "email": "a.b@example.com", "type": "phone", "firstSession": 1771924492768,
    "lastSession": 1771924492782, "sessionCount": 17, "createdAt": 1700000000000,
    "pushToken": "fcm:APA91b-x_y", "unRegisteredAt": 1771924499999, "deviceModel": "Redmi Note 12",
    "deviceManufacturer": "Xiaomi", "tags": ["vip", "beta"],
    "attributes": {"interest": ["sports", "music"], "age": [30], "geo:city": ["Kraków"]},
}


def empty_device(dev_id):
    """The representation of a device PUT with nothing but its id (updatedAt aside)."""
    d = {k: None for k in KEYS}
    d.update(id=dev_id, tags=[], attributes={})
    return d


def dev_api(server, scope=DEV_SCOPES, tenant=None):
    """A client of a tenant of its own (lists and counts see only this test's devices)."""
    return Api(server, tenant=tenant or "dv-" + uuid.uuid4().hex[:12], scope=scope)


@pytest.fixture
def dv(server):
    return dev_api(server)


def put(api, dev_id, body, **kw):
    return api.request("PUT", DV + "/" + dev_id, json_body=body, **kw)


def put_raw(api, dev_id, text, **kw):
    headers = dict({"Content-Type": "application/json"}, **kw.pop("headers", {}))
    return api.request("PUT", DV + "/" + dev_id, data=text, headers=headers, **kw)


def merge(api, dev_id, patch, ctype="application/merge-patch+json", headers=None, **kw):
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return api.request("PATCH", DV + "/" + dev_id, data=json.dumps(patch), headers=h, **kw)


def created(api, dev_id, body=None, **kw):
    r = put(api, dev_id, {} if body is None else body, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def get(api, dev_id):
    r = api.get(DV + "/" + dev_id)
    assert r.status_code == 200, r.text
    return r.json()


def gone(api, dev_id):
    problem(api.get(DV + "/" + dev_id), 404, "not_found")


def now_ms():
    return int(time.time() * 1000)


def assert_epoch_ms(v):
    assert isinstance(v, int) and not isinstance(v, bool), v
    assert abs(v - now_ms()) < 600_000, v  # milliseconds of now, not seconds or microseconds


def tick():
    """Long enough for the next write's updatedAt (epoch ms) to differ from the last one."""
    time.sleep(0.004)


def page(api, **params):
    r = api.get(DV, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor"}, body
    return body


def walk(api, limit, **params):
    """Every page of the list, following next_cursor; returns the pages' items."""
    pages, cursor = [], None
    for _ in range(1000):
        p = dict(params, limit=limit)
        if cursor:
            p["cursor"] = cursor
        body = page(api, **p)
        assert len(body["items"]) <= limit
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return pages
    raise AssertionError("the list never ended")


def flat_ids(pages):
    return [d["id"] for p in pages for d in p]


def sort_key(d):
    return (d["updatedAt"], d["id"])


# ================================================================== PUT: create and replace

def test_put_creates_201_then_replaces_200(dv):
    r = put(dv, "dev-1", {"country": "PL"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == DV + "/dev-1"
    assert r.headers["ETag"] == '"1"'
    first = r.json()
    assert first["id"] == "dev-1" and first["country"] == "PL"
    tick()
    r = put(dv, "dev-1", {"country": "DE"})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    second = r.json()
    assert second["country"] == "DE"
    assert second["updatedAt"] > first["updatedAt"]
    g = dv.get(DV + "/dev-1")
    assert g.status_code == 200 and g.json() == second and g.headers["ETag"] == '"2"'


def test_full_representation_every_key_in_order(dv):
    r = put(dv, "full", FULL)
    assert r.status_code == 201, r.text
    out = r.json()
    assert list(out) == KEYS
    assert_epoch_ms(out["updatedAt"])
    expected = dict(FULL, id="full", updatedAt=out["updatedAt"])
    assert out == expected
    g = dv.get(DV + "/full")
    assert list(g.json()) == KEYS and g.json() == out
    assert g.headers["ETag"] == r.headers["ETag"] == '"1"'


def test_minimal_representation_nulls_empty_tags_and_attributes(dv):
    out = created(dv, "bare")
    assert list(out) == KEYS
    assert_epoch_ms(out["updatedAt"])
    assert out == dict(empty_device("bare"), updatedAt=out["updatedAt"])
    # createdAt is the client's value: never filled in by the server
    assert out["createdAt"] is None
    assert get(dv, "bare") == out


def test_put_replaces_whole_absent_fields_become_null(dv):
    created(dv, "whole", FULL)
    r = put(dv, "whole", {"country": "DE"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out == dict(empty_device("whole"), country="DE", updatedAt=out["updatedAt"])


def test_every_field_may_be_null(dv):
    body = {k: None for k in KEYS if k not in ("id", "updatedAt")}
    out = created(dv, "nulls", body)
    assert out == dict(empty_device("nulls"), updatedAt=out["updatedAt"])
    b = problem(put(dv, "nulls2", {"id": None}), 422, "validation_failed")
    assert pointers(b) == ["/id"]
    gone(dv, "nulls2")


def test_version_counts_every_write(dv):
    created(dv, "v")
    for n in range(2, 6):
        r = put(dv, "v", {"sessionCount": n})
        assert r.status_code == 200 and r.headers["ETag"] == '"%d"' % n
    r = merge(dv, "v", {"sessionCount": 99})
    assert r.status_code == 200 and r.headers["ETag"] == '"6"'
    assert dv.get(DV + "/v").headers["ETag"] == '"6"'


def test_updated_at_moves_on_every_write_only(dv):
    a = created(dv, "moves")
    tick()
    assert get(dv, "moves")["updatedAt"] == a["updatedAt"]  # a read changes nothing
    b = put(dv, "moves", {"country": "PL"}).json()
    assert b["updatedAt"] > a["updatedAt"]
    tick()
    c = merge(dv, "moves", {"country": "DE"}).json()
    assert c["updatedAt"] > b["updatedAt"]
    assert_epoch_ms(c["updatedAt"])
    # a refused write changes nothing
    tick()
    problem(put(dv, "moves", {"country": "pl"}), 422)
    problem(merge(dv, "moves", {"country": "pl"}), 422)
    g = dv.get(DV + "/moves")
    assert g.json() == c and g.headers["ETag"] == '"3"'


def test_created_at_is_the_clients(dv):
    out = created(dv, "cat", {"createdAt": 1234})
    assert out["createdAt"] == 1234
    assert put(dv, "cat", {"createdAt": 0}).json()["createdAt"] == 0


def test_updated_at_in_body_accepted_and_ignored(dv):
    out = created(dv, "ua", {"updatedAt": 5, "country": "PL"})
    assert out["updatedAt"] != 5
    assert_epoch_ms(out["updatedAt"])
    out = merge(dv, "ua", {"updatedAt": 7}).json()
    assert out["updatedAt"] != 7
    assert_epoch_ms(out["updatedAt"])


def test_updated_at_of_any_type_is_ignored(dv):
    """'accepted and ignored': whatever it holds, it is not validated."""
    for v in ("not a number", None, -1, [1]):
        r = put(dv, "uany", {"updatedAt": v})
        assert r.status_code in (200, 201), (v, r.text)
        assert_epoch_ms(r.json()["updatedAt"])


def test_get_body_can_be_put_back(dv):
    first = created(dv, "round", FULL)
    tick()
    r = put(dv, "round", get(dv, "round"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert {k: v for k, v in out.items() if k != "updatedAt"} == \
        {k: v for k, v in first.items() if k != "updatedAt"}
    assert out["updatedAt"] > first["updatedAt"]


def test_body_id_must_equal_path_id(dv):
    assert created(dv, "same", {"id": "same"})["id"] == "same"
    b = problem(put(dv, "path-id", {"id": "other-id"}), 422, "validation_failed")
    assert pointers(b) == ["/id"]
    gone(dv, "path-id")
    gone(dv, "other-id")
    b = problem(put(dv, "same", {"id": "SAME"}), 422)
    assert pointers(b) == ["/id"]
    assert get(dv, "same")["id"] == "same"


def test_put_text_plain_is_415(dv):
    r = dv.request("PUT", DV + "/ct", data="{}", headers={"Content-Type": "text/plain"})
    problem(r, 415, "unsupported_media_type")
    gone(dv, "ct")


def test_put_malformed_json_is_400(dv):
    problem(put_raw(dv, "badjson", '{"country": "PL"'), 400, "malformed_json")
    gone(dv, "badjson")


# ================================================================== If-Match / If-None-Match on PUT

def test_put_if_match(dv):
    created(dv, "im")
    problem(put(dv, "im", {"country": "DE"}, headers={"If-Match": '"7"'}), 412, "precondition_failed")
    assert get(dv, "im")["country"] is None
    r = put(dv, "im", {"country": "PL"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    # the tag it was given is now stale
    problem(put(dv, "im", {"country": "DE"}, headers={"If-Match": '"1"'}), 412)
    assert get(dv, "im")["country"] == "PL"
    assert put(dv, "im", {"country": "DE"}, headers={"If-Match": '"9", "2"'}).status_code == 200


def test_put_if_match_on_missing_device_is_412(dv):
    problem(put(dv, "nobody", {"country": "PL"}, headers={"If-Match": '"1"'}), 412, "precondition_failed")
    gone(dv, "nobody")


def test_put_if_match_star_needs_a_device(dv):
    """RFC 9110 13.1.1: If-Match: * is false when there is no current representation."""
    problem(put(dv, "star", {}, headers={"If-Match": "*"}), 412)
    gone(dv, "star")
    created(dv, "star")
    assert put(dv, "star", {"country": "PL"}, headers={"If-Match": "*"}).status_code == 200


def test_put_if_match_malformed_is_400(dv):
    created(dv, "imx")
    problem(put(dv, "imx", {}, headers={"If-Match": "garbage"}), 400, "invalid_if_match")
    assert dv.get(DV + "/imx").headers["ETag"] == '"1"'


def test_put_if_none_match_star_creates_only(dv):
    r = put(dv, "inm", {"country": "PL"}, headers={"If-None-Match": "*"})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"'
    problem(put(dv, "inm", {"country": "DE"}, headers={"If-None-Match": "*"}), 412, "precondition_failed")
    g = dv.get(DV + "/inm")
    assert g.json()["country"] == "PL" and g.headers["ETag"] == '"1"'


def _race(n, fn):
    results = []
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        results.append(fn(i))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sorted(results)


def test_race_if_match_one_winner(server):
    api = dev_api(server)
    for k in range(4):
        dev_id = "race-im-%d" % k
        created(api, dev_id)
        res = _race(2, lambda i: put(Api(server, token=api.token), dev_id, {"sessionCount": i},
                                     headers={"If-Match": '"1"'}).status_code)
        assert res == [200, 412], res
        assert api.get(DV + "/" + dev_id).headers["ETag"] == '"2"'


def test_race_if_none_match_one_creator(server):
    api = dev_api(server)
    for k in range(4):
        dev_id = "race-inm-%d" % k
        res = _race(2, lambda i: put(Api(server, token=api.token), dev_id, {"sessionCount": i},
                                     headers={"If-None-Match": "*"}).status_code)
        assert res == [201, 412], res


def test_race_plain_puts_one_201_rest_200(server):
    """Concurrent upserts of a new id: one creates, the others replace; none fails."""
    api = dev_api(server)
    n = 6
    res = _race(n, lambda i: put(Api(server, token=api.token), "race-up", {"sessionCount": i}).status_code)
    assert res == [200] * (n - 1) + [201], res
    assert api.get(DV + "/race-up").headers["ETag"] == '"%d"' % n


# ================================================================== PATCH (JSON Merge Patch)

def test_patch_sets_changes_and_keeps_the_rest(dv):
    created(dv, "mp", {"country": "PL", "tags": ["a"], "sessionCount": 3})
    tick()
    r = merge(dv, "mp", {"language": "pol", "country": "DE"})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    out = r.json()
    assert list(out) == KEYS
    assert out["language"] == "pol" and out["country"] == "DE"
    assert out["tags"] == ["a"] and out["sessionCount"] == 3
    assert get(dv, "mp") == out


def test_patch_null_removes_each_field(dv):
    created(dv, "mpnull", FULL)
    for field in KEYS:
        if field in ("id", "updatedAt"):
            continue
        r = merge(dv, "mpnull", {field: None})
        assert r.status_code == 200, (field, r.text)
        out = r.json()
        assert out[field] == ([] if field == "tags" else {} if field == "attributes" else None), field
    out = get(dv, "mpnull")
    assert out == dict(empty_device("mpnull"), updatedAt=out["updatedAt"])


def test_patch_tags_replaced_whole(dv):
    created(dv, "mptags", {"tags": ["a", "b", "c"]})
    assert merge(dv, "mptags", {"tags": ["z"]}).json()["tags"] == ["z"]
    assert merge(dv, "mptags", {"tags": []}).json()["tags"] == []
    assert merge(dv, "mptags", {"tags": ["x", "y"]}).json()["tags"] == ["x", "y"]
    assert merge(dv, "mptags", {"tags": None}).json()["tags"] == []


def test_patch_attributes_merge_by_code_lists_replaced_whole(dv):
    created(dv, "mpattr", {"attributes": {"a": ["1", "2"], "b": ["x"], "c": [5]}})
    out = merge(dv, "mpattr", {"attributes": {"a": ["3"], "b": None, "d": ["new"]}}).json()
    assert out["attributes"] == {"a": ["3"], "c": [5], "d": ["new"]}
    out = merge(dv, "mpattr", {"attributes": None}).json()
    assert out["attributes"] == {}
    out = merge(dv, "mpattr", {"attributes": {"e": [1, "1"]}}).json()
    assert out["attributes"] == {"e": [1, "1"]}


def test_patch_unknown_device_404_and_nothing_created(dv):
    problem(merge(dv, "nobody", {"country": "PL"}), 404, "not_found")
    gone(dv, "nobody")


def test_patch_if_match(dv):
    created(dv, "mpim")
    r = merge(dv, "mpim", {"country": "PL"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    problem(merge(dv, "mpim", {"country": "DE"}, headers={"If-Match": '"1"'}), 412, "precondition_failed")
    g = dv.get(DV + "/mpim")
    assert g.json()["country"] == "PL" and g.headers["ETag"] == '"2"'
    assert merge(dv, "mpim", {"country": "DE"}, headers={"If-Match": '"2"'}).status_code == 200


@pytest.mark.parametrize("patch,ptrs", [
    ({"country": "pl"}, ["/country"]),
    ({"email": "nope"}, ["/email"]),
    ({"colour": "red"}, ["/colour"]),
    ({"id": "another"}, ["/id"]),
    ({"tags": ["a", "a"]}, ["/tags/1"]),
    ({"attributes": {"bad code!": ["x"]}}, ["/attributes/bad code!"]),
    ({"attributes": {"a": []}}, ["/attributes/a"]),
    ({"sessionCount": "3"}, ["/sessionCount"]),
    ({"country": "pl", "language": "en", "colour": 1}, ["/colour", "/country", "/language"]),
])
def test_patch_result_validated_whole_422(dv, patch, ptrs):
    before = created(dv, "mpbad", FULL)
    b = problem(merge(dv, "mpbad", patch), 422, "validation_failed")
    assert pointers(b) == ptrs, b
    g = dv.get(DV + "/mpbad")
    assert g.json() == before and g.headers["ETag"] == '"1"'


def test_patch_content_types(dv):
    created(dv, "mpct")
    r = merge(dv, "mpct", {"country": "PL"}, ctype="application/merge-patch+json")
    assert r.status_code == 200 and r.json()["country"] == "PL"
    r = merge(dv, "mpct", {"country": "DE"}, ctype="application/json")
    assert r.status_code == 200 and r.json()["country"] == "DE"
    problem(merge(dv, "mpct", {"country": "FR"}, ctype="text/plain"), 415, "unsupported_media_type")
    assert get(dv, "mpct")["country"] == "DE"


def test_patch_empty_changes_no_field(dv):
    before = created(dv, "mpempty", FULL)
    r = merge(dv, "mpempty", {})
    assert r.status_code == 200, r.text
    out = r.json()
    assert {k: v for k, v in out.items() if k != "updatedAt"} == \
        {k: v for k, v in before.items() if k != "updatedAt"}


# ================================================================== GET / DELETE

def test_get_404_unknown(dv):
    gone(dv, "never-made")


def test_delete(dv):
    created(dv, "del")
    r = dv.delete(DV + "/del")
    assert r.status_code == 204 and r.content == b""
    gone(dv, "del")
    problem(dv.delete(DV + "/del"), 404, "not_found")
    problem(merge(dv, "del", {"country": "PL"}), 404)
    # the id can be used again: a new device, version 1
    r = put(dv, "del", {})
    assert r.status_code == 201 and r.headers["ETag"] == '"1"'


def test_delete_if_match(dv):
    created(dv, "delim")
    put(dv, "delim", {"country": "PL"})
    problem(dv.delete(DV + "/delim", headers={"If-Match": '"1"'}), 412, "precondition_failed")
    assert get(dv, "delim")["country"] == "PL"
    assert dv.delete(DV + "/delim", headers={"If-Match": '"2"'}).status_code == 204
    gone(dv, "delim")


def test_other_tenants_device_is_404_everywhere(server):
    a, b = dev_api(server), dev_api(server)
    mine = created(a, "shared-id", FULL)
    path = DV + "/shared-id"
    problem(b.get(path), 404, "not_found")
    problem(b.delete(path), 404)
    problem(merge(b, "shared-id", {"country": "DE"}), 404)
    problem(put(b, "shared-id", {"country": "DE"}, headers={"If-Match": '"1"'}), 412)
    # the same id is another device in another tenant
    r = put(b, "shared-id", {"country": "DE"})
    assert r.status_code == 201 and r.headers["ETag"] == '"1"'
    assert b.delete(path).status_code == 204
    g = a.get(path)
    assert g.json() == mine and g.headers["ETag"] == '"1"'


# ================================================================== field validation

def s(n, ch="x"):
    return ch * n


VALID = [
    ("country", "US"), ("country", "UK"), ("language", "eng"), ("timezone", "UTC"),
    ("timezone", "America/Argentina/Buenos_Aires"), ("appVersion", "13"), ("appVersion", "1.2.3.4"),
    ("osVersion", "1.0.1"), ("osApi", "0"), ("email", "a.b+c@sub.example.co.uk"),
    ("type", "tablet"), ("type", "smartwatch"), ("type", "desktop"),
    ("customUserId", s(1024)), ("pushToken", s(1024)), ("deviceModel", s(1024, "é")),
    ("deviceManufacturer", "x"),
    ("appVersionCode", 2147483647), ("appVersionCode", -2147483648), ("sessionCount", 0),
    ("sessionCount", 2147483647),
    ("firstSession", 0), ("lastSession", 9223372036854775807), ("createdAt", 9223372036854775807),
    ("unRegisteredAt", 0),
    ("tags", [str(i) for i in range(100)]), ("tags", [s(255)]), ("tags", ["VIP", "vip"]),
    ("attributes", {"c" * 128: ["x"]}), ("attributes", {"a_b.c:d-e": [s(1024)]}),
    ("attributes", {"many": list(range(1000))}), ("attributes", {"n": [1, "1", 2.5, -3]}),
]


@pytest.mark.parametrize("field,value", VALID)
def test_each_field_accepts(dv, field, value):
    r = put(dv, "ok", {field: value})
    assert r.status_code == 201, r.text
    assert r.json()[field] == value
    assert get(dv, "ok")[field] == value


REFUSED = [
    # formats
    ("country", "pl"), ("country", "POL"), ("country", "XX"), ("country", ""), ("country", 48),
    ("language", "en"), ("language", "xyz"), ("language", "ENG"), ("language", ""),
    ("timezone", "Europe/Nowhere"), ("timezone", "europe/warsaw"), ("timezone", "+02:00"),
    ("appVersion", "1.x"), ("appVersion", "1.2.3.4.5"), ("appVersion", ""), ("appVersion", 13),
    ("osVersion", "v13"), ("osApi", "3a"), ("osApi", "-1"), ("osApi", 35),
    ("email", "nope"), ("email", "a@b"), ("email", "a b@example.com"), ("email", "a@@example.com"),
    ("email", "@example.com"),
    ("type", "laptop"), ("type", "Phone"), ("type", ""),
    # free strings: 1 to 1024 characters
    ("customUserId", ""), ("customUserId", s(1025)), ("pushToken", ""), ("pushToken", s(1025, "é")),
    ("deviceModel", ""), ("deviceModel", s(1025)), ("deviceManufacturer", ""),
    ("deviceManufacturer", s(1025)), ("customUserId", 42), ("customUserId", True),
    ("deviceModel", ["x"]), ("pushToken", {"a": 1}),
    # 32-bit integers
    ("appVersionCode", 2147483648), ("appVersionCode", -2147483649), ("appVersionCode", 1.5),
    ("appVersionCode", 5.0), ("appVersionCode", "5"), ("appVersionCode", True),
    ("sessionCount", 2147483648), ("sessionCount", -2147483649), ("sessionCount", "3"),
    # epoch ms, 64-bit, >= 0
    ("firstSession", -1), ("lastSession", -1), ("createdAt", -1), ("unRegisteredAt", -1),
    ("firstSession", 1.5), ("lastSession", "1771924492782"), ("createdAt", False),
    ("unRegisteredAt", -9223372036854775808),
]


@pytest.mark.parametrize("field,value", REFUSED)
def test_each_field_refuses(dv, field, value):
    b = problem(put(dv, "bad", {field: value}), 422, "validation_failed")
    assert pointers(b) == ["/" + field], b
    assert all(e["detail"] for e in b["errors"])
    gone(dv, "bad")


def test_refusal_leaves_the_stored_device(dv):
    before = created(dv, "keep", FULL)
    b = problem(put(dv, "keep", {"country": "pl"}), 422)
    assert pointers(b) == ["/country"]
    g = dv.get(DV + "/keep")
    assert g.json() == before and g.headers["ETag"] == '"1"'


@pytest.mark.parametrize("field", ["firstSession", "lastSession", "createdAt", "unRegisteredAt",
                                   "appVersionCode", "sessionCount"])
def test_integer_past_int64_refused(dv, field):
    r = put_raw(dv, "big", '{"%s": 9223372036854775808}' % field)
    assert r.status_code in (400, 422), r.text
    b = problem(r, r.status_code)
    if r.status_code == 422:
        assert pointers(b) == ["/" + field]
    gone(dv, "big")


TAGS_REFUSED = [
    ("a", ["/tags"]),
    ({"a": 1}, ["/tags"]),
    ([str(i) for i in range(101)], ["/tags"]),
    (["a", "b", "a"], ["/tags/2"]),
    (["a", "b", "c", "b"], ["/tags/3"]),
    ([""], ["/tags/0"]),
    (["ok", s(256)], ["/tags/1"]),
    ([1], ["/tags/0"]),
    (["a", None], ["/tags/1"]),
    (["a", ["b"]], ["/tags/1"]),
]


@pytest.mark.parametrize("tags,ptrs", TAGS_REFUSED)
def test_tags_rules(dv, tags, ptrs):
    b = problem(put(dv, "tags", {"tags": tags}), 422, "validation_failed")
    assert pointers(b) == ptrs, b
    gone(dv, "tags")


ATTRIBUTES_REFUSED = [
    ([], ["/attributes"]),
    ("x", ["/attributes"]),
    ({"": ["x"]}, ["/attributes/"]),
    ({"bad code!": ["x"]}, ["/attributes/bad code!"]),
    ({"c" * 129: ["x"]}, ["/attributes/" + "c" * 129]),
    ({"a/b~c": ["x"]}, ["/attributes/a~1b~0c"]),
    ({"code": "x"}, ["/attributes/code"]),
    ({"code": {"x": 1}}, ["/attributes/code"]),
    ({"code": []}, ["/attributes/code"]),
    ({"code": list(range(1001))}, ["/attributes/code"]),
    ({"code": [True]}, ["/attributes/code/0"]),
    ({"code": ["a", None]}, ["/attributes/code/1"]),
    ({"code": ["a", {"b": 1}]}, ["/attributes/code/1"]),
    ({"code": [["a"]]}, ["/attributes/code/0"]),
    ({"code": ["a", "b", "a"]}, ["/attributes/code/2"]),
    ({"code": [1, 1.0]}, ["/attributes/code/1"]),
    ({"code": ["ok", s(1025)]}, ["/attributes/code/1"]),
]


@pytest.mark.parametrize("attributes,ptrs", ATTRIBUTES_REFUSED)
def test_attributes_rules(dv, attributes, ptrs):
    b = problem(put(dv, "attrs", {"attributes": attributes}), 422, "validation_failed")
    assert pointers(b) == ptrs, b
    gone(dv, "attrs")


def test_deeply_nested_attribute_value_refused_not_crashed(dv):
    deep = "x"
    for _ in range(200):
        deep = [deep]
    r = put(dv, "deep", {"attributes": {"code": deep}})
    assert r.status_code in (400, 422), r.text
    b = problem(r, r.status_code)
    if r.status_code == 422:
        assert all(p.startswith("/attributes") for p in pointers(b)), b
    gone(dv, "deep")


@pytest.mark.parametrize("key", ["colour", "Country", "updated_at", "created_at", "device_id", ""])
def test_unknown_key_refused(dv, key):
    b = problem(put(dv, "unk", {"country": "PL", key: 1}), 422, "validation_failed")
    assert pointers(b) == ["/" + key], b
    gone(dv, "unk")


def test_every_problem_at_once(dv):
    body = {"id": "other", "country": "pl", "language": "en", "timezone": "Mars/Base", "email": "nope",
            "type": "laptop", "appVersionCode": 2147483648, "firstSession": -1, "customUserId": "",
            "tags": ["a", "a"], "attributes": {"ok": ["1"], "bad!": ["x"], "dup": [2, 2]}, "colour": 1}
    b = problem(put(dv, "many", body), 422, "validation_failed")
    assert pointers(b) == sorted(["/id", "/country", "/language", "/timezone", "/email", "/type",
                                  "/appVersionCode", "/firstSession", "/customUserId", "/tags/1",
                                  "/attributes/bad!", "/attributes/dup/1", "/colour"]), b
    gone(dv, "many")


@pytest.mark.parametrize("text", [
    # not an object, or no body at all
    "[]", '"device"', "42", "null", "",
    # NUL characters: PostgreSQL text holds none
    '{"customUserId": "a\\u0000b"}', '{"tags": ["a\\u0000"]}', '{"attributes": {"k": ["\\u0000"]}}',
    '{"attributes": {"k\\u0000": ["v"]}}', '{"country": "PL\\u0000"}',
])
def test_put_refused_bodies_store_nothing(dv, text):
    r = put_raw(dv, "refused", text)
    assert r.status_code in (400, 422), r.text
    problem(r, r.status_code)
    gone(dv, "refused")


# ================================================================== ids in the path

def test_id_of_255_characters(dv):
    long_id = "d" * 250 + "-_.:@"
    assert len(long_id) == 255
    r = put(dv, long_id, FULL)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == long_id
    assert unquote(r.headers["Location"]) == DV + "/" + long_id
    assert get(dv, long_id)["id"] == long_id
    assert merge(dv, long_id, {"country": "DE"}).status_code == 200
    assert long_id in [d["id"] for d in page(dv, limit=500)["items"]]
    assert dv.delete(DV + "/" + long_id).status_code == 204


@pytest.mark.parametrize("n", [256, 300, 1000])
def test_id_too_long_is_400(dv, n):
    for method in ("PUT", "GET", "PATCH", "DELETE"):
        r = dv.request(method, DV + "/" + "d" * n, data="{}" if method in ("PUT", "PATCH") else None,
                       headers={"Content-Type": "application/json"})
        b = problem(r, 400, "invalid_path_parameter")
        assert pointers(b) == ["/path/id"], b
    assert page(dv)["items"] == []


@pytest.mark.parametrize("dev_id", ["a-b", "a_b", "a.b", "a:b", "a@b", "-", "_", ".x", ":", "@",
                                    "A9z", "0", "user@example.com", "urn:dev:42", "x" * 1])
def test_each_allowed_character(dv, dev_id):
    r = put(dv, dev_id, {"country": "PL"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == dev_id
    assert unquote(r.headers["Location"]) == DV + "/" + dev_id
    assert dv.get(r.headers["Location"]).json()["id"] == dev_id
    assert get(dv, dev_id)["id"] == dev_id
    assert merge(dv, dev_id, {"country": "DE"}).json()["country"] == "DE"
    assert dv.delete(DV + "/" + dev_id).status_code == 204
    gone(dv, dev_id)


@pytest.mark.parametrize("encoded,dev_id", [
    ("a%40b.c", "a@b.c"), ("x%3Ay", "x:y"), ("x%3ay", "x:y"), ("user%40example.com", "user@example.com"),
    ("%40%3A%2D%5F%2E", "@:-_."),
])
def test_percent_encoded_ids_are_decoded(dv, encoded, dev_id):
    r = dv.request("PUT", DV + "/" + encoded, json_body={"id": dev_id, "country": "PL"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == dev_id
    # the same device under either spelling
    assert get(dv, dev_id) == r.json()
    assert get(dv, encoded) == r.json()
    assert merge(dv, encoded, {"country": "DE"}).status_code == 200
    assert get(dv, dev_id)["country"] == "DE"
    assert [d["id"] for d in page(dv)["items"]] == [dev_id]
    assert dv.delete(DV + "/" + encoded).status_code == 204
    gone(dv, dev_id)


@pytest.mark.parametrize("encoded", ["a%20b", "%20", "a+b", "a%2Bb", "a%C3%A9", "a%00b", "a%25b",
                                     "a%23b", "a%3Fb", "a,b", "a;b", "a=b", "a~b", "a!b", "a'b", "a*b",
                                     "%FF"])
def test_ids_outside_the_rules_are_400(dv, encoded):
    for method in ("PUT", "GET", "PATCH", "DELETE"):
        r = dv.request(method, DV + "/" + encoded, data="{}" if method in ("PUT", "PATCH") else None,
                       headers={"Content-Type": "application/json"})
        b = problem(r, 400, "invalid_path_parameter")
        assert pointers(b) == ["/path/id"], b
    assert page(dv)["items"] == []


@pytest.mark.parametrize("path", ["a%2Fb", "a/b", "a%2fb"])
def test_slash_in_id_never_reaches_a_device(dv, path):
    created(dv, "a")
    for method in ("PUT", "GET", "PATCH", "DELETE"):
        r = dv.request(method, DV + "/" + path, data="{}" if method in ("PUT", "PATCH") else None,
                       headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 404), (method, r.status_code, r.text)
        problem(r, r.status_code)
    assert [d["id"] for d in page(dv)["items"]] == ["a"]


# ================================================================== scopes

def test_read_scope_reads_but_cannot_write(server):
    owner = dev_api(server)
    reader = Api(server, token=make_token(tenant=owner_tenant(owner), scope="devices:read"))
    created(owner, "r1")
    assert reader.get(DV + "/r1").status_code == 200
    assert [d["id"] for d in page(reader)["items"]] == ["r1"]
    for r in (put(reader, "r1", {"country": "PL"}), put(reader, "r2", {}),
              merge(reader, "r1", {"country": "PL"}), reader.delete(DV + "/r1")):
        problem(r, 403, "insufficient_scope")
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="devices:write"' in r.headers["WWW-Authenticate"], r.headers["WWW-Authenticate"]
    assert get(owner, "r1")["country"] is None
    gone(owner, "r2")


def test_write_scope_without_read_cannot_get(server):
    owner = dev_api(server)
    writer = Api(server, token=make_token(tenant=owner_tenant(owner), scope="devices:write"))
    r = put(writer, "w1", {"country": "PL"})
    assert r.status_code == 201, r.text
    for r in (writer.get(DV + "/w1"), writer.get(DV)):
        problem(r, 403, "insufficient_scope")
        assert 'scope="devices:read"' in r.headers["WWW-Authenticate"], r.headers["WWW-Authenticate"]
    assert get(owner, "w1")["country"] == "PL"


def test_segments_scopes_do_not_reach_devices(server):
    owner = dev_api(server)
    created(owner, "s1")
    seg = Api(server, token=make_token(tenant=owner_tenant(owner), scope="segments:read segments:write"))
    for r in (seg.get(DV + "/s1"), seg.get(DV), put(seg, "s1", {}), put(seg, "s2", {}),
              merge(seg, "s1", {"country": "PL"}), seg.delete(DV + "/s1")):
        problem(r, 403, "insufficient_scope")
    assert get(owner, "s1")["country"] is None
    gone(owner, "s2")


def test_devices_scopes_do_not_reach_segments(server):
    dev = dev_api(server)
    for r in (dev.get("/v1/segments"), dev.get("/audiences/segments"),
              dev.post("/v1/segments", {"name": "x", "constraints": [
                  {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]}),
              dev.post("/audiences/segments", {"management_type": "selfmanaged", "name": "x",
                                                "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"})):
        problem(r, 403, "insufficient_scope")


def test_all_four_scopes_reach_both(server):
    both = Api(server, tenant="dv-" + uuid.uuid4().hex[:12], scope=ALL_SCOPES)
    assert put(both, "b1", {}).status_code == 201
    assert both.get("/v1/segments").status_code == 200
    assert both.get(DV).status_code == 200


def test_no_token_is_401(dv):
    problem(dv.get(DV + "/x", token=None), 401, "unauthorized")
    problem(put(dv, "x", {}, token=None), 401)
    problem(dv.get(DV, token=None), 401)


def owner_tenant(api):
    import base64
    body = api.token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["tenant"]


# ================================================================== list

def test_list_empty_tenant(dv):
    assert page(dv) == {"items": [], "next_cursor": None}


def test_list_items_are_full_representations(dv):
    a = created(dv, "la", FULL)
    items = page(dv)["items"]
    assert items == [a] and list(items[0]) == KEYS


def test_list_pages_of_2_across_7(dv):
    made = []
    for i in range(7):
        made.append(created(dv, "p%d" % (6 - i)))  # ids in the opposite order to updatedAt
        tick()
    pages = walk(dv, 2)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    ids = flat_ids(pages)
    assert ids == [d["id"] for d in made]  # oldest change first
    assert len(set(ids)) == 7
    assert [d for p in pages for d in p] == sorted(made, key=sort_key)


def test_list_ordered_by_updated_at_then_id(server):
    """Devices written at once share milliseconds: the id breaks the tie, in every page size."""
    api = dev_api(server)
    for batch in range(3):
        _race(8, lambda i, b=batch: put(Api(server, token=api.token), "t%d-%s" % (b, chr(ord("h") - i)),
                                        {"sessionCount": i}).status_code)
    everything = page(api, limit=500)["items"]
    assert len(everything) == 24
    assert everything == sorted(everything, key=sort_key)
    for limit in (1, 3, 5):
        assert [d for p in walk(api, limit) for d in p] == everything


def test_list_tie_on_updated_at_straddling_pages(server):
    """Several devices with one updatedAt: the cursor must carry the id, or a page skips or
    repeats them. Written from threads, then five of them given one instant by SQL, so that
    the tie is there whatever the clock did."""
    tenant = "dv-" + uuid.uuid4().hex[:12]
    api = dev_api(server, tenant=tenant)
    _race(10, lambda i: put(Api(server, token=api.token), "tie-%d" % i, {}).status_code)
    psql("UPDATE devices SET updated_at = (SELECT min(updated_at) FROM devices WHERE tenant = %s) "
         "WHERE tenant = %s AND id IN ('tie-1', 'tie-3', 'tie-4', 'tie-7', 'tie-9')",
         tenant, tenant)
    everything = page(api, limit=500)["items"]
    stamps = [d["updatedAt"] for d in everything]
    assert len(everything) == 10 and len(stamps) - len(set(stamps)) >= 4
    assert everything == sorted(everything, key=sort_key)
    for limit in (1, 2, 3):
        assert [d for p in walk(api, limit) for d in p] == everything


def test_list_default_limit_50(dv):
    for i in range(51):
        created(dv, "d%02d" % i)
    first = page(dv)
    assert len(first["items"]) == 50 and first["next_cursor"]
    second = page(dv, cursor=first["next_cursor"])
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert second["items"][0]["id"] not in [d["id"] for d in first["items"]]


def test_list_limit_bounds(dv):
    for i in range(3):
        created(dv, "lb%d" % i)
    assert len(page(dv, limit=1)["items"]) == 1
    assert len(page(dv, limit=500)["items"]) == 3


@pytest.mark.parametrize("params,name", [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": -1}, "limit"), ({"limit": "x"}, "limit"),
    ({"limit": "1.0"}, "limit"), ({"limit": ""}, "limit"),
    ({"cursor": "bogus"}, "cursor"), ({"cursor": ""}, "cursor"), ({"cursor": "!!!"}, "cursor"),
    ({"updated_since": "today"}, "updated_since"), ({"updated_since": -1}, "updated_since"),
    ({"updated_since": "1.5"}, "updated_since"), ({"updated_since": "2024-01-01T00:00:00Z"}, "updated_since"),
    ({"updated_since": ""}, "updated_since"), ({"updated_since": "9223372036854775808"}, "updated_since"),
    ({"updated_since": "12abc"}, "updated_since"),
    ({"colour": "red"}, "colour"),
])
def test_list_bad_query_400(dv, params, name):
    b = problem(dv.get(DV, params=params), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/" + name], b


def test_list_cursor_of_another_list_refused(server):
    both = Api(server, tenant="dv-" + uuid.uuid4().hex[:12], scope=ALL_SCOPES)
    for _ in range(2):
        assert both.post("/v1/segments", {"name": "x", "constraints": [
            {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]}).status_code == 201
    seg_cursor = both.get("/v1/segments", params={"limit": 1}).json()["next_cursor"]
    assert seg_cursor
    b = problem(both.get(DV, params={"cursor": seg_cursor}), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/cursor"]


def test_list_cursor_tampered_refused(dv):
    for i in range(3):
        created(dv, "ct%d" % i)
    cursor = page(dv, limit=1)["next_cursor"]
    assert cursor
    for bad in (cursor[:-2], cursor + "A", "A" + cursor, cursor[::-1]):
        r = dv.get(DV, params={"cursor": bad})
        if r.status_code == 200:  # a cursor still meaning something is fine; never a 500
            continue
        b = problem(r, 400, "invalid_query_parameter")
        assert pointers(b) == ["/query/cursor"]


def test_updated_since_inclusive(dv):
    made = []
    for i in range(5):
        made.append(created(dv, "us%d" % i))
        tick()
    u = made[2]["updatedAt"]
    assert made[1]["updatedAt"] < u < made[3]["updatedAt"]

    def ids(**params):
        return flat_ids(walk(dv, 500, **params))

    assert ids(updated_since=u) == ["us2", "us3", "us4"]
    assert ids(updated_since=u + 1) == ["us3", "us4"]
    assert made[1]["updatedAt"] < u - 1
    assert ids(updated_since=u - 1) == ["us2", "us3", "us4"]
    assert ids(updated_since=0) == ["us%d" % i for i in range(5)]
    assert ids(updated_since=made[4]["updatedAt"] + 1) == []
    assert ids(updated_since=9223372036854775807) == []
    # with paging: the filter is sent again with the cursor
    assert flat_ids(walk(dv, 1, updated_since=u)) == ["us2", "us3", "us4"]


def test_updated_device_moves_to_the_end_of_a_sync(dv):
    """A client syncing by cursor sees a device again, later, once it is written again; a
    device not yet seen is seen once, at its new place."""
    for i in range(7):
        created(dv, "m%d" % i)
        tick()
    first = page(dv, limit=2)
    assert [d["id"] for d in first["items"]] == ["m0", "m1"]
    tick()
    m0 = merge(dv, "m0", {"country": "PL"}).json()  # already seen
    tick()
    m3 = merge(dv, "m3", {"country": "DE"}).json()  # not yet seen
    seen = list(first["items"])
    cursor = first["next_cursor"]
    while cursor:
        body = page(dv, limit=2, cursor=cursor)
        seen += body["items"]
        cursor = body["next_cursor"]
    assert [d["id"] for d in seen] == ["m0", "m1", "m2", "m4", "m5", "m6", "m0", "m3"]
    assert seen[-2] == m0 and seen[-2]["country"] == "PL"
    assert seen[-1] == m3 and seen[-1]["country"] == "DE"
    assert seen[-2]["updatedAt"] > seen[0]["updatedAt"]
    # and a fresh walk holds each device once, in the new order
    assert flat_ids(walk(dv, 3)) == ["m1", "m2", "m4", "m5", "m6", "m0", "m3"]


def test_deleted_device_leaves_the_list(dv):
    for i in range(4):
        created(dv, "dl%d" % i)
    first = page(dv, limit=2)
    assert dv.delete(DV + "/dl3").status_code == 204
    rest = flat_ids(walk(dv, 2))
    assert "dl3" not in rest and len(rest) == 3
    second = page(dv, limit=2, cursor=first["next_cursor"])
    assert "dl3" not in [d["id"] for d in second["items"]]


def test_list_of_one_tenant_never_shows_another(server):
    a, b = dev_api(server), dev_api(server)
    for i in range(3):
        created(a, "own%d" % i, {"country": "PL"})
    for i in range(2):
        created(b, "own%d" % i, {"country": "DE"})  # the same ids, other devices
    created(b, "only-b")
    la = [d for p in walk(a, 2) for d in p]
    lb = [d for p in walk(b, 2) for d in p]
    assert [d["id"] for d in la] == ["own0", "own1", "own2"]
    assert all(d["country"] == "PL" for d in la)
    assert [d["id"] for d in lb] == ["own0", "own1", "only-b"]
    assert all(d["country"] in ("DE", None) for d in lb)
    # a cursor of one tenant's list does not show the other's devices
    cur = page(a, limit=1)["next_cursor"]
    r = b.get(DV, params={"cursor": cur})
    if r.status_code == 200:
        assert all(d["id"] in ("own0", "own1", "only-b") and d["country"] != "PL" for d in r.json()["items"])
    else:
        problem(r, 400)


# ================================================================== edges found once the server ran

def test_concurrent_patches_lose_no_change(server):
    """Merge patches of different fields at once, without If-Match: each is 200 (its field is
    kept) or 409 conflict (retry); a 200 is never lost to the other patch's write."""
    api = dev_api(server)
    fields = [("country", "PL"), ("language", "pol"), ("email", "a@example.com"), ("type", "tablet"),
              ("sessionCount", 5), ("deviceModel", "X1")]
    for k in range(5):
        dev_id = "lost-%d" % k
        created(api, dev_id)
        res = _race(len(fields), lambda i: (i, merge(Api(server, token=api.token), dev_id,
                                                     {fields[i][0]: fields[i][1]}).status_code))
        assert all(code in (200, 409) for _, code in res), res
        g = api.get(DV + "/" + dev_id)
        out = g.json()
        for i, code in res:
            if code == 200:
                assert out[fields[i][0]] == fields[i][1], (fields[i], res, out)
        assert g.headers["ETag"] == '"%d"' % (1 + sum(code == 200 for _, code in res)), (res, g.headers)


def test_concurrent_put_patch_delete_never_500(server):
    api = dev_api(server)
    for k in range(5):
        dev_id = "mix-%d" % k
        created(api, dev_id)
        ops = [lambda c: put(c, dev_id, {"country": "PL"}), lambda c: merge(c, dev_id, {"language": "pol"}),
               lambda c: c.delete(DV + "/" + dev_id), lambda c: put(c, dev_id, {"sessionCount": 1}),
               lambda c: merge(c, dev_id, {"tags": ["x"]}), lambda c: c.get(DV + "/" + dev_id)]
        res = _race(len(ops), lambda i: ops[i](Api(server, token=api.token)).status_code)
        assert all(code in (200, 201, 204, 404, 409) for code in res), res


def test_long_id_percent_encoded_whole(dv):
    """255 '@' sent as 765 characters of %40: the decoded id counts, not the raw path."""
    dev_id = "@" * 255
    r = dv.request("PUT", DV + "/" + "%40" * 255, json_body={"country": "PL"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == dev_id
    assert get(dv, "%40" * 255)["id"] == dev_id
    assert [d["id"] for d in page(dv)["items"]] == [dev_id]
    b = problem(dv.request("PUT", DV + "/" + "%40" * 256, json_body={}), 400, "invalid_path_parameter")
    assert pointers(b) == ["/path/id"]
    problem(dv.get(DV + "/" + "%40" * 256), 400)
    assert len(page(dv)["items"]) == 1


def test_head_device(dv):
    created(dv, "head")
    r = dv.request("HEAD", DV + "/head")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["ETag"] == '"1"'
    assert dv.request("HEAD", DV + "/nohead").status_code == 404


@pytest.mark.parametrize("text", ["[]", '"x"', "42", "null", "[{}]"])
def test_patch_body_not_an_object(dv, text):
    before = created(dv, "mpobj", FULL)
    r = dv.request("PATCH", DV + "/mpobj", data=text, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code in (400, 422), r.text
    problem(r, r.status_code)
    g = dv.get(DV + "/mpobj")
    assert g.json() == before and g.headers["ETag"] == '"1"'


def test_patch_id_null_or_same_keeps_the_id(dv):
    created(dv, "mpid")
    for patch in ({"id": "mpid"}, {"id": None}):
        r = merge(dv, "mpid", patch)
        assert r.status_code in (200, 422), (patch, r.text)
        assert get(dv, "mpid")["id"] == "mpid"


def test_unicode_round_trips(dv):
    body = {"customUserId": "użytkownik-😀", "deviceModel": "Ｇａｌａｘｙ", "tags": ["zażółć", "🚀"],
            "attributes": {"city": ["Kraków", "Łódź"]}}
    out = created(dv, "uni", body)
    for k, v in body.items():
        assert out[k] == v
    assert get(dv, "uni") == out


def test_json_content_type_with_charset(dv):
    r = dv.request("PUT", DV + "/cs", data='{"country": "PL"}',
                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text
    r = dv.request("PATCH", DV + "/cs", data='{"country": "DE"}',
                   headers={"Content-Type": "application/merge-patch+json; charset=utf-8"})
    assert r.status_code == 200, r.text


def test_put_body_over_the_limit_is_413(dv):
    big = {"attributes": {"k%d" % i: [s(1000)] for i in range(1100)}}
    problem(put(dv, "huge", big), 413, "body_too_large")
    gone(dv, "huge")


def test_numbers_in_attributes_round_trip(dv):
    """Attribute numbers come back as the same numbers, and a GET body can be PUT back; a real
    number beyond 64-bit integers is refused, since PostgreSQL writes it without an exponent
    (1e20 as 100000000000000000000), which no client reading 64-bit integers could send back."""
    vals = [9007199254740993, -9223372036854775808, 9223372036854775807, 0.1, -0.5, 1.5e-7, 9.2e18, -9.2e18]
    out = created(dv, "num", {"attributes": {"n": vals}})
    got = out["attributes"]["n"]
    assert got[:3] == vals[:3]  # integers exactly
    assert [float(v) for v in got[3:]] == vals[3:]
    g = dv.get(DV + "/num")
    r = put_raw(dv, "num", g.text)
    assert r.status_code == 200, r.text
    for big in (1e20, -1e20, 1e300, 9.3e18):
        r = dv.request("PUT", DV + "/num", {"attributes": {"n": [1, big]}})
        problem(r, 422, "validation_failed")
        assert pointers(r.json()) == ["/attributes/n/1"], r.text
    assert dv.get(DV + "/num").headers["ETag"] == '"2"'


def _cursor(raw):
    import base64
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_cursor_across_ids_with_colons_and_at(dv):
    """The cursor carries the id: ids holding ':' and '@' (and 255 characters) page correctly."""
    ids = ["a:b:c", "a:b", "1:2:3:4", "x@y:z", "@", ":", "z" * 254 + ":", ":" * 255, "d:1:e"]
    made = []
    for i in ids:
        made.append(created(dv, i))
    everything = page(dv, limit=500)["items"]
    assert everything == sorted(made, key=sort_key)
    for limit in (1, 2):
        assert [d for p in walk(dv, limit) for d in p] == everything


@pytest.mark.parametrize("raw", ["d:123:x' OR 1=1 --", "d:-5:a", "d:99999999999999999999:a", "d::a", "d:123:",
                                 "d:123", "d:abc:a", "d:1:" + "a" * 300, "s:123:a", "d:1:a/b", "d:1:\u0000",
                                 "d:1e3:a", "d: 1:a", "d:+1:a", "x"])
def test_forged_cursor_never_500(dv, raw):
    created(dv, "fc")
    r = dv.get(DV, params={"cursor": _cursor(raw)})
    if r.status_code == 200:
        return
    b = problem(r, 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/cursor"]


def test_updated_at_changes_on_every_write_even_within_a_millisecond(dv):
    """'changes on every write': back-to-back writes of one device never keep its updatedAt,
    or a client whose cursor is at that device would never see the later write."""
    stamps = [created(dv, "fast")["updatedAt"]]
    for i in range(30):
        r = merge(dv, "fast", {"sessionCount": i}) if i % 2 else put(dv, "fast", {"sessionCount": i})
        assert r.status_code == 200, r.text
        stamps.append(r.json()["updatedAt"])
    assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps


def test_sync_cursor_sees_a_write_made_in_the_same_millisecond(dv):
    """A client reads the page holding a device, the device is written at once again: the
    next page from that cursor holds the new version."""
    misses = 0
    for k in range(20):
        dev_id = "sync%02d" % k
        created(dv, dev_id)
        body = page(dv, limit=500)
        last = body["items"][-1]
        assert last["id"] == dev_id
        cursor = body["next_cursor"]
        w = put(dv, dev_id, {"sessionCount": k})
        assert w.status_code == 200
        if cursor is None:
            # the last page gives no cursor: resume from the last updatedAt seen, inclusive
            later = flat_ids(walk(dv, 500, updated_since=last["updatedAt"]))
        else:
            later = flat_ids(walk(dv, 500, cursor=cursor))
        if dev_id not in later:
            misses += 1
    assert misses == 0
