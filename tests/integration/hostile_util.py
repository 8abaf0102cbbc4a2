"""Helpers shared by test_hostile.py, test_faults.py and test_soak.py: raw HTTP over
sockets, snapshots of every stored row, VmRSS sampling and the figures that
docs/reliability.md quotes."""
import json
import os
import random
import select
import socket
import threading
import time
import uuid

import requests

import psycopg2

from segtest import DB_URL, check_against_spec, make_token, psql

OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
AUD = "/audiences/segments"
V1 = "/v1/segments"
GROUPS = [{"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]
SANITIZED = os.environ.get("SEGMENTD_TEST_SANITIZED") == "1"
CLIENT_TIMEOUT = 30  # a request that takes this long counts as hung


# ---------------------------------------------------------------- stored rows

_conn = None


def quick_psql(sql, *params):
    """segtest.psql on one kept connection (a fresh connection per query costs ~50 ms,
    and snapshots run around most tests); reconnects once if PostgreSQL was restarted."""
    global _conn
    for attempt in (0, 1):
        try:
            if _conn is None or _conn.closed:
                _conn = psycopg2.connect(DB_URL)
                _conn.autocommit = True
            with _conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            try:
                _conn.close()
            except Exception:
                pass
            _conn = None
            if attempt:
                raise

def snapshot(exclude_tenants=(), only_tenants=None):
    """Per table: the number of stored rows and the newest row version's transaction id
    (xmin), minus the given tenants' rows. Any insert or update writes a row version
    with a newer xmin and a delete lowers the count, so two equal snapshots mean that no
    row was added, removed or changed in between — at the cost of one scan without
    reading the rows' contents (the test database keeps every earlier run's rows)."""
    out = {}
    where = "NOT (tenant = ANY(%s::text[]))" if only_tenants is None else "tenant = ANY(%s::text[])"
    arg = list(exclude_tenants) if only_tenants is None else list(only_tenants)
    for table in ("audience_segments", "v1_segments"):
        out[table] = tuple(quick_psql(
            f"SELECT count(*), coalesce(max(xmin::text::bigint), 0) FROM {table} WHERE {where}", arg)[0])
    out["_where"] = (where, arg)
    return out


def assert_same_rows(before, after):
    for table in ("audience_segments", "v1_segments"):
        if before[table] == after[table]:
            continue
        where, arg = before["_where"]
        newer = quick_psql(f"SELECT tenant, id::text FROM {table} WHERE xmin::text::bigint > %s "
                     f"AND {where} LIMIT 5", before[table][1], arg)
        raise AssertionError(f"{table}: stored rows changed: (count, newest xmin) {before[table]} -> "
                             f"{after[table]}; rows written: {newer}")


class RowsUnchanged:
    """with RowsUnchanged(): ... — fails when any stored row (other than the excluded
    tenants') was added, removed or changed inside the block."""

    def __init__(self, exclude_tenants=()):
        self.exclude = tuple(exclude_tenants)

    def __enter__(self):
        self.before = snapshot(self.exclude)
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            assert_same_rows(self.before, snapshot(self.exclude))
        return False


def count_rows(table, tenant):
    return psql(f"SELECT count(*) FROM {table} WHERE tenant = %s", tenant)[0][0]


# ---------------------------------------------------------------- raw HTTP

class RawResponse:
    def __init__(self, status, reason, headers, body, closed):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.closed = closed  # the server closed the connection after this response

    def json(self):
        return json.loads(self.body)

    # what segtest.check_against_spec reads from a requests.Response
    @property
    def status_code(self):
        return self.status

    @property
    def content(self):
        return self.body

    @property
    def spec_headers(self):
        return {"Content-Type": self.headers.get("content-type", "")}

    def __repr__(self):
        return f"<RawResponse {self.status} {self.headers} {self.body[:200]!r}>"


class RawConn:
    """One TCP connection to segmentd with explicit control over every byte."""

    def __init__(self, port, timeout=10.0, nodelay=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def send_slowly(self, data, piece=1, pause=0.002):
        for i in range(0, len(data), piece):
            self.sock.sendall(data[i:i + piece])
            time.sleep(pause)

    def _fill(self):
        if self.eof:
            return False
        try:
            b = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def response(self):
        """Reads one response (Content-Length or chunked framing, or until EOF).
        Returns None when the connection closed before a status line arrived."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if not self.buf:
                    return None
                raise AssertionError(f"connection closed inside a header block: {self.buf[:300]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0].startswith("HTTP/1."), lines[0]
        status = int(parts[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if status in (100, 101, 102, 103):
            return self.response()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n and self._fill():
                pass
            body, self.buf = self.buf[:n], self.buf[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in self.buf and self._fill():
                    pass
                size_line, _, rest = self.buf.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                self.buf = rest
                while len(self.buf) < n + 2 and self._fill():
                    pass
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
                if n == 0:
                    break
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        closed = headers.get("connection", "").lower() == "close"
        return RawResponse(status, parts[2] if len(parts) > 2 else "", headers, body, closed)

    def wait_closed(self, timeout):
        """True when the server closes (EOF or reset) within timeout seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.time()))
            if r:
                try:
                    b = self.sock.recv(65536)
                except (ConnectionResetError, OSError):
                    return True
                if not b:
                    return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_bytes(method, path, token=None, body=None, headers=None, content_type="application/json",
                  version="HTTP/1.1"):
    """The bytes of one request; body (bytes or a JSON-able value) gets a Content-Length
    unless headers already frame it."""
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    h = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    if token:
        h.append("Authorization: Bearer " + token)
    if body is not None and content_type:
        h.append("Content-Type: " + content_type)
    extra = list(headers or [])
    if body is not None and not any(x.lower().startswith(("content-length:", "transfer-encoding:"))
                                    for x in extra):
        h.append(f"Content-Length: {len(body)}")
    h += extra
    return ("\r\n".join(h) + "\r\n\r\n").encode("latin-1") + (body or b"")


_SPEC_CHECKED = set()


class _SpecView:
    """A RawResponse seen through the attributes segtest.check_against_spec uses."""

    def __init__(self, r):
        self.status_code, self.content, self.headers = r.status, r.body, r.spec_headers
        self.json = r.json


def check_raw_against_spec(data, r):
    """Checks segmentd's own JSON answers to raw requests against openapi.yaml, like Api
    does (MHD's HTML answers to what never reached segmentd are not in the spec)."""
    if r is None or not r.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
        return
    line = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(line) != 3 or line[0] not in ("GET", "HEAD", "POST", "PATCH", "DELETE", "PUT") \
            or not line[1].startswith("/"):
        return
    path = line[1].split("?", 1)[0]
    shape = "/".join(seg if i < 3 or seg in ("bulk", "bulk-delete") else "{id}"
                     for i, seg in enumerate(path.split("/")))
    try:
        code = r.json().get("code")
    except (ValueError, AttributeError):
        code = None
    key = (line[0], shape, r.status, code)
    if key in _SPEC_CHECKED:
        return  # one check per kind of answer: validating is slow (a schema walk per call)
    _SPEC_CHECKED.add(key)
    check_against_spec(line[0], line[1], _SpecView(r))


def raw_exchange(port, data, timeout=10.0):
    """Sends data on a fresh connection and reads one response (None if the server just
    closed the connection); segmentd's JSON answers are checked against openapi.yaml."""
    c = RawConn(port, timeout=timeout)
    try:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            # the server answered early (413, 431, 414) and closed while the rest was
            # still being sent; its answer is already in the receive queue
            pass
        r = c.response()
    finally:
        c.close()
    check_raw_against_spec(data, r)
    return r


def assert_problem(resp, status, code=None):
    """A RawResponse that is an RFC 9457 problem with this status."""
    assert resp is not None, "the server closed the connection without an answer"
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/problem+json"), resp
    b = resp.json()
    assert b["status"] == status and b.get("detail"), b
    if code:
        assert b["code"] == code, b
    return b


# ---------------------------------------------------------------- process memory

def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


class RssSampler(threading.Thread):
    def __init__(self, pid, every=0.25):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples = []  # (seconds since start, KiB)
        self.stop_ev = threading.Event()

    def run(self):
        t0 = time.time()
        while not self.stop_ev.is_set():
            try:
                self.samples.append((time.time() - t0, vm_rss_kib(self.pid)))
            except (OSError, AssertionError):
                return
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join(5)


def metric(server, name):
    """The value of a Prometheus sample of segmentd's /metrics (the first with labels)."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


# ---------------------------------------------------------------- figures

def record(test, **figures):
    """Appends one JSON line to $SEGMENTD_RELIABILITY_LOG (when set): the source of the
    figures in docs/reliability.md."""
    path = os.environ.get("SEGMENTD_RELIABILITY_LOG")
    line = {"test": test, "sanitized": SANITIZED, "ts": int(time.time())}
    line.update(figures)
    print("reliability:", json.dumps(line))
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


def aud_body(name, **extra):
    b = {"management_type": "selfmanaged", "name": name, "owner_id": OWNER}
    b.update(extra)
    return b


def v1_body(name, **extra):
    b = {"name": name, "constraints": GROUPS}
    b.update(extra)
    return b


# ---------------------------------------------------------------- the load

class Outcome:
    __slots__ = ("op", "method", "path", "status", "t0", "t1", "error", "retry_after", "ctype", "code")

    def __init__(self, op, method, path, t0):
        self.op, self.method, self.path, self.t0 = op, method, path, t0
        self.status = self.t1 = self.error = self.retry_after = self.ctype = self.code = None


class Load:
    """Mixed reads and writes on both dialects from several threads, each with its own
    tenant and its own segments. Every 2xx write updates the expected state of the
    database; a write that failed with 503 or a cut connection leaves that segment's
    state unknown (it may or may not have happened) and it is not checked."""

    def __init__(self, server, threads=6, tenant_prefix="hx-load", pause=0.0, bulk=True, new_token_every=0):
        self.server = server
        self.n = threads
        self.pause = pause
        self.bulk = bulk
        self.new_token_every = new_token_every  # > 0: a fresh token every so many requests
        self.outcomes = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        run = uuid.uuid4().hex[:8]
        self.tenants = [f"{tenant_prefix}-{run}-{i}" for i in range(threads)]
        # expected[(table, tenant, id)] = name (present) or None (deleted); unknown ids absent
        self.expected = {}
        self.unknown = set()
        self.spec_errors = []
        self.read_mismatch = []  # a GET that did not return the last acknowledged write
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"

    def call(self, sess, token, op, method, path, body=None, ctype="application/json"):
        o = Outcome(op, method, path, time.time())
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = ctype
        try:
            r = sess.request(method, self.server.url + path, data=data, headers=headers,
                             timeout=CLIENT_TIMEOUT)
        except requests.RequestException as e:
            o.t1 = time.time()
            o.error = type(e).__name__
            with self.lock:
                self.outcomes.append(o)
            time.sleep(0.05)
            return o, None
        o.t1 = time.time()
        o.status = r.status_code
        o.retry_after = r.headers.get("Retry-After")
        o.ctype = r.headers.get("Content-Type", "")
        if o.ctype.startswith("application/problem+json"):
            try:
                o.code = r.json().get("code")
            except ValueError:
                o.code = "<not json>"
        try:
            check_against_spec(method, path, r)
        except AssertionError as e:
            with self.lock:
                self.spec_errors.append(f"{method} {path} {r.status_code}: {e}")
        with self.lock:
            self.outcomes.append(o)
        if o.status == 503:
            time.sleep(0.02)
        return o, r

    def worker(self, i):
        rnd = random.Random(i)
        tenant = self.tenants[i]
        token = make_token(tenant=tenant, ttl=3600)
        sess = requests.Session()
        mine = {"aud": [], "v1": []}   # ids believed present
        k = 0
        while not self.stop_ev.is_set():
            k += 1
            if self.new_token_every and k % self.new_token_every == 0:
                token = make_token(tenant=tenant, ttl=3600, claims={"jti": f"{i}-{k}"})
            op = rnd.choice(["aud_create", "v1_create", "aud_create", "v1_create", "get", "get", "list",
                             "v1_patch", "aud_merge", "delete"] + (["v1_bulk", "aud_bulk"] if self.bulk else []))
            name = f"L{i}-{k}-{op}"
            if op in ("aud_create", "v1_create"):
                aud = op == "aud_create"
                o, r = self.call(sess, token, op, "POST", AUD if aud else V1,
                                 aud_body(name) if aud else v1_body(name))
                if o.status == 201:
                    sid = r.json()["id"]
                    self.expect("audience_segments" if aud else "v1_segments", tenant, sid, name)
                    mine["aud" if aud else "v1"].append(sid)
            elif op == "v1_bulk":
                o, r = self.call(sess, token, op, "POST", V1 + "/bulk",
                                 {"data": [v1_body(f"{name}-{j}") for j in range(3)]})
                if o.status == 200:
                    for j, seg in enumerate(r.json()["data"]):
                        self.expect("v1_segments", tenant, seg["id"], seg["name"])
                        mine["v1"].append(seg["id"])
            elif op == "aud_bulk":
                o, r = self.call(sess, token, op, "POST", AUD + "/bulk",
                                 {"data": [aud_body(f"{name}-{j}") for j in range(3)]})
                if o.status == 200:
                    for seg in r.json()["data"]:
                        self.expect("audience_segments", tenant, seg["id"], seg["name"])
                        mine["aud"].append(seg["id"])
            elif op == "get":
                kind = rnd.choice(["aud", "v1"])
                if mine[kind]:
                    sid = rnd.choice(mine[kind])
                    o, r = self.call(sess, token, op, "GET", (AUD if kind == "aud" else V1) + "/" + sid)
                    if o.status == 200:
                        table = "audience_segments" if kind == "aud" else "v1_segments"
                        exp = self.expected.get((table, tenant, sid))
                        if exp is not None and (table, tenant, sid) not in self.unknown \
                                and r.json()["name"] != exp:
                            with self.lock:
                                self.read_mismatch.append((sid, r.json()["name"], exp))
            elif op == "list":
                self.call(sess, token, op, "GET", rnd.choice([AUD, V1]) + "?limit=20")
            elif op == "v1_patch" and mine["v1"]:
                sid = rnd.choice(mine["v1"])
                o, r = self.call(sess, token, op, "PATCH", V1, {"id": sid, "name": name})
                if o.status == 200:
                    self.expect("v1_segments", tenant, sid, name)
                elif o.status != 404:
                    self.unknown.add(("v1_segments", tenant, sid))
            elif op == "aud_merge" and mine["aud"]:
                sid = rnd.choice(mine["aud"])
                o, r = self.call(sess, token, op, "PATCH", AUD + "/" + sid, {"name": name},
                                 ctype="application/merge-patch+json")
                if o.status == 200:
                    self.expect("audience_segments", tenant, sid, name)
                elif o.status != 404:
                    self.unknown.add(("audience_segments", tenant, sid))
            elif op == "delete":
                kind = rnd.choice(["aud", "v1"])
                if mine[kind]:
                    sid = mine[kind].pop(rnd.randrange(len(mine[kind])))
                    table = "audience_segments" if kind == "aud" else "v1_segments"
                    o, r = self.call(sess, token, op, "DELETE", (AUD if kind == "aud" else V1) + "/" + sid)
                    if o.status == 204:
                        self.expect(table, tenant, sid, None)
                    else:
                        self.unknown.add((table, tenant, sid))
            if self.pause:
                time.sleep(self.pause)

    def wait_acknowledged(self, n, timeout=20.0):
        """Waits until n writes were acknowledged (a slow machine needs longer to warm up)."""
        deadline = time.time() + timeout
        while self.acknowledged_writes() < n and time.time() < deadline:
            time.sleep(0.1)
        assert self.acknowledged_writes() >= n, f"only {self.acknowledged_writes()} writes in {timeout} s"

    def expect(self, table, tenant, sid, name):
        with self.lock:
            self.expected[(table, tenant, sid)] = name
            self.unknown.discard((table, tenant, sid))

    # ---------------------------------------------------------------- checks

    def verify_acknowledged(self):
        """Every acknowledged write is in the database: created and updated rows hold the
        acknowledged name, deleted ones are gone. Returns the number checked."""
        checked, lost = 0, []
        for table in ("audience_segments", "v1_segments"):
            rows = psql(f"SELECT tenant, id::text, name FROM {table} WHERE tenant = ANY(%s::text[])",
                        self.tenants)
            stored = {(r[0], r[1]): r[2] for r in rows}
            for (t, tenant, sid), name in self.expected.items():
                if t != table or (t, tenant, sid) in self.unknown:
                    continue
                checked += 1
                got = stored.get((tenant, sid))
                if got != name:
                    lost.append((table, sid, name, got))
        assert not lost, f"{len(lost)} acknowledged writes lost or wrong: {lost[:5]}"
        assert not self.read_mismatch, f"reads that missed an acknowledged write: {self.read_mismatch[:5]}"
        return checked

    def acknowledged_writes(self):
        with self.lock:
            return sum(1 for o in self.outcomes if o.status in (200, 201, 204) and o.method != "GET")

    def statuses(self):
        out = {}
        for o in self.outcomes:
            k = o.status if o.status is not None else o.error
            out[k] = out.get(k, 0) + 1
        return out


def assert_only_clean_503s(outcomes, allowed=(200, 201, 204, 404)):
    """Every answer is a success, a 404 (a segment another op deleted) or a 503 problem
    with Retry-After — never another 5xx, never a cut connection, never a hang."""
    bad = [o for o in outcomes if o.status not in allowed and o.status != 503]
    assert not bad, "unexpected outcomes: %s" % [(o.op, o.status, o.error, o.code) for o in bad[:10]]
    for o in outcomes:
        if o.status == 503:
            assert o.retry_after and o.retry_after.isdigit(), (o.op, o.retry_after)
            assert o.ctype.startswith("application/problem+json"), (o.op, o.ctype)
    slow = [o for o in outcomes if o.t1 - o.t0 > CLIENT_TIMEOUT - 5]
    assert not slow, "requests that nearly hung: %s" % [(o.op, round(o.t1 - o.t0, 1)) for o in slow]
