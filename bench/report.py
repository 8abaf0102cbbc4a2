#!/usr/bin/python3
"""Formats the report of bench/run from its key=value results file.

    report.py RESULTS

Every number is a measurement of this run; the targets are the issue's and are reported,
never asserted (the exit status is 0 whatever they say).
"""
import statistics
import sys

# scenario, label, target ratio to the pgbench ceiling (None: no target of its own)
SCENARIOS = [
    ("create", "create", 0.80),
    ("get", "get-by-id", 0.70),
    ("patch", "patch", 0.80),
    ("list", "list (limit 20)", 0.60),
    ("mixed", "mixed 80/20", None),
    ("v1_create", "v1 create", 0.80),
    ("v1_get", "v1 get-by-id", 0.70),
    ("device_put", "device put", 0.80),
]


def load(path):
    r = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                r[k] = v
    return r


def num(r, k, default=None):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return default


def fmt(x, spec, missing="–"):
    return missing if x is None else format(x, spec)


def verdict(ok):
    return "met" if ok else "NOT met"


def rounds(r, key):
    """The measured rounds of a scenario: ['get.r1', 'get.r2', ...]."""
    out, i = [], 1
    while key + ".r%d.requests" % i in r:
        out.append(key + ".r%d" % i)
        i += 1
    return out


def aggregate(r, key):
    """Throughput, latency, errors, the ratio to pgbench and the CPU split of one scenario."""
    rs = rounds(r, key)
    if not rs:
        return None
    hz = num(r, "clk_tck", 100)
    n = sum(num(r, k + ".requests") for k in rs)
    a = {
        "rps": n / (sum(num(r, k + ".duration_us") for k in rs) / 1e6),
        "p50": statistics.median(num(r, k + ".p50_us") for k in rs) / 1000,
        "p99": statistics.median(num(r, k + ".p99_us") for k in rs) / 1000,
        "p99_max": max(num(r, k + ".p99_us") for k in rs) / 1000,
        "errors": int(sum(num(r, k + ".non2xx", 0) + num(r, k + ".sock_errors", 0) for k in rs)),
        "rounds": len(rs),
        "threads": [int(num(r, k + ".threads_busy")) for k in rs if k + ".threads_busy" in r],
    }

    def cpu(ks, count):
        ticks = {f: sum(num(r, k + "." + f, 0) for k in ks) for f in
                 ("sd_ticks", "pg_ticks", "client_ticks", "cpu_total", "cpu_idle", "cpu_steal",
                  "kthread_ticks")}
        per = 1e6 / hz / count if count else 0
        total = ticks["cpu_total"] or 1
        ours = ticks["sd_ticks"] + ticks["pg_ticks"] + ticks["client_ticks"] + ticks["kthread_ticks"]
        return {"sd_us": ticks["sd_ticks"] * per, "pg_us": ticks["pg_ticks"] * per,
                "client_us": ticks["client_ticks"] * per,
                "busy": 100 * (total - ticks["cpu_idle"]) / total,
                "steal": 100 * ticks["cpu_steal"] / total,
                "foreign": max(0.0, 100 * (total - ticks["cpu_idle"] - ours) / total)}

    a.update(cpu(rs, n))
    pg = [k + ".pg" for k in rs if k + ".pg.tps" in r]
    if pg:
        tx = sum(num(r, k + ".tx") for k in pg)
        a["tps"] = tx / sum(num(r, k + ".tx") / num(r, k + ".tps") for k in pg)
        ratios = [num(r, k + ".requests") / (num(r, k + ".duration_us") / 1e6) / num(r, k + ".pg.tps")
                  for k in rs if k + ".pg.tps" in r]
        a["ratio"] = statistics.median(ratios)
        a["ratio_min"], a["ratio_max"] = min(ratios), max(ratios)
        a["pg_failed"] = int(sum(num(r, k + ".failed", 0) for k in pg))
        c = cpu(pg, tx)
        a["pgb_pg_us"], a["pgb_client_us"], a["pgb_foreign"] = c["pg_us"], c["client_us"], c["foreign"]
    return a


def cpu_s(r, key, part):
    """CPU seconds of one part (sd_ticks, pg_ticks, client_ticks) in a timed step."""
    return num(r, key + "." + part, 0) / num(r, "clk_tck", 100)


def foreign(r, keys):
    """The share of the machine's CPU used outside this run during some timed steps (%)."""
    t = {f: sum(num(r, k + "." + f, 0) for k in keys) for f in
         ("sd_ticks", "pg_ticks", "client_ticks", "kthread_ticks", "cpu_total", "cpu_idle")}
    total = t["cpu_total"] or 1
    ours = t["sd_ticks"] + t["pg_ticks"] + t["client_ticks"] + t["kthread_ticks"]
    return max(0.0, 100 * (total - t["cpu_idle"] - ours) / total)


def device_bulk(r, w):
    """device_bulk: requests of N devices against device_bulk_upsert run from psql."""
    bs, b = [], 1
    while "dvbulk.b%d.sd.s" % b in r and "dvbulk.b%d.pg.s" % b in r:
        bs.append("dvbulk.b%d" % b)
        b += 1
    if not bs:
        return
    size = num(r, "dvbulk.size")
    sd, pg = sum(num(r, k + ".sd.s") for k in bs), sum(num(r, k + ".pg.s") for k in bs)
    devices = size * len(bs)
    ratio = pg / sd
    per = [num(r, k + ".pg.s") / num(r, k + ".sd.s") for k in bs]
    creates = sum(num(r, k + ".creates") for k in bs)
    ok = [r.get(k + ".sd.ok") for k in bs]
    bad = [k for k, v in zip(bs, ok) if v != "%d" % size]
    w("")
    w("device bulk: %d requests POST /v1/devices/bulk of %d devices (%s bytes each; %d %% creates, %d %% replaces: ids "
      "drawn from %s, so the first requests mostly create and the later ones mostly replace)"
      % (len(bs), size, r.get("dvbulk.body_bytes"), round(100 * creates / devices), round(100 - 100 * creates / devices),
         r.get("dvbulk.pool")))
    w("  segmentd %.0f devices/s (%.3f s a request), PostgreSQL running device_bulk_upsert from pgbench on the same "
      "batches %.0f devices/s (%.3f s): %.0f%% (requests %.0f–%.0f%%; target ≥ 80%%): %s"
      % (devices / sd, sd / len(bs), devices / pg, pg / len(bs), ratio * 100, min(per) * 100, max(per) * 100,
         verdict(ratio >= 0.8)))
    half = len(bs) // 2
    if half:
        for label, part in (("first", bs[:half]), ("last", bs[half:])):
            c = sum(num(r, k + ".creates") for k in part) / (size * len(part))
            w("  the %s %d requests (%d %% creates): segmentd %.3f s, pgbench %.3f s a request: %.0f%%"
              % (label, len(part), round(100 * c), sum(num(r, k + ".sd.s") for k in part) / len(part),
                 sum(num(r, k + ".pg.s") for k in part) / len(part),
                 100 * sum(num(r, k + ".pg.s") for k in part) / sum(num(r, k + ".sd.s") for k in part)))
    w("  CPU a request: segmentd %.3f s + PostgreSQL %.3f s (+ curl %.3f s); the reference: PostgreSQL %.3f s "
      "(reading the file included); other processes used %.0f%% / %.0f%% of the machine"
      % (tuple(sum(cpu_s(r, k + side, part) for k in bs) / len(bs) for side, part in
               ((".sd", "sd_ticks"), (".sd", "pg_ticks"), (".sd", "client_ticks"), (".pg", "pg_ticks")))
         + (foreign(r, [k + ".sd" for k in bs]), foreign(r, [k + ".pg" for k in bs]))))
    if "dvbulk.hwm_after_kib" in r:
        w("  segmentd's peak resident memory (VmHWM) %.1f MiB before these requests, %.1f MiB after them%s"
          % (num(r, "dvbulk.hwm_before_kib", 0) / 1024, num(r, "dvbulk.hwm_after_kib") / 1024,
             "" if "dvbulk.rss_after_kib" not in r else " (VmRSS %.1f MiB after them)" % (num(r, "dvbulk.rss_after_kib") / 1024)))
    same = (r.get("dvbulk.same") or "? ?").split()
    w("  rows: %s of segmentd's tenant and %s of the reference's; %s of %s equal in every column but the tenant "
      "and updated_at%s" % (tuple((r.get("dvbulk.distinct") or "? ?").split()) + (same[1], same[0],
                                                                                   "" if not bad else "; NOT every request answered %d items: %s" % (size, ", ".join(bad)))))


def device_import(r, w):
    """device_import: NDJSON imports against COPY + device_import_merge; the memory step."""
    rs, i = [], 1
    while "dvimp.r%d.sd.s" % i in r and "dvimp.r%d.pg.s" % i in r:
        rs.append("dvimp.r%d" % i)
        i += 1
    if rs:
        lines = num(r, "dvimp.lines")
        n = lines * len(rs)
        sd, pg = sum(num(r, k + ".sd.s") for k in rs), sum(num(r, k + ".pg.s") for k in rs)
        per = [num(r, k + ".pg.s") / num(r, k + ".sd.s") for k in rs]
        ratio = pg / sd
        avg = lambda k, f: sum(num(r, x + "." + k, 0) for x in rs) / len(rs)
        w("")
        w("device import: %d round(s) of %d NDJSON lines (%.0f MiB, new devices: all creates) through POST "
          "/v1/devices/imports%s: %s"
          % (len(rs), lines, num(r, rs[0] + ".file_bytes", 0) / 1048576,
             ", the order of the sides alternating" if len(rs) > 1 else ", the reference first",
             ", ".join("%s (%s received, %s upserted, %s invalid)" % (r.get(k + ".sd.status"), r.get(k + ".sd.received"),
                                                                    r.get(k + ".sd.upserted"), r.get(k + ".sd.invalid"))
                       for k in rs)))
        w("  segmentd %.0f devices/s (%.1f s an import from the first byte to done: upload validated and staged "
          "(startedAt→receivedAt) %.1f s, merge (receivedAt→finishedAt) %.1f s)"
          % (n / sd, sd / len(rs), avg("sd.receive_s", 0), avg("sd.merge_s", 0)))
        w("  PostgreSQL, psql \\copy into device_import_rows then device_import_merge in chunks of %s lines: %.0f devices/s "
          "(%.1f s: COPY %.1f s, merge %.1f s)" % (r.get("dvimp.chunk"), n / pg, pg / len(rs), avg("pg.copy_s", 0),
                                                  avg("pg.merge_s", 0)))
        w("  ratio %.0f%%%s (target ≥ 70%%): %s; the upload against COPY %.0f%%, the merge against the merge %.0f%%"
          % (ratio * 100, " (rounds %s)" % ", ".join("%.0f%%" % (x * 100) for x in per) if len(rs) > 1 else "",
             verdict(ratio >= 0.7), 100 * avg("pg.copy_s", 0) / avg("sd.receive_s", 0),
             100 * avg("pg.merge_s", 0) / avg("sd.merge_s", 0)))
        w("  CPU an import: segmentd %.1f s + PostgreSQL %.1f s (curl %.1f s); the reference: PostgreSQL %.1f s (COPY "
          "%.1f, merge %.1f) + psql %.1f s; other processes used %.0f%% / %.0f%% of the machine"
          % (sum(cpu_s(r, k + ".sd", "sd_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".sd", "pg_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".sd", "client_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".pg", "pg_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".pg.copy", "pg_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".pg.merge", "pg_ticks") for k in rs) / len(rs),
             sum(cpu_s(r, k + ".pg", "client_ticks") for k in rs) / len(rs),
             foreign(r, [k + ".sd" for k in rs]), foreign(r, [k + ".pg" for k in rs])))
        for k in rs:
            d = (r.get(k + ".distinct") or "? ?").split()
            same = (r.get(k + ".same") or "? ?").split()
            w("  %s: %s devices of segmentd's tenant and %s of the reference's, %s of %s equal in every column but "
              "the tenant and updated_at; the reference's import: %s lines upserted, %s staged rows left"
              % (k.split(".")[1], d[0], d[1], same[1], same[0], r.get(k + ".pg.upserted"), r.get(k + ".pg.left")))
    if "dvmem.hwm_kib" in r:
        hwm = num(r, "dvmem.hwm_kib")
        w("")
        w("import memory: one import of %.0f MiB (%s lines, %s in %.1f s: upload %s s, merge %s s; %s upserted): "
          "segmentd's peak RSS %.1f MiB (VmHWM%s; max of the samples %.1f MiB; %.1f MiB before) (target ≤ 64 MiB): %s"
          % (num(r, "dvmem.bytes") / 1048576, r.get("dvmem.lines"), r.get("dvmem.status"), num(r, "dvmem.s"),
             r.get("dvmem.receive_s"), r.get("dvmem.merge_s"), r.get("dvmem.upserted"), hwm / 1024, ", reset before the import" if r.get("dvmem.hwm_reset") else
             " over the whole run: NOT reset", num(r, "dvmem.rss_max_kib", 0) / 1024,
             num(r, "dvmem.rss_start_kib", 0) / 1024, verdict(hwm <= 64 * 1024)))


def evaluation(r, w):
    """The evaluation scenarios (issue #22): counts, estimates, checks, lookups, pages, export."""
    if "ev.table_rows" not in r:
        return
    segs = (r.get("ev.segments") or "? ?").split()
    w("")
    w("evaluation (issue #22): %s devices of one tenant (COPY %.1f s; table %s MiB, its indexes %s MiB), the "
      "references' indexes %s built in %.1f s: segmentd reads the same indexed table; %s /v1 + %s /audiences "
      "active segments through the bulk routes"
      % (r.get("ev.table_rows"), num(r, "ev.copy_s", 0), r.get("ev.table_mib"), r.get("ev.indexes_mib"),
         r.get("ev.indexes"), num(r, "ev.index_s", 0), segs[0], segs[1]))
    for d in ("v1", "aud"):
        for op in ("add", "remove"):
            v = r.get("ev.members.%s.%s" % (d, op))
            if v:
                st, applied, unknown, secs = v.split()
                w("  PATCH …/members (%s, %s): HTTP %s, %s applied, %s unknown, %.3f s"
                  % ("/v1" if d == "v1" else "/audiences", op, st, applied, unknown, float(secs)))
    names = [n for n in ("time", "model", "five", "attrs") if "ev.count.%s.sd_ms" % n in r]
    if names:
        total = num(r, "ev.devices")
        w("")
        w("exact count, median of %s requests (ms, one at a time); reference: the same count(*) in one long-lived psql "
          "session (\\timing), the fastest of its default plan, enable_seqscan off and jit off; ceiling: SELECT count(*) "
          "… WHERE tenant = … (ratios: reference time ÷ segmentd's time; target ≥ 80 %%)" % r.get("ev.count.reps"))
        head = "%-6s %9s %6s %9s %9s %9s %9s %7s %-7s %9s %8s" % (
            "seg", "matches", "share", "segmentd", "SQL", "no seqsc", "no JIT", "ratio", "", "count(*)", "of ceil")
        w("  " + head)
        for n in names:
            g = lambda k: num(r, "ev.count.%s.%s" % (n, k))
            ref = min(x for x in (g("ref_ms"), g("ref_idx_ms"), g("ref_nojit_ms")) if x is not None)
            ratio = ref / g("sd_ms")
            w("  %-6s %9d %5.1f%% %9.1f %9.1f %9.1f %9s %6.0f%% %-7s %9.1f %7.0f%%" % (
                n, g("exact"), 100 * g("exact") / total, g("sd_ms"), g("ref_ms"), g("ref_idx_ms"),
                fmt(g("ref_nojit_ms"), ".1f"), 100 * ratio, verdict(ratio >= 0.8), g("ceil_ms"),
                100 * g("ceil_ms") / g("sd_ms")))
        for n in names:
            same = r.get("ev.count.%s.exact" % n) == r.get("ev.count.%s.ref_count" % n) == r.get("ev.count.%s.ref_idx_count" % n) \
                == r.get("ev.count.%s.ref_nojit_count" % n, r.get("ev.count.%s.exact" % n))
            w("    %s: %s%s" % (n, r.get("ev.count.%s.label" % n),
                               "" if same else "; NOT the reference's count: %s / %s" % (
                                   r.get("ev.count.%s.ref_count" % n), r.get("ev.count.%s.ref_idx_count" % n))))
        w("")
        w("estimate (precision=estimate): its time as a share of the exact count's (target ≤ 10 %), its error against "
          "the exact count (target within ±5 % for segments of ≥ 1 %), and whether the exact count lies in count ± margin")
        for n in names:
            g = lambda k: num(r, "ev.count.%s.%s" % (n, k))
            exact, est, margin = g("exact"), g("estimate"), g("margin")
            err = (est - exact) / exact if exact else None
            share = g("sd_ms") and g("est_ms") / g("sd_ms")
            big = exact >= 0.01 * total
            w("  %-6s %7.1f ms = %5.1f%% of exact (%s); %s %s%s; error %s (%s); exact %s the margin" % (
                n, g("est_ms"), 100 * share, verdict(share <= 0.1), r.get("ev.count.%s.est_precision" % n),
                "%d" % est, "" if margin is None else " ± %d" % margin,
                fmt(err and err * 100, "+.1f") + "%" if err is not None else "–",
                (verdict(abs(err) <= 0.05) if big else "under 1 %: no target") if err is not None else "–",
                "–" if margin is None else ("within" if abs(est - exact) <= margin else "OUTSIDE")))
        for n in names:
            allv = r.get("ev.count.%s.est_answers" % n)
            if allv:
                exact = num(r, "ev.count.%s.exact" % n)
                pairs = [tuple(float(x) for x in a.split("±")) for a in allv.split()]
                inside = sum(1 for c, m in pairs if abs(c - exact) <= m)
                errs = [100 * (c - exact) / exact for c, _ in pairs]
                w("  %-6s every repetition's estimate (%d): errors %s %%; the exact count within the margin %d of %d"
                  % (n, len(pairs), " ".join("%+.1f" % e for e in errs), inside, len(pairs)))
        hz = num(r, "clk_tck", 100)
        w("  CPU of the whole count step: segmentd %.1f s, PostgreSQL %.1f s; other processes used %.0f%% of the machine"
          % (num(r, "ev.count.sd_ticks", 0) / hz, num(r, "ev.count.pg_ticks", 0) / hz, foreign(r, ["ev.count"])))
    chk, look, get = aggregate(r, "ev_check"), aggregate(r, "ev_lookup"), aggregate(r, "ev_get")
    if chk and look and get:
        w("")
        w("membership check and device → segments (1000 active segments), %s connections, against get-by-id in the "
          "same rounds (ratio: median of the rounds' req/s ratios)" % r.get("connections"))
        for key, label, a in (("ev_check", "GET …/members/{deviceId}", chk), ("ev_lookup", "GET /v1/devices/{id}/segments", look)):
            ratios = [num(r, k + ".requests") / num(r, k + ".duration_us") /
                      (num(r, g + ".requests") / num(r, g + ".duration_us"))
                      for k, g in zip(rounds(r, key), rounds(r, "ev_get"))]
            ratio = statistics.median(ratios)
            w("  %-31s %7.0f req/s, p50 %.2f ms, p99 %.2f ms (worst round %.2f; target ≤ 5 ms: %s), %d non-2xx; "
              "%.0f%% of get-by-id (rounds %.0f–%.0f%%; target ≥ 50%%): %s; CPU/request segmentd %.0f us, PostgreSQL %.0f us"
              % (label, a["rps"], a["p50"], a["p99"], a["p99_max"], verdict(a["p99"] <= 5), a["errors"], 100 * ratio,
                 100 * min(ratios), 100 * max(ratios), verdict(ratio >= 0.5), a["sd_us"], a["pg_us"]))
        w("  %-31s %7.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx; CPU/request segmentd %.0f us, PostgreSQL %.0f us; "
          "other processes %.0f%%" % ("get-by-id (same rounds)", get["rps"], get["p50"], get["p99"], get["errors"],
                                      get["sd_us"], get["pg_us"], max(chk["foreign"], look["foreign"], get["foreign"])))
    st = ["%s: %s" % (k.split(".")[0] + "." + k.split(".")[1], v) for k, v in r.items() if k.startswith("ev_page") and k.endswith(".statuses") and v]
    page, pget = aggregate(r, "ev_page"), aggregate(r, "ev_pget")
    if page and pget:
        w("")
        w("member pages of 100 (4 segments; a quarter first pages, the rest after a random cursor), %s connections, "
          "against get-by-id in the same rounds" % r.get("connections"))
        w("  pages     %7.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx; CPU/request segmentd %.0f us, PostgreSQL %.0f us"
          % (page["rps"], page["p50"], page["p99"], page["errors"], page["sd_us"], page["pg_us"]))
        w("  get-by-id %7.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx" % (pget["rps"], pget["p50"], pget["p99"], pget["errors"]))
        w("  latency of a page ÷ get-by-id's: p50 %.1f×, p99 %.1f× (target within 2×): %s"
          % (page["p50"] / pget["p50"], page["p99"] / pget["p99"], verdict(page["p50"] <= 2 * pget["p50"])))
        if st:
            w("  non-2xx answers by status (round: status×count): " + "; ".join(st))
        page2, pget2 = aggregate(r, "ev_page2"), aggregate(r, "ev_pget2")
        if page2 and pget2:
            w("  at %s connections (no page waits for one of the evaluation sessions): pages %.0f req/s, p50 %.2f ms, "
              "p99 %.2f ms, %d non-2xx; get-by-id %.0f req/s, p50 %.2f ms, p99 %.2f ms: p50 %.1f×, p99 %.1f× (within 2×): %s"
              % (r.get("ev.page_connections"), page2["rps"], page2["p50"], page2["p99"], page2["errors"], pget2["rps"],
                 pget2["p50"], pget2["p99"], page2["p50"] / pget2["p50"], page2["p99"] / pget2["p99"],
                 verdict(page2["p50"] <= 2 * pget2["p50"])))
    last = [n for n in ("time", "model", "five", "attrs") if "ev.lastpage.%s.ms" % n in r]
    if last:
        w("  the page after a segment's last member (the end of a walk; empty, next_cursor null), median of 3: " +
          ", ".join("%s %s ms (after %s)" % (n, r["ev.lastpage.%s.ms" % n], r.get("ev.lastpage.%s.last" % n)) for n in last))
    if "ev.export.probe_status" in r:
        w("")
        if r["ev.export.probe_status"] != "200":
            w("export: not available (%s): GET …/members?format=ndjson answered %s"
              % ("404" if r["ev.export.probe_status"] == "404" else "HTTP " + r["ev.export.probe_status"],
                 r.get("ev.export.probe_body", "")[:120]))
        else:
            w("export: GET …/members?format=ndjson against psql COPY (SELECT … WHERE …) TO STDOUT of the same rows "
              "in one long-lived psql session (\\timing), median of the repetitions; segmentd's VmRSS sampled every 50 ms (target ≥ 70 %, flat: within 2 MiB of the start whatever the size "
              "streamed)")
            for k in ("time", "time.all", "attrs", "attrs.all"):
                p = "ev.export." + k
                if p + ".sd_s" not in r:
                    continue
                sd, pg = num(r, p + ".sd_s"), num(r, p + ".pg_s")
                grow = num(r, p + ".rss_max_kib", 0) - num(r, p + ".rss_first_kib", 0)
                w("  %-9s %7s lines (%.1f MiB; COPY %s lines, %.1f MiB; same ids: %s, in id order: %s (none promised), bad lines %s): segmentd "
                  "%.2f s (%s), COPY %.2f s (%s): %.0f%% (%s); RSS %.1f–%.1f MiB (+%.1f MiB over the start): %s"
                  % (k, r.get(p + ".lines"), num(r, p + ".bytes", 0) / 1048576, r.get(p + ".ref_lines"),
                     num(r, p + ".ref_bytes", 0) / 1048576, "yes" if r.get(p + ".same_ids") == "1" else "NO",
                     "yes" if r.get(p + ".ordered") == "1" else "no", r.get(p + ".bad_lines"), sd, r.get(p + ".sd_all"),
                     pg, r.get(p + ".pg_all"), 100 * pg / sd, verdict(pg / sd >= 0.7),
                     num(r, p + ".rss_min_kib", 0) / 1024, num(r, p + ".rss_max_kib", 0) / 1024, grow / 1024,
                     "flat" if grow <= 2048 else "growing"))
                if r.get(p + ".rss_peaks_kib"):
                    w("            peak RSS of each repetition: %s MiB" % ", ".join(
                        "%.1f" % (int(x) / 1024) for x in r[p + ".rss_peaks_kib"].split()))


def main():
    r = load(sys.argv[1])
    out = []
    w = out.append
    w("segmentd benchmark, %s (%s run: per scenario and side %s s measured in %s round(s), after %s s "
      "of warm-up; %s s soak)" % (r.get("stamp"), r.get("mode"), r.get("duration"), r.get("rounds"),
                                  r.get("warmup"), r.get("soak")))
    w("machine:   %s CPUs (nproc), %s; %s; load average %s at start, %s at end"
      % (r.get("nproc"), r.get("cpu_model"), r.get("kernel"), r.get("load_start"), r.get("load_end")))
    w("segmentd:  %s, release build, SEGMENTD_LOOPS=%s, SEGMENTD_POOL_SIZE=%s (pipelined)"
      % (r.get("git"), r.get("loops"), r.get("pool")))
    w("database:  %s, own cluster, fsync=%s, synchronous_commit=%s, full_page_writes=%s"
      % (r.get("pg_version"), r.get("fsync"), r.get("synchronous_commit"), r.get("full_page_writes")))
    w("load:      wrk %s threads, %s connections, loopback; pgbench -M prepared, %s clients, %s threads"
      % (r.get("wrk_threads"), r.get("connections"), r.get("pg_clients"), r.get("pg_threads")))
    w("seeded:    %s /audiences/segments + %s /v1/segments across 2 tenants in %s s through the API"
      % (r.get("seeded_aud"), r.get("seeded_v1"), r.get("seed_seconds")))
    w("")
    head = ("%-15s %8s %7s %7s %6s %9s %6s %9s %6s %-7s %6s %6s %6s %6s %6s %5s %7s"
            % ("scenario", "req/s", "p50 ms", "p99 ms", "non2xx", "pgbench/s", "ratio", "(rounds)",
               "target", "", "sd us", "pg us", "wrk us", "pgb pg", "pgb cl", "busy", "other"))
    w(head)
    w("-" * len(head))
    aggs = {}
    for key, label, target in SCENARIOS:
        a = aggregate(r, key)
        if a is None:
            continue
        aggs[key] = a
        ratio = a.get("ratio")
        spread = ("%.0f–%.0f" % (a["ratio_min"] * 100, a["ratio_max"] * 100)) if a["rounds"] > 1 and ratio else ""
        w("%-15s %8.0f %7.2f %7.2f %6d %9s %6s %9s %6s %-7s %6.0f %6.0f %6.0f %6s %6s %4.0f%% %3.0f/%-2.0f%%" % (
            label, a["rps"], a["p50"], a["p99"], a["errors"], fmt(a.get("tps"), ".0f"),
            fmt(ratio and ratio * 100, ".0f") + "%", spread,
            "≥%d%%" % (target * 100) if target else "–",
            "" if target is None or ratio is None else verdict(ratio >= target),
            a["sd_us"], a["pg_us"], a["client_us"], fmt(a.get("pgb_pg_us"), ".0f"),
            fmt(a.get("pgb_client_us"), ".0f"), a["busy"], a["foreign"], a.get("pgb_foreign", 0)))
    ng = aggregate(r, "nginx")
    if ng:
        get = aggs.get("get")
        w("%-15s %8.0f %7.2f %7.2f %6d   HTTP ceiling: a fixed %s-byte JSON body; get-by-id is %s of it"
          % ("nginx", ng["rps"], ng["p50"], ng["p99"], ng["errors"], r.get("body_bytes"),
             fmt(get and get["rps"] / ng["rps"] * 100, ".0f") + "%"))
        if get and get.get("tps"):
            bound = ng["rps"] / (ng["rps"] + get["tps"])
            w("%-15s an HTTP server costing what nginx costs, in front of the get-by-id ceiling, would reach"
              % "")
            w("%-15s at most nginx/(nginx + pgbench) = %.0f%% of it here: wrk, the server and PostgreSQL share"
              % ("", bound * 100))
            w("%-15s the same %s CPUs." % ("", r.get("nproc")))
    w("")
    w("ratio: segmentd req/s ÷ pgbench transactions/s running segmentd's prepared statement (the database")
    w("  ceiling), median of the rounds (min–max in brackets). us columns: CPU microseconds per request of")
    w("  segmentd, PostgreSQL and wrk; pgb pg / pgb cl: of PostgreSQL and pgbench per pgbench transaction.")
    w("  busy: machine CPU in use during the wrk rounds; other: the share used by processes outside this run")
    w("  (kernel threads not counted) during the wrk / the pgbench rounds: the noise.")
    w("  non2xx counts socket errors too; p50/p99 are medians of the rounds.")
    used = ["%s %s" % (key, "/".join(str(t) for t in a["threads"])) for key, a in aggs.items() if a["threads"]]
    if used:
        w("  segmentd threads that served the load (≥ 5 %% of its CPU each, per round; %s loops run): %s."
          % (r.get("loops"), ", ".join(used)))
    noise = max([a["foreign"] for a in aggs.values()] + [a.get("pgb_foreign", 0) for a in aggs.values()] + [0])
    if noise > 10:
        w("  NOTE: processes outside this run used up to %.0f%% of the machine during the measurements: the"
          % noise)
        w("  absolute numbers are low and the ratios noisy (compare the rounds); rerun on a quiet machine.")
    steal = max([a["steal"] for a in aggs.values()] + [0])
    if steal > 3:
        w("  NOTE: the hypervisor took %.0f%% of the CPUs from this machine (steal) in the wrk rounds of some"
          % steal)
        w("  scenario: every process ran slower then, and tail latencies grow (see the p99 of each round).")
    w("")
    get = aggs.get("get")
    if get:
        w("get-by-id p99 at %s connections: %.2f ms (worst round %.2f), %d non-2xx (target ≤ 10 ms, 0): %s"
          % (r.get("connections"), get["p99"], get["p99_max"], get["errors"],
             verdict(get["p99"] <= 10 and get["errors"] == 0)))
        per_round = ["%.2f ms (steal %.0f%%)" % (num(r, k + ".p99_us") / 1000,
                                                 100 * num(r, k + ".cpu_steal", 0) / (num(r, k + ".cpu_total", 0) or 1))
                     for k in rounds(r, "get")]
        if len(per_round) > 1:
            w("  p99 of each round: " + ", ".join(per_round))
    runs = [float(x) for x in r.get("startup_ms", "").split()]
    if runs:
        med = statistics.median(runs)
        w("start-up to ready, migrations applied: median %.1f ms (min %.1f, max %.1f, %d runs; "
          "target ≤ 200 ms): %s" % (med, min(runs), max(runs), len(runs), verdict(med <= 200)))
    hwm = num(r, "vmhwm_kib")
    if hwm is not None:
        w("peak resident memory (VmHWM of segmentd over the whole run): %.1f MiB (target ≤ 64 MiB): %s"
          % (hwm / 1024, verdict(hwm <= 64 * 1024)))
        if "dvbulk.hwm_after_kib" in r:
            w("  of which the device bulk requests of %s devices: VmHWM %.1f MiB before them, %.1f MiB after them"
              % (r.get("dvbulk.size"), num(r, "dvbulk.hwm_before_kib", 0) / 1024, num(r, "dvbulk.hwm_after_kib") / 1024))
    first, mid, last = num(r, "soak.rss_first_kib"), num(r, "soak.rss_mid_kib"), num(r, "soak.rss_last_kib")
    if last is not None:
        growth = last - mid
        flat = growth <= 1024 and growth <= 0.02 * mid
        w("soak, %s s of the mixed load (%s req/s, %s non-2xx): VmRSS %.1f → %.1f MiB, max %.1f; "
          "%+.2f MiB over the second half: %s"
          % (r.get("soak"), fmt(num(r, "soak.rps"), ".0f"), r.get("soak.non2xx", "?"), first / 1024,
             last / 1024, num(r, "soak.rss_max_kib", 0) / 1024, growth / 1024,
             "flat (met)" if flat else "growing (NOT met)"))
    runs = []
    i = 1
    while "bulk.r%d.single_s" % i in r:
        runs.append(("bulk.r%d" % i, num(r, "bulk.r%d.single_s" % i), num(r, "bulk.r%d.bulk_s" % i),
                     num(r, "bulk.r%d.single_xfer_s" % i), num(r, "bulk.r%d.bulk_xfer_s" % i)))
        i += 1
    if runs:
        k = runs[0][0]
        med = lambda j: statistics.median(x[j] for x in runs)
        if all(x[3] and x[4] for x in runs):
            ratio = statistics.median(x[3] / x[4] for x in runs)
            w("bulk: 1000 single POSTs on one keep-alive connection %.3f s (%s × 201 on %s connection); one bulk "
              "request of 1000 %.3f s (%s created), as curl times the requests; median of %d runs: %.1f× "
              "faster (target ≥ 10×): %s"
              % (med(3), r.get(k + ".single_ok"), r.get(k + ".single_conns"), med(4),
                 r.get(k + ".bulk_ok"), len(runs), ratio, verdict(ratio >= 10)))
            w("  wall clock of each side, a curl process start (~10 ms) included: %.3f s and %.3f s (%.1f×)"
              % (med(1), med(2), statistics.median(x[1] / x[2] for x in runs)))
        else:
            ratio = statistics.median(x[1] / x[2] for x in runs)
            w("bulk: 1000 single POSTs on one keep-alive connection %.3f s (%s × 201 on %s connection); one bulk "
              "request of 1000 %.3f s (%s created); median of %d runs: %.1f× faster (target ≥ 10×): %s"
              % (med(1), r.get(k + ".single_ok"), r.get(k + ".single_conns"), med(2),
                 r.get(k + ".bulk_ok"), len(runs), ratio, verdict(ratio >= 10)))
        hz = num(r, "clk_tck", 100)
        for part in ("single", "bulk"):
            sd = sum(num(r, x[0] + "." + part + ".sd_ticks", 0) for x in runs) / hz / len(runs)
            pg = sum(num(r, x[0] + "." + part + ".pg_ticks", 0) for x in runs) / hz / len(runs)
            w("  CPU per 1000 creates, %-6s: segmentd %.3f s, PostgreSQL %.3f s" % (part, sd, pg))
    device_bulk(r, w)
    device_import(r, w)
    evaluation(r, w)
    if r.get("notes"):
        w("")
        w("notes: " + r["notes"])
    print("\n".join(out))


if __name__ == "__main__":
    main()
