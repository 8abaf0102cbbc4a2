"""The lifecycle sweeper (issue #20): reads show renewals before the sweeper writes them,
the sweeper writes each renewal once, and several segmentd processes sweeping one database
apply each renewal exactly once. Each test has a database of its own, so that no other
segmentd of the run (whose sweepers reach every tenant of their database) takes part."""
import datetime as dt
import os
import subprocess
import threading
import time

import pytest

from lifecycle_util import (DAY, DIALECTS, backdate, fresh_database, metric_sum, now, sql,
                            tenant_api, version, wait_until)
from segtest import BIN, DB_URL, SECRET, Server
from test_bulk import envelope

H = dt.timedelta(hours=1)


def server_on(url, sweep_s):
    return Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_LIFECYCLE_SWEEP_S": str(sweep_s)})


def rows(url, d, tenant):
    """{id: (end_date, version, updated_at)} of a tenant's segments of dialect d."""
    return {r[0]: r[1:] for r in sql(url, f"SELECT id::text, end_date, version, updated_at FROM {d.table} "
                                           "WHERE tenant = %s", tenant)}


@pytest.mark.parametrize("d", DIALECTS, ids=repr)
def test_reads_show_renewal_between_sweeps_then_one_write(d):
    with fresh_database("between") as url:
        quiet = server_on(url, 0).start()
        sweeper = None
        try:
            api = tenant_api(quiet)
            t = now()
            E = d.trunc(t - 3.5 * DAY)
            x = d.create(api, end_date=E, extend=True, extend_days=1)
            backdate(url, d, api.tenant, {x["id"]: E})  # as if its end passed with no sweeper
            future = d.create(api, end_date=t + H, extend=True, extend_days=1)
            ended = d.create(api, end_date=t - H)
            want = d.enc(E + 4 * DAY)
            made = {s["id"]: s for s in (x, future, ended)}

            def check_reads(v_x):
                g = d.get_r(api, x["id"])
                assert g.status_code == 200
                assert g.json()[d.k("end_date")] == want and g.json()["status"] == "active"
                assert version(g) == v_x
                items = {s["id"]: s for s in d.list_r(api, limit=10).json()["items"]}
                assert items[x["id"]] == g.json()
                assert [s["id"] for s in d.list_r(api, status="expired").json()["items"]] == [ended["id"]]
                assert x["id"] in [s["id"] for s in d.list_r(api, status="active").json()["items"]]
                assert x["id"] in [s["id"] for s in d.list_r(api, active_at=t + 400 * DAY).json()["items"]]
                return g

            # no sweeper: the reads renew, nothing is written
            g1 = check_reads(1)
            assert x[d.k("end_date")] == want  # the create's answer too
            time.sleep(1.5)
            g1 = check_reads(1)
            assert g1.json() == x
            stored = rows(url, d, api.tenant)
            assert stored[x["id"]][:2] == (E, 1)
            assert quiet.proc.poll() is None
            assert metric_sum(quiet, "segmentd_lifecycle_extensions_total") in (None, 0)

            # a sweeper: one write, version 2, the same end date, updated_at moved
            t_sweeper = now()
            sweeper = server_on(url, 1).start()
            wait_until(lambda: rows(url, d, api.tenant)[x["id"]][1] == 2, 8, what="the renewal written")
            g2 = check_reads(2)
            assert g2.headers["ETag"] == '"2"' != g1.headers["ETag"]
            assert d.dec(g2.json()[d.k("updated_at")]) > d.dec(g1.json()[d.k("updated_at")])
            assert d.dec(g2.json()[d.k("updated_at")]) >= d.trunc(t_sweeper)
            assert {k: v for k, v in g2.json().items() if k != d.k("updated_at")} == \
                {k: v for k, v in g1.json().items() if k != d.k("updated_at")}
            time.sleep(2.5)  # more sweeps: nothing more
            stored = rows(url, d, api.tenant)
            assert stored[x["id"]][:2] == (E + 4 * DAY, 2)
            assert stored[future["id"]][1] == 1 and stored[ended["id"]][1] == 1
            assert check_reads(2).json() == g2.json()
            for s_id, s in made.items():
                if s_id != x["id"]:
                    assert d.get(api, s_id) == s
            assert metric_sum(sweeper, "segmentd_lifecycle_extensions_total") == 1
            assert metric_sum(sweeper, "segmentd_lifecycle_extensions_total", dialect=d.dialect_label) == 1
            assert metric_sum(sweeper, "segmentd_lifecycle_sweeps_total") >= 2
        finally:
            assert quiet.stop() == 0
            if sweeper:
                assert sweeper.stop() == 0


def overdue_items(d, n, t, tag):
    """n renewing items whose end passed 0.5 to 4.5 periods ago, periods of 1, 2 or 7 days;
    with the end date each has and the exact one each must get."""
    items, ends = [], {}
    for i in range(n):
        days = (1, 2, 7)[i % 3]
        k = i % 5 + 1
        E = d.trunc(t - (k - 0.5) * days * DAY)
        name = f"{tag}-{d.name}-{i}"
        items.append(d.bulk_item(name, end_date=E, extend=True, extend_days=days))
        ends[name] = (E, E + k * days * DAY)
    return items, ends


def test_two_processes_sweep_each_renewal_once():
    """Two segmentd processes sweep one database every second: 1200 overdue renewing
    segments made before they start (a backlog both find at once, more than one batch of
    the sweeper per dialect), 100 more made while they run, across tenants and both dialects (made by a segmentd that does not sweep, which
    stores a passed end date already renewed, then set back to it by SQL). Every segment ends at version 2 with its exact
    end date, and the two processes' extension counters add up to the number of segments."""
    with fresh_database("sweep2") as url:
        maker = server_on(url, 0).start()
        sweepers = []
        try:
            apis = [tenant_api(maker, prefix="sw") for _ in range(4)]
            t = now()
            want, tenants = {}, {}

            def make(tag, per_dialect):
                for d in DIALECTS:
                    for j, api in enumerate(apis):
                        n = per_dialect // len(apis) + (j < per_dialect % len(apis))
                        items, ends = overdue_items(d, n, t, f"{tag}-{j}")
                        b = envelope(api.post(d.path + "/bulk", {"data": items}))
                        assert b["errors"] == [] and len(b["data"]) == n
                        for s in b["data"]:
                            E, w = ends[s["name"]]
                            assert s[d.k("end_date")] == d.enc(w) and s["status"] == "active"
                            want[(d.name, s["id"])] = w
                            tenants[(d.name, s["id"])] = api.tenant
                        # as if their end dates passed while no sweeper ran
                        backdate(url, d, api.tenant, {s["id"]: ends[s["name"]][0] for s in b["data"]})

            make("backlog", 600)  # more than one statement's batch (500) per dialect
            assert len(want) == 1200

            # both start at once on the backlog
            starters = [server_on(url, 1) for _ in range(2)]
            ts = [threading.Thread(target=s.start) for s in starters]
            for th in ts:
                th.start()
            for th in ts:
                th.join(60)
            sweepers = [s for s in starters if s.port]
            assert len(sweepers) == 2, "a sweeping segmentd did not start"
            make("running", 50)
            assert len(want) == 1300

            def state():
                out = {}
                for d in DIALECTS:
                    for r in sql(url, f"SELECT id::text, end_date, version FROM {d.table}"):
                        out[(d.name, r[0])] = (r[1], r[2])
                return out

            def all_renewed():
                st = state()
                return all(st[key][1] >= 2 for key in want)

            wait_until(all_renewed, 20, interval=0.2, what="every segment renewed")
            time.sleep(2.5)  # more sweeps by both: nothing more to do
            st = state()
            assert set(st) == set(want)
            wrong_version = {key: st[key][1] for key in want if st[key][1] != 2}
            assert not wrong_version, wrong_version
            wrong_end = {key: (st[key][0], want[key]) for key in want if st[key][0] != want[key]}
            assert not wrong_end, list(wrong_end.items())[:5]
            # what the API shows: the same, version 2
            for d in DIALECTS:
                some = [key for key in want if key[0] == d.name][::37]
                for key in some:
                    api = next(a for a in apis if a.tenant == tenants[key])
                    g = d.get_r(api, key[1])
                    assert g.headers["ETag"] == '"2"' and g.json()[d.k("end_date")] == d.enc(want[key])
            total = sum(metric_sum(s, "segmentd_lifecycle_extensions_total") or 0 for s in sweepers)
            assert total == len(want), [metric_sum(s, "segmentd_lifecycle_extensions_total") for s in sweepers]
            for d in DIALECTS:
                per = sum(metric_sum(s, "segmentd_lifecycle_extensions_total", dialect=d.dialect_label) or 0
                          for s in sweepers)
                assert per == 650, (d, per)
            for s in sweepers:
                assert metric_sum(s, "segmentd_lifecycle_sweeps_total") >= 3
            assert metric_sum(maker, "segmentd_lifecycle_extensions_total") in (None, 0)
            failures = [metric_sum(s, "segmentd_lifecycle_sweep_failures_total") for s in sweepers]
            print("sweep failures per process:", failures,
                  "extensions per process:", [metric_sum(s, "segmentd_lifecycle_extensions_total")
                                              for s in sweepers])
        finally:
            for s in sweepers + [maker]:
                assert s.stop() == 0


@pytest.mark.parametrize("value", ["-1", "86401", "1.5", "abc", ""])
def test_sweep_setting_out_of_range_refused(value):
    env = dict(os.environ, SEGMENTD_DATABASE_URL=DB_URL, SEGMENTD_JWT_SECRET=SECRET,
               SEGMENTD_LISTEN="127.0.0.1:0", SEGMENTD_LIFECYCLE_SWEEP_S=value)
    p = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "SEGMENTD_LIFECYCLE_SWEEP_S" in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["0", "86400"])
def test_sweep_setting_edges_and_a_prompt_stop(value):
    """0 (off) and a day are accepted; a sweeper waiting for its next pass a day away does
    not hold up the stop."""
    s = Server(env={"SEGMENTD_LIFECYCLE_SWEEP_S": value}).start()
    try:
        time.sleep(0.5)
        passes = metric_sum(s, "segmentd_lifecycle_sweeps_total")
        assert passes in ((None, 0) if value == "0" else (0, 1)), passes
    finally:
        t = time.time()
        assert s.stop() == 0
        assert time.time() - t < 5
