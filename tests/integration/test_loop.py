"""The event loops whose requests run on fibers (core/fiber.c, http/loops.c, http/dispatch.c):
a request waiting for PostgreSQL never holds up the other connections of its loop, a
request waiting for a pooled connection gives up after SEGMENTD_POOL_WAIT_MS with a clean
503, and nothing is lost or hangs meanwhile."""
import json
import threading
import time
import uuid

import psycopg2
import requests

from hostile_util import CLIENT_TIMEOUT, AUD, aud_body, metric
from segtest import DB_URL, Api, Server, check_against_spec

RUN = uuid.uuid4().hex[:8]


def lock_row(table, tenant, seg_id):
    """An open transaction holding the row's lock: writes to it wait until rollback."""
    conn = psycopg2.connect(DB_URL)
    cur = conn.cursor()
    cur.execute(f"SELECT 1 FROM {table} WHERE tenant = %s AND id = %s FOR UPDATE",
                (tenant, seg_id))
    assert cur.fetchone() == (1,)
    return conn


def patch_in_thread(s, api, seg_id, out):
    def run():
        t0 = time.monotonic()
        r = requests.patch(s.url + AUD, data=json.dumps(dict(aud_body("waited"), id=seg_id)),
                           timeout=CLIENT_TIMEOUT,
                           headers={"Authorization": "Bearer " + api.token,
                                    "Content-Type": "application/json"})
        check_against_spec("PATCH", AUD, r)
        out.append((r.status_code, time.monotonic() - t0, r))
    t = threading.Thread(target=run)
    t.start()
    return t


def patch_waiting_on_lock(s, api, tenant):
    """Two segments; the first locked by an open transaction and a PATCH of it waiting on
    the lock (0.3 s given to get there). Returns (other id, the lock's connection, the
    PATCH's thread, its outcome list)."""
    locked = api.post(AUD, aud_body("locked")).json()["id"]
    other = api.post(AUD, aud_body("other")).json()["id"]
    conn = lock_row("audience_segments", tenant, locked)
    out = []
    t = patch_in_thread(s, api, locked, out)
    time.sleep(0.3)
    return locked, other, conn, t, out


def test_a_waiting_statement_does_not_hold_up_its_loop():
    """One loop, four connections to PostgreSQL: while a PATCH waits 1.5 s on a row lock,
    reads on other HTTP connections of the same loop answer at once (in the retired thread
    pool, the connections of a worker blocked in libpq waited with it)."""
    s = Server(env={"SEGMENTD_LOOPS": "1",
                    "SEGMENTD_POOL_SIZE": "4"}).start()
    tenant = f"loop-hol-{RUN}"
    api = Api(s, tenant=tenant)
    try:
        locked, other, conn, t, out = patch_waiting_on_lock(s, api, tenant)
        worst = 0.0
        reader = Api(s, tenant=tenant)
        t_end = time.monotonic() + 1.2
        n = 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = reader.get(f"{AUD}/{other}")
            assert r.status_code == 200, r.text
            assert requests.get(s.url + "/healthz", timeout=5).status_code == 200
            worst = max(worst, time.monotonic() - t0)
            n += 1
        assert not out, "the PATCH should still wait on the lock: %r" % out
        assert n > 20 and worst < 0.5, (n, worst)
        conn.rollback()
        conn.close()
        t.join(CLIENT_TIMEOUT)
        assert out and out[0][0] == 200, out
        assert out[0][2].json()["name"] == "waited"
        assert out[0][1] >= 1.4, out[0][1]  # it did wait for the lock
    finally:
        assert s.stop() == 0


def test_waiting_for_a_connection_ends_in_a_clean_503():
    """One loop, one connection to PostgreSQL held by a PATCH waiting on a row lock: another
    request that needs the database waits SEGMENTD_POOL_WAIT_MS, then gets 503
    pool_exhausted with Retry-After; /healthz answers meanwhile; once the lock goes both
    the PATCH and new requests succeed."""
    s = Server(env={"SEGMENTD_LOOPS": "1",
                    "SEGMENTD_POOL_SIZE": "1", "SEGMENTD_POOL_WAIT_MS": "300"}).start()
    tenant = f"loop-pool-{RUN}"
    api = Api(s, tenant=tenant)
    try:
        locked = api.post(AUD, aud_body("locked")).json()["id"]
        conn = lock_row("audience_segments", tenant, locked)
        out = []
        t = patch_in_thread(s, api, locked, out)
        time.sleep(0.3)
        before = metric(s, "segmentd_db_pool_timeouts_total")
        t0 = time.monotonic()
        r = Api(s, tenant=tenant).get(f"{AUD}/{locked}")
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "pool_exhausted"
        assert r.headers.get("Retry-After") == "1"
        assert 0.25 <= took < 2.0, took
        assert requests.get(s.url + "/healthz", timeout=5).status_code == 200
        assert before is not None, "/metrics has no segmentd_db_pool_timeouts_total"
        assert metric(s, "segmentd_db_pool_timeouts_total") == before + 1
        conn.rollback()
        conn.close()
        t.join(CLIENT_TIMEOUT)
        assert out and out[0][0] == 200, out
        assert api.get(f"{AUD}/{locked}").json()["name"] == "waited"
    finally:
        assert s.stop() == 0


def test_concurrent_requests_on_few_loops_all_answer_their_own():
    """64 concurrent creates on 2 loops sharing 2 connections: each answer is its own
    request's (the name it sent), every one is stored, and waiting fibers are handed the
    connections in turn without a 503 (the wait is far below SEGMENTD_POOL_WAIT_MS)."""
    s = Server(env={"SEGMENTD_LOOPS": "2",
                    "SEGMENTD_POOL_SIZE": "2"}).start()
    tenant = f"loop-own-{RUN}"
    api = Api(s, tenant=tenant)
    try:
        results = [None] * 64
        go = threading.Event()

        def one(i):
            sess = requests.Session()
            go.wait()
            for k in range(4):
                name = f"own-{i}-{k}"
                r = sess.post(s.url + AUD, data=json.dumps(aud_body(name)), timeout=CLIENT_TIMEOUT,
                              headers={"Authorization": "Bearer " + api.token,
                                       "Content-Type": "application/json"})
                check_against_spec("POST", AUD, r)
                assert r.status_code == 201, r.text
                assert r.json()["name"] == name
            results[i] = True

        ts = [threading.Thread(target=one, args=(i,)) for i in range(64)]
        for t in ts:
            t.start()
        go.set()
        for t in ts:
            t.join(CLIENT_TIMEOUT + 5)
        assert all(results), "a request failed or hung"
        rows = Api(s, tenant=tenant)
        from segtest import psql
        n = psql("SELECT count(*) FROM audience_segments WHERE tenant = %s", tenant)[0][0]
        assert n == 256
        assert rows.get("/healthz", token=False).status_code == 200
    finally:
        assert s.stop() == 0


def test_a_slow_batch_gets_no_new_statements():
    """One loop with 2 connections: a PATCH's batch waits 1.5 s on a row lock.
    Eight concurrent readers keep the other connection busy, yet none of their statements
    queues behind the stuck batch (a lane whose batch has run 50 ms takes no new ones while
    another can): the slowest read stays far below the lock's 1.5 s."""
    s = Server(env={"SEGMENTD_LOOPS": "1",
                    "SEGMENTD_POOL_SIZE": "2"}).start()
    tenant = f"loop-slow-{RUN}"
    api = Api(s, tenant=tenant)
    try:
        locked, other, conn, t, out = patch_waiting_on_lock(s, api, tenant)
        stop = time.monotonic() + 1.0
        worst = [0.0] * 8
        counts = [0] * 8

        def reader(k):
            sess = requests.Session()
            while time.monotonic() < stop:
                t0 = time.monotonic()
                r = sess.get(f"{s.url}{AUD}/{other}", timeout=CLIENT_TIMEOUT,
                             headers={"Authorization": "Bearer " + api.token})
                assert r.status_code == 200, r.text
                worst[k] = max(worst[k], time.monotonic() - t0)
                counts[k] += 1

        rs = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
        for r in rs:
            r.start()
        for r in rs:
            r.join(CLIENT_TIMEOUT)
        assert not out, "the PATCH should still wait on the lock: %r" % out
        assert all(c > 5 for c in counts) and max(worst) < 0.5, (counts, worst)
        conn.rollback()
        conn.close()
        t.join(CLIENT_TIMEOUT)
        assert out and out[0][0] == 200, out
    finally:
        assert s.stop() == 0
