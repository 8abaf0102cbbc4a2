#!/usr/bin/python3
"""Seeds segments through segmentd's API and writes their ids, one a line.

    seed.py URL OUTDIR AUD_PER_TENANT V1_PER_TENANT    (tokens in BENCH_TOKEN_T1, BENCH_TOKEN_T2)

Uses the bulk routes (1000 items a request); falls back to single POSTs on a few
keep-alive connections when a bulk request is refused. Writes OUTDIR/aud_t1.ids,
aud_t2.ids, v1_t1.ids, v1_t2.ids and OUTDIR/owners (the owner ids used, for the
pgbench scripts). Standard library only.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

BULK = 1000
OWNERS = 50
rng = random.Random(20240601)
owners = ["%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                           rng.getrandbits(12), rng.getrandbits(48)) for _ in range(OWNERS)]
COUNTRIES = ["PL", "DE", "FR", "US", "GB", "ES", "IT", "NL"]
INTERESTS = ["sports", "music", "travel", "cooking", "gaming", "fashion"]


def aud_item(tenant, i):
    return {
        "management_type": "selfmanaged" if i % 4 else "systemmanaged",
        "name": "bench %s segment %05d" % (tenant, i),
        "owner_id": owners[i % OWNERS],
        "approximated_size": rng.randrange(1000, 10_000_000),
        "description": "Seeded by bench/run: users who match the benchmark rules",
        "properties": {"country": rng.sample(COUNTRIES, 2), "interest": rng.sample(INTERESTS, 2)},
    }


def v1_item(tenant, i):
    return {
        "name": "bench %s v1 segment %05d" % (tenant, i),
        "constraints": [{"type": "AND", "constraints": [
            {"field": "country", "relation": "==", "value": rng.choice(COUNTRIES)}]}],
    }


class Client:
    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, path, body):
        data = json.dumps(body).encode()
        for attempt in range(3):
            try:
                self.conn.request("POST", path, data, self.headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError


def seed_single(url, token, path, items, workers=8):
    """POSTs items one by one on `workers` keep-alive connections; returns ids in order."""
    ids = [None] * len(items)
    nxt = iter(range(len(items)))
    lock = threading.Lock()
    failures = []

    def work():
        c = Client(url, token)
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            st, body = c.post(path, items[i])
            if st != 201:
                failures.append((st, body[:200]))
                return
            ids[i] = json.loads(body)["id"]

    ts = [threading.Thread(target=work) for _ in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        sys.exit("seed: POST %s answered %s: %s" % (path, failures[0][0], failures[0][1]))
    return ids


def seed(url, token, path, items):
    c = Client(url, token)
    ids = []
    for start in range(0, len(items), BULK):
        chunk = items[start:start + BULK]
        st, body = c.post(path + "/bulk?atomic=true", {"data": chunk})
        doc = json.loads(body) if st == 200 else None
        if not doc or doc.get("errors") or len(doc.get("data", [])) != len(chunk):
            print("seed: bulk create answered %s, falling back to single POSTs" % st, file=sys.stderr)
            return ids + seed_single(url, token, path, items[start:])
        ids += [d["id"] for d in doc["data"]]
    return ids


def main():
    url, outdir, n_aud, n_v1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tokens = {"t1": os.environ["BENCH_TOKEN_T1"], "t2": os.environ["BENCH_TOKEN_T2"]}
    t0 = time.monotonic()
    total = 0
    for tenant, token in tokens.items():
        for dialect, path, n, make in (("aud", "/audiences/segments", n_aud, aud_item),
                                       ("v1", "/v1/segments", n_v1, v1_item)):
            ids = seed(url, token, path, [make(tenant, i) for i in range(n)])
            assert len(ids) == n and all(ids)
            total += n
            with open(os.path.join(outdir, "%s_%s.ids" % (dialect, tenant)), "w") as f:
                f.write("\n".join(ids) + "\n")
    with open(os.path.join(outdir, "owners"), "w") as f:
        f.write("\n".join(owners) + "\n")
    print("%d %.3f" % (total, time.monotonic() - t0))


if __name__ == "__main__":
    main()
