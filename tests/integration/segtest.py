"""Black-box harness: a real segmentd process on a real PostgreSQL, tokens minted
here, and every JSON response checked against openapi.yaml."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import jsonschema
import requests
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SEGMENTD_BIN", os.path.join(ROOT, "build", "segmentd"))
DB_URL = os.environ["SEGMENTD_DATABASE_URL"]
SANITIZED = os.environ.get("SEGMENTD_TEST_SANITIZED") == "1"
SECRET = base64.urlsafe_b64encode(os.urandom(36)).decode().rstrip("=")
SCOPES = "segments:read segments:write"
# SEGMENTD_TEST_REPLICAS=N (scripts/test runs the contract files so): every Server is N segmentd processes on
# the one database, and its url names them in turn — a round-robin client, so that consecutive
# requests of a test reach different processes
REPLICAS = int(os.environ.get("SEGMENTD_TEST_REPLICAS", "1"))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_token(claims=None, secret=SECRET, alg="HS256", header=None, tenant="t1",
               scope=SCOPES, ttl=600, signer=None):
    """An HS* token by default; signer(bytes) -> signature for other algorithms."""
    now = int(time.time())
    body = {"sub": "tester", "tenant": tenant, "scope": scope, "iat": now, "exp": now + ttl}
    if claims:
        body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    hdr = {"alg": alg, "typ": "JWT"}
    if header:
        hdr.update(header)
    signing_input = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(body).encode())
    if signer:
        sig = signer(signing_input.encode())
    elif alg.upper().startswith("HS"):
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg.upper()]
        key = secret.encode() if isinstance(secret, str) else secret
        sig = hmac.new(key, signing_input.encode(), digest).digest()
    else:
        sig = b""
    return signing_input + "." + b64url(sig)


# ---------------------------------------------------------------- OpenAPI checks

with open(os.path.join(ROOT, "openapi.yaml")) as f:
    SPEC = yaml.safe_load(f) or {}
_RESOLVER = jsonschema.RefResolver("", SPEC)
_PATHS = []
for template, item in (SPEC.get("paths") or {}).items():
    rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    _PATHS.append((re.compile(rx), template, item))
CHECKED = {"responses": 0}


def schema_validator(schema):
    """A validator for one schema of openapi.yaml: OpenAPI 3.1 schemas are JSON Schema
    2020-12, their $refs resolved against the whole document, formats checked."""
    return jsonschema.Draft202012Validator(schema, resolver=_RESOLVER,
                                           format_checker=jsonschema.FormatChecker())


def check_against_spec(method, path, resp):
    """Fails when the status is undocumented or a JSON body does not match its schema."""
    path = path.split("?", 1)[0]
    matches = [(t, item) for rx, t, item in _PATHS if rx.match(path)]
    # prefer the literal template over a parameterised one
    matches.sort(key=lambda m: m[0].count("{"))
    op = None
    if matches:
        template, item = matches[0]
        op = item.get(method.lower() if method != "HEAD" else "get")
    else:
        template = path
    if op is None:
        # unknown paths and methods: the answers documented under components.x-unmatched
        assert resp.status_code in (404, 405), f"{method} {path}: not in openapi.yaml, got {resp.status_code}"
        op = {"responses": SPEC["components"]["x-unmatched"]}
    responses = op.get("responses", {})
    doc = responses.get(str(resp.status_code)) or responses.get(f"{str(resp.status_code)[0]}XX") \
        or responses.get("default")
    assert doc is not None, f"{method} {template}: status {resp.status_code} not documented"
    while "$ref" in doc:
        doc = _RESOLVER.resolve(doc["$ref"])[1]
    ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
    if resp.status_code == 204 or not resp.content:
        return
    content = doc.get("content") or {}
    assert ctype in content, f"{method} {template} {resp.status_code}: {ctype} not documented"
    if ctype == "application/x-ndjson":  # a stream of JSON values, one a line
        for line in resp.text.splitlines():
            json.loads(line)
    elif ctype.endswith("json"):
        schema = content[ctype].get("schema")
        if schema is not None:
            schema_validator(schema).validate(resp.json())
    CHECKED["responses"] += 1


# ---------------------------------------------------------------- server process

class Server:
    """One segmentd process (or REPLICAS of them, each request's url naming the next). env
    overrides the defaults; logs are kept for asserts (all the processes' in one list)."""

    def __init__(self, env=None, secret=SECRET, replicas=None):
        self.replicas = REPLICAS if replicas is None else replicas
        self.siblings = []
        self._turn = 0
        self.env = dict(os.environ)
        self.env.update({
            "SEGMENTD_LISTEN": "127.0.0.1:0",
            "SEGMENTD_DATABASE_URL": DB_URL,
            "SEGMENTD_JWT_SECRET": secret,
            "SEGMENTD_LOG_LEVEL": "info",
            "SEGMENTD_MIGRATIONS_DIR": os.path.join(ROOT, "migrations"),
            # no lifecycle sweeper unless a test asks for one: the suite's servers share one
            # database, and a pass of another test's server would bump versions under a test
            "SEGMENTD_LIFECYCLE_SWEEP_S": "0",
            # nor a size refresher: it would count every segment the suite ever made (tens of
            # thousands) in the background of every test
            "SEGMENTD_SIZE_REFRESH_S": "0",
            # nor webhook delivery: another test's server would claim (and, without
            # SEGMENTD_WEBHOOK_ALLOW_PRIVATE, refuse) the deliveries of a test's receiver
            "SEGMENTD_WEBHOOK_CONCURRENCY": "0",
        })
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
        self.proc = None
        self.lines = []
        self.port = None
        self._ready = threading.Event()

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if '"msg":"listening"' in line:
                self.port = int(json.loads(line)["port"])
                self._ready.set()
        self._ready.set()

    def start(self, timeout=30):
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        self._ready.wait(timeout)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("segmentd did not start:\n" + "\n".join(self.lines[-30:]))
        self.base_url = f"http://127.0.0.1:{self.port}"
        for _ in range(self.replicas - 1):
            sib = Server(replicas=1)
            sib.env, sib.lines = dict(self.env), self.lines
            self.siblings.append(sib.start(timeout))
        return self

    @property
    def url(self):
        """The base URL of the process whose turn it is (always the same with one)."""
        if not self.siblings:
            return self.base_url
        urls = [self.base_url] + [s.base_url for s in self.siblings]
        self._turn += 1
        return urls[self._turn % len(urls)]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the process(es); returns the exit code (the first non-zero one). Sanitizer
        reports fail the test."""
        rcs = [sib.stop(sig, timeout) for sib in self.siblings]
        self.siblings = []
        rc = self._stop_one(sig, timeout)
        return next((x for x in [rc] + rcs if x), rc)

    def _stop_one(self, sig, timeout):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("segmentd did not stop within %ss" % timeout)
        time.sleep(0.1)
        text = "\n".join(self.lines)
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
            assert marker not in text, "sanitizer report:\n" + text[-6000:]
        return rc

    def log_records(self):
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


class Api:
    """requests with a base URL, a token and the OpenAPI check on every response."""

    def __init__(self, server, token=None, tenant="t1", scope=SCOPES):
        self.server = server
        self.token = token or make_token(tenant=tenant, scope=scope)
        self.session = requests.Session()

    def request(self, method, path, json_body=None, data=None, headers=None, token=True,
                check=True, **kw):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + (self.token if token is True else token)
        if json_body is not None:
            data = json.dumps(json_body)
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        r = self.session.request(method, self.server.url + path, data=data, headers=h,
                                 timeout=30, **kw)
        if check:
            check_against_spec(method, path, r)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def walk_pages(fetch, limit, short_page_last=False, most=10000):
    """Every item of a keyset list, page after page: fetch(**params) answers one page for
    {"limit"} or {"limit", "cursor"}. Each page is {"items", "next_cursor"} with at most
    limit items (with short_page_last, a short page must be the last one)."""
    items, cursor = [], None
    for _ in range(most):
        p = {"limit": limit}
        if cursor:
            p["cursor"] = cursor
        r = fetch(**p)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= limit
        if short_page_last and len(page["items"]) < limit:
            assert page["next_cursor"] is None, (limit, page)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the list never ended")


def raw_http(port, payload: bytes, read_timeout=5.0):
    """Sends raw bytes; returns what came back (for framing tests)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def problem(r, status, code=None):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    if code:
        assert body["code"] == code, body
    assert body["request_id"] == r.headers["X-Request-Id"]
    return body


def pointers(body):
    return sorted(e["pointer"] for e in body.get("errors", []))


def openssl_rsa_pair(tmpdir):
    key = os.path.join(tmpdir, "rsa.pem")
    pub = os.path.join(tmpdir, "rsa.pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return key, pub


def rs256_signer(key_path):
    def sign(data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data,
                              check=True, capture_output=True).stdout
    return sign


def psql(sql, *params):
    import psycopg2
    conn = psycopg2.connect(DB_URL)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def new_uuid():
    return str(uuid.uuid4())
