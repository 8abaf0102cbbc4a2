"""List items are the bytes GET by id answers: a page is compared whole, as text, with
the single representations of its rows joined (both dialects; strings JSON must escape,
non-ASCII text, null fields, timestamps BC, before 1970, after 9999 and infinite)."""
import uuid

from segtest import Api, psql

SEG = "/audiences/segments"
V1 = "/v1/segments"
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# every control character, the two JSON must escape, DEL, non-ASCII, a 4-byte character
HOSTILE = ["".join(map(chr, range(1, 32))), 'quote " and back\\slash', "\x7f del", "zażółć 日本 😀",
           "</script>\u2028\u2029", "%s %d {} []"]


def assert_items_are_gets(api, path, limit=500):
    """The page's bytes are {"items":[GET bodies joined by ","],"next_cursor":null}.
    Not checked against openapi.yaml: the timestamps written in place are outside it."""
    page = api.get(path, params={"limit": limit}, check=False)
    assert page.status_code == 200, page.text
    ids = [s["id"] for s in page.json()["items"]]
    bodies = []
    for i in ids:
        r = api.get(path + "/" + i, check=False)
        assert r.status_code == 200, r.text
        bodies.append(r.content)
    exp = b'{"items":[' + b",".join(bodies) + b'],"next_cursor":null}'
    k = next((j for j in range(min(len(exp), len(page.content))) if exp[j] != page.content[j]), None)
    assert page.content == exp, (page.content[k - 40:k + 40] if k else None, exp[k - 40:k + 40] if k else None)
    return ids


def stamp_in_turn(api, path, table, made, stamps):
    """Writes each timestamp into a created_at or updated_at in place (no request can set
    these), comparing the list with GET by id after each."""
    for k, ts in enumerate(stamps):
        col = "created_at" if k % 2 == 0 else "updated_at"
        psql("UPDATE %s SET %s = %%s::timestamptz WHERE id::text = %%s" % (table, col), ts, made[k % len(made)])
        assert_items_are_gets(api, path)
    assert sorted(assert_items_are_gets(api, path)) == sorted(made)


def test_audience_list_items_are_get_bodies(server):
    api = Api(server, tenant="list-items-" + uuid.uuid4().hex[:8])
    made = []
    for k, text in enumerate(HOSTILE):
        body = {"management_type": "selfmanaged", "name": text[:255], "owner_id": OWNER,
                "description": text, "approximated_size": k * 1000,
                # 9.2e18: the largest real magnitude kept (jsonb writes it as 19 digits)
                "properties": {"code.%d" % k: [text, 1.5, -0.0, 9.2e18, 1234567890123456789]},
                "deprecated_properties": {"a": text}}
        r = api.post(SEG, body)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    r = api.post(SEG, {"management_type": "systemmanaged", "name": "nulls", "owner_id": OWNER,
                       "created_at": "2023-11-07T05:31:56Z"})
    assert r.status_code == 201, r.text
    made.append(r.json()["id"])
    stamps = ["0001-01-01 00:00:00+00 BC", "4713-11-24 00:00:00+00 BC", "0001-12-31 23:59:59.999999+00",
              "1969-12-31 23:59:59.999999+00", "1900-02-28 12:00:00.5+00", "2000-02-29 00:00:00+00",
              "9999-12-31 23:59:59.999999+00", "10000-01-01 00:00:00+00", "294276-12-31 23:59:59.999999+00",
              "infinity", "-infinity", "1970-01-01 00:00:00+00"]
    stamp_in_turn(api, SEG, "audience_segments", made, stamps)


def test_audience_list_pages_are_get_bodies(server):
    api = Api(server, tenant="list-pages-" + uuid.uuid4().hex[:8])
    for k in range(5):
        r = api.post(SEG, {"management_type": "selfmanaged", "name": "p%d" % k, "owner_id": OWNER})
        assert r.status_code == 201, r.text
    cursor, seen = None, []
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = api.get(SEG, params=params)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        bodies = [api.get(SEG + "/" + s["id"]).content for s in items]
        cursor = r.json()["next_cursor"]
        tail = b'"' + cursor.encode() + b'"' if cursor else b"null"
        assert r.content == b'{"items":[' + b",".join(bodies) + b'],"next_cursor":' + tail + b"}"
        seen += items
        if not cursor:
            break
    assert len(seen) == 5


def test_v1_list_items_are_get_bodies(server):
    api = Api(server, tenant="list-items-v1-" + uuid.uuid4().hex[:8])
    made = []
    for text in HOSTILE:
        r = api.post(V1, {"name": text[:255], "description": text, "constraints": [
            {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]})
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    stamps = ["1969-12-31 23:59:59.9995+00", "1969-12-31 23:59:59.999999+00", "0001-01-01 00:00:00+00 BC",
              "1970-01-01 00:00:00.0009+00", "9999-12-31 23:59:59.999999+00"]
    stamp_in_turn(api, V1, "v1_segments", made, stamps)
