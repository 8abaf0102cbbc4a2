"""PostgreSQL failover under write load (issue #26). A primary and a synchronous standby
(streaming replication, synchronous_standby_names, synchronous_commit=on) started by the
test; segmentd is given both hosts with target_session_attrs=read-write. Mixed writes run on
both dialects while the primary dies (immediate stop: a crash, no shutdown checkpoint) and
the standby is promoted. Writes answer clean 503s for a bounded time, no request hangs, the
same segmentd process serves again without a restart, and every acknowledged write is on the
new primary — checked id by id."""
import time

from clusters import Cluster
from hostile_util import V1, Load, assert_only_clean_503s, metric, record, v1_body
from segtest import Api, Server, psql

STANDBY = "standby1"


def test_failover_to_synchronous_standby_loses_no_acknowledged_write():
    a, b = Cluster("a"), Cluster("b")
    s = load = None
    try:
        a.init_primary().start()
        a.query("CREATE DATABASE segmentd", db="postgres")
        b.init_standby(a, STANDBY).start()
        a.make_synchronous(STANDBY)

        s = Server(env={"SEGMENTD_POOL_WAIT_MS": "1000"}).start()
        pid = s.proc.pid
        load = Load(s, threads=6, tenant_prefix="repl-fo").start()
        load.wait_acknowledged(200, timeout=60)
        before = load.acknowledged_writes()

        t_kill = time.time()
        a.stop("immediate")          # the primary crashes
        t_down = time.time()
        time.sleep(1.0)              # what a failover manager takes at least to decide
        t_promote = time.time()
        b.promote()
        t_promoted = time.time()

        # the first write acknowledged after the promotion
        api = Api(s, tenant="repl-fo-probe")
        recovered = None
        while time.time() - t_promoted < 30:
            r = api.post(V1, v1_body("probe"), check=False)
            if r.status_code == 201:
                recovered = time.time()
                break
            assert r.status_code == 503, r.text
            time.sleep(0.1)
        assert recovered is not None, "no write succeeded within 30 s of the promotion\n" + \
            "\n".join(s.lines[-20:])
        load.wait_acknowledged(before + 200, timeout=60)
        load.stop()

        assert s.proc.poll() is None and s.proc.pid == pid, "segmentd exited"
        assert_only_clean_503s(load.outcomes)
        assert not load.spec_errors, load.spec_errors[:5]
        writes = [o for o in load.outcomes if o.method != "GET"]
        failed = [o for o in writes if o.status == 503]
        assert failed, "no write failed: the primary was not serving when it was stopped?"
        # the window of 503s: from the crash to the last 503 of a write
        first_503 = min(o.t0 for o in failed)
        last_503 = max(o.t1 for o in failed)
        assert first_503 >= t_kill - 1, "503s before the primary stopped"
        window = last_503 - t_kill
        assert window < 15, f"writes answered 503 for {window:.1f} s"
        assert last_503 - t_promoted < 10, f"503s {last_503 - t_promoted:.1f} s after the promotion"
        slowest = max(o.t1 - o.t0 for o in load.outcomes)
        assert slowest < 10, f"a request took {slowest:.1f} s"
        checked = load.verify_acknowledged()   # psql: libpq finds the new primary the same way
        assert checked > 0
        assert psql("SELECT pg_is_in_recovery()")[0][0] is False
        record("failover_sync_standby", requests=len(load.outcomes), statuses=load.statuses(),
               acknowledged_writes=load.acknowledged_writes(), acknowledged_checked=checked, lost=0,
               writes_503=len(failed), window_503_s=round(window, 2),
               after_promotion_s=round(recovered - t_promoted, 2),
               crash_to_promote_s=round(t_promote - t_down, 2), slowest_request_s=round(slowest, 2),
               reconnects=metric(s, "segmentd_db_reconnects_total"))
    finally:
        if load is not None:
            load.stop_ev.set()
        if s is not None and s.proc is not None:
            assert s.stop() == 0
        a.remove()
        b.remove()
