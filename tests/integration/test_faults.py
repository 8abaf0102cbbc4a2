"""Faults under load: PostgreSQL restarted, its sessions killed, the pool exhausted and
statements timing out, SIGTERM with requests in flight. Requests in flight fail with
503 (never hang), service resumes without restarting segmentd, and every write that
was acknowledged with a 2xx is in the database afterwards — checked id by id."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import psycopg2
import requests

from segtest import DB_URL, Api, Server, check_against_spec, psql
from hostile_util import (AUD, CLIENT_TIMEOUT, V1, Load, Outcome, assert_only_clean_503s, aud_body, metric,
                          record, v1_body)

RUN = uuid.uuid4().hex[:8]


def db_url_named(app_name):
    """SEGMENTD_DATABASE_URL with an application_name, so that the test can find (and
    kill) this server's sessions and no one else's. The URL's settings win in
    segmentd (store_connect_raw), so appending is enough."""
    if DB_URL.startswith(("postgres://", "postgresql://")):
        return DB_URL + ("&" if "?" in DB_URL else "?") + "application_name=" + app_name
    return DB_URL + " application_name=" + app_name


def pg_ctl(which):
    cmd = os.environ.get({"stop": "SEGMENTD_TEST_PGCTL_STOP", "start": "SEGMENTD_TEST_PGCTL_START"}[which])
    assert cmd, "scripts/test sets SEGMENTD_TEST_PGCTL_STOP/START"
    subprocess.run(cmd, shell=True, check=True, capture_output=True, timeout=120)


def every_route_ok(server, tenant):
    """One request on every route of both dialects, all 2xx."""
    api = Api(server, tenant=tenant)
    a = api.post(AUD, aud_body("after"))
    assert a.status_code == 201, a.text
    v = api.post(V1, v1_body("after"))
    assert v.status_code == 201, v.text
    aid, vid = a.json()["id"], v.json()["id"]
    for r in [api.get(AUD + "/" + aid), api.get(V1 + "/" + vid), api.get(AUD), api.get(V1),
              api.patch(V1, {"id": vid, "name": "after2"}),
              api.request("PATCH", AUD + "/" + aid, data=json.dumps({"name": "after2"}),
                          headers={"Content-Type": "application/merge-patch+json"}),
              api.patch(AUD, dict(aud_body("after3"), id=aid)),
              api.post(V1 + "/bulk", {"data": [v1_body("after-bulk")]}),
              api.post(AUD + "/bulk", {"data": [aud_body("after-bulk")]}),
              api.delete(AUD + "/" + aid), api.delete(V1 + "/" + vid),
              api.get("/readyz", token=None)]:
        assert 200 <= r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text[:300])


# ---------------------------------------------------------------- tests

def test_postgres_restarted_under_load():
    """PostgreSQL stops (fast: sessions killed) while requests are in flight — some of
    them blocked on a table lock inside PostgreSQL — and starts again. In-flight requests
    get 503, none hangs, the same segmentd process serves again within seconds, and no
    acknowledged write is lost."""
    app = f"hx-restart-{RUN}"
    s = Server(env={"SEGMENTD_DATABASE_URL": db_url_named(app),
                    "SEGMENTD_POOL_WAIT_MS": "1000"}).start()
    pid = s.proc.pid
    load = Load(s, threads=6, tenant_prefix="hx-rs").start()
    locker = None
    try:
        load.wait_acknowledged(30)
        # park some requests inside PostgreSQL: requests on audience_segments wait on this lock
        locker = psycopg2.connect(DB_URL)
        cur = locker.cursor()
        cur.execute("BEGIN; LOCK TABLE audience_segments IN ACCESS EXCLUSIVE MODE")
        waiting, t_lock = 0, time.time()
        while waiting < 2 and time.time() - t_lock < 4:  # within the 5 s statement timeout
            time.sleep(0.2)
            waiting = psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                           "AND wait_event_type = 'Lock'", app)[0][0]
        t_stop = time.time()
        pg_ctl("stop")
        t_down = time.time()
        try:
            locker.close()
        except psycopg2.Error:
            pass
        locker = None
        time.sleep(2.0)
        t_start = time.time()
        pg_ctl("start")
        t_up = time.time()
        # service resumes: the first success after PostgreSQL is up
        api = Api(s, tenant=f"hx-rs-probe-{RUN}")
        recovered = None
        while time.time() - t_up < 20:
            if api.get(V1, check=False).status_code == 200:
                recovered = time.time() - t_up
                break
            time.sleep(0.1)
        assert recovered is not None, "no request succeeded within 20 s of PostgreSQL starting"
        time.sleep(3.0)
    finally:
        load.stop()
        if locker is not None:
            locker.close()
    try:
        assert s.proc.poll() is None and s.proc.pid == pid, "segmentd exited"
        assert_only_clean_503s(load.outcomes)
        assert not load.spec_errors, load.spec_errors[:5]
        in_flight = [o for o in load.outcomes if o.t0 < t_stop and o.t1 > t_stop]
        assert waiting >= 1, "no request was waiting inside PostgreSQL when it stopped"
        assert in_flight, "no request was in flight when PostgreSQL stopped"
        # an in-flight request fails with 503 — or completes, when PostgreSQL granted it the
        # lock (the locking session died first) and it committed before its own session was
        # killed; then it was acknowledged and verify_acknowledged() checks it is stored
        for o in in_flight:
            assert o.status in (200, 201, 204, 503), (o.op, o.status, o.error)
            assert o.t1 - t_stop < 15, f"{o.op} in flight at the stop took {o.t1 - t_stop:.1f} s more"
        # while PostgreSQL was down every request was refused with 503, promptly
        during = [o for o in load.outcomes if t_down < o.t0 and o.t1 < t_start]
        assert during and all(o.status == 503 for o in during), \
            [(o.op, o.status) for o in during if o.status != 503][:5]
        assert max(o.t1 - o.t0 for o in during) < 6, "a request took long to fail while PostgreSQL was down"
        late_503 = [o for o in load.outcomes if o.status == 503 and o.t0 > t_up + recovered + 2]
        assert not late_503, "503s long after recovery: %s" % [(o.op, o.code) for o in late_503[:5]]
        ok_after = [o for o in load.outcomes if o.t0 > t_up + recovered and o.status in (200, 201, 204)]
        assert ok_after, "the load did not resume"
        every_route_ok(s, f"hx-rs-after-{RUN}")
        checked = load.verify_acknowledged()
        assert checked > 0
        reconnects = metric(s, "segmentd_db_reconnects_total")
        record("postgres_restart", requests=len(load.outcomes), statuses=load.statuses(),
               in_flight_at_stop=len(in_flight), in_flight_503=sum(o.status == 503 for o in in_flight),
               refused_while_down=len(during), waiting_in_postgres=waiting,
               stop_s=round(t_down - t_stop, 2), down_s=round(t_up - t_down, 2),
               recovered_s=round(recovered, 2), acknowledged_writes=load.acknowledged_writes(),
               acknowledged_checked=checked, lost=0, reconnects=reconnects)
    finally:
        assert s.stop() == 0


def test_postgres_sessions_killed_under_load():
    """pg_terminate_backend on every session of segmentd, three times, under load:
    the affected requests get 503, the next ones reconnect, nothing acknowledged is lost."""
    app = f"hx-kill-{RUN}"
    s = Server(env={"SEGMENTD_DATABASE_URL": db_url_named(app)}).start()
    load = Load(s, threads=6, tenant_prefix="hx-kl").start()
    killed = 0
    try:
        load.wait_acknowledged(30)
        for _ in range(3):
            killed += len(psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE application_name = %s", app))
            time.sleep(1.0)
        t_last = time.time()
        time.sleep(2.5)
    finally:
        load.stop()
    try:
        assert killed >= 3, "no session of segmentd was found to kill"
        assert_only_clean_503s(load.outcomes)
        assert not load.spec_errors, load.spec_errors[:5]
        late = [o for o in load.outcomes if o.status == 503 and o.t0 > t_last + 1.0]
        assert not late, "503s after the sessions came back: %s" % [(o.op, o.code) for o in late[:5]]
        n503 = sum(1 for o in load.outcomes if o.status == 503)
        # at most the requests that were using a killed session fail (a session carries
        # a batch: up to one request per load thread)
        per_session = 6
        assert n503 <= killed * per_session, (n503, killed)
        every_route_ok(s, f"hx-kl-after-{RUN}")
        checked = load.verify_acknowledged()
        record("sessions_killed", requests=len(load.outcomes), statuses=load.statuses(),
               sessions_killed=killed, failed_503=n503, acknowledged_writes=load.acknowledged_writes(),
               acknowledged_checked=checked, lost=0)
    finally:
        assert s.stop() == 0


def test_pool_exhausted_and_statement_timeout_under_concurrency():
    """Two connections for sixteen workers, and the table locked for 3 s: a burst of 30
    requests gets 503 + Retry-After — pool_exhausted after the pool wait, database_timeout
    at the statement timeout — or, once the lock is gone, its normal answer. Nothing
    hangs, and every acknowledged write is stored.

    Inside segmentd a request ends within pool wait + statement timeout (its access-log
    duration). Seen from the client it can also queue behind other requests handled by
    the same MHD worker thread (head-of-line blocking of the epoll pool, notes §1.1; a
    burst of new connections tends to be accepted by one worker), so the client-side
    bound is the burst's worst case, not one request's."""
    pool_wait, stmt_timeout, n = 300, 1500, 30
    s = Server(env={"SEGMENTD_POOL_SIZE": "2", "SEGMENTD_POOL_WAIT_MS": str(pool_wait),
                    "SEGMENTD_STATEMENT_TIMEOUT_MS": str(stmt_timeout)}).start()
    tenant = f"hx-pool-{RUN}"
    api = Api(s, tenant=tenant)
    seg = api.post(V1, v1_body("pool")).json()
    lock = psycopg2.connect(DB_URL)
    results, lk = [], threading.Lock()

    def one(i):
        sess = requests.Session()
        t0 = time.time()
        h = {"Authorization": "Bearer " + api.token, "Content-Type": "application/json",
             "X-Request-Id": f"pool-{RUN}-{i}"}
        if i % 3 == 0:
            m, path, body = "GET", V1 + "/" + seg["id"], None
        elif i % 3 == 1:
            m, path, body = "POST", V1, json.dumps(v1_body(f"p{i}"))
        else:
            m, path, body = "PATCH", V1, json.dumps({"id": seg["id"], "name": f"p{i}"})
        r = sess.request(m, s.url + path, data=body, headers=h, timeout=CLIENT_TIMEOUT)
        check_against_spec(m, path, r)
        with lk:
            results.append((i, m, r.status_code, time.time() - t0, r.headers.get("Retry-After"),
                            r.json().get("code") if r.status_code >= 400 else r.json()))

    released = threading.Event()

    def release_later():
        time.sleep(3.0)
        lock.rollback()
        released.set()

    try:
        cur = lock.cursor()
        cur.execute("BEGIN; LOCK TABLE v1_segments IN ACCESS EXCLUSIVE MODE")
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        rel = threading.Thread(target=release_later)
        t0 = time.time()
        for t in ts:
            t.start()
        rel.start()
        for t in ts:
            t.join(CLIENT_TIMEOUT + 5)
        elapsed = time.time() - t0
        rel.join(10)
        assert not any(t.is_alive() for t in ts), "a request hung"
    finally:
        if not released.is_set():
            lock.rollback()
        lock.close()
    try:
        assert len(results) == n
        codes = {}
        for i, m, status, dur, ra, code in results:
            if status == 503:
                assert ra == "1", (i, ra)
                codes[code] = codes.get(code, 0) + 1
            else:
                assert status == {"GET": 200, "POST": 201, "PATCH": 200}[m], (i, m, status, code)
                codes[status] = codes.get(status, 0) + 1
            # worst case seen by a client: queued behind every other request of its worker
            assert dur < n * (pool_wait + stmt_timeout) / 1000 + 5, (i, dur)
        # a request that got one of the two connections waited for the statement timeout
        # (database_timeout; database_unavailable when it was the connection's first use and
        # preparing the statements hit the lock); others were refused after the pool wait
        assert codes.get("pool_exhausted", 0) >= 3, codes
        assert codes.get("database_timeout", 0) + codes.get("database_unavailable", 0) >= 1, codes
        assert set(codes) <= {"pool_exhausted", "database_timeout", "database_unavailable", 200, 201}, codes
        timeouts = metric(s, "segmentd_db_pool_timeouts_total")
        assert timeouts is not None and timeouts >= codes["pool_exhausted"]
        time.sleep(0.3)
        logged = {r["request_id"]: r for r in s.log_records()
                  if str(r.get("request_id", "")).startswith(f"pool-{RUN}-")}
        assert len(logged) == n, len(logged)
        # a GET is handled in one go; a request with a body can also wait between its
        # headers and its body for the worker (head-of-line), which its duration includes
        worst = max(r["duration_ms"] for r in logged.values() if r["method"] == "GET")
        assert worst < pool_wait + stmt_timeout + 1000, f"a GET spent {worst} ms inside segmentd"
        # acknowledged writes are stored; refused ones are not
        created = {c["id"] for i, m, st, d, ra, c in results if st == 201}
        stored = {r[0] for r in psql("SELECT id FROM v1_segments WHERE tenant = %s", tenant)}
        assert stored == created | {seg["id"]}, (stored, created)
        patched = {c["name"] for i, m, st, d, ra, c in results if m == "PATCH" and st == 200}
        name = psql("SELECT name FROM v1_segments WHERE tenant = %s AND id = %s", tenant, seg["id"])[0][0]
        assert name in (patched or {"pool"}), (name, patched)
        every_route_ok(s, tenant)
        record("pool_exhausted", concurrent=n, outcomes={str(k): v for k, v in codes.items()},
               wall_s=round(elapsed, 2), worst_server_ms=worst,
               worst_client_s=round(max(r[3] for r in results), 2), pool_timeouts_metric=timeouts)
    finally:
        assert s.stop() == 0


def test_sigterm_under_load_completes_in_flight_and_loses_nothing():
    """SIGTERM while a mixed load runs and while some writes are parked on a row lock
    inside PostgreSQL: the parked requests complete with 2xx after the lock goes (within
    the grace period), every id acknowledged with a 2xx — creates, bulk creates,
    updates, deletes — is in the database as acknowledged, and the process exits 0."""
    s = Server(env={"SEGMENTD_SHUTDOWN_GRACE": "20"}).start()
    tenant = f"hx-term-{RUN}"
    api = Api(s, tenant=tenant)
    parked_seg = api.post(V1, v1_body("parked")).json()
    load = Load(s, threads=6, tenant_prefix="hx-tm").start()
    locker = psycopg2.connect(DB_URL)
    parked = []

    def parked_patch(i):
        sess = requests.Session()
        o = Outcome("parked", "PATCH", V1, time.time())
        try:
            r = sess.patch(s.url + V1, data=json.dumps({"id": parked_seg["id"], "name": f"parked-{i}"}),
                           headers={"Authorization": "Bearer " + api.token,
                                    "Content-Type": "application/json"}, timeout=CLIENT_TIMEOUT)
            o.status = r.status_code
            if r.status_code == 200:
                o.code = r.json()["name"]
        except requests.RequestException as e:
            o.error = type(e).__name__
        o.t1 = time.time()
        parked.append(o)

    try:
        load.wait_acknowledged(30)
        cur = locker.cursor()
        cur.execute("BEGIN; SELECT 1 FROM v1_segments WHERE tenant = %s AND id = %s FOR UPDATE",
                    (tenant, parked_seg["id"]))
        pts = [threading.Thread(target=parked_patch, args=(i,)) for i in range(2)]
        for t in pts:
            t.start()
        time.sleep(1.0)
        t_term = time.time()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        locker.rollback()  # the parked updates can finish now, inside the grace period
        rc = s.proc.wait(40)
        t_exit = time.time()
        for t in pts:
            t.join(CLIENT_TIMEOUT)
    finally:
        load.stop()
        locker.close()
    assert s.stop() == rc == 0
    assert len(parked) == 2
    for o in parked:
        assert o.status == 200, f"a request in flight at SIGTERM did not complete: {o.status} {o.error}"
        assert o.t1 > t_term
    # the last acknowledged parked update is what is stored (both were acknowledged, in order)
    stored = psql("SELECT name FROM v1_segments WHERE tenant = %s AND id = %s", tenant, parked_seg["id"])
    assert stored[0][0] in {o.code for o in parked}
    # nothing but clean answers (or refused connections once the listener was closed)
    bad = [o for o in load.outcomes if not (o.status in (200, 201, 204, 404, 503) or
                                          (o.error and o.t0 >= t_term))]
    assert not bad, [(o.op, o.status, o.error, round(o.t0 - t_term, 2)) for o in bad[:10]]
    in_flight = [o for o in load.outcomes if o.t0 < t_term < o.t1]
    cut = [o for o in in_flight if o.error]
    assert not cut, "requests in flight at SIGTERM were cut: %s" % [(o.op, o.error) for o in cut]
    assert not load.spec_errors, load.spec_errors[:5]
    checked = load.verify_acknowledged()
    acked_before = sum(1 for o in load.outcomes if o.status in (200, 201, 204) and o.t0 < t_term)
    assert checked >= 30 and acked_before >= 30
    assert any("shutdown complete" in l for l in s.lines)
    record("sigterm_under_load", requests=len(load.outcomes), statuses=load.statuses(),
           in_flight_at_sigterm=len(in_flight) + len(parked), parked_on_lock=len(parked),
           exit_s=round(t_exit - t_term, 2), acknowledged_writes=load.acknowledged_writes(),
           acknowledged_checked=checked, lost=0)
