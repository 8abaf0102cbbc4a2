#!/usr/bin/python3
"""The evaluation scenarios of bench/run (issue #22): segments, request files and timings.

    eval.py setup URL WORK N_DEVICES                 segments of tenant ev through the bulk
        routes (the 4 count segments + random ones: 1000 in all), explicit members on two of
        them, the wrk request files ev_check.paths, ev_lookup.paths, ev_page.paths, and
        WORK/ev_segments.json
    eval.py count URL WORK REPS RAW -- PSQL...       exact counts, estimates, the hand-written
        references and the scan ceiling, REPS times each, interleaved
    eval.py export URL WORK REPS RAW SD_PID -- PSQL...   the members export against COPY

The token is BENCH_TOKEN (tenant ev). Prints key=value lines for bench/run's results file.
Standard library only.
"""
import base64
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

TENANT = "ev"
NOW_MS = 1796083200000   # eval_gen.c's NOW_MS
DAY_MS = 86400000
SPAN_MS = 3 * 365 * DAY_MS
SEGMENTS = 1000

# The segments counted (issue #22, item 1): dialect, name, the segment body, and the
# hand-written reference predicate over devices (the same question).
COUNTED = [
    ("v1", "time", "seed 003 example 1: (firstSession <= X) AND (lastSession >= Y), two groups", {
        "constraints": [
            {"type": "AND", "constraints": [
                {"field": "firstSession", "relation": "<=", "value": NOW_MS - SPAN_MS + int(0.6 * SPAN_MS)}]},
            {"type": "AND", "constraints": [
                {"field": "lastSession", "relation": ">=", "value": NOW_MS - 30 * DAY_MS}]}]},
     "first_session <= %d AND last_session >= %d" % (NOW_MS - SPAN_MS + int(0.6 * SPAN_MS), NOW_MS - 30 * DAY_MS)),
    ("v1", "model", "seed 003 example 2 (groups OR: as written, AND of two models matches nothing): "
     "(model Redmi Note 13 OR Galaxy S23) AND (maker Xiaomi OR Samsung OR type phone)", {
        "constraints": [
            {"type": "OR", "constraints": [
                {"field": "deviceModel", "relation": "==", "value": "Redmi Note 13"},
                {"field": "deviceModel", "relation": "==", "value": "Galaxy S23"}]},
            {"type": "OR", "constraints": [
                {"field": "deviceManufacturer", "relation": "==", "value": "Xiaomi"},
                {"field": "deviceManufacturer", "relation": "==", "value": "Samsung"},
                {"field": "type", "relation": "==", "value": "phone"}]}]},
     "device_model IN ('Redmi Note 13', 'Galaxy S23') AND (device_manufacturer IN ('Xiaomi', 'Samsung') OR type = 'phone')"),
    ("v1", "five", "five constraints: country == US, type == phone, appVersionCode >= 51100, "
     "sessionCount >= 20, tags == push-opt-in", {
        "constraints": [
            {"type": "AND", "constraints": [
                {"field": "country", "relation": "==", "value": "US"},
                {"field": "type", "relation": "==", "value": "phone"},
                {"field": "appVersionCode", "relation": ">=", "value": 51100},
                {"field": "sessionCount", "relation": ">=", "value": 20},
                {"field": "tags", "relation": "==", "value": "push-opt-in"}]}]},
     "country = 'US' AND type = 'phone' AND app_version_code >= 51100 AND session_count >= 20 "
     "AND tags @> '{push-opt-in}'"),
    ("aud", "attrs", "/audiences: interest cooking or gardening, plan premium or family", {
        "properties": {"interest": ["cooking", "gardening"], "plan": ["premium", "family"]}},
     "attributes @> '{\"interest\": [\"cooking\"]}' OR attributes @> '{\"interest\": [\"gardening\"]}') AND "
     "(attributes @> '{\"plan\": [\"premium\"]}' OR attributes @> '{\"plan\": [\"family\"]}'"),
]
COUNTRIES = ["US", "IN", "BR", "DE", "GB", "FR", "PL", "ES", "IT", "MX", "NL", "JP"]
TYPES = ["phone", "tablet", "smartwatch", "desktop"]
MAKERS = ["Apple", "Samsung", "Xiaomi", "Google", "Motorola"]
TAGS = ["push-opt-in", "newsletter", "promo-2026", "loyal", "trial", "churn-risk", "sms-opt-in", "premium",
        "gamer", "traveller", "beta", "vip"]
INTERESTS = ["sports", "music", "travel", "movies", "tech", "cooking", "fashion", "finance", "gardening", "pets"]
PLANS = ["free", "basic", "premium", "family"]
OWNER = "0b9e5a5e-8f43-4b3c-9a1e-6f2f4d6c7a10"


def out(k, v):
    print("%s=%s" % (k, v), flush=True)


class Client:
    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def req(self, method, path, body=None):
        h = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                self.conn.request(method, path, data, h)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError

    def timed(self, path):
        t0 = time.perf_counter()
        st, body = self.req("GET", path)
        return time.perf_counter() - t0, st, body


def prefix(dialect):
    return "/v1/segments" if dialect == "v1" else "/audiences/segments"


def random_v1(rng, i):
    def con():
        k = rng.randrange(10)
        if k == 0:
            return {"field": "country", "relation": "==", "value": rng.choice(COUNTRIES)}
        if k == 1:
            return {"field": "type", "relation": "==", "value": rng.choice(TYPES)}
        if k == 2:
            return {"field": "deviceManufacturer", "relation": "==", "value": rng.choice(MAKERS)}
        if k == 3:
            return {"field": "appVersionCode", "relation": ">=", "value": 50000 + 100 * rng.randrange(13)}
        if k == 4:
            return {"field": "sessionCount", "relation": ">", "value": rng.choice([5, 10, 50, 100, 500])}
        if k == 5:
            return {"field": "tags", "relation": "==", "value": rng.choice(TAGS)}
        if k == 6:
            return {"field": "lastSession", "relation": ">=", "value": NOW_MS - rng.choice([7, 30, 90]) * DAY_MS}
        if k == 7:
            return {"field": "language", "relation": "==", "value": rng.choice(["eng", "deu", "spa", "por", "pol"])}
        if k == 8:
            return {"field": "deviceModel", "relation": "starts_with", "value": rng.choice(["Galaxy", "iPhone", "Redmi"])}
        return {"field": "email", "relation": "exists", "value": True}
    groups = [{"type": "OR" if rng.random() < 0.3 else "AND", "constraints": [con() for _ in range(rng.randint(1, 3))]}
              for _ in range(rng.randint(1, 3))]
    return {"name": "bench ev v1 segment %04d" % i, "constraints": groups}


def random_aud(rng, i):
    codes = rng.sample(["interest", "plan", "level"], rng.randint(1, 2))
    props = {}
    for c in codes:
        if c == "interest":
            props[c] = rng.sample(INTERESTS, rng.randint(1, 3))
        elif c == "plan":
            props[c] = rng.sample(PLANS, rng.randint(1, 2))
        else:
            props[c] = sorted(rng.sample(range(1, 51), rng.randint(1, 5)))
    return {"management_type": "selfmanaged", "name": "bench ev segment %04d" % i, "owner_id": OWNER,
            "description": "Seeded by bench/run for the evaluation scenarios", "properties": props}


def cursor(device):
    return base64.urlsafe_b64encode(("m:" + device).encode()).decode().rstrip("=")


def setup(url, work, n_devices, psql):
    c = Client(url, os.environ["BENCH_TOKEN"])
    rng = random.Random(22)
    v1_items, aud_items, counted = [], [], []
    for dialect, name, _, body, _ in COUNTED:
        item = dict(body, name="bench ev count %s" % name)
        if dialect == "aud":
            item.update(management_type="selfmanaged", owner_id=OWNER)
        (v1_items if dialect == "v1" else aud_items).append(item)
    n_v1 = SEGMENTS // 2
    while len(v1_items) < n_v1:
        v1_items.append(random_v1(rng, len(v1_items)))
    while len(aud_items) < SEGMENTS - n_v1:
        aud_items.append(random_aud(rng, len(aud_items)))
    ids = {}
    t0 = time.perf_counter()
    for dialect, items in (("v1", v1_items), ("aud", aud_items)):
        ids[dialect] = []
        for i in range(0, len(items), 1000):
            st, body = c.req("POST", prefix(dialect) + "/bulk?atomic=true", {"data": items[i:i + 1000]})
            doc = json.loads(body or b"{}")
            if st // 100 != 2 or doc.get("errors") or len(doc.get("data", [])) != len(items[i:i + 1000]):
                sys.exit("eval.py: bulk create of %s segments answered %s: %s" % (dialect, st, body[:500]))
            ids[dialect] += [d["id"] for d in doc["data"]]
    out("ev.segments_s", "%.3f" % (time.perf_counter() - t0))
    out("ev.segments", "%d %d" % (len(ids["v1"]), len(ids["aud"])))
    nv = {"v1": 0, "aud": 0}
    for dialect, name, label, body, ref in COUNTED:
        counted.append({"dialect": dialect, "name": name, "label": label, "id": ids[dialect][nv[dialect]], "ref": ref})
        nv[dialect] += 1
    # explicit members on one random segment of each dialect (not a counted one): 5000 added, 1000 removed
    for dialect in ("v1", "aud"):
        seg = ids[dialect][-1]
        add = ["ev-%07d" % k for k in rng.sample(range(1, n_devices + 1), 5000)] + ["nope-%d" % k for k in range(3)]
        rem = ["ev-%07d" % k for k in rng.sample(range(1, n_devices + 1), 1000)]
        for op, lst in (("add", add), ("remove", rem)):
            t = time.perf_counter()
            st, body = c.req("PATCH", "%s/%s/members" % (prefix(dialect), seg), {"operation": op, "ids": lst})
            doc = json.loads(body or b"{}")
            out("ev.members.%s.%s" % (dialect, op), "%s %s %s %.3f" % (st, doc.get("applied"), doc.get("unknown"),
                                                                        time.perf_counter() - t))
    all_segs = [("v1", s) for s in ids["v1"]] + [("aud", s) for s in ids["aud"]]
    with open(work + "/ev_check.paths", "w") as f:
        for _ in range(20000):
            d, s = rng.choice(all_segs)
            f.write("%s/%s/members/ev-%07d\n" % (prefix(d), s, rng.randint(1, n_devices)))
    with open(work + "/ev_lookup.paths", "w") as f:
        for _ in range(20000):
            f.write("/v1/devices/ev-%07d/segments\n" % rng.randint(1, n_devices))
    # pages: a quarter first pages, the rest after a random member of the segment (a cursor
    # as the server writes them: the last id of a page); the members from psql
    pg = Psql(psql)
    members = {}
    for s in counted:
        # (the session's \\timing adds a "Time: …" line to every answer)
        members[s["name"]] = [l for l in pg.run("SELECT id FROM devices WHERE tenant = '%s' AND (%s) ORDER BY random() "
                                                "LIMIT 2000;" % (TENANT, s["ref"])) if not l.startswith("Time: ")]
        s["last"] = pg.run("SELECT max(id) FROM devices WHERE tenant = '%s' AND (%s);" % (TENANT, s["ref"]))[0]
    pg.close()
    with open(work + "/ev_page.paths", "w") as f:
        for _ in range(20000):
            s = rng.choice(counted)
            p = "%s/%s/members?limit=100" % (prefix(s["dialect"]), s["id"])
            if rng.random() < 0.75:
                p += "&cursor=" + cursor(rng.choice(members[s["name"]]))
            f.write(p + "\n")
    json.dump({"counted": counted, "ids": ids}, open(work + "/ev_segments.json", "w"), indent=1)
    # one of each request checked
    checks = [("check", open(work + "/ev_check.paths").readline().strip()),
              ("lookup", open(work + "/ev_lookup.paths").readline().strip()),
              ("page", "%s/%s/members?limit=100&cursor=%s" % (prefix(counted[0]["dialect"]), counted[0]["id"],
                                                               cursor("ev-%07d" % (n_devices // 2)))),
              ("page_first", "%s/%s/members?limit=100" % (prefix(counted[3]["dialect"]), counted[3]["id"]))]
    for name, path in checks:
        st, body = c.req("GET", path)
        if st != 200:
            sys.exit("eval.py: GET %s answered %s: %s" % (path, st, body[:300]))
        with open(work + "/ev_sample_%s.json" % name, "wb") as f:
            f.write(body)


class Psql:
    """One long-lived psql session, as segmentd's evaluation sessions are (\\timing: the time
    from sending the statement to its result, as psql measures it)."""

    def __init__(self, psql):
        self.p = subprocess.Popen(psql, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1)
        self.run("\\timing on")

    def run(self, text):
        self.p.stdin.write(text + "\n\\echo __END__\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                sys.exit("eval.py: psql ended: %s" % "\n".join(lines[-5:]))
            line = line.rstrip("\n")
            if line == "__END__":
                return lines
            if line.startswith(("ERROR", "psql:")):
                sys.exit("eval.py: psql: %s" % line)
            lines.append(line)

    def time(self, sql, settings=""):
        """(seconds, the value) of one run of sql, settings (SET …) made before and reset after."""
        if settings:
            self.run(settings)
        lines = self.run(sql + ";")
        if settings:
            self.run("RESET ALL;")
        m = [float(l[6:].split()[0]) for l in lines if l.startswith("Time: ")]
        vals = [l for l in lines if not l.startswith("Time: ")]
        return m[-1] / 1000, vals[-1] if vals else ""

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def segmentd_pred(s):
    """The predicate segmentd compiles for s (store/eval_sql.c), its parameters written in."""
    if s["dialect"] == "v1":
        p = {"time": "((d.first_session <= %s::bigint) AND (d.last_session >= %s::bigint))",
             "model": "((d.device_model = 'Redmi Note 13'::text OR d.device_model = 'Galaxy S23'::text) AND "
                      "(d.device_manufacturer = 'Xiaomi'::text OR d.device_manufacturer = 'Samsung'::text OR "
                      "d.type = 'phone'::text))",
             "five": "((d.country = 'US'::text AND d.type = 'phone'::text AND d.app_version_code >= 51100::integer "
                     "AND d.session_count >= 20::integer AND (d.tags @> ARRAY['push-opt-in'::text])))"}[s["name"]]
        if s["name"] == "time":
            c = COUNTED[0][3]["constraints"]
            p = p % (c[0]["constraints"][0]["value"], c[1]["constraints"][0]["value"])
    else:
        p = ("((d.attributes @> '{\"interest\": [\"cooking\"]}'::jsonb OR d.attributes @> "
             "'{\"interest\": [\"gardening\"]}'::jsonb) AND (d.attributes @> '{\"plan\": [\"premium\"]}'::jsonb "
             "OR d.attributes @> '{\"plan\": [\"family\"]}'::jsonb))")
    return p


def segmentd_sql(s):
    """The exact count statement segmentd sends for s (store/evaluate.c + eval_sql.c), its
    parameters written in, for EXPLAIN ANALYZE."""
    seg, p = s["id"], segmentd_pred(s)
    mr = ("segment_members m JOIN devices d ON d.tenant = m.tenant AND d.id = m.device "
          "WHERE m.tenant = 'ev' AND m.segment = '%s' AND " % seg)
    return ("SELECT (SELECT count(*) FROM devices d WHERE d.tenant = 'ev' AND %s), (SELECT count(*) FROM %s"
            "NOT m.added AND %s), (SELECT count(*) FROM %sm.added AND NOT coalesce(%s, false)), NULL" % (p, mr, p, mr, p))


def count(url, work, reps, raw, psql):
    segs = json.load(open(work + "/ev_segments.json"))["counted"]
    c = Client(url, os.environ["BENCH_TOKEN"])
    ceiling_sql = "SELECT count(*) FROM devices WHERE tenant = '%s'" % TENANT
    pg = Psql(psql)
    total = int(pg.time(ceiling_sql)[1])
    out("ev.devices", total)
    # the plans, once, not timed: the references' and segmentd's own statement
    variants = (("ref", ""), ("ref_idx", "SET enable_seqscan = off;"), ("ref_nojit", "SET jit = off;"))
    with open(raw + "/eval-explain.txt", "w") as f:
        for s in segs:
            ref = "SELECT count(*) FROM devices WHERE tenant = '%s' AND (%s)" % (TENANT, s["ref"])
            for label, sql, settings in [("reference, " + (v[1] or "default settings"), ref, v[1]) for v in variants] + \
                                        [("segmentd's statement", segmentd_sql(s), "")]:
                p = subprocess.run(psql, input="%s\nEXPLAIN (ANALYZE, BUFFERS) %s;\n" % (settings, sql),
                                   capture_output=True, text=True)
                f.write("== %s: %s\n%s\n%s\n%s\n" % (s["name"], label, sql, p.stdout, p.stderr))
        p = subprocess.run(psql, input="EXPLAIN (ANALYZE, BUFFERS) %s;\n" % ceiling_sql, capture_output=True, text=True)
        f.write("== scan ceiling\n%s\n%s\n" % (ceiling_sql, p.stdout))
    kinds = ("sd", "est", "ref", "ref_idx", "ref_nojit", "ceil")
    t = {}
    for s in segs:
        for k in kinds:
            t[s["name"], k] = []
    answers, est_all = {}, {}
    for rep in range(reps + 1):   # rep 0: warm-up, not counted
        for s in segs:
            base = "%s/%s/count" % (prefix(s["dialect"]), s["id"])
            ref = "SELECT count(*) FROM devices WHERE tenant = '%s' AND (%s)" % (TENANT, s["ref"])
            steps = [("sd", lambda: c.timed(base))] + \
                    [(k, lambda st=st: pg.time(ref, st)) for k, st in variants] + \
                    [("est", lambda: c.timed(base + "?precision=estimate")), ("ceil", lambda: pg.time(ceiling_sql))]
            if rep % 2:   # segmentd first in even repetitions, after the references in odd ones
                steps = steps[1:4] + steps[:1] + steps[4:]
            for k, fn in steps:
                r = fn()
                if k in ("sd", "est"):
                    secs, st, body = r
                    if st != 200:
                        sys.exit("eval.py: GET %s answered %s: %s" % (base, st, body[:300]))
                    answers[s["name"], k] = json.loads(body)
                    if k == "est" and rep:
                        est_all.setdefault(s["name"], []).append(answers[s["name"], k])
                else:
                    secs, val = r
                    answers[s["name"], k] = val
                if rep:
                    t[s["name"], k].append(secs)
    pg.close()
    for s in segs:
        n = s["name"]
        for k in kinds:
            out("ev.count.%s.%s_ms" % (n, k), "%.2f" % (1000 * statistics.median(t[n, k])))
            out("ev.count.%s.%s_all" % (n, k), " ".join("%.1f" % (1000 * x) for x in t[n, k]))
        sd, est = answers[n, "sd"], answers[n, "est"]
        out("ev.count.%s.label" % n, s["label"])
        out("ev.count.%s.dialect" % n, s["dialect"])
        out("ev.count.%s.exact" % n, sd["count"])
        out("ev.count.%s.ref_count" % n, answers[n, "ref"])
        out("ev.count.%s.ref_idx_count" % n, answers[n, "ref_idx"])
        out("ev.count.%s.ref_nojit_count" % n, answers[n, "ref_nojit"])
        out("ev.count.%s.estimate" % n, est["count"])
        out("ev.count.%s.est_precision" % n, est.get("precision"))
        out("ev.count.%s.margin" % n, est.get("margin", ""))
        out("ev.count.%s.est_answers" % n, " ".join("%s±%s" % (e["count"], e.get("margin", 0)) for e in est_all.get(n, [])))
    out("ev.count.reps", reps)


def lastpage(url, work, reps):
    """The page after each counted segment's last member (empty: next_cursor null), as a
    client walking the pages ends: the statement reads the tenant's devices after that id."""
    segs = json.load(open(work + "/ev_segments.json"))["counted"]
    c = Client(url, os.environ["BENCH_TOKEN"])
    for s in segs:
        path = "%s/%s/members?limit=100&cursor=%s" % (prefix(s["dialect"]), s["id"], cursor(s["last"]))
        ts = []
        for _ in range(reps + 1):
            secs, st, body = c.timed(path)
            if st != 200:
                sys.exit("eval.py: GET %s answered %s: %s" % (path, st, body[:300]))
            ts.append(secs)
        out("ev.lastpage.%s.ms" % s["name"], "%.1f" % (1000 * statistics.median(ts[1:])))
        out("ev.lastpage.%s.last" % s["name"], s["last"])


def rss_sampler(pid, samples, stop):
    while not stop.is_set():
        try:
            for line in open("/proc/%s/status" % pid):
                if line.startswith("VmRSS:"):
                    samples.append((time.time(), int(line.split()[1])))
        except OSError:
            return
        time.sleep(0.05)


def export(url, work, reps, raw, sd_pid, psql):
    segs = json.load(open(work + "/ev_segments.json"))["counted"]
    token = os.environ["BENCH_TOKEN"]
    u = urllib.parse.urlsplit(url)
    probe = Client(url, token)
    st, body = probe.req("GET", "%s/%s/members?format=ndjson" % (prefix(segs[3]["dialect"]), segs[3]["id"]))
    out("ev.export.probe_status", st)
    if st != 200:
        out("ev.export.probe_body", body[:200].decode(errors="replace").replace("\n", " "))
        return
    with open(raw + "/eval-export-explain.txt", "w") as f:
        for s in (segs[0], segs[3]):
            sel = ("SELECT d.id FROM devices d LEFT JOIN segment_members m ON m.tenant = d.tenant AND m.segment = '%s' "
                   "AND m.device = d.id WHERE d.tenant = '%s' AND CASE WHEN m.added IS NULL THEN %s ELSE m.added END"
                   % (s["id"], TENANT, segmentd_pred(s)))
            for label, text in (("the export's SELECT (store/export.c), ids", "EXPLAIN (ANALYZE, BUFFERS) " + sel),
                                ("its DECLARE (a cursor: cursor_tuple_fraction)",
                                 "BEGIN; EXPLAIN DECLARE segmentd_export NO SCROLL CURSOR FOR %s; ROLLBACK" % sel),
                                ("the reference", "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM devices WHERE tenant = '%s' "
                                 "AND (%s)" % (TENANT, s["ref"]))):
                p = subprocess.run(psql, input=text + ";\n", capture_output=True, text=True)
                f.write("== %s: %s\n%s\n%s%s\n" % (s["name"], label, text, p.stdout, p.stderr))
    pg = Psql(psql)
    for s in (segs[0], segs[3]):   # time (a fifth of the devices), attributes (a few percent)
        n = s["name"]
        for fields in ("", "&fields=all"):
            key = "ev.export.%s%s" % (n, ".all" if fields else "")
            sd_t, pg_t, rss = [], [], []
            for rep in range(reps):
                path = "%s/%s/members?format=ndjson%s" % (prefix(s["dialect"]), s["id"], fields)
                samples, stop = [], threading.Event()
                th = threading.Thread(target=rss_sampler, args=(sd_pid, samples, stop))
                th.start()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
                t0 = time.perf_counter()
                conn.request("GET", path, headers={"Authorization": "Bearer " + token})
                r = conn.getresponse()
                chunks = []   # kept as they come; parsed after the clock stops
                while True:
                    chunk = r.read(1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
                secs = time.perf_counter() - t0
                stop.set()
                th.join()
                conn.close()
                body = b"".join(chunks)
                nbytes, ids, bad = len(body), [], 0
                for line in body.split(b"\n"):
                    if line:
                        try:
                            ids.append(json.loads(line)["id"])
                        except (ValueError, KeyError):
                            bad += 1
                sd_t.append(secs)
                rss.append(samples)
                out(key + ".r%d.status" % (rep + 1), r.status)
                # the reference: COPY of the same rows to psql's standard output in a long-lived
                # session, as psql's \timing measures it
                cols = "*" if fields else "id"
                sql = "COPY (SELECT %s FROM devices WHERE tenant = '%s' AND (%s)) TO STDOUT" % (cols, TENANT, s["ref"])
                lines = pg.run(sql + ";")
                pg_t.append([float(l[6:].split()[0]) for l in lines if l.startswith("Time: ")][-1] / 1000)
                data = [l for l in lines if not l.startswith("Time: ")]
                ref_ids = [l.split("\t")[1 if fields else 0] for l in data]
                if rep == 0:
                    out(key + ".lines", len(ids))
                    out(key + ".bytes", nbytes)
                    out(key + ".bad_lines", bad)
                    out(key + ".ref_lines", len(ref_ids))
                    out(key + ".ref_bytes", sum(len(l) + 1 for l in data))
                    out(key + ".same_ids", int(sorted(ids) == sorted(ref_ids)))
                    out(key + ".ordered", int(ids == sorted(ids)))
            out(key + ".sd_s", "%.3f" % statistics.median(sd_t))
            out(key + ".pg_s", "%.3f" % statistics.median(pg_t))
            out(key + ".sd_all", " ".join("%.3f" % x for x in sd_t))
            out(key + ".pg_all", " ".join("%.3f" % x for x in pg_t))
            flat = [kib for smp in rss for _, kib in smp]
            if flat:
                out(key + ".rss_min_kib", min(flat))
                out(key + ".rss_max_kib", max(flat))
                out(key + ".rss_first_kib", rss[0][0][1])
                out(key + ".rss_last_kib", rss[-1][-1][1])
                out(key + ".rss_samples", len(flat))
                out(key + ".rss_peaks_kib", " ".join(str(max(k for _, k in smp)) for smp in rss if smp))


def main():
    a = sys.argv[1:]
    psql = a[a.index("--") + 1:] if "--" in a else []
    a = a[:a.index("--")] if "--" in a else a
    if a[0] == "setup":
        setup(a[1], a[2], int(a[3]), psql)
    elif a[0] == "count":
        count(a[1], a[2], int(a[3]), a[4], psql)
    elif a[0] == "lastpage":
        lastpage(a[1], a[2], int(a[3]))
    elif a[0] == "export":
        export(a[1], a[2], int(a[3]), a[4], a[5], psql)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
