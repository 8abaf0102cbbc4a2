"""Read replicas (issue #26). A primary and an asynchronous streaming replica started by the
test; segmentd reads evaluations (counts, previews, member pages, exports) on the replica
(SEGMENTD_DATABASE_READ_URL) and says how far behind it is in Replica-Lag; a replica further
behind than SEGMENTD_READ_MAX_LAG_MS, or stopped, sends the reads back to the primary — with
no failed request — and they return once it catches up or comes back. Reads that must see the
caller's own writes (GET by id) never go there. With SEGMENTD_READ_REPLICA_LISTS=1 the lists
read there too."""
import json
import time

from clusters import Cluster
from hostile_util import metric, record
from segtest import Api, Server

V1 = "/v1/segments"
DV = "/v1/devices"
MAX_LAG_MS = 1000
GROUPS = [{"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]


def devices(api, prefix, n, country="PL"):
    r = api.post(DV + "/bulk", {"data": [{"id": f"{prefix}-{i:04d}", "country": country} for i in range(n)]},
                 params={"atomic": "true"}, check=False)
    assert r.status_code == 200 and not r.json()["errors"], r.text[:500]


def reads(server, target):
    return metric(server, 'segmentd_reads_total{target="%s"}' % target)


def wait_for(what, cond, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return time.time() - t0
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def lag_of(r):
    v = r.headers.get("Replica-Lag")
    return None if v is None else int(v)


def test_evaluations_read_the_replica_and_fall_back_to_the_primary():
    a, rep = Cluster("a"), Cluster("r")
    s = None
    try:
        a.init_primary().start()
        a.query("CREATE DATABASE segmentd", db="postgres")
        rep.init_standby(a, "replica1").start()
        a.wait_streaming("replica1", sync="async")
        s = Server(env={"SEGMENTD_DATABASE_READ_URL": f"{rep.dsn} dbname=segmentd",
                        "SEGMENTD_READ_MAX_LAG_MS": str(MAX_LAG_MS),
                        "SEGMENTD_READ_REPLICA_LISTS": "1"}).start()
        api = Api(s, tenant="repl-read", scope="segments:read segments:write devices:read devices:write")
        devices(api, "pl", 30)
        devices(api, "de", 20, country="DE")
        seg = api.post(V1, {"name": "PL", "constraints": GROUPS})
        assert seg.status_code == 201, seg.text
        sid = seg.json()["id"]
        path = f"{V1}/{sid}"

        # once the replica has replayed the segment and the devices, counts read there
        def count_on_replica():
            r = api.get(path + "/count", check=False)
            return r.status_code == 200 and lag_of(r) is not None and r.json()["count"] == 30
        caught_up = wait_for("the count read on the replica", count_on_replica)
        on_replica = reads(s, "replica")
        r = api.get(path + "/count")
        assert r.status_code == 200 and r.json()["count"] == 30
        assert 0 <= lag_of(r) <= MAX_LAG_MS
        r = api.get(path + "/members", params={"limit": 10})
        assert r.status_code == 200 and len(r.json()["items"]) == 10 and lag_of(r) is not None
        r = api.post(V1 + "/preview", {"name": "p", "constraints": GROUPS})
        assert r.status_code == 200 and r.json()["count"] == 30 and lag_of(r) is not None
        r = api.get(path + "/members", params={"format": "ndjson"})
        assert r.status_code == 200 and lag_of(r) is not None
        assert len([json.loads(x) for x in r.text.splitlines() if x]) == 30
        # with SEGMENTD_READ_REPLICA_LISTS=1, lists too
        for lpath in (V1, DV):
            r = api.get(lpath, params={"limit": 100})
            assert r.status_code == 200 and lag_of(r) is not None, (lpath, r.headers)
        assert any(x["id"] == sid for x in api.get(V1, params={"limit": 100}).json()["items"])
        assert reads(s, "replica") >= on_replica + 6
        # reads of one's own writes stay on the primary
        r = api.get(path)
        assert r.status_code == 200 and "Replica-Lag" not in r.headers
        r = api.get(f"{path}/members/pl-0001")
        assert r.status_code == 200 and r.json()["member"] is True and "Replica-Lag" not in r.headers

        # the replica falls behind (replay paused while the primary writes): its answers show
        # the lag, then, past SEGMENTD_READ_MAX_LAG_MS, the reads go to the primary
        rep.query("SELECT pg_wal_replay_pause()")
        devices(api, "pl2", 5)
        t_behind = time.time()
        def on_primary_fresh():
            r = api.get(path + "/count", check=False)
            assert r.status_code == 200, r.text
            return lag_of(r) is None and r.json()["count"] == 35
        fell_back = wait_for("the count read on the primary", on_primary_fresh, timeout=MAX_LAG_MS / 1000 + 10)
        assert time.time() - t_behind >= MAX_LAG_MS / 1000 - 0.3, "left the replica before its lag passed the limit"
        stale = [api.get(path + "/count") for _ in range(3)]
        assert all(lag_of(x) is None and x.json()["count"] == 35 for x in stale)
        rep.query("SELECT pg_wal_replay_resume()")
        wait_for("back on the replica", count_on_replica_n(api, path, 35))

        # the replica stops: every read still answers, from the primary, at once
        primary_before = reads(s, "primary")
        rep.stop("immediate")
        t_stop = time.time()
        answers = []
        while time.time() - t_stop < 3:
            answers.append(api.get(path + "/count", check=False))
        assert all(x.status_code == 200 and x.json()["count"] == 35 for x in answers), \
            [(x.status_code, x.text[:200]) for x in answers if x.status_code != 200][:3]
        assert all(lag_of(x) is None for x in answers[1:])
        assert reads(s, "primary") > primary_before
        assert metric(s, "segmentd_read_replica_up") == 0
        # it comes back: the reads return to it
        rep.start()
        back = wait_for("back on the restarted replica", count_on_replica_n(api, path, 35), timeout=30)
        record("read_replica", caught_up_s=round(caught_up, 2), fell_back_after_s=round(fell_back, 2),
               answers_while_replica_down=len(answers), failed_while_replica_down=0,
               back_after_restart_s=round(back, 2), replica_reads=reads(s, "replica"),
               primary_reads=reads(s, "primary"))
    finally:
        if s is not None and s.proc is not None:
            assert s.stop() == 0
        rep.remove()
        a.remove()


def count_on_replica_n(api, path, n):
    def cond():
        r = api.get(path + "/count", check=False)
        return r.status_code == 200 and lag_of(r) is not None and r.json()["count"] == n
    return cond
