"""Rate limits per tenant (SEGMENTD_RATE_LIMIT_*): a token bucket drained and refilled, the
RateLimit-Policy / RateLimit values, 429 rate_limited with Retry-After (checked against
openapi.yaml like every answer), tenant A's burst leaving tenant B untouched, the three
classes apart, a refused write doing nothing, and no fields when the limits are off."""
import itertools
import time

import pytest

from segtest import Api, Server, problem

READ, READ_BURST = 1, 3
WRITE, WRITE_BURST = 1, 2
EVAL, EVAL_BURST = 1, 1

_tenants = itertools.count()


@pytest.fixture(scope="module")
def limited():
    s = Server(env={
        "SEGMENTD_RATE_LIMIT_READ": str(READ), "SEGMENTD_RATE_LIMIT_READ_BURST": str(READ_BURST),
        "SEGMENTD_RATE_LIMIT_WRITE": str(WRITE), "SEGMENTD_RATE_LIMIT_WRITE_BURST": str(WRITE_BURST),
        "SEGMENTD_RATE_LIMIT_EVAL": str(EVAL),
    }).start()
    yield s
    assert s.stop() == 0


def fresh(server):
    """A tenant no other test used: its buckets start full."""
    return Api(server, tenant="rl-%d-%d" % (next(_tenants), int(time.time() * 1000)))


def drain(api, path, most=20):
    """GETs path until the first 429: the answers before it, and the 429."""
    ok = []
    for _ in range(most):
        r = api.get(path)
        if r.status_code == 429:
            return ok, r
        ok.append(r)
    raise AssertionError("no 429 after %d requests" % most)


def segment(api):
    r = api.post("/v1/segments", {"name": "rate limited", "constraints": [
        {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_fields_on_every_answer_of_a_limited_route(limited):
    api = fresh(limited)
    r = api.get("/v1/segments?limit=1")
    assert r.status_code == 200
    assert r.headers["RateLimit-Policy"] == '"read";q=%d;w=%d' % (READ_BURST, READ_BURST // READ)
    assert r.headers["RateLimit"] == '"read";r=%d;t=1' % (READ_BURST - 1)
    # an error answer on a limited route carries them too
    r = api.get("/v1/segments/seg_doesnotexist0")
    assert r.status_code == 404
    assert r.headers["RateLimit"].startswith('"read";r=%d;t=' % (READ_BURST - 2))
    # routes without a token are not limited
    r = api.get("/healthz", token=False)
    assert "RateLimit" not in r.headers and "RateLimit-Policy" not in r.headers


def test_drained_then_refilled(limited):
    api = fresh(limited)
    ok, r = drain(api, "/v1/segments?limit=1")
    assert len(ok) >= READ_BURST  # more only when a token came back while draining
    problem(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "1"
    assert r.headers["RateLimit"].startswith('"read";r=0;t=')
    assert r.headers["Cache-Control"] == "no-store"
    assert "read" in r.json()["detail"]
    time.sleep(1.2)  # one token a second
    assert api.get("/v1/segments?limit=1").status_code == 200
    metrics = api.get("/metrics", token=False).text
    refused = [l for l in metrics.splitlines() if l.startswith('segmentd_rate_limited_total{class="read"}')]
    assert refused and int(refused[0].split()[-1]) >= 1, metrics


def test_one_tenants_burst_leaves_another_untouched(limited):
    a, b = fresh(limited), fresh(limited)
    drain(a, "/v1/segments?limit=1")
    r = b.get("/v1/segments?limit=1")
    assert r.status_code == 200
    assert r.headers["RateLimit"] == '"read";r=%d;t=1' % (READ_BURST - 1)


def test_classes_have_buckets_of_their_own(limited):
    api = fresh(limited)
    seg = segment(api)  # a write
    drain(api, "/v1/segments/" + seg)
    # reads are spent; evaluations and writes are not
    r = api.get("/v1/segments/%s/count" % seg)
    assert r.status_code == 200, r.text
    assert r.headers["RateLimit-Policy"] == '"evaluation";q=%d;w=1' % EVAL
    problem(api.get("/v1/segments/%s/count" % seg), 429, "rate_limited")  # burst of 1
    r = api.patch("/v1/segments", {"id": seg, "name": "renamed"})
    assert r.status_code == 200, r.text
    assert r.headers["RateLimit-Policy"] == '"write";q=%d;w=%d' % (WRITE_BURST, WRITE_BURST // WRITE)


def test_a_refused_write_does_nothing(limited):
    api = fresh(limited)
    made = [segment(api) for _ in range(WRITE_BURST)]
    r = api.post("/v1/segments", {"name": "one too many", "constraints": [
        {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "DE"}]}]})
    if r.status_code == 201:  # a token came back meanwhile (a slow, sanitized build)
        made.append(r.json()["id"])
        r = api.post("/v1/segments", {"name": "one too many", "constraints": [
            {"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "DE"}]}]})
    problem(r, 429, "rate_limited")
    time.sleep(1.1)  # a token for the list
    ids = {x["id"] for x in api.get("/v1/segments?limit=50").json()["items"]}
    assert ids == set(made)

def test_off_by_default(server):
    r = Api(server, tenant="rl-off").get("/v1/segments?limit=1")
    assert r.status_code == 200
    assert "RateLimit" not in r.headers and "RateLimit-Policy" not in r.headers
    for _ in range(30):
        assert Api(server, tenant="rl-off").get("/v1/segments?limit=1").status_code == 200
