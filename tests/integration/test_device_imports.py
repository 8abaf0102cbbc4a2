"""/v1/devices/imports, issue #21 step 3: NDJSON imports of devices, streamed in, merged in the
background (the contract is /work/imports-spec.md). Every import is read back: its
representation while and after it runs, and the devices it wrote, compared whole with what
the lines said. Bad lines, cut and oversized bodies, the receiving limit, and segmentd killed
or stopped in the middle of an import are covered with servers of the tests' own."""
import json
import re
import signal
import subprocess
import time
import uuid

import pytest
import requests

from hostile_util import RawConn, _SpecView, assert_problem, request_bytes
from lifecycle_util import fresh_database, metric_sum, wait_until
from segtest import Api, Server, check_against_spec, make_token, pointers, problem, psql
from test_devices import FULL, KEYS, empty_device, owner_tenant, walk
from test_devices_bulk import get as device, missing

DV = "/v1/devices"
IMP = DV + "/imports"
NDJSON = "application/x-ndjson"
DEV_SCOPES = "devices:read devices:write"
REP_KEYS = ["id", "status", "bytes", "lines", "errors", "failure", "startedAt", "receivedAt", "finishedAt"]
IMP_ID = re.compile(r"imp_[0-9A-Za-z]{13}")
SMALL_LINE = 4096       # the small server's SEGMENTD_MAX_BODY_BYTES: the per-line limit
SMALL_IMPORT = 65536    # the small server's SEGMENTD_MAX_IMPORT_BYTES
FAILURE_CODES = ("body_incomplete", "body_too_large", "interrupted", "merge_failed")


# ---------------------------------------------------------------- fixtures and helpers

def im_api(server, scope=DEV_SCOPES, tenant=None):
    """A client of a tenant of its own: its import list and its devices are this test's."""
    return Api(server, tenant=tenant or "im-" + uuid.uuid4().hex[:12], scope=scope)


@pytest.fixture
def im(server):
    return im_api(server)


@pytest.fixture(scope="module")
def small():
    """A segmentd whose per-line limit is 4 KiB and whose import limit is 64 KiB."""
    s = Server(env={"SEGMENTD_MAX_BODY_BYTES": str(SMALL_LINE),
                    "SEGMENTD_MAX_IMPORT_BYTES": str(SMALL_IMPORT)}).start()
    yield s
    assert s.stop() == 0


def ndjson(items, end=b"\n"):
    """Lines of NDJSON: dicts are dumped, bytes and str are taken as they are."""
    out = []
    for it in items:
        if isinstance(it, (dict, list)):
            it = json.dumps(it, ensure_ascii=False, separators=(",", ":"))
        if isinstance(it, str):
            it = it.encode()
        out.append(it + end)
    return b"".join(out)


def now_ms():
    return int(time.time() * 1000)


def check_rep(rep, status=None):
    """An import's representation: its keys in order, and what its status implies."""
    assert list(rep) == REP_KEYS, rep
    assert IMP_ID.fullmatch(rep["id"]), rep["id"]
    if status:
        st = (status,) if isinstance(status, str) else status
        assert rep["status"] in st, rep
    st = rep["status"]
    assert st in ("receiving", "merging", "done", "failed"), rep
    assert isinstance(rep["bytes"], int) and rep["bytes"] >= 0
    lines = rep["lines"]
    assert list(lines) == ["received", "upserted", "invalid"], lines
    assert all(isinstance(v, int) and v >= 0 for v in lines.values()), lines
    assert lines["upserted"] + lines["invalid"] <= lines["received"], rep
    assert len(rep["errors"]) == min(lines["invalid"], 100), rep
    nums = [e["line"] for e in rep["errors"]]
    assert nums == sorted(set(nums)), "errors are in line order, one per line: %s" % nums
    for e in rep["errors"]:
        assert list(e) == ["line", "pointer", "detail"], e
        assert e["line"] >= 1 and isinstance(e["pointer"], str) and e["detail"], e
    if st == "failed":
        f = rep["failure"]
        assert isinstance(f, dict) and list(f) == ["code", "detail"], rep
        assert f["code"] in FAILURE_CODES and f["detail"], rep
    else:
        assert rep["failure"] is None, rep
    assert abs(rep["startedAt"] - now_ms()) < 600_000, rep  # epoch milliseconds
    if st == "receiving":
        assert rep["receivedAt"] is None and rep["finishedAt"] is None, rep
    if st in ("merging", "done"):
        assert rep["receivedAt"] is not None, rep
    if st == "merging":
        assert rep["finishedAt"] is None, rep
    if st in ("done", "failed"):
        assert rep["finishedAt"] is not None, rep
    if st == "done":
        assert lines["received"] == lines["upserted"] + lines["invalid"], rep
    times = [t for t in (rep["startedAt"], rep["receivedAt"], rep["finishedAt"]) if t is not None]
    assert times == sorted(times), rep
    return rep


def post_import(api, body, ctype=NDJSON, **kw):
    headers = {"Content-Type": ctype} if ctype else {"Content-Type": None}
    headers.update(kw.pop("headers", {}))
    return api.request("POST", IMP, data=body, headers=headers, **kw)


def accepted(r, body_len=None):
    """A 202: Location of the import, its representation (merging or already done)."""
    assert r.status_code == 202, r.text[:1000]
    rep = check_rep(r.json(), ("merging", "done"))
    assert r.headers["Location"] == IMP + "/" + rep["id"], r.headers
    if body_len is not None:
        assert rep["bytes"] == body_len, rep
    return rep


def start_import(api, body, **kw):
    return accepted(post_import(api, body, **kw), len(body))


def get_import(api, imp_id):
    r = api.get(IMP + "/" + imp_id)
    assert r.status_code == 200, r.text
    return check_rep(r.json())


def wait_finished(api, imp_id, timeout=60):
    """Polls the import until done or failed; its counters never go back meanwhile."""
    seen = {"upserted": 0}

    def finished():
        rep = get_import(api, imp_id)
        assert rep["lines"]["upserted"] >= seen["upserted"], rep
        seen["upserted"] = rep["lines"]["upserted"]
        return rep if rep["status"] in ("done", "failed") else None

    return wait_until(finished, timeout, interval=0.05, what="import %s finished" % imp_id)


def run_import(api, body, **kw):
    """POST, then the finished import (done expected)."""
    rep = start_import(api, body, **kw)
    done = wait_finished(api, rep["id"])
    check_rep(done, "done")
    assert done["startedAt"] == rep["startedAt"] and done["receivedAt"] == rep["receivedAt"]
    assert done["bytes"] == rep["bytes"] and done["lines"]["received"] == rep["lines"]["received"]
    return done


def list_page(api, **params):
    r = api.get(IMP, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["items", "next_cursor"], body
    for rep in body["items"]:
        check_rep(rep)
    return body


def list_all(api, limit=500):
    items, cursor = [], None
    for _ in range(1000):
        p = {"limit": limit}
        if cursor:
            p["cursor"] = cursor
        body = list_page(api, **p)
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("the import list never ended")


def wait_listed(api, status="receiving", timeout=10):
    """The tenant's one import, once it shows the status."""
    def listed():
        items = list_page(api)["items"]
        return items[0] if items and items[0]["status"] == status else None
    return wait_until(listed, timeout, interval=0.05, what="an import listed as %s" % status)


def devices_of(api):
    """Every device of the tenant, by id (the device list, followed to its end)."""
    return {d["id"]: d for p in walk(api, 500) for d in p}


def expected_device(line, rep):
    """What a device is once a line replaced it whole: the line, nulls, updatedAt server-set."""
    assert list(rep) == KEYS, rep
    assert isinstance(rep["updatedAt"], int)
    return dict(empty_device(line["id"]), **line, updatedAt=rep["updatedAt"])


def staged_rows(tenant):
    """Staged lines still held for the tenant's imports (the contract's storage)."""
    return psql("SELECT count(*) FROM device_import_rows r JOIN device_imports i ON i.seq = r.import "
                "WHERE i.tenant = %s", tenant)[0][0]


class Upload:
    """An import sent by hand on a socket, so that a test decides when each byte goes, and
    whether the body ever ends: Content-Length framing (length given) or chunked."""

    def __init__(self, server, api, length=None, chunked=False, ctype=NDJSON, timeout=30.0):
        self.chunked = chunked
        self.conn = RawConn(server.port, timeout=timeout)
        framing = ["Transfer-Encoding: chunked"] if chunked else ["Content-Length: %d" % length]
        head = request_bytes("POST", IMP, token=api.token, headers=["Content-Type: " + ctype] + framing)
        self.conn.send(head)
        self.sent = 0

    def send(self, data):
        if self.chunked:
            self.conn.send(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.conn.send(data)
        self.sent += len(data)

    def send_raw(self, data):
        self.conn.send(data)

    def answer(self):
        """The response, checked against openapi.yaml as Api checks its own."""
        r = self.conn.response()
        assert r is not None, "the server closed the connection without an answer"
        r.headers = requests.structures.CaseInsensitiveDict(r.headers)
        check_against_spec("POST", IMP, _SpecView(r))
        return r

    def close(self):
        self.conn.close()


def cut_upload(server, api, data):
    """An upload that sends data of a longer body, is seen receiving, and hangs up: the
    import it made, failed (body_incomplete)."""
    up = Upload(server, api, length=len(data) + 1000)
    try:
        up.send(data)
        receiving = wait_listed(api, "receiving")
    finally:
        up.close()
    rep = check_rep(wait_finished(api, receiving["id"], timeout=15), "failed")
    assert rep["failure"]["code"] == "body_incomplete", rep
    return rep


def filler(prefix, n):
    """n short valid lines: ids prefix-000000…, sessionCount the index."""
    return b"".join(b'{"id":"%s-%06d","sessionCount":%d}\n' % (prefix.encode(), i, i) for i in range(n))


# ================================================================== the happy path

def happy_line(i):
    d = {"id": "hp-%04d" % i}
    if i % 3 == 0:
        d.update(country="PL", language="pol", sessionCount=i)
    if i % 5 == 0:
        d["tags"] = ["t%d" % (i % 7), "all"]
    if i % 7 == 0:
        d["attributes"] = {"n": [i, -i - 1], "s": ["v%d" % i, "é"]}
    if i % 11 == 0:
        d.update(FULL, email="u%d@example.com" % i)
    if i % 13 == 0:
        d["customUserId"] = "user-%d-ż" % i
    return d


def test_happy_path_thousand_devices_read_back_whole(im):
    # devices that exist before: one the import replaces, one it does not touch
    for dev_id in ("pre-1", "pre-2"):
        r = im.request("PUT", DV + "/" + dev_id, json_body=FULL)
        assert r.status_code == 201, r.text
    untouched = device(im, "pre-2")
    lines = [happy_line(i) for i in range(998)] + [{"id": "pre-1", "country": "DE"}, {"id": "last"}]
    body = ndjson(lines)
    t0 = now_ms()
    r = post_import(im, body)
    rep = accepted(r, len(body))
    assert rep["lines"]["received"] == 1000 and rep["lines"]["invalid"] == 0 and rep["errors"] == []
    assert t0 - 5 <= rep["startedAt"] <= rep["receivedAt"] <= now_ms() + 5
    done = wait_finished(im, rep["id"])
    check_rep(done, "done")
    assert done["lines"] == {"received": 1000, "upserted": 1000, "invalid": 0}
    assert done["errors"] == [] and done["failure"] is None and done["bytes"] == len(body)
    assert done["startedAt"] <= done["receivedAt"] <= done["finishedAt"] <= now_ms() + 5
    assert done["id"] == rep["id"] and done["startedAt"] == rep["startedAt"]

    stored = devices_of(im)
    assert set(stored) == {d["id"] for d in lines} | {"pre-2"}
    for line in lines:
        got = stored[line["id"]]
        assert got == expected_device(line, got), (line, got)
        # written by the merge: after the body arrived, by the time the import was done
        assert done["receivedAt"] <= got["updatedAt"] <= done["finishedAt"], (done, got)
    # read one by one too: the single route sees the same devices, version 1 (2 for the replaced)
    for line in lines[::20] + lines[-2:]:
        got, version = device(im, line["id"])
        assert got == stored[line["id"]]
        assert version == (2 if line["id"] == "pre-1" else 1), (line["id"], version)
    # the replace is whole: what the line leaves out is gone
    pre1, _ = device(im, "pre-1")
    assert pre1 == dict(empty_device("pre-1"), country="DE", updatedAt=pre1["updatedAt"])
    assert pre1["updatedAt"] > untouched[0]["updatedAt"]
    assert device(im, "pre-2") == untouched
    # the GET of the import is stable once done, and the list shows the same
    assert get_import(im, rep["id"]) == done
    assert list_page(im)["items"] == [done]


def test_empty_body_is_an_import_of_nothing(im):
    done = run_import(im, b"")
    assert done["lines"] == {"received": 0, "upserted": 0, "invalid": 0} and done["bytes"] == 0
    done = run_import(im, b"\n  \n\r\n")
    assert done["lines"] == {"received": 0, "upserted": 0, "invalid": 0} and done["bytes"] == 6
    assert devices_of(im) == {}


def test_content_type_with_charset_accepted(im):
    run_import(im, ndjson([{"id": "cs-1"}]), ctype=NDJSON + "; charset=utf-8")
    assert device(im, "cs-1")[0]["id"] == "cs-1"


# ================================================================== duplicates

def test_duplicates_last_line_wins_and_both_count(im):
    lines = [
        {"id": "d-1", "country": "PL", "tags": ["a"]},     # 1: replaced by 4
        {"id": "d-2", "type": "phone"},                     # 2: replaced by 3, then 6
        {"id": "d-2", "type": "tablet"},                    # 3
        {"id": "d-1", "country": "DE"},                     # 4: d-1 as it ends
        {"id": "d-3", "email": "x@example.com"},            # 5: d-3 as it ends
        {"id": "d-2", "sessionCount": 5},                   # 6: d-2 as it ends
        {"id": "d-3", "email": "bad"},                      # 7: invalid, replaces nothing
    ]
    body = ndjson(lines)
    done = run_import(im, body)
    assert done["lines"] == {"received": 7, "upserted": 6, "invalid": 1}
    assert [(e["line"], e["pointer"]) for e in done["errors"]] == [(7, "/email")]
    stored = devices_of(im)
    assert set(stored) == {"d-1", "d-2", "d-3"}
    for final in (lines[3], lines[4], lines[5]):
        got = stored[final["id"]]
        assert got == expected_device(final, got)


def test_duplicates_far_apart_last_line_wins(im):
    """One id at the first and the last line of 25 000, and another one every 5 000 lines: the
    merge may cut the lines into chunks, and still the later line wins."""
    parts = [ndjson([{"id": "far", "country": "PL", "tags": ["first"]}])]
    for k in range(5):
        parts.append(filler("f%d" % k, 5000))
        parts.append(ndjson([{"id": "often", "sessionCount": k}]))
    parts.append(ndjson([{"id": "far", "language": "deu"}]))
    body = b"".join(parts)
    done = run_import(im, body)
    assert done["lines"] == {"received": 25007, "upserted": 25007, "invalid": 0}
    far, _ = device(im, "far")
    assert far == expected_device({"id": "far", "language": "deu"}, far)
    often, _ = device(im, "often")
    assert often == expected_device({"id": "often", "sessionCount": 4}, often)
    some, version = device(im, "f3-004999")
    assert some == expected_device({"id": "f3-004999", "sessionCount": 4999}, some) and version == 1


# ================================================================== bad lines

def exact_line(dev_id, size):
    """A valid line of exactly size bytes: attribute values (of up to 1000 characters) fill it."""
    def text(vals):
        return json.dumps({"id": dev_id, "attributes": {"a": vals}}, separators=(",", ":"))

    vals = []
    while len(text(vals)) < size:
        room = size - len(text(vals + [""]))
        assert room >= 0, (size, vals)
        vals.append(chr(ord("a") + len(vals)) * min(1000, room))
    assert len(text(vals)) == size
    return text(vals).encode()


def test_bad_lines_never_stop_the_import(small):
    im = im_api(small)
    long_line = b'{"id":"long","customUserId":"' + b"x" * 4970 + b'"}'
    huge_line = b'{"id":"huge","attributes":{"k":["' + b"y" * 40000 + b'"]}}'
    edge = exact_line("edge", SMALL_LINE)
    edge_crlf = exact_line("edge-crlf", SMALL_LINE)
    over = exact_line("over", SMALL_LINE + 1)
    parts = [  # (line, ending, pointer of its error or None when valid or blank)
        (b'{"id":"ok-1","country":"PL"}', b"\n", None),                    # 1
        (b'{"id":"bad-json",', b"\n", ""),                                  # 2 not JSON
        (b'[{"id":"arr"}]', b"\n", ""),                                     # 3 an array
        (b"42", b"\n", ""),                                                 # 4 a number
        (b'{"country":"PL"}', b"\n", "/id"),                                # 5 no id
        (b'{"id":"bad-email","email":"nope"}', b"\n", "/email"),            # 6
        (b'{"id":"unk","colour":"red"}', b"\n", "/colour"),                 # 7 an unknown key
        (b'{"id":"bulk"}', b"\n", "/id"),                                   # 8 a reserved id
        (b"", b"\n", None),                                                 # 9 blank
        (b"   \t ", b"\n", None),                                           # 10 blank
        (b'{"id":"ok-crlf","type":"tablet"}', b"\r\n", None),              # 11 CRLF
        (b"", b"\r\n", None),                                               # 12 blank, CRLF
        (edge, b"\n", None),                                                # 13 exactly the limit
        (edge_crlf, b"\r\n", None),                                         # 14 the limit, then CRLF
        (long_line, b"\n", ""),                                             # 15 over the line limit
        (over, b"\n", ""),                                                  # 16 one byte over
        (b'{"id":"ok-after-long"}', b"\n", None),                           # 17
        (b"null", b"\n", ""),                                               # 18
        (b'"text"', b"\n", ""),                                             # 19
        (b'{"id":"bad id!"}', b"\n", "/id"),                                # 20
        (huge_line, b"\n", ""),                                             # 21 ten times the limit
        (b'{"id":"two"} {"id":"objects"}', b"\n", ""),                     # 22 trailing garbage
        (b'{"id":"ok-tags","tags":["x","y"],"attributes":{"k":[1]}}', b"\r\n", None),  # 23
        (b'{"id":"ok-last","sessionCount":3}', b"", None),                  # 24 no newline at the end
    ]
    body = b"".join(line + end for line, end, _ in parts)
    assert len(body) < SMALL_IMPORT
    done = run_import(im, body)
    want_errors = [(n, p) for n, (_, _, p) in enumerate(parts, 1) if p is not None]
    blank = sum(1 for line, _, _ in parts if not line.strip())
    valid = len(parts) - blank - len(want_errors)
    assert done["lines"] == {"received": len(parts) - blank, "upserted": valid, "invalid": len(want_errors)}
    assert [(e["line"], e["pointer"]) for e in done["errors"]] == want_errors, done["errors"]
    details = {e["line"]: e["detail"] for e in done["errors"]}
    for n in (15, 16, 21):
        assert str(SMALL_LINE) in details[n], "the detail says the limit: %r" % details[n]
    assert done["bytes"] == len(body)
    stored = devices_of(im)
    assert set(stored) == {"ok-1", "ok-crlf", "edge", "edge-crlf", "ok-after-long", "ok-tags", "ok-last"}
    assert stored["ok-crlf"] == expected_device({"id": "ok-crlf", "type": "tablet"}, stored["ok-crlf"])
    assert stored["ok-tags"] == expected_device({"id": "ok-tags", "tags": ["x", "y"], "attributes": {"k": [1]}},
                                                stored["ok-tags"])
    assert stored["ok-last"] == expected_device({"id": "ok-last", "sessionCount": 3}, stored["ok-last"])
    assert stored["edge"] == expected_device(json.loads(edge), stored["edge"])
    assert stored["edge-crlf"] == expected_device(json.loads(edge_crlf), stored["edge-crlf"])
    for dev_id in ("bad-json", "arr", "bad-email", "unk", "long", "over", "huge", "two", "objects"):
        missing(im, dev_id)


def test_line_limit_same_when_lines_arrive_in_pieces(small):
    """Lines at and one byte past the limit, each cut in two by a pause in the upload (so that
    the server gets it in two reads): the limit is that of the line, whatever its ending."""
    im = im_api(small)
    lines = [(exact_line("e-lf", SMALL_LINE), b"\n", None), (exact_line("e-crlf", SMALL_LINE), b"\r\n", None),
             (exact_line("o-lf", SMALL_LINE + 1), b"\n", ""), (exact_line("o-crlf", SMALL_LINE + 1), b"\r\n", ""),
             (b'{"id":"tail"}', b"", None)]
    body = b"".join(line + end for line, end, _ in lines)
    up = Upload(small, im, length=len(body))
    try:
        for line, end, _ in lines:
            for piece in (line[:len(line) // 2], line[len(line) // 2:] + end):
                up.send(piece)
                time.sleep(0.05)
        r = up.answer()
    finally:
        up.close()
    rep = accepted(r, len(body))
    done = check_rep(wait_finished(im, rep["id"]), "done")
    assert [(e["line"], e["pointer"]) for e in done["errors"]] == [(3, ""), (4, "")], done["errors"]
    assert all(str(SMALL_LINE) in e["detail"] for e in done["errors"]), done["errors"]
    assert set(devices_of(im)) == {"e-lf", "e-crlf", "tail"}


@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_line_at_the_limit_accepted_whatever_its_ending(small, end):
    """A body of a few kilobytes, in one piece: its line of exactly the limit is a device."""
    im = im_api(small)
    edge = exact_line("edge", SMALL_LINE)
    done = run_import(im, edge + end + b'{"id":"next"}' + end + exact_line("over", SMALL_LINE + 1) + end)
    assert [(e["line"], e["pointer"]) for e in done["errors"]] == [(3, "")], done["errors"]
    assert done["lines"] == {"received": 3, "upserted": 2, "invalid": 1}
    assert set(devices_of(im)) == {"edge", "next"}


def test_invalid_utf8_line_is_refused_alone(im):
    body = b'{"id":"u1"}\n{"id":"u2","deviceModel":"\xff\xfe"}\n{"id":"u3"}\n'
    done = run_import(im, body)
    assert done["lines"] == {"received": 3, "upserted": 2, "invalid": 1}
    assert [e["line"] for e in done["errors"]] == [2]
    assert done["errors"][0]["pointer"] in ("", "/deviceModel"), done["errors"]
    assert set(devices_of(im)) == {"u1", "u3"}


def test_more_than_100_invalid_lines_keep_the_first_100(im):
    lines, bad_lines = [], []
    for i in range(250):
        if i % 5 == 0:
            lines.append({"id": "v-%03d" % i})
        else:
            lines.append({"id": "x-%03d" % i, "type": "car"})
            bad_lines.append(i + 1)
    done = run_import(im, ndjson(lines))
    assert done["lines"] == {"received": 250, "upserted": 50, "invalid": 200}
    assert len(done["errors"]) == 100
    assert [e["line"] for e in done["errors"]] == bad_lines[:100]
    assert {e["pointer"] for e in done["errors"]} == {"/type"}
    stored = devices_of(im)
    assert set(stored) == {"v-%03d" % i for i in range(0, 250, 5)}


# ================================================================== content type and limits

@pytest.mark.parametrize("ctype", ["application/json", "text/plain", None, "application/ndjson-x"])
def test_wrong_content_type_415_nothing_created(im, ctype):
    body = ndjson([{"id": "ct-1"}])
    problem(post_import(im, body, ctype=ctype), 415, "unsupported_media_type")
    assert list_page(im)["items"] == []
    assert devices_of(im) == {}


def test_body_at_the_import_limit_accepted(small):
    im = im_api(small)
    head = filler("lim", 1000)
    assert len(head) < SMALL_IMPORT
    body = head + b"\n" * (SMALL_IMPORT - len(head))  # blank lines pad the body to exactly the limit
    assert len(body) == SMALL_IMPORT
    done = run_import(im, body)
    assert done["lines"] == {"received": 1000, "upserted": 1000, "invalid": 0}
    assert done["bytes"] == SMALL_IMPORT


def test_content_length_over_the_import_limit_413_at_once(small):
    im = im_api(small)
    up = Upload(small, im, length=SMALL_IMPORT + 1, timeout=5)
    try:
        r = up.answer()  # without a byte of the body sent
    finally:
        up.close()
    assert_problem(r, 413, "body_too_large")
    assert devices_of(im) == {}
    assert all(rep["status"] == "failed" for rep in list_page(im)["items"])


def test_chunked_body_over_the_import_limit_413_and_failed(small):
    im = im_api(small)
    up = Upload(small, im, chunked=True)
    try:
        block = filler("ch", 300)
        while up.sent + len(block) <= SMALL_IMPORT:
            up.send(block)
        # one small last chunk passes the limit; then the body ends. libmicrohttpd sends no
        # answer in the middle of a body: the rest of a refused one is read and dropped (up to
        # 64 MiB) and the 413 goes when it ends
        up.send(b"\n" * (SMALL_IMPORT - up.sent + 1))
        assert up.sent == SMALL_IMPORT + 1
        up.send(filler("after", 50))
        up.send_raw(b"0\r\n\r\n")
        r = up.answer()
    finally:
        up.close()
    assert_problem(r, 413, "body_too_large")
    items = list_page(im)["items"]
    assert len(items) <= 1
    if items:
        rep = wait_finished(im, items[0]["id"], timeout=15)
        check_rep(rep, "failed")
        assert rep["failure"]["code"] == "body_too_large", rep
        assert rep["lines"]["upserted"] == 0
    assert devices_of(im) == {}
    wait_until(lambda: staged_rows(owner_tenant(im)) == 0, 10, what="staged lines discarded")


def test_post_query_parameters_refused(im):
    b = problem(post_import(im, ndjson([{"id": "q"}]), params={"atomic": "true"}), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/atomic"], b
    assert list_page(im)["items"] == [] and devices_of(im) == {}


# ================================================================== cut bodies

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_cut_body_fails_and_changes_nothing(im, chunked):
    # a device the import would replace: it stays as it was
    r = im.request("PUT", DV + "/cut-000001", json_body={"country": "PL"})
    assert r.status_code == 201
    before = device(im, "cut-000001")
    body = filler("cut", 20000)
    up = Upload(im.server, im, length=len(body) * 3, chunked=chunked)
    try:
        half = len(body) // 2
        cut_at = body.index(b"\n", half) - 7  # mid-line
        if chunked:
            up.send(body[:cut_at - 500])
            # a chunk that says 1000 bytes and brings 500
            up.send_raw(b"3e8\r\n" + body[cut_at - 500:cut_at])
        else:
            up.send(body[:cut_at])
        receiving = wait_listed(im, "receiving")
        assert receiving["lines"]["upserted"] == 0
    finally:
        up.close()
    rep = wait_finished(im, receiving["id"], timeout=15)
    check_rep(rep, "failed")
    assert rep["failure"]["code"] == "body_incomplete", rep
    assert rep["lines"]["upserted"] == 0 and rep["receivedAt"] is None
    assert devices_of(im) == {"cut-000001": before[0]}
    assert device(im, "cut-000001") == before
    assert [x["id"] for x in list_page(im)["items"]] == [rep["id"]]
    wait_until(lambda: staged_rows(owner_tenant(im)) == 0, 10, what="staged lines discarded")
    # the process goes on importing (the slot of the cut upload is free again)
    done = run_import(im, ndjson([{"id": "after-cut"}]))
    assert done["lines"]["upserted"] == 1


# ================================================================== tenants, ids, scopes

def test_another_tenants_import_is_404(server):
    a, b = im_api(server), im_api(server)
    rep = run_import(a, ndjson([{"id": "mine"}]))
    problem(b.get(IMP + "/" + rep["id"]), 404, "not_found")
    assert list_page(b)["items"] == []
    missing(b, "mine")
    assert get_import(a, rep["id"]) == rep


def test_unknown_import_is_404(im):
    problem(im.get(IMP + "/imp_0000000000000"), 404, "not_found")
    problem(im.get(IMP + "/imp_zzzzzzzzzzzzz"), 404, "not_found")


@pytest.mark.parametrize("bad", ["imp_", "imp_123", "imp_" + "A" * 12, "imp_" + "A" * 14, "IMP_" + "A" * 13,
                                 "imp-" + "A" * 13, "seg_" + "A" * 13, "imp_" + "A" * 12 + "-",
                                 "imp_" + "A" * 12 + "%21", "imp_" + "A" * 12 + "%C3%A9", "x", "%20"])
def test_malformed_import_id_is_400(im, bad):
    b = problem(im.get(IMP + "/" + bad), 400, "invalid_path_parameter")
    assert pointers(b) == ["/path/id"], b


def test_scopes(server):
    owner = im_api(server)
    tenant = owner_tenant(owner)
    rep = run_import(owner, ndjson([{"id": "sc-1"}]))
    reader = Api(server, token=make_token(tenant=tenant, scope="devices:read"))
    r = post_import(reader, ndjson([{"id": "sc-2"}]))
    problem(r, 403, "insufficient_scope")
    assert 'scope="devices:write"' in r.headers["WWW-Authenticate"], r.headers["WWW-Authenticate"]
    assert get_import(reader, rep["id"]) == rep
    assert [x["id"] for x in list_page(reader)["items"]] == [rep["id"]]
    seg = Api(server, token=make_token(tenant=tenant, scope="segments:read segments:write"))
    for r in (seg.get(IMP), seg.get(IMP + "/" + rep["id"]), post_import(seg, ndjson([{"id": "sc-3"}]))):
        problem(r, 403, "insufficient_scope")
    writer = Api(server, token=make_token(tenant=tenant, scope="devices:write"))
    for r in (writer.get(IMP), writer.get(IMP + "/" + rep["id"])):
        problem(r, 403, "insufficient_scope")
        assert 'scope="devices:read"' in r.headers["WWW-Authenticate"], r.headers["WWW-Authenticate"]
    w = accepted(post_import(writer, ndjson([{"id": "sc-4"}])))
    problem(owner.get(IMP, token=False), 401, "unauthorized")
    problem(post_import(owner, ndjson([{"id": "sc-5"}]), token=False), 401)
    wait_finished(owner, w["id"])
    assert set(devices_of(owner)) == {"sc-1", "sc-4"}
    assert [x["id"] for x in list_page(owner)["items"]] == [w["id"], rep["id"]]


def test_percent_encoded_id_readable_after_import(im):
    run_import(im, ndjson([{"id": "a:b@c.d", "country": "PL"}, {"id": "@:-_.x", "tags": ["p"]}]))
    got, version = device(im, "a%3Ab%40c.d")
    assert got == expected_device({"id": "a:b@c.d", "country": "PL"}, got) and version == 1
    assert device(im, "a:b@c.d")[0] == got
    other, _ = device(im, "%40%3A%2D%5F%2Ex")
    assert other == expected_device({"id": "@:-_.x", "tags": ["p"]}, other)


# ================================================================== the list

def test_list_newest_first_paged(im):
    made = []
    for k in range(5):
        made.append(run_import(im, ndjson([{"id": "ls-%d" % k}, {"id": "ls-x", "sessionCount": k}])))
    want = [rep["id"] for rep in reversed(made)]
    everything = list_page(im)["items"]
    assert [x["id"] for x in everything] == want
    assert everything == list(reversed(made))
    assert list_page(im)["next_cursor"] is None
    for limit in (1, 2, 3, 5):
        assert [x["id"] for x in list_all(im, limit)] == want, limit
    first = list_page(im, limit=2)
    assert [x["id"] for x in first["items"]] == want[:2] and first["next_cursor"]
    assert list_page(im, limit=5)["next_cursor"] is None
    # the last import's second line wins
    ls_x, version = device(im, "ls-x")
    assert ls_x["sessionCount"] == 4 and version == 5


def test_small_imports_merge_promptly(im):
    """The merge starts once the body is stored, not at the merge worker's next look for work
    (every few seconds): an import of a few lines is done within moments of its 202, every time."""
    took = []
    for k in range(10):
        rep = start_import(im, ndjson([{"id": "pr-%d" % k}]))
        t0 = time.time()
        try:
            wait_finished(im, rep["id"], timeout=2.5)
        except AssertionError:
            raise AssertionError("import %d of 10 was not done within 2.5 s of its 202 (the ones before "
                                 "took %s s)" % (k + 1, took))
        took.append(round(time.time() - t0, 2))


@pytest.mark.parametrize("params,name", [
    ({"colour": "red"}, "colour"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"),
    ({"limit": ""}, "limit"), ({"cursor": "bogus"}, "cursor"), ({"cursor": ""}, "cursor"),
    ({"status": "done"}, "status"),
])
def test_list_bad_query_400(im, params, name):
    b = problem(im.get(IMP, params=params), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/" + name], b


def test_list_limit_bounds_accepted(im):
    run_import(im, ndjson([{"id": "lb"}]))
    assert len(list_page(im, limit=1)["items"]) == 1
    assert len(list_page(im, limit=500)["items"]) == 1


def test_list_of_one_tenant_never_shows_another(server):
    a, b = im_api(server), im_api(server)
    ra = [run_import(a, ndjson([{"id": "t"}]))["id"] for _ in range(2)]
    rb = run_import(b, ndjson([{"id": "t"}]))["id"]
    assert [x["id"] for x in list_all(a, 1)] == ra[::-1]
    assert [x["id"] for x in list_all(b, 1)] == [rb]
    cursor = list_page(a, limit=1)["next_cursor"]
    r = b.get(IMP, params={"cursor": cursor})
    if r.status_code == 200:
        assert all(x["id"] == rb for x in r.json()["items"])
    else:
        problem(r, 400, "invalid_query_parameter")


# ================================================================== the receiving limit

def import_when_free(api, body, timeout=5):
    """An import taken once a receiving slot is free: a client told 503 imports_busy retries.
    (A slot may be given back a moment after the import that held it has answered.)"""
    deadline = time.time() + timeout
    while True:
        r = post_import(api, body)
        if r.status_code != 503 or time.time() > deadline:
            break
        problem(r, 503, "imports_busy")
        time.sleep(0.05)
    rep = accepted(r, len(body))
    return wait_finished(api, rep["id"])


@pytest.mark.single_process
def test_imports_busy_503_while_one_is_received():
    s = Server(env={"SEGMENTD_IMPORTS_MAX": "1"}).start()
    try:
        im = im_api(s)
        body = filler("busy", 5000)
        up = Upload(s, im, length=len(body))
        try:
            up.send(body[:len(body) // 2])
            first = wait_listed(im, "receiving")
            r = post_import(im, ndjson([{"id": "second"}]))
            problem(r, 503, "imports_busy")
            assert r.headers["Retry-After"] == "5", r.headers
            assert [x["id"] for x in list_page(im)["items"]] == [first["id"]]
            up.send(body[len(body) // 2:])
            r = up.answer()
        finally:
            up.close()
        rep = accepted(r, len(body))
        assert rep["id"] == first["id"]
        done = wait_finished(im, rep["id"])
        assert done["lines"] == {"received": 5000, "upserted": 5000, "invalid": 0}
        # free again: the next import is taken
        again = import_when_free(im, ndjson([{"id": "second"}]))
        assert again["lines"]["upserted"] == 1
        assert [x["id"] for x in list_page(im)["items"]] == [again["id"], first["id"]]
        # and a cut upload frees its slot too
        cut_upload(s, im, b'{"id":"cut-1"}\n{"id":"cu')
        check_rep(import_when_free(im, ndjson([{"id": "third"}])), "done")
        assert set(devices_of(im)) == {"second", "third"} | {"busy-%06d" % i for i in range(5000)}
    finally:
        assert s.stop() == 0


# ================================================================== metrics

@pytest.mark.single_process
def test_metrics_count_imports_and_lines():
    """On a database of its own, so that no other process's merge worker takes an import."""
    with fresh_database("imports") as url:
        s = Server(env={"SEGMENTD_DATABASE_URL": url}).start()
        try:
            im = im_api(s)
            run_import(im, ndjson([{"id": "a"}, {"id": "b"}, {"id": "a"}, {"id": "c", "type": "car"}]))
            run_import(im, b"not json\n")  # nothing valid: done at once
            cut_upload(s, im, b'{"id":"x"}\n{"id"')
            want = {("segmentd_device_imports_total", "status", "done"): 2,
                    ("segmentd_device_imports_total", "status", "failed"): 1,
                    ("segmentd_device_import_lines_total", "outcome", "upserted"): 3,
                    ("segmentd_device_import_lines_total", "outcome", "invalid"): 2}

            def counted():
                return {k: metric_sum(s, k[0], **{k[1]: k[2]}) for k in want}

            deadline = time.time() + 5  # the counters move a moment after the import's row
            while counted() != want and time.time() < deadline:
                time.sleep(0.1)
            assert counted() == want
        finally:
            assert s.stop() == 0


@pytest.mark.single_process
def test_finished_imports_purged_after_their_retention():
    """SEGMENTD_IMPORT_RETENTION_DAYS: the merge worker drops finished imports older than it
    (at its first pass, then hourly); recent ones and unfinished ones stay."""
    from lifecycle_util import sql
    with fresh_database("purge") as url:
        s = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_IMPORT_RETENTION_DAYS": "2"}).start()
        tenant = "purge-" + uuid.uuid4().hex[:8]
        im = im_api(s, tenant=tenant)
        try:
            ids = [accepted(post_import(im, ndjson([{"id": "p%d" % i}])))["id"] for i in range(4)]
            for i in ids:
                wait_finished(im, i)
        finally:
            assert s.stop() == 0
        # two finished three days ago (one done, one failed), one finished a day ago
        back = ("UPDATE device_imports SET started_at = started_at - interval '{0}', "
                "received_at = received_at - interval '{0}', finished_at = finished_at - interval '{0}' "
                "WHERE id IN (%s, %s)")
        sql(url, back.format("3 days"), ids[0], ids[1])
        sql(url, "UPDATE device_imports SET status = 'failed', failure = '{\"code\":\"interrupted\",\"detail\":\"x\"}' "
                 "WHERE id = %s", ids[1])
        sql(url, back.format("1 day"), ids[2], ids[2])
        s = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_IMPORT_RETENTION_DAYS": "2"}).start()
        im = im_api(s, tenant=tenant)
        try:
            wait_until(lambda: metric_sum(s, "segmentd_device_imports_purged_total") == 2, 10,
                       what="two imports purged")
            left = sorted(r[0] for r in sql(url, "SELECT id FROM device_imports"))
            assert left == sorted(ids[2:]), left
            problem(im.get(IMP + "/" + ids[0]), 404, "not_found")
            assert set(devices_of(im)) == {"p0", "p1", "p2", "p3"}  # the devices stay
        finally:
            assert s.stop() == 0


# ================================================================== segmentd stopped during an import

def test_killed_while_receiving_failed_interrupted_after_restart():
    s = Server().start()
    im = im_api(s)
    token = im.token
    up = None
    try:
        body = filler("kr", 20000)
        up = Upload(s, im, length=len(body) * 2)
        up.send(body)
        receiving = wait_listed(im, "receiving")
        s.proc.kill()
        s.proc.wait(10)
    finally:
        if up:
            up.close()
        s.stop()
    s2 = Server().start()
    try:
        im2 = Api(s2, token=token)
        t0 = time.time()
        rep = wait_finished(im2, receiving["id"], timeout=15)
        check_rep(rep, "failed")
        assert rep["failure"]["code"] == "interrupted", rep
        assert rep["lines"]["upserted"] == 0 and rep["receivedAt"] is None
        assert devices_of(im2) == {}
        wait_until(lambda: staged_rows(owner_tenant(im2)) == 0, 10, what="staged lines discarded")
        print("interrupted import marked failed %.1f s after the restart" % (time.time() - t0))
        # the restarted process imports
        assert run_import(im2, ndjson([{"id": "after"}]))["lines"]["upserted"] == 1
    finally:
        assert s2.stop() == 0


def big_body(prefix, n):
    """n short lines, every 1000th invalid (type car)."""
    out = []
    invalid = 0
    for i in range(n):
        if i % 1000 == 999:
            out.append(b'{"id":"%s%07d","type":"car"}\n' % (prefix.encode(), i))
            invalid += 1
        else:
            out.append(b'{"id":"%s%07d","sessionCount":%d}\n' % (prefix.encode(), i, i % 100000))
    return b"".join(out), invalid


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_stopped_while_merging_resumed_after_restart(sig):
    """kill -9 or SIGTERM while the import is merging: the next start merges the rest, each line
    once (a SIGTERM does not wait for the merge: the process exits at once, exit code 0)."""
    caught, tries, tenants = None, [], []
    try:
        for n in (60_000, 400_000):
            tenant = "im-merge-" + uuid.uuid4().hex[:10]
            tenants.append(tenant)
            s = Server().start()
            try:
                im = im_api(s, tenant=tenant)
                body, invalid = big_body("m", n)
                up = Upload(s, im, length=len(body), timeout=120)
                try:
                    up.send(body)
                    r = up.answer()
                finally:
                    up.close()
                assert r.status == 202, r
                rep = check_rep(r.json(), ("merging", "done"))
                # killed once some chunks are merged and some are not: the resume starts mid-way
                while rep["status"] == "merging" and rep["lines"]["upserted"] == 0:
                    time.sleep(0.01)
                    rep = get_import(im, rep["id"])
                if rep["status"] == "merging":
                    t0 = time.time()
                    s.proc.send_signal(sig)
                    rc = s.proc.wait(15)
                    if sig == signal.SIGTERM:
                        assert rc == 0 and time.time() - t0 < 5, (rc, time.time() - t0)
            finally:
                s.stop()
            at_kill = psql("SELECT status, lines_upserted FROM device_imports WHERE tenant = %s AND id = %s",
                           tenant, rep["id"])[0]
            tries.append((n, rep["status"], at_kill))
            if at_kill[0] == "merging" and 0 < at_kill[1] < n - invalid:
                caught = (n, tenant, rep, invalid)
                break
        assert caught, "the import was never caught merging, so the resume was not tested: %s" % tries
        n, tenant, rep, invalid = caught
        print("stopped while merging (lines, status answered, status and lines upserted at the stop):", tries)
        s2 = Server().start()
        try:
            im2 = Api(s2, token=make_token(tenant=tenant, scope=DEV_SCOPES))
            done = wait_finished(im2, rep["id"], timeout=90)
            check_rep(done, "done")
            assert done["lines"] == {"received": n, "upserted": n - invalid, "invalid": invalid}, done
            assert [e["line"] for e in done["errors"]] == [1000 * (k + 1) for k in range(min(invalid, 100))]
            assert {e["pointer"] for e in done["errors"]} == {"/type"}
            assert done["startedAt"] == rep["startedAt"] and done["receivedAt"] == rep["receivedAt"]
            assert done["bytes"] == rep["bytes"]
            for i in (0, 1, 998, 999, 1000, n // 2, n - 2, n - 1):
                dev_id = "m%07d" % i
                if i % 1000 == 999:
                    missing(im2, dev_id)
                    continue
                got, version = device(im2, dev_id)
                assert got == expected_device({"id": dev_id, "sessionCount": i % 100000}, got)
                assert version == 1, (dev_id, version)
            count, max_version = psql("SELECT count(*), max(version) FROM devices WHERE tenant = %s", tenant)[0]
            assert (count, max_version) == (n - invalid, 1), "each line merged exactly once"
            assert staged_rows(tenant) == 0
        finally:
            assert s2.stop() == 0
    finally:
        for tenant in tenants:
            psql("DELETE FROM devices WHERE tenant = %s", tenant)


def test_sigterm_while_receiving_exits_in_grace_and_import_fails():
    grace = 2
    s = Server(env={"SEGMENTD_SHUTDOWN_GRACE": str(grace)}).start()
    im = im_api(s)
    up = None
    try:
        body = filler("term", 10000)
        up = Upload(s, im, length=len(body) + 100)
        up.send(body)
        receiving = wait_listed(im, "receiving")
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        try:
            s.proc.wait(grace + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("segmentd did not exit within the grace period with an upload stalled")
        took = time.time() - t0
    finally:
        if up:
            up.close()
        rc = s.stop()
    assert rc == 0
    assert took < grace + 5, took
    s2 = Server().start()
    try:
        im2 = Api(s2, token=im.token)
        rep = wait_finished(im2, receiving["id"], timeout=15)
        check_rep(rep, "failed")
        assert rep["failure"]["code"] == "interrupted", rep
        assert rep["lines"]["upserted"] == 0
        assert devices_of(im2) == {}
    finally:
        assert s2.stop() == 0
