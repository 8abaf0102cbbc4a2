"""Hostile clients: slowloris, oversized and malformed HTTP, bodies over the limit,
hostile JSON, SQL metacharacters and %00 everywhere, token attacks and tenant
crossing on every route. Every attack gets a clear 4xx (or a cut connection where the
issue allows it), the server keeps serving, and no stored row changes."""
import base64
import json
import os
import select
import socket
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

from segtest import (Api, Server, b64url, make_token, openssl_rsa_pair, problem, psql,
                     rs256_signer)
from hostile_util import (AUD, GROUPS, OWNER, V1, RawConn, RowsUnchanged, assert_problem,
                          assert_same_rows, aud_body, check_raw_against_spec, raw_exchange, record,
                          request_bytes, snapshot, v1_body)

RUN = uuid.uuid4().hex[:8]           # tenants of this run: rows of earlier runs never interfere
TA, TB, TQ = f"hx-a-{RUN}", f"hx-b-{RUN}", f"hx-q-{RUN}"
SMALL_BODY, SMALL_BULK = 64 * 1024, 128 * 1024


@pytest.fixture(scope="module")
def hs():
    """segmentd with its default limits, for this file only (so that a crash or a
    sanitizer report is blamed on these tests)."""
    s = Server().start()
    yield s
    assert s.stop() == 0, "segmentd did not exit cleanly:\n" + "\n".join(s.lines[-20:])
    record("hostile_requests", server="default limits", requests_logged=_logged_requests(s))


def _logged_requests(s):
    """Requests that reached segmentd's handler (MHD's own 4xx answers are not logged)."""
    return sum(1 for l in s.lines if '"msg":"request"' in l)


@pytest.fixture(scope="module")
def small():
    """segmentd with small body limits: the body-limit attacks stay cheap."""
    s = Server(env={"SEGMENTD_MAX_BODY_BYTES": str(SMALL_BODY),
                    "SEGMENTD_MAX_BULK_BODY_BYTES": str(SMALL_BULK)}).start()
    yield s
    assert s.stop() == 0, "segmentd did not exit cleanly:\n" + "\n".join(s.lines[-20:])
    record("hostile_requests", server="small body limits", requests_logged=_logged_requests(s))


@pytest.fixture(scope="module")
def ta(hs):
    return Api(hs, tenant=TA)


@pytest.fixture(scope="module")
def tb(hs):
    return Api(hs, tenant=TB)


def still_serving(server, api=None):
    """The server answers a liveness probe and an authenticated read."""
    r = requests.get(server.url + "/healthz", timeout=10)
    assert r.status_code == 200
    api = api or Api(server, tenant=TQ)
    assert api.get(AUD, params={"limit": 1}).status_code == 200
    assert server.proc.poll() is None


def tok(tenant=TA, **kw):
    return make_token(tenant=tenant, **kw)


# ====================================================================== slowloris

def test_slowloris_normal_client_still_served_promptly():
    """300 connections trickle a byte every 2 s (headers for most, a body for the rest),
    which MHD's inactivity timeout (5 s here) never fires on; a normal client doing
    reads and writes on fresh and kept-alive connections is served promptly all along.
    When the trickle stops, the idle timeout closes every slow connection."""
    n_slow, period, phase = 300, 2.0, 12.0
    s = Server(env={"SEGMENTD_IDLE_TIMEOUT": "5"}).start()
    normal_tenant = f"hx-sl-{RUN}"
    stop = threading.Event()
    try:
        before = snapshot(exclude_tenants=[normal_tenant])
        slow, prefixes = [], []
        token = tok(TQ)
        for i in range(n_slow):
            c = RawConn(s.port, timeout=10)
            if i % 3 == 2:
                # complete headers, then a body trickle that never completes
                pre = request_bytes("POST", V1, token=token, body=None,
                                    headers=["Content-Type: application/json",
                                             "Content-Length: 100000"]) + b'{"name":"'
            else:
                pre = b"GET " + AUD.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow-" + \
                    str(i).encode() + b": "
            c.send(pre[:1])
            slow.append(c)
            prefixes.append(pre[1:])
        sent = [0] * n_slow
        dropped = set()

        def trickle():
            step = 0
            slots = 8
            while not stop.is_set():
                for i in range(step % slots, n_slow, slots):
                    if i in dropped:
                        continue
                    pre = prefixes[i]
                    b = pre[sent[i]:sent[i] + 1] if sent[i] < len(pre) else b"a"
                    try:
                        slow[i].sock.send(b)
                        sent[i] += 1
                    except OSError:
                        dropped.add(i)
                step += 1
                stop.wait(period / slots)

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        api = Api(s, tenant=normal_tenant)
        lat, statuses, made = [], [], []
        t_end = time.time() + phase
        i = 0
        while time.time() < t_end:
            fresh = Api(s, token=api.token) if i % 2 else api  # new connection every other round
            for call in (lambda: fresh.get("/healthz", token=None),
                         lambda: fresh.post(V1, v1_body(f"normal {i}")),
                         lambda: fresh.get(AUD, params={"limit": 5})):
                t0 = time.time()
                r = call()
                lat.append(time.time() - t0)
                statuses.append(r.status_code)
                if r.status_code == 201:
                    made.append(r.json()["id"])
            if fresh is not api:
                fresh.session.close()
            i += 1
            time.sleep(0.05)
        alive = n_slow - len(dropped)
        stop.set()
        t.join(5)
        # the attack was real: nearly every slow connection was still open at the end
        assert alive >= 0.9 * n_slow, f"only {alive} of {n_slow} slow connections stayed open"
        assert set(statuses) <= {200, 201}, statuses
        assert max(lat) < 3.0, f"a normal request took {max(lat):.2f} s under slowloris"
        # silent now: the inactivity timeout closes them all
        t0 = time.time()
        still_open = [c for c in slow if not c.wait_closed(max(0.5, 20 - (time.time() - t0)))]
        assert not still_open, f"{len(still_open)} idle connections not closed within 20 s"
        for c in slow:
            c.close()
        assert_same_rows(before, snapshot(exclude_tenants=[normal_tenant]))
        stored = {r[0] for r in psql("SELECT id FROM v1_segments WHERE tenant = %s", normal_tenant)}
        assert stored == set(made)
        still_serving(s)
        lat.sort()
        record("slowloris", slow_connections=n_slow, still_open_at_end=alive,
               normal_requests=len(lat), p50_ms=round(lat[len(lat) // 2] * 1000, 1),
               max_ms=round(lat[-1] * 1000, 1), bytes_trickled=sum(sent),
               closed_after_silence_s=round(time.time() - t0, 1))
    finally:
        stop.set()
        assert s.stop() == 0


# ====================================================================== HTTP framing

def test_oversized_header_block_is_431(hs):
    with RowsUnchanged():
        big = request_bytes("GET", AUD, token=tok(), headers=["X-Big: " + "a" * 40000])
        assert raw_exchange(hs.port, big).status == 431
        many = request_bytes("GET", AUD, token=tok(), headers=[f"X-H{i}: {'b' * 20}" for i in range(2000)])
        assert raw_exchange(hs.port, many).status == 431
        huge_token = request_bytes("GET", AUD, headers=["Authorization: Bearer " + "c" * 40000])
        assert raw_exchange(hs.port, huge_token).status == 431
        long_name = request_bytes("GET", AUD, token=tok(), headers=["X-" + "n" * 40000 + ": 1"])
        assert raw_exchange(hs.port, long_name).status == 431
        # the same with a body on a write route: refused before anything is read
        post = request_bytes("POST", V1, token=tok(), body=v1_body("never"),
                             headers=["X-Big: " + "a" * 40000])
        assert raw_exchange(hs.port, post).status == 431
    still_serving(hs)


def test_oversized_url_is_414(hs):
    with RowsUnchanged():
        for path in [AUD + "/" + "a" * 40000, AUD + "?name=" + "a" * 40000,
                     V1 + "?" + "&".join(f"x{i}=1" for i in range(8000))]:
            r = raw_exchange(hs.port, request_bytes("GET", path, token=tok()))
            assert r.status == 414, (path[:60], r)
        r = raw_exchange(hs.port, request_bytes("DELETE", V1 + "/seg_" + "A" * 40000, token=tok()))
        assert r.status == 414
    still_serving(hs)


@pytest.mark.parametrize("name,data", [
    ("garbage method", b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("unknown version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("no version", b"GET /healthz\r\n\r\n"),
    ("header without colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("NUL in header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x00b\r\n\r\n"),
    ("NUL in request line", b"GET /hea\x00lthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("CR without LF", b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n"),
    ("obs-fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  b\r\n\r\n"),
    ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n"),
    ("high bytes in method", b"\xffG\xe9T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("empty lines then request", b"\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("absolute form", b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("asterisk form", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("negative Content-Length", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}"),
    ("Content-Length not a number", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n{}"),
    ("Content-Length past uint64", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 999999999999999999999999\r\n\r\n{}"),
    ("Content-Length list", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}"),
    ("bad chunk size", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\n{}\r\n0\r\n\r\n"),
    ("chunk size past uint64", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"fffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
    ("unknown transfer coding", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}"),
    ("chunked then gzip", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n"),
    ("gzip then chunked", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n"),
    ("identity coding", b"POST /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{}"),
    ("transfer coding on a GET", b"GET /v1/segments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_malformed_requests_get_4xx_or_close(hs, name, data):
    """Anything unparseable is answered 4xx (or the connection is closed); never 5xx,
    never a hang, and the server keeps serving."""
    with RowsUnchanged():
        if data.startswith(b"POST"):
            # authenticated, so that the framing (not the missing token) is what is tested
            data = data.replace(b"Host: x\r\n", b"Host: x\r\nAuthorization: Bearer " + tok().encode() +
                                b"\r\nContent-Type: application/json\r\n", 1)
        c = RawConn(hs.port, timeout=10)
        try:
            c.send(data)
            try:
                r = c.response()
            except socket.timeout:
                raise AssertionError(f"{name}: no answer and no close within 10 s (the request "
                                     "stalls until the idle timeout)")
        finally:
            c.close()
        if r is not None:
            # a few are legal (empty lines before a request, obs-fold, a NUL that MHD keeps)
            # 505 is HTTP's own answer to an unknown version (MHD sends it); 501 is RFC
            # 9112's answer to a transfer coding the server does not implement
            ok = 200 <= r.status < 500 or (r.status == 505 and name == "unknown version") or \
                (r.status == 501 and b"Transfer-Encoding" in data)
            assert ok and r.status not in (201, 204), (name, r)
            if r.status < 400:
                assert name in ("empty lines then request", "obs-fold", "NUL in header value",
                                "space before colon", "absolute form", "unknown version"), (name, r)
    still_serving(hs)


def ctype_for(method, path):
    """merge-patch for PATCH /audiences/segments/{id}, JSON elsewhere."""
    if method == "PATCH" and path.startswith(AUD + "/") and not path.endswith(("/bulk", "/bulk-delete")):
        return "application/merge-patch+json"
    return "application/json"


def _routes_with_bodies():
    sid = str(uuid.uuid4())
    return [("POST", AUD, False), ("PATCH", AUD, False), ("PATCH", AUD + "/" + sid, False),
            ("POST", AUD + "/bulk", True), ("PATCH", AUD + "/bulk", True),
            ("POST", AUD + "/bulk-delete", True), ("POST", V1, False), ("PATCH", V1, False),
            ("POST", V1 + "/bulk", True), ("PATCH", V1 + "/bulk", True),
            ("POST", V1 + "/bulk-delete", True)]


def test_body_over_limit_with_content_length_every_route(small):
    """A Content-Length past the limit is refused with 413 before the body is read."""
    with RowsUnchanged():
        for method, path, bulk in _routes_with_bodies():
            limit = SMALL_BULK if bulk else SMALL_BODY
            ct = ctype_for(method, path)
            for n in (limit + 1, 10 ** 12):
                c = RawConn(small.port)
                try:
                    c.send(request_bytes(method, path, token=tok(), headers=[
                        "Content-Type: " + ct, f"Content-Length: {n}"], body=None))
                    r = c.response()
                    check_raw_against_spec(request_bytes(method, path), r)
                    b = assert_problem(r, 413, "body_too_large")
                    assert str(limit) in b["detail"]
                    assert r.headers.get("connection", "").lower() == "close"
                    # nothing more is read: the server closes instead of waiting for the body
                    assert c.wait_closed(5)
                finally:
                    c.close()
            # exactly at the limit is read (and refused for what it is, not its size)
            c = RawConn(small.port)
            try:
                c.send(request_bytes(method, path, token=tok(), body=b" " * (limit - 2) + b"{}",
                                     content_type=ct))
                r = c.response()
                check_raw_against_spec(request_bytes(method, path), r)
                assert r.status in (400, 404, 422), (method, path, r)
            finally:
                c.close()
    still_serving(small)


def test_body_over_limit_chunked_every_route(small):
    """Chunked (no Content-Length) past the limit: 413 once the body ends (or the
    connection is cut), on every route that takes a body."""
    with RowsUnchanged():
        for method, path, bulk in _routes_with_bodies():
            limit = SMALL_BULK if bulk else SMALL_BODY
            ct = ctype_for(method, path)
            c = RawConn(small.port)
            try:
                c.send(request_bytes(method, path, token=tok(), body=None, headers=[
                    "Content-Type: " + ct, "Transfer-Encoding: chunked"]))
                chunk = b"[" * 1000
                total = 0
                try:
                    while total <= limit + 4096:
                        c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        total += len(chunk)
                    c.send(b"0\r\n\r\n")
                except OSError:
                    pass  # cut: allowed
                r = c.response()
                check_raw_against_spec(request_bytes(method, path), r)
                if r is not None:
                    assert_problem(r, 413, "body_too_large")
            finally:
                c.close()
    still_serving(small)


def test_never_ending_chunked_body_is_cut(small):
    """A chunked body that never ends: the server drains up to 4x the limit, then cuts
    the connection (or answers 413); the client cannot make it read forever."""
    with RowsUnchanged():
        for path in (V1, AUD + "/bulk"):
            limit = SMALL_BULK if path.endswith("bulk") else SMALL_BODY
            c = RawConn(small.port, timeout=10)
            sent, outcome = 0, None
            t0 = time.time()
            try:
                c.send(request_bytes("POST", path, token=tok(), body=None, headers=[
                    "Content-Type: application/json", "Transfer-Encoding: chunked"]))
                chunk = b"%x\r\n%s\r\n" % (16384, b"7" * 16384)
                while sent < 128 * MIB and time.time() - t0 < 30:
                    r, _, _ = select.select([c.sock], [], [], 0)
                    if r:
                        outcome = c.response() or "cut"
                        break
                    try:
                        c.sock.sendall(chunk)
                    except OSError:
                        outcome = "cut"
                        break
                    sent += 16384
            finally:
                c.close()
            assert outcome is not None, f"{sent} bytes accepted without a cut or an answer"
            if outcome != "cut":
                assert outcome.status == 413, outcome
            # the server reads 4x the limit; the rest sat in socket buffers when it cut
            assert sent < 4 * limit + 16 * MIB, f"{sent} bytes sent for a limit of {limit}"
            record("never_ending_chunked", path=path, limit=limit, bytes_sent_before_cut=sent,
                   outcome=outcome if outcome == "cut" else outcome.status)
    still_serving(small)


def test_two_different_content_length_headers(hs):
    """MHD takes the first Content-Length. Either that length is honoured or the request
    is refused; the second length never decides what is stored."""
    tenant = f"hx-cl-{RUN}"
    token = tok(tenant)
    # first length covers a complete JSON object; the second would take more bytes
    name1 = "cl-first-" + uuid.uuid4().hex[:6]
    body = json.dumps(v1_body(name1)).encode()
    tail = b'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'
    with RowsUnchanged(exclude_tenants=[tenant]):
        c = RawConn(hs.port)
        try:
            c.send(request_bytes("POST", V1, token=token, body=body + tail, headers=[
                f"Content-Length: {len(body)}", f"Content-Length: {len(body) + len(tail)}"]))
            r = c.response()
            check_raw_against_spec(request_bytes("POST", V1), r)
        finally:
            c.close()
        assert r is not None and r.status in (201, 400), r
        rows = psql("SELECT name FROM v1_segments WHERE tenant = %s", tenant)
        if r.status == 201:
            assert r.json()["name"] == name1 and rows == [(name1,)]
        else:
            assert rows == []
        # first length cuts the JSON short: refused, nothing stored
        name2 = "cl-second-" + uuid.uuid4().hex[:6]
        body2 = json.dumps(v1_body(name2)).encode()
        c = RawConn(hs.port)
        try:
            c.send(request_bytes("POST", V1, token=token, body=body2, headers=[
                "Content-Length: 5", f"Content-Length: {len(body2)}"]))
            r = c.response()
            check_raw_against_spec(request_bytes("POST", V1), r)
        finally:
            c.close()
        assert r is None or r.status == 400, r
        assert psql("SELECT count(*) FROM v1_segments WHERE tenant = %s AND name = %s",
                    tenant, name2) == [(0,)]
    still_serving(hs)


def test_content_length_with_chunked(hs):
    """Content-Length and Transfer-Encoding: chunked together: one framing wins (MHD:
    chunked), the answer is sane, and at most the one intended segment is stored."""
    tenant = f"hx-te-{RUN}"
    token = tok(tenant)
    name = "te-" + uuid.uuid4().hex[:6]
    body = json.dumps(v1_body(name)).encode()
    smuggled = request_bytes("DELETE", V1 + "/seg_AAAAAAAAAAAAA", token=token)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with RowsUnchanged(exclude_tenants=[tenant]):
        c = RawConn(hs.port)
        try:
            c.send(request_bytes("POST", V1, token=token, body=chunked + smuggled, headers=[
                "Transfer-Encoding: chunked", f"Content-Length: {len(chunked) + len(smuggled)}"]))
            r1 = c.response()
            check_raw_against_spec(request_bytes("POST", V1), r1)
            assert r1 is not None and r1.status in (201, 400), r1
            r2 = c.response() if r1.status == 201 and not r1.closed else None
            if r2 is not None:
                assert r2.status == 404  # the trailing request is its own request, nothing more
        finally:
            c.close()
        names = [x[0] for x in psql("SELECT name FROM v1_segments WHERE tenant = %s", tenant)]
        assert names in ([], [name]), names
    still_serving(hs)


def test_request_split_across_many_slow_writes(hs):
    """A request line and header block (and body) sent in 1-3 byte writes, with CR and LF
    in separate segments, is assembled and served exactly once."""
    tenant = f"hx-split-{RUN}"
    name = "split-" + uuid.uuid4().hex[:6]
    data = request_bytes("POST", V1, token=tok(tenant), body=v1_body(name, description="é ✓"),
                         headers=["X-Request-Id: split-1"])
    with RowsUnchanged(exclude_tenants=[tenant]):
        c = RawConn(hs.port, timeout=20)
        try:
            i, k = 0, 0
            while i < len(data):
                n = 1 + k % 3
                c.send(data[i:i + n])
                i += n
                k += 1
                time.sleep(0.002)
            r = c.response()
            check_raw_against_spec(request_bytes("POST", V1), r)
            assert r.status == 201, r
            seg = r.json()
            assert seg["name"] == name and seg["description"] == "é ✓"
            # and a GET on the same connection, one byte per write
            c.send_slowly(request_bytes("GET", V1 + "/" + seg["id"], token=tok(tenant)), pause=0.001)
            r = c.response()
            assert r.status == 200 and r.json()["id"] == seg["id"]
        finally:
            c.close()
        assert psql("SELECT name, description FROM v1_segments WHERE tenant = %s", tenant) == \
            [(name, "é ✓")]
    still_serving(hs)


# ====================================================================== hostile JSON

AUD_STRING_FIELDS = ["management_type", "name", "owner_id", "description", "created_at"]
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80",
            b"\xf8\x88\x80\x80\x80"]


def aud_with_raw(field, raw):
    """An otherwise valid /audiences body whose field holds the raw bytes raw."""
    b = aud_body("placeholder", description="d", created_at="2023-11-07T05:31:56Z")
    b[field] = "x\u2603MARK\u2603y"
    return json.dumps(b, ensure_ascii=False).encode().replace("\u2603MARK\u2603".encode(), raw)


def raw_string_bodies(raw):
    """(method, path, body bytes, where) for raw bytes placed inside every string of both
    dialects' bodies: top-level fields, property codes and values, deprecated
    properties, v1 constraint fields, relations and values, bulk items."""
    out = []
    for f in AUD_STRING_FIELDS:
        out.append(("POST", AUD, aud_with_raw(f, raw), "aud " + f))
    base = json.dumps(aud_body("p", properties={"CODE": ["VALUE"]},
                               deprecated_properties={"DK": "DV"})).encode()
    for m in (b"CODE", b"VALUE", b"DK", b"DV"):
        out.append(("POST", AUD, base.replace(m, b"x" + raw + b"y"), "aud properties " + m.decode()))
    v = json.dumps(v1_body("NAME", description="DESC", constraints=[
        {"type": "AND", "constraints": [{"field": "deviceModel", "relation": "==", "value": "VAL"}]}])).encode()
    for m in (b"NAME", b"DESC", b"deviceModel", b"==", b"VAL", b"AND"):
        out.append(("POST", V1, v.replace(m, m[:1] + raw + m[1:]), "v1 " + m.decode()))
    out.append(("POST", V1 + "/bulk", b'{"data":[' + v.replace(b"NAME", raw) + b"]}", "v1 bulk item"))
    out.append(("POST", AUD + "/bulk", b'{"data":[' + base.replace(b'"p"', b'"' + raw + b'"') + b"]}",
                "aud bulk item"))
    out.append(("PATCH", V1, json.dumps({"id": "seg_AAAAAAAAAAAAA", "name": "N"}).encode()
                .replace(b'"N"', b'"' + raw + b'"'), "v1 patch"))
    out.append(("POST", AUD, base.replace(b'"name"', b'"na' + raw + b'me"'), "aud key"))
    out.append(("PATCH", AUD + "/" + OWNER, b'{"name":"x' + raw + b'y"}', "aud merge patch"))
    out.append(("PATCH", AUD, json.dumps(dict(aud_body("N"), id=OWNER)).encode()
                .replace(b'"N"', b'"' + raw + b'"'), "aud replace"))
    return out


def assert_every_string_refused(hs, raw):
    """raw in every string of every body kind: 400 malformed_json each time, nothing stored."""
    with RowsUnchanged():
        for method, path, data, where in raw_string_bodies(raw):
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data))
            assert_problem(r, 400, "malformed_json")
    still_serving(hs)


@pytest.mark.parametrize("raw", BAD_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_in_every_string_is_400(hs, raw):
    assert_every_string_refused(hs, raw)


@pytest.mark.parametrize("nul", [b"\\u0000", b"\x00", b"%00\\u0000"], ids=["escaped", "raw", "pct+escaped"])
def test_nul_in_every_string_is_400(hs, nul):
    assert_every_string_refused(hs, nul)


def test_lone_surrogate_escapes_are_400(hs):
    with RowsUnchanged():
        for esc in [b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\udc00\\ud800"]:
            for method, path, data, where in raw_string_bodies(esc):
                r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data))
                assert_problem(r, 400, "malformed_json")


# Echoed user strings are cut to a few dozen bytes in messages; a multi-byte character
# straddling the cut must not turn the problem into invalid UTF-8 (jansson then drops the
# detail or the whole errors[] item, leaving a 4xx that says nothing).
def _straddle(n):
    return "a" * n + "é" * 40


@pytest.mark.parametrize("cut", [38, 39, 58, 59, 62, 63, 78, 79, 230, 231])  # cuts at 40/60/64/80/240 bytes
def test_multibyte_strings_echoed_in_errors_stay_valid(hs, cut):
    s = _straddle(cut)
    cases = [
        ("POST", AUD, aud_body("n", management_type=s), "/management_type"),
        ("POST", AUD, aud_body("n", owner_id=s), "/owner_id"),
        ("POST", AUD, aud_body("n", created_at=s), "/created_at"),
        ("POST", AUD, dict(aud_body("n"), **{s: 1}), None),
        ("POST", AUD, aud_body("n", properties={s: ["v"]}), None),
        ("POST", AUD + "/bulk-delete", {"data": [{"id": s}]}, None),
        ("POST", V1 + "/bulk-delete", {"data": [{"id": s}]}, None),
        ("POST", AUD + "/bulk", {"data": [], s: 1}, None),
        ("POST", V1, v1_body("n", constraints=[{"type": s, "constraints": GROUPS[0]["constraints"]}]), None),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": s, "relation": "==", "value": "x"}]}]), None),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": "country", "relation": s, "value": "x"}]}]), None),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": "country", "relation": "==", "value": s}]}]), None),
        ("PATCH", V1, {"id": s, "name": "x"}, "/id"),
    ]
    with RowsUnchanged():
        for method, path, body, ptr in cases:
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=body))
            assert r is not None, (method, path)
            b = json.loads(r.body.decode("utf-8"))  # strict: the answer is valid UTF-8
            if r.status == 200 and "bulk" in path:
                # the envelope refuses the item, and says why
                assert b["data"] == [] and len(b["errors"]) == 1, \
                    f"{method} {path}: the item's error vanished (cut at {cut}): {b}"
                assert b["errors"][0]["detail"] and b["errors"][0]["source"]["pointer"] == "/data/0/id", b
                continue
            assert 400 <= r.status < 500, (path, body, r)
            assert b.get("detail"), (method, path, ptr, b)
            if r.status == 422:
                errs = b.get("errors") or []
                assert errs, f"{method} {path}: a 422 without errors[] (cut at {cut}): {b}"
                for e in errs:
                    assert e.get("pointer") is not None and e.get("detail"), (method, path, b)
                if ptr:
                    assert ptr in [e["pointer"] for e in errs], (method, path, b)
        # the same in a path id and a query parameter name
        r = raw_exchange(hs.port, request_bytes("GET", AUD + "/" + urllib.parse.quote(s), token=tok()))
        assert_problem(r, 400, "invalid_path_parameter")
        r = raw_exchange(hs.port, request_bytes("GET", V1 + "/" + urllib.parse.quote(s), token=tok()))
        assert_problem(r, 400, "invalid_path_parameter")
        r = raw_exchange(hs.port, request_bytes("GET", AUD + "?" + urllib.parse.quote(s) + "=1", token=tok()))
        b = assert_problem(r, 400, "invalid_query_parameter")
        assert b.get("errors"), b


@pytest.mark.parametrize("raw", [b"%FF", b"%C0%AF", b"%ED%A0%80", b"%E2%82", b"a%FFb"])
def test_invalid_utf8_in_path_ids_and_query_parameters_is_400(hs, raw):
    r = raw.decode()
    with RowsUnchanged():
        for method in ("GET", "DELETE"):
            for base in (AUD, V1):
                resp = raw_exchange(hs.port, request_bytes(method, base + "/" + r, token=tok()))
                b = assert_problem(resp, 400, "invalid_path_parameter")
        for path, param in [(AUD, "name"), (AUD, "owner_id"), (AUD, "management_type"),
                            (AUD, "updated_since"), (AUD, "property"), (AUD, "cursor"), (AUD, "limit"),
                            (V1, "name"), (V1, "cursor"), (V1, "limit")]:
            value = ("code:" + r) if param == "property" else r
            resp = raw_exchange(hs.port, request_bytes("GET", f"{path}?{param}={value}", token=tok()))
            b = assert_problem(resp, 400, "invalid_query_parameter")
            assert f"/query/{param}" in [e["pointer"] for e in b["errors"]], (path, param, b)
            # and as a parameter name
            resp = raw_exchange(hs.port, request_bytes("GET", f"{path}?{r}=1", token=tok()))
            b = assert_problem(resp, 400, "invalid_query_parameter")
            assert b.get("errors"), b
        resp = raw_exchange(hs.port, request_bytes("POST", f"{V1}/bulk-delete?atomic={r}", token=tok(),
                                                   body={"data": [{"id": "seg_AAAAAAAAAAAAA"}]}))
        assert_problem(resp, 400, "invalid_query_parameter")


def _nest(depth, leaf=b"1"):
    return b"[" * depth + leaf + b"]" * depth


@pytest.mark.parametrize("depth", [10000, 2049])
def test_nesting_past_the_parser_limit_is_400(hs, depth):
    deep = _nest(depth)
    deep_obj = b'{"a":' * depth + b"1" + b"}" * depth
    bodies = [
        ("POST", AUD, deep), ("POST", AUD, deep_obj),
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","properties":{"a":' + deep + b"}}"),
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","deprecated_properties":{"a":' + deep_obj + b"}}"),
        ("PATCH", AUD + "/" + str(uuid.uuid4()), b'{"deprecated_properties":' + deep_obj + b"}"),
        ("POST", V1, b'{"name":"n","constraints":' + deep + b"}"),
        ("POST", V1, b'{"name":"n","constraints":[{"type":"AND","constraints":[{"field":"country",'
                     b'"relation":"==","value":' + deep + b"}]}]}"),
        ("POST", V1 + "/bulk", b'{"data":' + deep + b"}"),
        ("PATCH", AUD + "/bulk", b'{"data":[' + deep_obj + b"]}"),
    ]
    with RowsUnchanged():
        for method, path, data in bodies:
            ct = ctype_for(method, path)
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data, content_type=ct))
            b = assert_problem(r, 400, "malformed_json")
            assert "depth" in b["detail"], b
    still_serving(hs)


def test_nesting_within_the_parser_limit_is_422(hs):
    """2000 levels parse; the validators refuse them without recursing into trouble."""
    deep = _nest(2000)
    deep_obj = b'{"a":' * 2000 + b"1" + b"}" * 2000
    bodies = [
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","deprecated_properties":{"a":' + deep_obj + b"}}", "/deprecated_properties"),
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","properties":{"a":' + deep + b"}}", "/properties"),
        ("POST", V1, b'{"name":"n","constraints":' + deep + b"}", "/constraints/0"),
        ("POST", V1, b'{"name":' + deep + b',"constraints":[]}', "/name"),
        ("POST", AUD + "/bulk", b'{"data":[{"management_type":"selfmanaged","name":"n","owner_id":"' +
         OWNER.encode() + b'","deprecated_properties":' + deep_obj + b"}]}", None),
    ]
    with RowsUnchanged():
        for method, path, data, ptr in bodies:
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data))
            assert r is not None and r.status in (200, 422), (path, r)
            b = r.json()
            if r.status == 422:
                if ptr:
                    assert any(e["pointer"].startswith(ptr) for e in b["errors"]), b
            else:  # a bulk envelope: the item refused, nothing stored
                assert b["data"] == [] and b["errors"], b
    still_serving(hs)


MIB = 1024 * 1024


def test_one_mib_strings_are_refused_in_every_field(hs):
    """A 1 MiB string makes the body larger than the 1 MiB limit (413); just under the
    limit, every string field refuses it by length (4xx) — nothing is stored."""
    big = "x" * (MIB - 400)
    cases = [
        ("POST", AUD, aud_body(big)),
        ("POST", AUD, aud_body("n", description=big)),
        ("POST", AUD, aud_body("n", management_type=big)),
        ("POST", AUD, aud_body("n", owner_id=big)),
        ("POST", AUD, aud_body("n", created_at=big)),
        ("POST", AUD, aud_body("n", properties={big[:-20]: ["v"]})),
        ("POST", AUD, aud_body("n", properties={"code": [big]})),
        ("POST", AUD, aud_body("n", deprecated_properties={"k": big})),
        ("POST", AUD, aud_body("n", deprecated_properties={big[:-20]: 1})),
        ("POST", AUD, dict(aud_body("n"), **{big[:-100]: 1})),
        ("PATCH", AUD, dict(aud_body(big), id=str(uuid.uuid4()))),
        ("POST", V1, v1_body(big)),
        ("POST", V1, v1_body("n", description=big)),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": "deviceModel", "relation": "==", "value": big}]}])),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": big, "relation": "==", "value": "x"}]}])),
        ("POST", V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
            {"field": "country", "relation": big, "value": "x"}]}])),
        ("POST", V1, v1_body("n", constraints=[{"type": big, "constraints": GROUPS[0]["constraints"]}])),
        ("PATCH", V1, {"id": "seg_" + big, "name": "x"}),
        ("POST", V1 + "/bulk", {"data": [v1_body(big)]}),
        ("POST", AUD + "/bulk", {"data": [aud_body("n", properties={"code": [big]})]}),
    ]
    with RowsUnchanged():
        stored = []
        for i, (method, path, body) in enumerate(cases):
            data = json.dumps(body).encode()
            assert len(data) <= MIB, len(data)
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data), timeout=30)
            assert r is not None, (method, path)
            b = r.json()
            if path.endswith("/bulk") and r.status == 200:
                # bulk: the item is refused inside the envelope
                if b["data"] or not b["errors"]:
                    stored.append((i, method, path, r.status))
                    for x in b["data"]:
                        psql("DELETE FROM %s WHERE tenant = %%s AND id::text = %%s" %
                             ("v1_segments" if path.startswith(V1) else "audience_segments"), TA, x["id"])
            elif not 400 <= r.status < 500:
                stored.append((i, method, path, r.status))
                if r.status in (200, 201):
                    psql("DELETE FROM %s WHERE tenant = %%s AND id::text = %%s" %
                         ("v1_segments" if path.startswith(V1) else "audience_segments"), TA, b["id"])
            # the whole string is never echoed back
            assert len(r.body) < 16384 or r.status in (200, 201), (method, path, len(r.body))
        assert not stored, "1 MiB strings accepted (case index, method, path, status): %s" % stored
        # a full 1 MiB string: over the body limit
        r = raw_exchange(hs.port, request_bytes("POST", V1, token=tok(), body=v1_body("x" * MIB)), timeout=30)
        assert_problem(r, 413, "body_too_large")
        # in a query parameter or a header: MHD's limits
        assert raw_exchange(hs.port, request_bytes("GET", V1 + "?name=" + "x" * MIB, token=tok())).status == 414
    still_serving(hs)


@pytest.mark.parametrize("number", [b"9223372036854775808", b"-9223372036854775809",
                                    b"18446744073709551616", b"1" + b"0" * 40, b"1e400", b"-1e400"])
def test_integers_past_int64_are_400(hs, number):
    bodies = [
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","approximated_size":' + number + b"}"),
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","properties":{"a":[' + number + b"]}}"),
        ("POST", AUD, b'{"management_type":"selfmanaged","name":"n","owner_id":"' + OWNER.encode() +
         b'","no":' + number + b"}"),
        ("POST", V1, b'{"name":"n","constraints":[{"type":"AND","constraints":[{"field":"firstSession",'
                     b'"relation":">=","value":' + number + b"}]}]}"),
        ("POST", V1, b'{"name":"n","constraints":[{"type":"AND","constraints":[{"field":"sessionCount",'
                     b'"relation":"==","value":' + number + b"}]}]}"),
        ("POST", V1 + "/bulk", b'{"data":[{"name":"n","constraints":[{"type":"AND","constraints":'
                               b'[{"field":"lastSession","relation":"<","value":' + number + b"}]}]}]}"),
    ]
    with RowsUnchanged():
        for method, path, data in bodies:
            r = raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=data))
            b = assert_problem(r, 400, "malformed_json")
            assert "overflow" in b["detail"] or "too big" in b["detail"], b
        n = number.decode()
        for path, q in [(AUD, "limit"), (V1, "limit"), (AUD, "cursor")]:
            r = raw_exchange(hs.port, request_bytes("GET", f"{path}?{q}={n}", token=tok()))
            assert_problem(r, 400, "invalid_query_parameter")


def test_int64_extremes_are_exact_or_refused(ta):
    """The largest and smallest int64 values are kept exactly where the field allows them
    and refused where it does not, with no arithmetic overflow in the checks."""
    top, bottom = 2 ** 63 - 1, -2 ** 63
    r = ta.post(AUD, aud_body("int64", approximated_size=top))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert ta.get(AUD + "/" + sid).json()["approximated_size"] == top
    assert psql("SELECT approximated_size FROM audience_segments WHERE tenant = %s AND id = %s",
                TA, sid) == [(top,)]
    problem(ta.post(AUD, aud_body("int64", approximated_size=bottom)), 422)
    for rels in [((">", top),), (("<", bottom),), ((">", top - 1), ("<", top)), ((">=", top), ("<=", top)),
                 (("!=", top), (">=", top - 1)), (("==", top), ("!=", top)), ((">", 0), ("<", top)),
                 ((">=", 0), ("<=", top), ("!=", 0), ("!=", top))]:
        for field in ("firstSession", "lastSession", "createdAt"):
            cs = [{"field": field, "relation": rel, "value": v} for rel, v in rels]
            r = ta.post(V1, v1_body("extremes", constraints=[{"type": "AND", "constraints": cs}]))
            assert r.status_code in (201, 422), r.text
            if r.status_code == 201:
                assert r.json()["constraints"][0]["constraints"] == cs


@pytest.mark.parametrize("body", [
    b'{"management_type":"selfmanaged","name":"a","name":"b","owner_id":"%s"}',
    b'{"management_type":"selfmanaged","name":"a","nam\\u0065":"b","owner_id":"%s"}',
    b'{"management_type":"selfmanaged","name":"a","owner_id":"%s","properties":{"k":["1"],"k":["2"]}}',
    b'{"management_type":"selfmanaged","name":"a","owner_id":"%s","deprecated_properties":{"x":{"y":1,"y":2}}}',
    b'{"management_type":"selfmanaged","name":"a","owner_id":"%s","owner_id":"%s"}',
], ids=["top", "escaped-equal", "properties", "nested-deprecated", "same-value"])
def test_duplicate_keys_are_400_audiences(hs, body):
    data = body.replace(b"%s", OWNER.encode())
    with RowsUnchanged():
        for method, path in [("POST", AUD), ("PATCH", AUD)]:
            d = data if method == "POST" else data.replace(b"{", b'{"id":"%s",' % str(uuid.uuid4()).encode(), 1)
            b = assert_problem(raw_exchange(hs.port, request_bytes(method, path, token=tok(), body=d)),
                               400, "malformed_json")
            assert "duplicate" in b["detail"], b
        b = assert_problem(raw_exchange(hs.port, request_bytes("POST", AUD + "/bulk", token=tok(),
                                                              body=b'{"data":[' + data + b"]}")),
                           400, "malformed_json")


@pytest.mark.parametrize("body", [
    b'{"name":"a","name":"b","constraints":%s}',
    b'{"name":"a","constraints":[{"type":"AND","type":"OR","constraints":[{"field":"country","relation":"==","value":"PL"}]}]}',
    b'{"name":"a","constraints":[{"type":"AND","constraints":[{"field":"country","field":"email","relation":"==","value":"PL"}]}]}',
    b'{"name":"a","constraints":[{"type":"AND","constraints":[{"field":"country","relation":"==","value":"PL","value":"DE"}]}]}',
    b'{"data":[],"data":[{"name":"a","constraints":%s}]}',
], ids=["top", "group-type", "field", "value", "bulk-data"])
def test_duplicate_keys_are_400_v1(hs, body):
    data = body.replace(b"%s", json.dumps(GROUPS).encode())
    with RowsUnchanged():
        path = V1 + "/bulk" if data.startswith(b'{"data"') else V1
        b = assert_problem(raw_exchange(hs.port, request_bytes("POST", path, token=tok(), body=data)),
                           400, "malformed_json")
        assert "duplicate" in b["detail"], b


# ====================================================================== SQL metacharacters

SQLI = ["'", "''", "'; DROP TABLE audience_segments; --", "\"; DROP TABLE v1_segments; --",
        "x' OR '1'='1", "1; SELECT pg_sleep(10)--", "'||pg_sleep(10)||'", "$1", "$$;$$", "\\",
        "\\'", "%", "_", "%_%", "/*", "*/ --", ";", "`", "E'\\x27'", "%00", "%2500", "%27",
        "{\"$ne\":null}", "é’‘“”", "\u2028\u2029", "\U0001F600"]


def test_sql_metacharacters_in_free_text_are_stored_verbatim(ta):
    """Free-text fields take any text: stored and returned byte for byte (bind parameters,
    never SQL text); nothing else changes and nothing sleeps."""
    before = snapshot(exclude_tenants=[TA])
    made = []
    t0 = time.time()
    for s in SQLI:
        r = ta.post(AUD, aud_body(s + " n", description=s, properties={"code": [s]},
                                  deprecated_properties={s: s}))
        assert r.status_code == 201, (s, r.text)
        seg = r.json()
        assert seg["name"] == s + " n" and seg["description"] == s
        assert seg["properties"] == {"code": [s]} and seg["deprecated_properties"] == {s: s}
        assert ta.get(AUD + "/" + seg["id"]).json() == seg
        made.append(("audience_segments", seg["id"], s))
        r = ta.post(V1, v1_body(s + " n", description=s, constraints=[{"type": "AND", "constraints": [
            {"field": "deviceModel", "relation": "==", "value": s},
            {"field": "customUserId", "relation": "contains", "value": s}]}]))
        assert r.status_code == 201, (s, r.text)
        seg = r.json()
        assert seg["name"] == s + " n" and seg["description"] == s
        assert [c["value"] for c in seg["constraints"][0]["constraints"]] == [s, s]
        made.append(("v1_segments", seg["id"], s))
        # and through PATCH of both dialects
        r = ta.patch(V1, {"id": seg["id"], "name": s + " p"})
        assert r.status_code == 200 and r.json()["name"] == s + " p"
    assert time.time() - t0 < 60
    for table, sid, s in made:
        rows = psql(f"SELECT description FROM {table} WHERE tenant = %s AND id::text = %s", TA, sid)
        assert rows == [(s,)], (table, s, rows)
    assert_same_rows(before, snapshot(exclude_tenants=[TA]))
    for t in ("audience_segments", "v1_segments", "schema_migrations"):
        assert psql("SELECT to_regclass(%s) IS NOT NULL", t) == [(True,)]


def test_sql_metacharacters_in_constrained_fields_are_422(ta):
    with RowsUnchanged():
        for s in SQLI:
            cases = [
                (AUD, aud_body("n", management_type=s), "/management_type"),
                (AUD, aud_body("n", owner_id=s), "/owner_id"),
                (AUD, aud_body("n", created_at=s), "/created_at"),
                (AUD, aud_body("n", properties={s + "%": ["v"]}), "/properties/"),
                (V1, v1_body("n", constraints=[{"type": s, "constraints": GROUPS[0]["constraints"]}]),
                 "/constraints/0/type"),
                (V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
                    {"field": s, "relation": "==", "value": "x"}]}]), "/constraints/0/constraints/0/field"),
                (V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
                    {"field": "country", "relation": s, "value": "PL"}]}]), "/constraints/0/constraints/0/relation"),
                (V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
                    {"field": "country", "relation": "==", "value": s}]}]), "/constraints/0/constraints/0/value"),
                (V1, v1_body("n", constraints=[{"type": "AND", "constraints": [
                    {"field": "email", "relation": "==", "value": s}]}]), "/constraints/0/constraints/0/value"),
            ]
            for path, body, ptr in cases:
                b = problem(ta.post(path, body), 422)
                assert any(e["pointer"].startswith(ptr) for e in b["errors"]), (s, ptr, b)
            b = problem(ta.patch(AUD, dict(aud_body("n"), id=s)), 422)
            assert "/id" in [e["pointer"] for e in b["errors"]]
            b = problem(ta.patch(V1, {"id": s, "name": "x"}), 422)
            assert "/id" in [e["pointer"] for e in b["errors"]]


def _id_payloads(real_id):
    """Path segments that must never reach a stored segment: SQL, %00 in every position,
    the real id with a suffix, and encodings of both."""
    q = urllib.parse.quote
    out = [q(s, safe="") for s in SQLI if s not in ("%", "_")]
    out += [real_id + "%00", real_id + "%00y", "%00" + real_id, real_id[:8] + "%00" + real_id[9:],
            real_id + "%2500", real_id + "%27", real_id + "'", q(real_id + "' OR '1'='1", safe=""),
            real_id + "%20", real_id + "%0a", real_id + ";", real_id + "%3B", real_id + "%5C"]
    return out


def test_sql_metacharacters_and_pct00_in_path_ids(ta):
    """x%00y never routes as x: GET, HEAD, PATCH and DELETE of both dialects answer 400
    (or 404) and the real segments stay as they were."""
    a = ta.post(AUD, aud_body("victim a")).json()
    v = ta.post(V1, v1_body("victim v")).json()
    with RowsUnchanged():
        for base, real in ((AUD, a["id"]), (V1, v["id"])):
            for seg in _id_payloads(real):
                path = base + "/" + seg
                for method in ("GET", "HEAD", "DELETE", "PATCH"):
                    if method == "PATCH" and base == V1:
                        continue  # no PATCH /v1/segments/{id}; the id travels in the body
                    data = request_bytes(method, path, token=tok(), body={"name": "stolen"} if method == "PATCH" else None,
                                         content_type="application/merge-patch+json")
                    c = RawConn(ta.server.port)
                    try:
                        c.send(data)
                        r = c.response() if method != "HEAD" else None
                        check_raw_against_spec(data, r)
                        if method == "HEAD":
                            head = c.sock.recv(4096)
                            assert head.split(b" ")[1] in (b"400", b"404"), (path, head[:100])
                    finally:
                        c.close()
                    if r is not None:
                        assert r.status in (400, 404), (method, path, r)
                        if r.status == 400:
                            assert r.json()["code"] == "invalid_path_parameter"
    assert ta.get(AUD + "/" + a["id"]).json() == a
    assert ta.get(V1 + "/" + v["id"]).json() == v


QUERY_PARAMS = {AUD: ["limit", "cursor", "owner_id", "management_type", "name", "property", "updated_since"],
                V1: ["limit", "cursor", "name"]}


def test_sql_metacharacters_and_pct00_in_query_parameters(hs, ta):
    """Every query parameter of both lists, with SQL and %00 in the value and the name:
    400 or a page of the caller's own segments that match the literal text; another
    tenant's segments never show, %00 never truncates a filter."""
    other = Api(hs, tenant=f"hx-o-{RUN}")
    secret_a = other.post(AUD, aud_body("zz-secret", properties={"code": ["v"]})).json()
    secret_v = other.post(V1, v1_body("zz-secret")).json()
    mine = ta.post(V1, v1_body("qq-prefix-only")).json()
    mine_a = ta.post(AUD, aud_body("qq-prefix-only")).json()
    secret_ids = {secret_a["id"], secret_v["id"]}
    q = urllib.parse.quote
    with RowsUnchanged():
        for path, params in QUERY_PARAMS.items():
            for p in params:
                for s in SQLI + ["%00", "a%00b", "' OR tenant <> '", "zz-secret' OR '1'='1"]:
                    for raw in {q(s, safe=""), s.replace(" ", "+") if "%" in s else q(s, safe="")}:
                        value = raw if p != "property" else "code:" + raw
                        r = ta.get(path + "?" + p + "=" + value)
                        assert r.status_code in (200, 400), (path, p, s, r.text)
                        if r.status_code == 200:
                            ids = {x["id"] for x in r.json()["items"]}
                            assert not ids & secret_ids, (path, p, s)
                        else:
                            b = problem(r, 400, "invalid_query_parameter")
                            assert f"/query/{p}" in [e["pointer"] for e in b["errors"]], (p, s, b)
                    # as the name of a parameter: unknown, refused
                    b = problem(ta.get(path + "?" + q(p + s, safe="") + "=1"), 400, "invalid_query_parameter")
            # %00 must not cut the name filter to its prefix
            for path2, sid in ((V1, mine["id"]), (AUD, mine_a["id"])):
                r = ta.get(path2 + "?name=qq-prefix%00zzz")
                assert r.status_code in (200, 400)
                if r.status_code == 200:
                    assert sid not in {x["id"] for x in r.json()["items"]}
                r = ta.get(path2 + "?name=qq-prefix%00")
                if r.status_code == 200:
                    assert sid not in {x["id"] for x in r.json()["items"]}
            # an owner_id made of SQL finds nothing of anyone's
            r = ta.get(AUD + "?owner_id=" + q(OWNER + "' OR '1'='1", safe=""))
            problem(r, 400, "invalid_query_parameter")
        r = ta.get(AUD + "?name=" + q("zz-secret"))
        assert r.status_code == 200 and r.json()["items"] == []
        r = ta.post(V1 + "/bulk-delete?atomic=true%00", {"data": [{"id": mine["id"]}]})
        problem(r, 400, "invalid_query_parameter")
        r = ta.post(V1 + "/bulk-delete?atomic=" + q("true' --"), {"data": [{"id": mine["id"]}]})
        problem(r, 400, "invalid_query_parameter")
    assert ta.get(V1 + "/" + mine["id"]).status_code == 200


# ====================================================================== tokens

class Listener:
    """A TCP listener that records whether anyone connected (jku/x5u must never be
    fetched)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.contacts = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                c, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(1)
            try:
                self.contacts.append(c.recv(4096))
            except OSError:
                self.contacts.append(b"")
            c.close()

    def close(self):
        self.stop.set()
        self.t.join(2)
        self.sock.close()


def _assert_401(r):
    b = problem(r, 401, "invalid_token")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    return b


def test_jku_x5u_kid_jwk_headers_are_never_fetched(ta):
    lis = Listener()
    try:
        base = f"http://127.0.0.1:{lis.port}"
        hints = {"kid": "../../../../../dev/null", "jku": base + "/jwks.json", "x5u": base + "/cert.pem"}
        # validly signed: accepted, the hints ignored
        for h in (hints, {"jku": base + "/a"}, {"x5u": base + "/b"}, {"kid": base + "/k"}):
            assert ta.get(AUD, token=tok(header=h)).status_code == 200
        attacker = b"attacker-controlled-secret-of-32-bytes!!"
        forged = [
            tok(secret=b"x" * 40, header=hints),
            tok(secret=attacker, header=dict(hints, jwk={"kty": "oct", "k": b64url(attacker)})),
            tok(secret=b"", header={"kid": "/dev/null"}),
            tok(secret=attacker, header={"jku": base + "/jwks.json", "kid": "attacker"}),
            tok(secret=attacker, header={"x5c": [base64.b64encode(b"not a cert").decode()], "x5u": base}),
            tok(alg="none", header=hints),
        ]
        for t in forged:
            _assert_401(ta.get(AUD, token=t))
            _assert_401(ta.post(V1, v1_body("forged"), token=t))
        time.sleep(1.0)
        assert lis.contacts == [], f"segmentd fetched a key URL: {lis.contacts[:2]}"
    finally:
        lis.close()


def test_token_time_claims_at_int64_extremes(ta):
    """exp/nbf/iat at and past the int64 range: refused or accepted sanely, with no
    overflow in the leeway arithmetic (UBSan aborts the server on signed overflow; this
    found `exp + leeway` overflowing in auth.c, fixed in e08d9a3)."""
    top, bottom = 2 ** 63 - 1, -2 ** 63
    now = int(time.time())
    for claims in [{"exp": top}, {"exp": top - 10}, {"exp": bottom}, {"exp": bottom + 10},
                   {"nbf": top}, {"nbf": bottom}, {"iat": top}, {"iat": bottom},
                   {"exp": 2 ** 63}, {"exp": 2 ** 64}, {"nbf": 2 ** 63}, {"exp": -2 ** 63 - 1},
                   {"exp": 1e300}, {"nbf": 253402300800}, {"exp": now + 600, "nbf": 253402300800},
                   {"exp": now - 31}]:
        t = tok(claims=claims)
        r = ta.get(AUD, token=t)
        assert r.status_code in (200, 401), (claims, r.text)
        # again: an accepted token is now answered from the per-thread token cache, whose
        # time checks must not overflow either
        assert ta.get(AUD, token=t).status_code == r.status_code, claims
        if r.status_code == 401:
            _assert_401(r)
        if claims.get("nbf", 0) > now + 3600 or claims.get("exp", now + 1) < now - 30 \
                or isinstance(claims.get("exp"), float) or claims.get("exp", 0) >= 2 ** 63:
            assert r.status_code == 401, (claims, r.status_code)
        assert ta.server.proc.poll() is None, f"segmentd died on {claims}"
    still_serving(ta.server, ta)


def test_altered_tokens_refused(ta):
    good = tok()
    head, body, sig = good.split(".")
    raw_sig = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    flipped = bytes([raw_sig[0] ^ 1]) + raw_sig[1:]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    variants = {
        "one bit of the signature": f"{head}.{body}.{b64url(flipped)}",
        "signature truncated": f"{head}.{body}.{sig[:-2]}",
        "signature extended": f"{head}.{body}.{sig}AA",
        "signature of another token": f"{head}.{body}.{tok(tenant=TB).split('.')[2]}",
        "signature in standard base64": f"{head}.{body}.{base64.b64encode(raw_sig).decode()}",
        "empty signature": f"{head}.{body}.",
        "scope escalated": f"{head}.{b64url(json.dumps(dict(claims, scope='segments:read segments:write admin')).encode())}.{sig}",
        "exp extended": f"{head}.{b64url(json.dumps(dict(claims, exp=claims['exp'] + 86400)).encode())}.{sig}",
        "payload re-encoded with padding": f"{head}.{body}==.{sig}",
        "header alg none, same sig": f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}.{sig}",
        "header alg HS512, same sig": f"{b64url(json.dumps({'alg': 'HS512', 'typ': 'JWT'}).encode())}.{body}.{sig}",
        "header swapped for another token's": f"{tok(tenant=TB).split('.')[0]}x.{body}.{sig}",
        "extra part": f"{good}.{sig}",
        "whitespace inside": f"{head}. {body}.{sig}",
    }
    for name, t in variants.items():
        r = ta.get(AUD, token=t)
        assert r.status_code == 401, (name, r.status_code, r.text)
    assert ta.get(AUD, token=good).status_code == 200


def test_foreign_algorithms_refused_on_an_hmac_server(ta, tmp_path):
    key, pub = openssl_rsa_pair(str(tmp_path))
    rs = make_token(alg="RS256", signer=rs256_signer(key), tenant=TA)
    _assert_401(ta.get(AUD, token=rs))
    # HS256 signed with the RSA public key as the secret: not our secret, refused
    pem = open(pub, "rb").read()
    _assert_401(ta.get(AUD, token=make_token(alg="HS256", secret=pem, tenant=TA)))
    for alg in ("HS384", "HS512", "ES256", "PS256", "EdDSA", ""):
        _assert_401(ta.get(AUD, token=make_token(alg=alg, tenant=TA)))


def test_tenant_claims_with_sql_and_odd_text_are_isolated(hs, ta):
    """A tenant claim is only ever a bind parameter: tenants named with SQL or LIKE
    metacharacters see their own rows only."""
    mine = ta.post(V1, v1_body("tenant-isolation")).json()
    for tenant in [f"{TA}'OR'1'='1", f"{TA}%", "%", "_", f"{TA}'--", f"{TA[:-1]}_", "*", "\\", "é"]:
        api = Api(hs, tenant=tenant)
        with RowsUnchanged(exclude_tenants=[tenant]):
            problem(api.get(V1 + "/" + mine["id"]), 404)
            ids = {x["id"] for x in api.get(V1, params={"limit": 500}).json()["items"]}
            assert mine["id"] not in ids
            problem(api.delete(V1 + "/" + mine["id"]), 404)
            r = api.post(V1, v1_body("own"))
            assert r.status_code == 201
        assert psql("SELECT tenant FROM v1_segments WHERE id = %s", r.json()["id"]) == [(tenant,)]
    for bad in ["t1\u0000", "", " ", "t 1", "x" * 300, "\u0007"]:
        _assert_401(ta.get(V1, token=make_token(tenant=bad)))


def test_tenant_b_cannot_touch_tenant_a_on_any_route(hs, ta, tb):
    """Tenant B's token with tenant A's ids, on every route of both dialects: 404 for
    one id, absent from lists, not_found in bulk envelopes; A's rows unchanged."""
    a_aud = [ta.post(AUD, aud_body(f"a-owned-{i}", properties={"k": ["v"]})).json() for i in range(2)]
    a_v1 = [ta.post(V1, v1_body(f"a-owned-{i}")).json() for i in range(2)]
    a_aud_ids = [x["id"] for x in a_aud]
    a_v1_ids = [x["id"] for x in a_v1]
    a_names = {x["name"] for x in a_aud + a_v1}
    etag = ta.get(AUD + "/" + a_aud_ids[0]).headers["ETag"]
    before = snapshot(only_tenants=[TA])
    checks = []
    for sid in a_aud_ids:
        checks += [
            ("GET", lambda sid=sid: tb.get(AUD + "/" + sid), 404),
            ("GET upper", lambda sid=sid: tb.get(AUD + "/" + sid.upper()), 404),
            ("HEAD", lambda sid=sid: tb.request("HEAD", AUD + "/" + sid), 404),
            ("PATCH merge", lambda sid=sid: tb.request("PATCH", AUD + "/" + sid, data=json.dumps({"name": "stolen"}),
                                               headers={"Content-Type": "application/merge-patch+json"}), 404),
            ("PATCH merge if-match", lambda sid=sid: tb.request("PATCH", AUD + "/" + sid, data=json.dumps({"name": "stolen"}),
                                                        headers={"Content-Type": "application/merge-patch+json",
                                                                 "If-Match": etag}), 404),
            ("PATCH replace", lambda sid=sid: tb.patch(AUD, dict(aud_body("stolen"), id=sid)), 404),
            ("DELETE", lambda sid=sid: tb.delete(AUD + "/" + sid), 404),
            ("DELETE if-match *", lambda sid=sid: tb.delete(AUD + "/" + sid, headers={"If-Match": "*"}), 404),
        ]
    for sid in a_v1_ids:
        checks += [
            ("v1 GET", lambda sid=sid: tb.get(V1 + "/" + sid), 404),
            ("v1 HEAD", lambda sid=sid: tb.request("HEAD", V1 + "/" + sid), 404),
            ("v1 PATCH", lambda sid=sid: tb.patch(V1, {"id": sid, "name": "stolen"}), 404),
            ("v1 DELETE", lambda sid=sid: tb.delete(V1 + "/" + sid), 404),
        ]
    for (label, call, want) in checks:
        r = call()
        assert r.status_code == want, (label, r.status_code, r.text[:300])

    # lists, with every filter that could match A's rows
    for path, params in [(AUD, {}), (AUD, {"owner_id": OWNER}), (AUD, {"name": "a-owned"}),
                         (AUD, {"property": "k:v"}), (AUD, {"management_type": "selfmanaged"}),
                         (AUD, {"updated_since": "2000-01-01T00:00:00Z"}), (V1, {}), (V1, {"name": "a-owned"})]:
        r = tb.get(path, params=dict(params, limit=500))
        assert r.status_code == 200
        got = {x["id"] for x in r.json()["items"]} | {x["name"] for x in r.json()["items"]}
        assert not got & (set(a_aud_ids) | set(a_v1_ids) | a_names), (path, params)
    # A's cursor replayed by B pages B's rows only
    page = ta.get(V1, params={"limit": 1}).json()
    if page["next_cursor"]:
        r = tb.get(V1, params={"limit": 500, "cursor": page["next_cursor"]})
        assert r.status_code in (200, 400)
        if r.status_code == 200:
            assert not {x["id"] for x in r.json()["items"]} & set(a_v1_ids)

    # bulk routes, plain and atomic
    for atomic in ("", "?atomic=true"):
        for path, body in [
            (AUD + "/bulk", {"data": [dict(aud_body("stolen"), id=i) for i in a_aud_ids]}),
            (AUD + "/bulk-delete", {"data": [{"id": i} for i in a_aud_ids]}),
            (V1 + "/bulk", {"data": [{"id": i, "name": "stolen"} for i in a_v1_ids]}),
            (V1 + "/bulk-delete", {"data": [{"id": i} for i in a_v1_ids]}),
        ]:
            method = "PATCH" if path.endswith("/bulk") else "POST"
            r = tb.request(method, path + atomic, json_body=body)
            assert r.status_code in (200, 404, 409, 422), (path, atomic, r.status_code, r.text[:300])
            b = r.json()
            if r.status_code == 200:
                assert b["data"] == [], (path, b)
                assert {e["code"] for e in b["errors"]} == {"not_found"}, b
                assert len(b["errors"]) == len(body["data"])
    # bulk create under B never lands in A
    r = tb.post(V1 + "/bulk", {"data": [v1_body("b-own")]})
    assert r.status_code == 200 and len(r.json()["data"]) == 1
    assert_same_rows(before, snapshot(only_tenants=[TA]))
    for x in a_aud:
        assert ta.get(AUD + "/" + x["id"]).json() == x
    for x in a_v1:
        assert ta.get(V1 + "/" + x["id"]).json() == x


def test_access_log_lines_stay_valid_json_and_utf8(hs):
    """Bytes that are not UTF-8 in a method, a path or a query never make a log line
    invalid JSON or invalid UTF-8 (log shippers drop or choke on such lines). The
    harness decodes stderr with errors="replace", so U+FFFD in a line means the server
    wrote a byte sequence that is not UTF-8."""
    for data in [b"\xffG\xe9T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET /v1/segments/seg_\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
                 request_bytes("GET", AUD + "/%FF%C0%AF", token=tok()),
                 request_bytes("GET", V1 + "?name=%ED%A0%80&%FF=1", token=tok()),
                 request_bytes("DELETE", V1 + "/%E2%82", token=tok())]:
        raw_exchange(hs.port, data)
    time.sleep(0.3)
    bad = []
    for line in hs.lines:
        if not line.startswith("{"):
            continue
        try:
            json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if "\ufffd" in line:
            bad.append(line)
    assert not bad, f"{len(bad)} log lines are not valid UTF-8 JSON: {bad[:3]}"


def test_a_1000_byte_method_is_answered_and_logged_whole_line():
    """A request whose method is 1000 bytes (no token needed) gets its 405, and the access
    log line stays one valid JSON line with every field, the method cut to 64 bytes: before,
    the line's writer ran past its 1024-byte buffer (ASan: stack-buffer-overflow) and the
    process died."""
    import socket
    s = Server().start()
    try:
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(("M" * 1000 + " /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode())
        assert c.recv(64).startswith(b"HTTP/1.1 405"), "no 405 for the long method"
        c.close()
        assert requests.get(s.url + "/healthz", timeout=5).status_code == 200
        time.sleep(0.2)
        lines = [json.loads(l) for l in s.lines if l.startswith("{") and '"msg":"request"' in l]
        long_ones = [l for l in lines if l.get("method", "").startswith("MMMM")]
        assert len(long_ones) == 1 and long_ones[0]["method"] == "M" * 64, long_ones
        assert long_ones[0]["status"] == 405
    finally:
        assert s.stop() == 0
