"""/v1/segments: seg_ ids and constraint groups over device fields."""
import json
import re
import uuid

import pytest

from segtest import Api, pointers, problem

V1 = "/v1/segments"

# Seed 003's constraint examples, verbatim.
SEED_PATCH_EXAMPLE = json.loads('''[
    {
        "type": "AND",
        "constraints": [
        { "field": "deviceManufacturer", "value": "Xiaomi", "relation": "==" },
        { "field": "deviceModel", "value": "Redmi Note XXXXX", "relation": "==" }
        ]
    },
    {
        "type": "AND",
        "constraints": [
        { "field": "osVersion", "value": "13", "relation": "EQUALS" }
        ]
    }
]''')
SEED_EXAMPLE_1 = json.loads('''[
    {
        "type": "AND",
        "constraints": [
        {
            "field": "firstSession",
            "value": 1771924492768,
            "relation": "<="
        }
        ]
    },
    {
        "type": "AND",
        "constraints": [
        {
            "field": "lastSession",
            "value": 1771924492782,
            "relation": ">="
        }
        ]
    }
]''')
SEED_EXAMPLE_2 = json.loads('''[
    {
        "type": "AND",
        "constraints": 
        [
            {
                "field": "deviceModel",
                "value": "Redmi Note XXXXX",
                "relation": "=="
            },
            {
                "field": "deviceModel",
                "value": "Galaxy S23",
                "relation": "=="
            }
        ]
    },
    {
        "type": "AND",
        "constraints": 
        [
            {
                "field": "deviceManufacturer",
                "value": "Xiaomi",
                "relation": "=="
            },
            {
                "field": "deviceManufacturer",
                "value": "Samsung",
                "relation": "=="
            },
            {
                "field": "type",
                "value": "phone",
                "relation": "=="
            }
        ]
    }
]''')

ID_RX = re.compile(r"^seg_[0-9A-Za-z]{13}$")


def group(*cs, type_="AND"):
    return {"type": type_, "constraints": [dict(field=f, relation=r, value=v) for f, r, v in cs]}


def create(api, constraints=None, **extra):
    body = {"name": "v1 seg", "constraints": constraints or [group(("country", "==", "PL"))]}
    body.update(extra)
    r = api.post(V1, body)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_and_get(api):
    r = api.post(V1, {"name": "Polish phones", "description": "d", "constraints": SEED_EXAMPLE_1})
    assert r.status_code == 201, r.text
    seg = r.json()
    assert list(seg)[0] == "id" and ID_RX.match(seg["id"])
    assert seg["name"] == "Polish phones" and seg["description"] == "d"
    assert seg["constraints"] == SEED_EXAMPLE_1
    assert isinstance(seg["createdAt"], int) and seg["createdAt"] == seg["updatedAt"]
    assert "warnings" not in seg
    assert r.headers["Location"] == V1 + "/" + seg["id"]
    got = api.get(V1 + "/" + seg["id"])
    assert got.status_code == 200 and got.json() == seg
    assert got.headers["ETag"] == r.headers["ETag"]


def test_ids_are_random_and_unique(api):
    ids = {create(api)["id"] for _ in range(20)}
    assert len(ids) == 20 and all(ID_RX.match(i) for i in ids)


def test_text_plain_returns_bare_id(api):
    r = api.post(V1, {"name": "x", "constraints": SEED_EXAMPLE_1}, headers={"Accept": "text/plain"})
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("text/plain")
    assert ID_RX.match(r.text)
    assert api.get(V1 + "/" + r.text).status_code == 200


def test_seed_patch_example_alias_normalised(api):
    seg = create(api, SEED_PATCH_EXAMPLE)
    assert seg["constraints"][1]["constraints"][0] == {"field": "osVersion", "relation": "==", "value": "13"}


def test_seed_second_example_warns_but_is_stored(api):
    r = api.post(V1, {"name": "never matches", "constraints": SEED_EXAMPLE_2})
    assert r.status_code == 201, r.text
    seg = r.json()
    w = seg["warnings"]
    assert {x["code"] for x in w} == {"unsatisfiable_group"}
    ps = sorted(x["source"]["pointer"] for x in w)
    assert ps == ["/constraints/0/constraints/1", "/constraints/1/constraints/1"]
    assert all(x["title"] and x["detail"] for x in w)
    assert "Galaxy S23" in [x for x in w if x["source"]["pointer"].startswith("/constraints/0")][0]["detail"]
    got = api.get(V1 + "/" + seg["id"]).json()
    assert "warnings" not in got and got["constraints"] == SEED_EXAMPLE_2


def test_duplicate_constraint_warns(api):
    c = ("sessionCount", ">", 3)
    seg = api.post(V1, {"name": "dup", "constraints": [group(c, c, type_="OR")]}).json()
    assert [(w["code"], w["source"]["pointer"]) for w in seg["warnings"]] == \
        [("duplicate_constraint", "/constraints/0/constraints/1")]


STRING_FIELDS = ["country", "language", "timezone", "appVersion", "osApi", "osVersion", "customUserId",
                 "email", "type", "id", "pushToken", "deviceModel", "deviceManufacturer"]
INT_FIELDS = ["appVersionCode", "sessionCount"]
LONG_FIELDS = ["firstSession", "lastSession", "createdAt", "unRegisteredAt"]
GOOD_STRING = {"country": "PL", "language": "pol", "timezone": "Europe/Warsaw", "appVersion": "1.3.54",
               "osApi": "35", "osVersion": "1.0.1", "email": "a@example.com", "type": "phone"}
RELATIONS = ["==", "!=", ">", ">=", "<", "<=", "exists", "starts_with", "ends_with", "contains"]
ALLOWED = {"string": {"==", "!=", "starts_with", "ends_with", "contains", "exists"},
           "int": {"==", "!=", ">", ">=", "<", "<="}, "long": {"==", "!=", ">", ">=", "<", "<="},
           "tags": {"==", "!=", "contains", "exists"}}  # issue #22: == / != are has / lacks the tag


def cells():
    for f in STRING_FIELDS + INT_FIELDS + LONG_FIELDS + ["tags"]:
        kind = "string" if f in STRING_FIELDS else "int" if f in INT_FIELDS else "long" if f in LONG_FIELDS else "tags"
        for rel in RELATIONS:
            yield f, kind, rel


def value_for(field, kind, rel):
    if rel == "exists":
        return True
    if kind == "string":
        return GOOD_STRING.get(field, "abc")
    if kind == "tags":
        return "vip"
    return 5


@pytest.mark.parametrize("field,kind,rel", list(cells()))
def test_relation_by_field_type(api, field, kind, rel):
    r = api.post(V1, {"name": "cell", "constraints": [group((field, rel, value_for(field, kind, rel)))]})
    if rel in ALLOWED[kind]:
        assert r.status_code == 201, r.text
    else:
        b = problem(r, 422, "validation_failed")
        assert pointers(b) == ["/constraints/0/constraints/0/relation"]


@pytest.mark.parametrize("field,rel,value,ok", [
    ("sessionCount", "==", 2147483647, True), ("sessionCount", "==", 2147483648, False),
    ("sessionCount", "==", -2147483648, True), ("appVersionCode", ">", 5.0, False),
    ("appVersionCode", ">", "5", False), ("firstSession", ">=", 9223372036854775807, True),
    ("firstSession", ">=", -1, False), ("lastSession", "<", 1771924492768, True),
    ("country", "==", 5, False), ("country", "exists", "yes", False), ("country", "exists", False, True),
    ("tags", "contains", 1, False), ("deviceModel", "==", "", False),
])
def test_value_types(api, field, rel, value, ok):
    r = api.post(V1, {"name": "v", "constraints": [group((field, rel, value))]})
    if ok:
        assert r.status_code == 201, r.text
    else:
        assert pointers(problem(r, 422)) == ["/constraints/0/constraints/0/value"]


@pytest.mark.parametrize("field,value,ok", [
    ("country", "US", True), ("country", "UK", True), ("country", "XX", False), ("country", "pl", False),
    ("country", "POL", False), ("language", "eng", True), ("language", "en", False), ("language", "xyz", False),
    ("timezone", "Europe/Warsaw", True), ("timezone", "UTC", True), ("timezone", "Europe/Nowhere", False),
    ("timezone", "europe/warsaw", False), ("type", "tablet", True), ("type", "laptop", False),
    ("email", "a.b@example.co.uk", True), ("email", "nope", False), ("email", "a@b", False),
    ("email", "a b@example.com", False), ("appVersion", "1.3.54", True), ("appVersion", "1.x", False),
    ("osVersion", "13", True), ("osVersion", "v13", False), ("osApi", "35", True),
])
def test_formats_for_equality(api, field, value, ok):
    for rel in ("==", "!="):
        r = api.post(V1, {"name": "f", "constraints": [group((field, rel, value))]})
        if ok:
            assert r.status_code == 201, r.text
        else:
            b = problem(r, 422)
            assert pointers(b) == ["/constraints/0/constraints/0/value"], b
    # formats apply to == and != only
    if field not in ("type",):
        r = api.post(V1, {"name": "f", "constraints": [group((field, "starts_with", value))]})
        if isinstance(value, str) and value.strip() == value and value:
            assert r.status_code == 201, r.text


@pytest.mark.parametrize("alias,canonical", [
    ("EQUALS", "=="), ("equals", "=="), ("NOT_EQUALS", "!="), ("GREATER_THAN", ">"),
    ("greater_than_or_equals", ">="), ("LESS_THAN", "<"), ("Less_Than_Or_Equals", "<="),
])
def test_numeric_aliases(api, alias, canonical):
    seg = create(api, [group(("sessionCount", alias, 3))])
    assert seg["constraints"][0]["constraints"][0]["relation"] == canonical


@pytest.mark.parametrize("alias,canonical", [
    ("STARTS_WITH", "starts_with"), ("ENDS_WITH", "ends_with"), ("CONTAINS", "contains"),
    ("EXISTS", "exists"),
])
def test_string_aliases(api, alias, canonical):
    value = True if canonical == "exists" else "x"
    seg = create(api, [group(("deviceModel", alias, value))])
    assert seg["constraints"][0]["constraints"][0]["relation"] == canonical


def test_group_type_case_insensitive(api):
    seg = create(api, [group(("country", "==", "PL"), type_="or")])
    assert seg["constraints"][0]["type"] == "OR"


def test_limits_10_and_11(api):
    ten = [("sessionCount", ">", i) for i in range(10)]
    assert api.post(V1, {"name": "l", "constraints": [group(*ten)]}).status_code == 201
    b = problem(api.post(V1, {"name": "l", "constraints": [group(*(ten + [("sessionCount", ">", 99)]))]}), 422)
    assert pointers(b) == ["/constraints/0/constraints"]
    groups = [group(("country", "==", "PL"))] * 10
    assert api.post(V1, {"name": "l", "constraints": groups}).status_code == 201
    b = problem(api.post(V1, {"name": "l", "constraints": groups + [group(("country", "==", "DE"))]}), 422)
    assert pointers(b) == ["/constraints"]
    b = problem(api.post(V1, {"name": "l", "constraints": []}), 422)
    assert pointers(b) == ["/constraints"]
    b = problem(api.post(V1, {"name": "l", "constraints": [{"type": "AND", "constraints": []}]}), 422)
    assert pointers(b) == ["/constraints/0/constraints"]


def test_every_problem_at_once_with_pointers(api):
    body = {"name": "", "colour": 1, "constraints": [
        {"type": "XOR", "constraints": [{"field": "nope", "relation": "==", "value": 1}]},
        {"type": "AND", "constraints": [
            {"field": "sessionCount", "relation": "starts_with", "value": 1},
            {"field": "country", "relation": "==", "value": "Poland"},
            {"field": "country", "relation": "=="},
            {"field": "country", "relation": "==", "value": "PL", "extra": 1}]}]}
    b = problem(api.post(V1, body), 422)
    ps = pointers(b)
    for p in ["/name", "/colour", "/constraints/0/type", "/constraints/0/constraints/0/field",
              "/constraints/1/constraints/0/relation", "/constraints/1/constraints/1/value",
              "/constraints/1/constraints/2/value", "/constraints/1/constraints/3/extra"]:
        assert p in ps, (p, ps)
    rel = [e for e in b["errors"] if e["pointer"] == "/constraints/1/constraints/0/relation"][0]
    assert ">=" in rel["detail"]  # says what would be valid


def test_required_on_create(api):
    assert pointers(problem(api.post(V1, {}), 422)) == ["/constraints", "/name"]


def test_partial_patch(api):
    seg = create(api, description="keep")
    r = api.patch(V1, {"id": seg["id"], "name": "renamed"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["name"] == "renamed" and out["description"] == "keep"
    assert out["constraints"] == seg["constraints"] and out["createdAt"] == seg["createdAt"]
    assert out["updatedAt"] >= seg["updatedAt"]
    out = api.patch(V1, {"id": seg["id"], "constraints": SEED_EXAMPLE_2, "name": None}).json()
    assert out["name"] == "renamed" and out["constraints"] == SEED_EXAMPLE_2
    assert out["warnings"]
    out = api.patch(V1, {"id": seg["id"], "description": "new"}).json()
    assert out["description"] == "new" and out["constraints"] == SEED_EXAMPLE_2


def test_patch_validation(api):
    assert pointers(problem(api.patch(V1, {"name": "x"}), 422)) == ["/id"]
    assert pointers(problem(api.patch(V1, {"id": "seg_short"}), 422)) == ["/id"]
    problem(api.patch(V1, {"id": "seg_AAAAAAAAAAAAA", "name": "x"}), 404)


def test_etag_if_match(api):
    seg = create(api)
    etag = api.get(V1 + "/" + seg["id"]).headers["ETag"]
    assert api.patch(V1, {"id": seg["id"], "name": "a"}, headers={"If-Match": etag}).status_code == 200
    problem(api.patch(V1, {"id": seg["id"], "name": "b"}, headers={"If-Match": etag}), 412)
    problem(api.delete(V1 + "/" + seg["id"], headers={"If-Match": etag}), 412)
    assert api.delete(V1 + "/" + seg["id"]).status_code == 204


def test_delete_and_404(api):
    seg = create(api)
    assert api.delete(V1 + "/" + seg["id"]).status_code == 204
    problem(api.get(V1 + "/" + seg["id"]), 404)
    problem(api.delete(V1 + "/" + seg["id"]), 404)
    problem(api.get(V1 + "/seg_bad"), 400, "invalid_path_parameter")
    problem(api.get(V1 + "/seg_AAAAAAAAAAAA%00"), 400)


def test_list_and_name_filter(server):
    api = Api(server, tenant="v1-list-" + uuid.uuid4().hex[:8])
    made = [create(api, name=f"Item {i}")["id"] for i in range(5)]
    create(api, name="Other")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "name": "item"}
        if cursor:
            params["cursor"] = cursor
        page = api.get(V1, params=params).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    problem(api.get(V1, params={"owner_id": "x"}), 400)


def test_tenant_isolation_every_route(api, api2):
    seg = create(api)
    path = V1 + "/" + seg["id"]
    problem(api2.get(path), 404)
    problem(api2.delete(path), 404)
    problem(api2.patch(V1, {"id": seg["id"], "name": "stolen"}), 404)
    assert seg["id"] not in [s["id"] for s in api2.get(V1, params={"limit": 500}).json()["items"]]
    assert api.get(path).json() == seg
