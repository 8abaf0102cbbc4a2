"""/audiences/segments: uuid ids, management_type, owner_id and attribute properties."""
import json
import threading
import time
import uuid

import pytest

from segtest import Api, make_token, new_uuid, pointers, problem, psql

SEG = "/audiences/segments"
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# Seed 001's request body, verbatim.
SEED_001_CREATE = json.loads('''
{
  "management_type": "selfmanaged",
  "name": "<string>",
  "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
  "approximated_size": 123,
  "created_at": "2023-11-07T05:31:56Z",
  "deprecated_properties": {},
  "description": "<string>",
  "properties": {},
  "updated_at": "2023-11-07T05:31:56Z"
}''')

# Seed 000's request body, verbatim (its id is replaced by a stored one).
SEED_000_UPDATE = json.loads('''{
  "approximated_size": 123,
  "created_at": "2023-11-07T05:31:56Z",
  "deprecated_properties": {},
  "description": "<string>",
  "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
  "management_type": "selfmanaged",
  "name": "<string>",
  "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
  "properties": {},
  "updated_at": "2023-11-07T05:31:56Z"
}''')

SEED_KEYS = {"id", "management_type", "name", "no", "owner_id", "approximated_size", "created_at",
             "deprecated_properties", "description", "properties", "updated_at",
             # the lifecycle (issue #20)
             "start_date", "end_date", "active", "extend", "extend_days", "status",
             # the last computed size (issue #22)
             "size"}


def minimal(**extra):
    b = {"management_type": "selfmanaged", "name": "seg " + uuid.uuid4().hex[:8], "owner_id": OWNER}
    b.update(extra)
    return b


def create(api, **extra):
    r = api.post(SEG, minimal(**extra))
    assert r.status_code == 201, r.text
    return r.json()


def parse_ts(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# ------------------------------------------------------------------ create

def test_seed_001_create_verbatim(api):
    r = api.post(SEG, SEED_001_CREATE)
    assert r.status_code == 201, r.text
    seg = r.json()
    assert set(seg) == SEED_KEYS
    uuid.UUID(seg["id"])
    assert seg["management_type"] == "selfmanaged" and seg["name"] == "<string>"
    assert seg["owner_id"] == OWNER and seg["approximated_size"] == 123
    assert seg["description"] == "<string>" and seg["properties"] == {} and seg["deprecated_properties"] == {}
    assert isinstance(seg["no"], int)
    # created_at is kept (imports keep their history); updated_at is the server's
    assert parse_ts(seg["created_at"]) == parse_ts("2023-11-07T05:31:56Z")
    assert parse_ts(seg["updated_at"]).year >= 2025
    assert r.headers["Location"] == SEG + "/" + seg["id"]
    assert r.headers["ETag"].startswith('"')
    got = api.get(r.headers["Location"])
    assert got.status_code == 200 and got.json() == seg
    assert got.headers["ETag"] == r.headers["ETag"]


def test_create_minimal_defaults(api):
    seg = create(api)
    assert seg["approximated_size"] is None and seg["description"] is None
    assert seg["properties"] == {} and seg["deprecated_properties"] == {}
    assert seg["created_at"] == seg["updated_at"]


def test_no_increases(api):
    a, b = create(api), create(api)
    assert b["no"] > a["no"]


def test_create_ignores_read_only_id_and_no(api):
    seg = create(api, id=OWNER, no=5)
    assert seg["id"] != OWNER


def test_properties_stored(api):
    props = {"interest": ["sports", "music"], "age.bucket": [18, 25], "geo:country": ["PL"]}
    seg = create(api, properties=props, deprecated_properties={"old": {"nested": [1, {"x": None}]}})
    assert seg["properties"] == props
    assert seg["deprecated_properties"] == {"old": {"nested": [1, {"x": None}]}}


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("field,value,needle", [
    ("management_type", "managed", "selfmanaged or systemmanaged"),
    ("management_type", 1, "expected a string"),
    ("management_type", None, "must not be null"),
    ("name", "", "1 to 255"),
    ("name", "   ", "blank"),
    ("name", "x" * 256, "1 to 255"),
    ("name", 5, "expected a string"),
    ("owner_id", "3c90c3cc-0d44-4b50-8888-8dd25736052", "36 characters"),
    ("owner_id", "3c90c3cc-0d44-4b50-8888-8dd25736052ag", "36 characters"),
    ("owner_id", "3c90c3cc_0d44-4b50-8888-8dd25736052a", "'-'"),
    ("owner_id", "3c90c3cc-0d44-4b50-8888-8dd25736052z", "hexadecimal"),
    ("owner_id", 12, "uuid"),
    ("approximated_size", -1, "negative"),
    ("approximated_size", 1.5, "integer"),
    ("approximated_size", "12", "integer"),
    ("description", "d" * 4097, "4096"),
    ("description", 7, "string or null"),
    ("properties", [], "object"),
    ("properties", {"": ["x"]}, "attribute code"),
    ("properties", {"bad code!": ["x"]}, "attribute code"),
    ("properties", {"c" * 129: ["x"]}, "attribute code"),
    ("properties", {"code": "x"}, "list"),
    ("properties", {"code": []}, "1 to 1000"),
    ("properties", {"code": ["x"] * 1001}, "1 to 1000"),
    ("properties", {"code": [True]}, "string or a number"),
    ("properties", {"code": [{"a": 1}]}, "string or a number"),
    ("deprecated_properties", "x", "object"),
    ("created_at", "2023-13-07T05:31:56Z", "RFC 3339"),
    ("created_at", "2023-11-07 05:31:56", "RFC 3339"),
    ("created_at", "yesterday", "RFC 3339"),
])
def test_each_rule_alone(api, field, value, needle):
    before = psql("SELECT count(*) FROM audience_segments")[0][0]
    r = api.post(SEG, minimal(**{field: value}))
    b = problem(r, 422, "validation_failed")
    assert len(b["errors"]) >= 1
    assert all(e["pointer"].startswith("/" + field) for e in b["errors"]), b
    assert any(needle in e["detail"] for e in b["errors"]), b
    assert psql("SELECT count(*) FROM audience_segments")[0][0] == before


def test_duplicate_property_value_points_at_item(api):
    b = problem(api.post(SEG, minimal(properties={"code": ["a", "b", "a"]})), 422)
    assert pointers(b) == ["/properties/code/2"]


def test_property_numbers_and_strings_differ(api):
    seg = create(api, properties={"n": [1, "1"]})
    assert seg["properties"] == {"n": [1, "1"]}


def test_every_problem_at_once(api):
    r = api.post(SEG, {"management_type": "x", "name": "", "owner_id": "nope", "approximated_size": -3,
                       "description": 1, "properties": {"ok": [], "bad!": ["x"]}, "extra": 1,
                       "created_at": "never"})
    b = problem(r, 422, "validation_failed")
    ps = pointers(b)
    for p in ["/management_type", "/name", "/owner_id", "/approximated_size", "/description",
              "/properties/ok", "/properties/bad!", "/extra", "/created_at"]:
        assert p in ps, (p, ps)


def test_required_fields_missing(api):
    b = problem(api.post(SEG, {}), 422)
    assert pointers(b) == ["/management_type", "/name", "/owner_id"]


def test_unknown_top_level_field_refused(api):
    b = problem(api.post(SEG, minimal(nmae="typo")), 422)
    assert pointers(b) == ["/nmae"]
    assert "unknown field" in b["errors"][0]["detail"]


def test_pointer_escaping(api):
    b = problem(api.post(SEG, minimal(properties={"a/b~c": ["x"]})), 422)
    assert pointers(b) == ["/properties/a~1b~0c"]


def test_name_counts_characters_not_bytes(api):
    seg = create(api, name="é" * 255)
    assert seg["name"] == "é" * 255
    problem(api.post(SEG, minimal(name="é" * 256)), 422)


def test_size_int64_bounds(api):
    assert create(api, approximated_size=9223372036854775807)["approximated_size"] == 9223372036854775807
    r = api.request("POST", SEG, data='{"management_type":"selfmanaged","name":"x","owner_id":"%s",'
                    '"approximated_size":9223372036854775808}' % OWNER,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_deep_nesting_refused(api):
    deep = {}
    cur = deep
    for _ in range(40):
        cur["a"] = {}
        cur = cur["a"]
    b = problem(api.post(SEG, minimal(deprecated_properties=deep)), 422)
    assert pointers(b) == ["/deprecated_properties"]


def test_upper_case_uuid_accepted_and_canonicalised(api):
    seg = create(api, owner_id=OWNER.upper())
    assert seg["owner_id"] == OWNER
    assert api.get(SEG + "/" + seg["id"].upper()).status_code == 200


def test_sql_metacharacters_stored_verbatim(api):
    name = "x'; DROP TABLE audience_segments; --"
    seg = create(api, name=name, description="%_\\' \" $1", properties={"k": ["' OR 1=1 --"]})
    got = api.get(SEG + "/" + seg["id"]).json()
    assert got["name"] == name and got["description"] == "%_\\' \" $1"
    r = api.get(SEG, params={"name": "%"})
    assert r.status_code == 200
    assert all("%" in s["name"] for s in r.json()["items"])


# ------------------------------------------------------------------ get / delete

def test_get_unknown_404(api):
    problem(api.get(SEG + "/" + new_uuid()), 404, "not_found")


def test_delete(api):
    seg = create(api)
    r = api.delete(SEG + "/" + seg["id"])
    assert r.status_code == 204 and r.content == b""
    problem(api.get(SEG + "/" + seg["id"]), 404)
    problem(api.delete(SEG + "/" + seg["id"]), 404)


# ------------------------------------------------------------------ PATCH /audiences/segments (the body names the id)

def test_seed_000_update_verbatim(api):
    seg = create(api, description="before", approximated_size=5, properties={"a": ["b"]})
    body = dict(SEED_000_UPDATE, id=seg["id"])
    r = api.patch(SEG, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == SEED_KEYS
    assert out["id"] == seg["id"] and out["no"] == seg["no"]
    assert out["name"] == "<string>" and out["description"] == "<string>"
    assert out["approximated_size"] == 123 and out["properties"] == {}
    # created_at is the stored one: ignored on PATCH
    assert out["created_at"] == seg["created_at"]
    assert parse_ts(out["updated_at"]) >= parse_ts(seg["updated_at"])
    assert r.headers["ETag"] != '"1"'


def test_patch_absent_fields_stay_and_null_clears(api):
    seg = create(api, description="keep me", approximated_size=9, properties={"a": ["b"]})
    r = api.patch(SEG, {"id": seg["id"], "management_type": "systemmanaged", "name": "renamed",
                        "owner_id": OWNER, "approximated_size": None})
    out = r.json()
    assert out["management_type"] == "systemmanaged" and out["name"] == "renamed"
    assert out["description"] == "keep me" and out["properties"] == {"a": ["b"]}
    assert out["approximated_size"] is None
    out = api.patch(SEG, {"id": seg["id"], "management_type": "systemmanaged", "name": "renamed",
                          "owner_id": OWNER, "description": None}).json()
    assert out["description"] is None


def test_patch_requires_seed_fields(api):
    b = problem(api.patch(SEG, {"name": "x"}), 422)
    assert pointers(b) == ["/id", "/management_type", "/owner_id"]


def test_patch_unknown_id_404(api):
    problem(api.patch(SEG, dict(minimal(), id=new_uuid())), 404)


def test_get_patch_round_trip(api):
    seg = create(api, properties={"x": ["1"]}, description="d", approximated_size=3)
    fetched = api.get(SEG + "/" + seg["id"]).json()
    r = api.patch(SEG, fetched)
    assert r.status_code == 200
    out = r.json()
    for k in SEED_KEYS - {"updated_at"}:
        assert out[k] == fetched[k], k


# ------------------------------------------------------------------ merge patch

def merge(api, seg_id, patch, **kw):
    return api.request("PATCH", SEG + "/" + seg_id, data=json.dumps(patch),
                       headers=dict({"Content-Type": "application/merge-patch+json"}, **kw.pop("headers", {})), **kw)


def test_merge_patch(api):
    seg = create(api, description="d", properties={"a": ["1"], "b": ["2"]})
    r = merge(api, seg["id"], {"name": "merged", "description": None, "properties": {"a": None, "c": ["3"]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["name"] == "merged" and out["description"] is None
    assert out["properties"] == {"b": ["2"], "c": ["3"]}
    assert out["owner_id"] == OWNER and out["created_at"] == seg["created_at"]


def test_merge_patch_validates_result(api):
    seg = create(api)
    b = problem(merge(api, seg["id"], {"name": None}), 422)
    assert pointers(b) == ["/name"]
    b = problem(merge(api, seg["id"], {"management_type": "nope", "colour": "red"}), 422)
    assert pointers(b) == ["/colour", "/management_type"]
    b = problem(merge(api, seg["id"], {"id": new_uuid()}), 422)
    assert pointers(b) == ["/id"]
    assert api.get(SEG + "/" + seg["id"]).json() == seg


def test_merge_patch_accepts_application_json(api):
    seg = create(api)
    r = api.patch(SEG + "/" + seg["id"], {"approximated_size": 77})
    assert r.status_code == 200 and r.json()["approximated_size"] == 77


def test_merge_patch_unknown_404(api):
    problem(merge(api, new_uuid(), {"name": "x"}), 404)


def test_merge_patch_empty_is_ok(api):
    seg = create(api)
    r = merge(api, seg["id"], {})
    assert r.status_code == 200


# ------------------------------------------------------------------ If-Match

def test_if_match_on_patch_and_delete(api):
    seg = create(api)
    etag = api.get(SEG + "/" + seg["id"]).headers["ETag"]
    r1 = merge(api, seg["id"], {"name": "first"}, headers={"If-Match": etag})
    assert r1.status_code == 200
    r2 = merge(api, seg["id"], {"name": "second"}, headers={"If-Match": etag})
    problem(r2, 412, "precondition_failed")
    assert api.get(SEG + "/" + seg["id"]).json()["name"] == "first"
    body = dict(minimal(), id=seg["id"])
    problem(api.patch(SEG, body, headers={"If-Match": etag}), 412)
    problem(api.delete(SEG + "/" + seg["id"], headers={"If-Match": etag}), 412)
    new = r1.headers["ETag"]
    assert api.patch(SEG, body, headers={"If-Match": new}).status_code == 200
    latest = api.get(SEG + "/" + seg["id"]).headers["ETag"]
    assert api.delete(SEG + "/" + seg["id"], headers={"If-Match": latest}).status_code == 204


def test_if_match_star_and_malformed(api):
    seg = create(api)
    assert merge(api, seg["id"], {"name": "s"}, headers={"If-Match": "*"}).status_code == 200
    problem(merge(api, seg["id"], {"name": "s"}, headers={"If-Match": "garbage"}), 400, "invalid_if_match")
    problem(merge(api, seg["id"], {"name": "s"}, headers={"If-Match": 'W/"2"'}), 412)


def test_if_match_race_between_two_editors(api):
    """Two clients PATCH with the same ETag at once: exactly one wins, the other gets 412."""
    for _ in range(5):
        seg = create(api)
        etag = api.get(SEG + "/" + seg["id"]).headers["ETag"]
        results = []
        barrier = threading.Barrier(2)

        def edit(name):
            a = Api(api.server, token=api.token)
            barrier.wait()
            results.append(merge(a, seg["id"], {"name": name}, headers={"If-Match": etag}).status_code)

        ts = [threading.Thread(target=edit, args=(n,)) for n in ("alice", "bob")]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(results) == [200, 412], results


# ------------------------------------------------------------------ list

def test_list_newest_first_and_paginates(api2):
    owner = new_uuid()
    made = [create(api2, owner_id=owner)["id"] for _ in range(7)]
    seen, cursor = [], None
    while True:
        params = {"owner_id": owner, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api2.get(SEG, params=params).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))


def test_list_no_row_twice_none_skipped_while_inserting(api2):
    owner = new_uuid()
    existing = [create(api2, owner_id=owner)["id"] for _ in range(12)]
    seen, cursor = [], None
    while True:
        params = {"owner_id": owner, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = api2.get(SEG, params=params).json()
        seen += [s["id"] for s in page["items"]]
        create(api2, owner_id=owner)  # another client inserts meanwhile
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert set(existing) <= set(seen)


def test_list_filters(api):
    owner = new_uuid()
    a = create(api, owner_id=owner, name="Alpha Sports", properties={"interest": ["sports"], "age": [30]})
    b = create(api, owner_id=owner, name="beta music", management_type="systemmanaged",
               properties={"interest": ["music"]})

    def ids(**params):
        params.setdefault("owner_id", owner)
        r = api.get(SEG, params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert ids() == [b["id"], a["id"]]
    assert ids(management_type="systemmanaged") == [b["id"]]
    assert ids(name="SPORT") == [a["id"]]
    assert ids(property="interest:sports") == [a["id"]]
    assert ids(property="interest:music") == [b["id"]]
    assert ids(property="age:30") == [a["id"]]
    assert ids(property="interest:none") == []
    assert ids(updated_since=b["updated_at"]) == [b["id"]]
    assert ids(updated_since="2999-01-01T00:00:00Z") == []


@pytest.mark.parametrize("params,name", [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"),
    ({"cursor": "bogus"}, "cursor"), ({"owner_id": "nope"}, "owner_id"),
    ({"management_type": "x"}, "management_type"), ({"property": "nocolon"}, "property"),
    ({"updated_since": "today"}, "updated_since"), ({"colour": "red"}, "colour"),
    ({"name": ""}, "name"),
])
def test_list_bad_query_400(api, params, name):
    b = problem(api.get(SEG, params=params), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/" + name]


def test_list_limit_bounds(api):
    assert api.get(SEG, params={"limit": 500}).status_code == 200
    assert api.get(SEG, params={"limit": 1}).status_code == 200


def test_cursor_of_other_dialect_refused(api):
    for _ in range(2):
        api.post("/v1/segments", {"name": "x", "constraints": [
            {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]})
    page = api.get("/v1/segments", params={"limit": 1}).json()
    assert page["next_cursor"]
    problem(api.get(SEG, params={"cursor": page["next_cursor"]}), 400)


# ------------------------------------------------------------------ tenants

def test_tenant_isolation_every_route(api, api2):
    seg = create(api)
    path = SEG + "/" + seg["id"]
    problem(api2.get(path), 404)
    problem(api2.delete(path), 404)
    problem(merge(api2, seg["id"], {"name": "stolen"}), 404)
    problem(api2.patch(SEG, dict(minimal(), id=seg["id"])), 404)
    assert seg["id"] not in [s["id"] for s in api2.get(SEG, params={"limit": 500}).json()["items"]]
    assert api.get(path).json() == seg


# ------------------------------------------------------------------ edge cases found in review

def test_if_match_list_any_current_tag_matches(api):
    seg = create(api)
    etag = api.get(SEG + "/" + seg["id"]).headers["ETag"]
    r = merge(api, seg["id"], {"name": "listed"}, headers={"If-Match": '"999", ' + etag})
    assert r.status_code == 200, r.text
    body = dict(minimal(), id=seg["id"])
    assert api.patch(SEG, body, headers={"If-Match": '"998", ' + r.headers["ETag"] + ', "997"'}).status_code == 200
    problem(api.patch(SEG, body, headers={"If-Match": '"998", "997"'}), 412)
    problem(api.patch(SEG, body, headers={"If-Match": '"1" junk'}), 400, "invalid_if_match")


def test_property_code_with_colon(api):
    owner = new_uuid()
    a = create(api, owner_id=owner, properties={"geo:country": ["PL"], "geo": ["x:y"]})
    r = api.get(SEG, params={"owner_id": owner, "property_code": "geo:country", "property_value": "PL"})
    assert [s["id"] for s in r.json()["items"]] == [a["id"]]
    r = api.get(SEG, params={"owner_id": owner, "property": "geo:x:y"})
    assert [s["id"] for s in r.json()["items"]] == [a["id"]]
    problem(api.get(SEG, params={"property_code": "geo"}), 400)
    problem(api.get(SEG, params={"property": "a:b", "property_code": "geo", "property_value": "x"}), 400)


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "0000-01-01T00:00:00Z"])
def test_created_at_outside_years_1_to_9999_refused(api, ts):
    assert pointers(problem(api.post(SEG, minimal(created_at=ts)), 422)) == ["/created_at"]
    problem(api.get(SEG, params={"updated_since": ts}), 400)


def test_numerically_equal_property_values_are_duplicates(api):
    b = problem(api.request("POST", SEG, data=json.dumps(minimal())[:-1] + ', "properties": {"n": [1, 1.0]}}',
                            headers={"Content-Type": "application/json"}), 422)
    assert pointers(b) == ["/properties/n/1"]


def test_forged_cursor_past_bigint_is_400(api):
    import base64
    cur = base64.urlsafe_b64encode(b"a:9999999999999999999").decode().rstrip("=")
    problem(api.get(SEG, params={"cursor": cur}), 400, "invalid_query_parameter")


def test_non_utf8_path_id_still_explained(api):
    b = problem(api.get("/v1/segments/%FF%FE"), 400, "invalid_path_parameter")
    assert b["detail"] and b["errors"]
    b = problem(api.get(SEG + "/%FF"), 400)
    assert b["detail"]
