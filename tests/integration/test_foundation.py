"""HTTP front end, operational routes, configuration, store faults and shutdown."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import requests
import pytest

from segtest import (BIN, DB_URL, ROOT, SECRET, Api, Server, check_against_spec, make_token,
                     problem, psql, raw_http)

SEG = "/audiences/segments"
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def body(name="seg"):
    return {"management_type": "selfmanaged", "name": name, "owner_id": OWNER}


def test_healthz(api):
    r = api.get("/healthz", token=None)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["X-Request-Id"]


def test_readyz(api):
    r = api.get("/readyz", token=None)
    assert r.status_code == 200
    assert r.json()["migrations"]["applied"] == r.json()["migrations"]["expected"] >= 1


def test_openapi_served(api):
    r = api.get("/openapi.yaml", token=None)
    assert r.status_code == 200
    assert r.text == open(os.path.join(ROOT, "openapi.yaml")).read()


def test_metrics(api):
    api.get(SEG)
    api.get("/nope", token=None)
    # a request is counted when MHD reports it complete, just after its answer was sent,
    # so the scrape may come a moment earlier on another worker: wait for it (bounded)
    deadline = time.monotonic() + 2
    while True:
        r = api.get("/metrics", token=None)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.text
        if 'route="unmatched",method="any",status="404"' in text or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert 'segmentd_http_requests_total{route="/audiences/segments",method="GET",status="200"}' in text
    assert 'segmentd_http_requests_total{route="unmatched",method="any",status="404"}' in text
    assert "segmentd_http_request_duration_seconds_bucket" in text
    assert 'segmentd_db_pool_connections{state="in_use"}' in text
    assert "segmentd_db_pool_waits_total" in text and "segmentd_db_errors_total" in text


def test_request_id_echoed_or_generated(api):
    r = api.get("/healthz", token=None, headers={"X-Request-Id": "abc-123.x"})
    assert r.headers["X-Request-Id"] == "abc-123.x"
    r = api.get("/healthz", token=None, headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"] != "bad id with spaces" and len(r.headers["X-Request-Id"]) == 16
    r = api.get("/healthz", token=None, headers={"X-Request-Id": "x" * 65})
    assert len(r.headers["X-Request-Id"]) == 16
    # generated: 16 lower-case hex digits, different on every request
    ids = {api.get("/healthz", token=None).headers["X-Request-Id"] for _ in range(20)}
    assert len(ids) == 20 and all(re.fullmatch("[0-9a-f]{16}", i) for i in ids), ids


def test_access_log_line(server, api):
    api.get(SEG, headers={"X-Request-Id": "log-line-1"})
    time.sleep(0.2)
    recs = [r for r in server.log_records() if r.get("request_id") == "log-line-1"]
    assert len(recs) == 1
    rec = recs[0]
    assert rec["method"] == "GET" and rec["route"] == SEG and rec["status"] == 200
    assert rec["tenant"] == "t1" and isinstance(rec["duration_ms"], (int, float))


def test_secret_never_logged(server):
    assert SECRET not in "\n".join(server.lines)


def test_unknown_path_404(api):
    problem(api.get("/nope", token=None), 404, "not_found")
    problem(api.get("/audiences/segments/x/y"), 404, "not_found")


def test_405_with_allow(api):
    r = api.request("PUT", SEG, json_body=body())
    problem(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST", "PATCH"} <= allow
    r = api.request("POST", SEG + "/" + OWNER, json_body=body())
    problem(r, 405)
    assert {"GET", "PATCH", "DELETE"} <= {m.strip() for m in r.headers["Allow"].split(",")}


def test_bad_path_id_400_before_handler(api):
    b = problem(api.get(SEG + "/not-a-uuid"), 400, "invalid_path_parameter")
    assert "36 characters" in b["detail"]


def test_percent_00_does_not_truncate_path(api):
    r = api.get(SEG + "/%00")
    assert r.status_code == 400
    r = api.get("/healthz%00x", token=None)
    assert r.status_code == 404
    created = api.post(SEG, body()).json()
    r = api.get(SEG + "/" + created["id"] + "%00x")
    assert r.status_code == 400


def test_malformed_json_400_names_line_and_column(api):
    r = api.request("POST", SEG, data='{\n  "name": tru\n}', headers={"Content-Type": "application/json"})
    b = problem(r, 400, "malformed_json")
    assert "line 2" in b["detail"] and "column" in b["detail"]


@pytest.mark.parametrize("payload", ["", "[]", "42", '"x"', '{"a":1} {"b":2}', '{"a":1,"a":2}',
                                     '{"a":"\\u0000"}', "\xff\xfe", '{"a":NaN}'])
def test_non_object_or_invalid_json_400(api, payload):
    r = api.request("POST", SEG, data=payload.encode("latin-1"),
                    headers={"Content-Type": "application/json"})
    problem(r, 400, "malformed_json")


def test_415_without_json_content_type(api):
    for ct in [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]:
        r = api.request("POST", SEG, data=json.dumps(body()), headers={"Content-Type": ct})
        problem(r, 415, "unsupported_media_type")
    r = api.request("POST", SEG, data=json.dumps(body()),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


def test_413_with_content_length(api):
    big = b'{"name":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    r = api.request("POST", SEG, data=big, headers={"Content-Type": "application/json"})
    problem(r, 413, "body_too_large")


def test_413_chunked(api):
    def gen():
        for _ in range(40):
            yield b"x" * 32768
    r = api.request("POST", SEG, data=gen(), headers={"Content-Type": "application/json"})
    problem(r, 413, "body_too_large")
    assert api.get("/healthz", token=None).status_code == 200


def test_413_sent_before_body_with_expect_continue(server):
    req = (b"POST /audiences/segments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           make_token().encode() + b"\r\nContent-Type: application/json\r\n"
           b"Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
    out = raw_http(server.port, req, read_timeout=3)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]


def test_body_limit_configurable():
    s = Server(env={"SEGMENTD_MAX_BODY_BYTES": "2048"}).start()
    try:
        api = Api(s)
        r = api.post(SEG, dict(body(), description="d" * 3000))
        problem(r, 413)
        assert api.post(SEG, body()).status_code == 201
    finally:
        assert s.stop() == 0


def test_second_listener_on_the_address_is_logged():
    """SO_REUSEPORT lets a second segmentd bind a port in use (for restarts without
    downtime); it must say so, since the kernel then splits the connections between both."""
    first = Server().start()
    second = None
    try:
        assert not any("another process already listens" in r.get("msg", "")
                       for r in first.log_records())
        second = Server(env={"SEGMENTD_LISTEN": f"127.0.0.1:{first.port}"}).start()
        assert second.port == first.port
        warned = [r for r in second.log_records() if "another process already listens" in r.get("msg", "")]
        assert warned and warned[0]["level"] == "warn", second.log_records()[:5]
    finally:
        if second:
            assert second.stop() == 0
        assert first.stop() == 0


def run_config(env, args=("serve",)):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    e.update({"SEGMENTD_DATABASE_URL": DB_URL, "SEGMENTD_JWT_SECRET": SECRET,
              "SEGMENTD_LISTEN": "127.0.0.1:0"})
    e.update(env)
    e = {k: v for k, v in e.items() if v is not None}
    return subprocess.run([BIN, *args], env=e, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("env,needle", [
    ({"SEGMENTD_POOL_SIZE": "0"}, "SEGMENTD_POOL_SIZE"),
    ({"SEGMENTD_LOOPS": "many"}, "SEGMENTD_LOOPS"),
    ({"SEGMENTD_LISTEN": "nowhere"}, "SEGMENTD_LISTEN"),
    ({"SEGMENTD_LISTEN": "127.0.0.1:99999"}, "SEGMENTD_LISTEN"),
    ({"SEGMENTD_JWT_ALG": "none"}, "SEGMENTD_JWT_ALG"),
    ({"SEGMENTD_JWT_SECRET": ""}, "SEGMENTD_JWT_SECRET"),
    ({"SEGMENTD_JWT_SECRET": "short-secret"}, "SEGMENTD_JWT_SECRET"),
    ({"SEGMENTD_JWT_SECRET": None}, "SEGMENTD_JWT_SECRET"),
    ({"SEGMENTD_JWT_SECRET_FILE": "/nonexistent"}, "SEGMENTD_JWT_SECRET"),
    ({"SEGMENTD_JWT_ALG": "RS256"}, "SEGMENTD_JWT_SECRET"),
    ({"SEGMENTD_JWT_ALG": "RS256", "SEGMENTD_JWT_SECRET": None}, "SEGMENTD_JWT_PUBLIC_KEY_FILE"),
    # a public key with an HMAC algorithm would make the PEM text the HMAC secret (found by fuzzing)
    ({"SEGMENTD_JWT_PUBLIC_KEY_FILE": "/etc/hostname"}, "SEGMENTD_JWT_PUBLIC_KEY_FILE"),
    ({"SEGMENTD_MAX_BODY_BYTES": "-1"}, "SEGMENTD_MAX_BODY_BYTES"),
    ({"SEGMENTD_LOG_LEVEL": "loud"}, "SEGMENTD_LOG_LEVEL"),
    ({"SEGMENTD_AUTO_MIGRATE": "maybe"}, "SEGMENTD_AUTO_MIGRATE"),
])
def test_bad_setting_stops_startup_naming_it(env, needle):
    p = run_config(env)
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], p.stderr
    if env.get("SEGMENTD_JWT_SECRET"):
        assert env["SEGMENTD_JWT_SECRET"] not in p.stderr


def test_help_lists_every_setting():
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for name in ["SEGMENTD_LISTEN", "SEGMENTD_DATABASE_URL", "SEGMENTD_LOOPS", "SEGMENTD_POOL_SIZE",
                 "SEGMENTD_JWT_ALG", "SEGMENTD_JWT_SECRET", "SEGMENTD_JWT_PUBLIC_KEY_FILE",
                 "SEGMENTD_JWT_ISSUER", "SEGMENTD_JWT_AUDIENCE", "SEGMENTD_JWT_LEEWAY",
                 "SEGMENTD_TENANT_CLAIM", "SEGMENTD_MAX_BODY_BYTES", "SEGMENTD_LOG_LEVEL",
                 "SEGMENTD_JWT_JWKS_FILE", "SEGMENTD_JWT_JWKS_URL"]:
        assert name in p.stdout
    assert subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.startswith("segmentd ")


def test_retired_threading_settings_are_ignored_with_a_warning():
    """SEGMENTD_HTTP_MODE, SEGMENTD_THREADS and SEGMENTD_DB_PIPELINE belonged to threading
    models retired for the one model (event loops, pipelined store): an old environment
    still starts, serves, and is told once at start-up which settings it ignores."""
    s = Server(env={"SEGMENTD_HTTP_MODE": "pool", "SEGMENTD_THREADS": "8",
                    "SEGMENTD_DB_PIPELINE": "0"}).start()
    try:
        api = Api(s, tenant="retired-settings")
        r = api.post("/audiences/segments", {"management_type": "selfmanaged", "name": "x",
                                             "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"})
        assert r.status_code == 201, r.text
        warned = [rec for rec in s.log_records() if rec.get("level") == "warn" and
                  "retired" in rec.get("msg", "")]
        assert len(warned) == 1, s.lines[:10]
        assert warned[0]["settings"] == "SEGMENTD_HTTP_MODE SEGMENTD_THREADS SEGMENTD_DB_PIPELINE"
        listening = [rec for rec in s.log_records() if rec.get("msg") == "listening"]
        assert listening and "http_mode" not in listening[0] and int(listening[0]["loops"]) >= 1
    finally:
        assert s.stop() == 0


def test_secret_file_and_token_subcommand(tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")
    p = run_config({"SEGMENTD_JWT_SECRET": None, "SEGMENTD_JWT_SECRET_FILE": str(f)},
                   ("token", "--tenant", "acme", "--ttl", "60"))
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    s = Server().start()
    try:
        r = Api(s, token=tok).get(SEG)
        assert r.status_code == 200
    finally:
        assert s.stop() == 0


def test_migrate_subcommand_is_idempotent():
    for _ in range(2):
        p = run_config({}, ("migrate",))
        assert p.returncode == 0, p.stderr
    assert psql("SELECT count(*) FROM schema_migrations")[0][0] >= 1


def test_concurrent_migrations_do_not_race():
    e = {k: v for k, v in os.environ.items()}
    e.update({"SEGMENTD_DATABASE_URL": DB_URL, "SEGMENTD_JWT_SECRET": SECRET})
    procs = [subprocess.Popen([BIN, "migrate"], env=e, stderr=subprocess.PIPE) for _ in range(4)]
    assert all(p.wait(60) == 0 for p in procs)


def test_pool_exhausted_gives_503_with_retry_after():
    """One connection, held by a request blocked on a table lock: the next one is refused fast."""
    import psycopg2
    s = Server(env={"SEGMENTD_POOL_SIZE": "1", "SEGMENTD_POOL_WAIT_MS": "200"}).start()
    api = Api(s)
    created = api.post(SEG, body()).json()
    lock = psycopg2.connect(DB_URL)
    try:
        cur = lock.cursor()
        cur.execute("BEGIN; LOCK TABLE audience_segments IN ACCESS EXCLUSIVE MODE")
        results = {}
        t = threading.Thread(target=lambda: results.update(first=api.get(SEG + "/" + created["id"], check=False)))
        t.start()
        time.sleep(0.5)
        t0 = time.time()
        r = api.get(SEG)
        assert time.time() - t0 < 3
        problem(r, 503, "pool_exhausted")
        assert r.headers["Retry-After"] == "1"
        lock.rollback()
        t.join(10)
        assert results["first"].status_code == 200
        assert api.get(SEG).status_code == 200
    finally:
        lock.close()
        assert s.stop() == 0


def test_database_restart_gives_503_then_recovers():
    """readyz turns 503 while PostgreSQL is down and back to 200 after, segmentd left running."""
    stop = os.environ.get("SEGMENTD_TEST_PGCTL_STOP")
    start = os.environ.get("SEGMENTD_TEST_PGCTL_START")
    assert stop and start, "scripts/test sets SEGMENTD_TEST_PGCTL_STOP/START"
    s = Server().start()
    api = Api(s)
    try:
        assert api.get("/readyz", token=None).status_code == 200
        created = api.post(SEG, body()).json()
        subprocess.run(stop, shell=True, check=True, capture_output=True)
        try:
            t0 = time.time()
            r = api.get("/readyz", token=None)
            problem(r, 503)
            assert r.headers.get("Retry-After")
            r = api.get(SEG + "/" + created["id"])
            problem(r, 503)
            assert time.time() - t0 < 15
        finally:
            subprocess.run(start, shell=True, check=True, capture_output=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if api.get("/readyz", token=None, check=False).status_code == 200:
                break
            time.sleep(0.2)
        assert api.get("/readyz", token=None).status_code == 200
        assert api.get(SEG + "/" + created["id"]).status_code == 200
        assert s.proc.poll() is None
    finally:
        assert s.stop() == 0


def test_graceful_shutdown_finishes_in_flight_work():
    s = Server(env={}).start()
    api = Api(s)
    results, ids = [], []
    lock = threading.Lock()

    def worker():
        sess = requests.Session()
        for i in range(200):
            try:
                r = sess.post(s.url + SEG, data=json.dumps(body(f"g{i}")), timeout=10,
                              headers={"Authorization": "Bearer " + api.token,
                                       "Content-Type": "application/json"})
            except requests.RequestException:
                break
            with lock:
                results.append(r.status_code)
                if r.status_code == 201:
                    ids.append(r.json()["id"])
            if r.status_code != 201:
                break

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    rc = s.stop(signal.SIGTERM)
    for t in threads:
        t.join(15)
    assert rc == 0
    assert ids, "no request was acknowledged before SIGTERM"
    assert all(code in (201, 503) for code in results), set(results)
    stored = {r[0] for r in psql("SELECT id::text FROM audience_segments WHERE id = ANY(%s::uuid[])", ids)}
    assert stored == set(ids), "acknowledged writes lost: %d" % (len(ids) - len(stored))
    assert any("shutdown complete" in l for l in s.lines)
    with pytest.raises(requests.ConnectionError):
        requests.get(s.url + "/healthz", timeout=2)


def _refused(port):
    """True when a new connection is closed by the server without an answer."""
    import socket
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return c.recv(64) == b""
        except ConnectionResetError:
            return True
    finally:
        c.close()


@pytest.mark.parametrize("setting", ["SEGMENTD_CONNECTION_LIMIT", "SEGMENTD_PER_IP_LIMIT"])
def test_connection_limits_refuse_the_next_and_recover(setting):
    """With 8 connections open (the limit), the 9th is closed unanswered; once they close,
    new connections are served again."""
    import socket
    env = {setting: "8"}
    s = Server(env=env).start()
    held = []
    try:
        for _ in range(8):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(4096).startswith(b"HTTP/1.1 200"), setting
            held.append(c)
        assert _refused(s.port), f"a 9th connection was served past {setting}=8"
        for c in held:
            c.close()
        held = []
        deadline = time.time() + 5
        while True:
            try:
                if requests.get(s.url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, "not served again after the connections closed"
            time.sleep(0.05)
    finally:
        for c in held:
            c.close()
        assert s.stop() == 0
