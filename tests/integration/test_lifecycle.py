"""Segment lifecycle (issue #20) on both dialects: start and end dates, pause, auto-extend,
the computed status, the end-date operation, the list filters and bulk items.

Every test runs on /audiences/segments and on /v1/segments (the fixture d), on a tenant of
its own, against one segmentd whose sweeper runs every second. Times are a couple of seconds
ahead. Renewals come in whole days, so the tests give segments end dates that passed days
ago: segmentd stores such a date, written with extend true, already renewed, so for the
sweeper's part the stored date is then set back by SQL (lifecycle_util.backdate), as if the
days had passed with no sweeper. The sweeper of the shared database belongs to every
segmentd of the run: a test that needs no sweeper at all is in test_lifecycle_sweep.py, on a
database of its own."""
import datetime as dt
import json
import time

import pytest

from lifecycle_util import (AUD, DAY, DIALECTS, LC_KEYS, OWNER, V1, backdate, epoch_ms, iso,
                            now, sleep_until, tenant_api, version, wait_until)
from segtest import DB_URL, Api, Server, new_uuid, pointers, problem, psql
from test_bulk import envelope

H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)
SWEEP_WAIT = 8  # seconds: the sweeper runs every second; a sanitized build is slower


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"SEGMENTD_LIFECYCLE_SWEEP_S": "1"}).start()
    yield s
    assert s.stop() == 0


@pytest.fixture
def tapi(srv):
    return tenant_api(srv)


@pytest.fixture(params=DIALECTS, ids=repr)
def d(request):
    return request.param


def lc(d, seg):
    """The lifecycle part of a representation, named the /audiences way."""
    return {f: seg[d.k(f)] for f in LC_KEYS}


def stored(d, api, seg_id):
    """(start_date, end_date, active, extend, extend_days, version) as the database holds them."""
    rows = psql(f"SELECT start_date, end_date, active, extend, extend_days, version FROM {d.table} "
                "WHERE tenant = %s AND id = %s", api.tenant, seg_id)
    assert len(rows) == 1, rows
    return rows[0]


def unchanged(d, api, seg_id, before, etag):
    """The segment is as it was: same representation, same ETag."""
    r = d.get_r(api, seg_id)
    assert r.status_code == 200
    assert r.json() == before, (r.json(), before)
    assert r.headers["ETag"] == etag


def ids(items):
    return [s["id"] for s in items]


# ------------------------------------------------------------------ representation

def test_defaults_and_key_order(d, tapi):
    r = d.create_r(tapi)
    assert r.status_code == 201, r.text
    seg = r.json()
    keys = list(seg)
    i = keys.index(d.k("updated_at"))
    assert keys[i + 1:i + 7] == [d.k(f) for f in LC_KEYS], keys
    assert lc(d, seg) == {"start_date": None, "end_date": None, "active": True, "extend": False,
                          "extend_days": 30, "status": "active"}
    assert version(r) == 1
    g = d.get_r(tapi, seg["id"])
    assert g.json() == seg and g.headers["ETag"] == r.headers["ETag"]


def test_create_with_every_field_round_trips(d, tapi):
    t = now()
    start = d.trunc(t + DAY + dt.timedelta(microseconds=123456))
    end = d.trunc(start + dt.timedelta(days=10, microseconds=654321))
    seg = d.create(tapi, start_date=start, end_date=end, active=True, extend=True, extend_days=7)
    assert lc(d, seg) == {"start_date": d.enc(start), "end_date": d.enc(end), "active": True,
                          "extend": True, "extend_days": 7, "status": "scheduled"}
    assert d.get(tapi, seg["id"]) == seg
    row = stored(d, tapi, seg["id"])
    assert row == (start, end, True, True, 7, 1)


def test_aud_offsets_normalised_to_utc(tapi):
    seg = AUD.create(tapi, start_date="2030-01-01T12:00:00.5+02:00", end_date="2030-01-02T00:00:00-05:30")
    assert seg["start_date"] == "2030-01-01T10:00:00.500000Z"
    assert seg["end_date"] == "2030-01-02T05:30:00.000000Z"
    assert seg["status"] == "scheduled"


@pytest.mark.parametrize("d,start,end,shown", [
    (AUD, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
     ("0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z")),
    (AUD, "0001-01-01T01:00:00+01:00", "9999-12-31T22:59:59-01:00",
     ("0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.000000Z")),
    (V1, -62135596800000, 253402300799999, (-62135596800000, 253402300799999)),
], ids=["aud-utc", "aud-offsets", "v1"])
def test_first_and_last_instants_accepted(tapi, d, start, end, shown):
    seg = d.create(tapi, start_date=start, end_date=end)
    assert (seg[d.k("start_date")], seg[d.k("end_date")]) == shown
    assert seg["status"] == "active"
    assert d.get(tapi, seg["id"]) == seg


# ------------------------------------------------------------------ transitions

def test_transitions_as_time_passes(d, tapi):
    """scheduled -> active, active -> expired, a renewing segment renewed by one period when
    its end passes (the reads at once, the sweeper's write once), a paused one stays paused."""
    t_made = now()
    T = d.trunc(t_made + 2 * S)
    sched = d.create(tapi, start_date=T)
    ending = d.create(tapi, end_date=T)
    renew = d.create(tapi, end_date=T, extend=True, extend_days=1)
    paused = d.create(tapi, start_date=T, end_date=T + S, active=False)
    window = d.create(tapi, start_date=T - H, end_date=T)
    assert now() < T - 0.3 * S, "creating five segments took over 1.7 s: too slow for this test"
    assert [s["status"] for s in (sched, ending, renew, paused, window)] == \
        ["scheduled", "active", "active", "paused", "active"]
    assert renew[d.k("end_date")] == d.enc(T)
    etags = {s["id"]: d.get_r(tapi, s["id"]).headers["ETag"] for s in (sched, ending, renew, paused, window)}
    assert set(etags.values()) == {'"1"'}

    sleep_until(T + 0.3 * S)
    got = {s["id"]: d.get_r(tapi, s["id"]) for s in (sched, ending, renew, paused, window)}
    assert [got[s["id"]].json()["status"] for s in (sched, ending, renew, paused, window)] == \
        ["active", "expired", "active", "paused", "expired"]
    # the date is what it was; only time moved: nothing was written
    for s in (sched, ending, paused, window):
        assert got[s["id"]].json() == dict(s, status=got[s["id"]].json()["status"])
        assert got[s["id"]].headers["ETag"] == '"1"'
    # the renewed end date, read before or after the sweeper wrote it: one day on
    assert got[renew["id"]].json()[d.k("end_date")] == d.enc(T + DAY)

    # the sweeper writes it once: version 2, updated_at moved, the same end date
    wait_until(lambda: version(d.get_r(tapi, renew["id"])) == 2, SWEEP_WAIT, what="the sweeper's renewal")
    r = d.get_r(tapi, renew["id"])
    after = r.json()
    assert after[d.k("end_date")] == d.enc(T + DAY) and after["status"] == "active"
    assert d.dec(after[d.k("updated_at")]) > d.dec(renew[d.k("updated_at")])
    assert d.dec(after[d.k("updated_at")]) >= d.trunc(T)
    assert stored(d, tapi, renew["id"])[1:] == (T + DAY, True, True, 1, 2)
    for k in ("id", "name", "created_at"):
        assert after[d.k(k)] == renew[d.k(k)]
    time.sleep(2.2)  # two more sweeps: nothing more to do
    r2 = d.get_r(tapi, renew["id"])
    assert r2.json() == after and r2.headers["ETag"] == '"2"'
    for s in (sched, ending, paused, window):
        assert d.get_r(tapi, s["id"]).headers["ETag"] == '"1"'


def test_paused_and_resumed(d, tapi):
    t = now()
    plain = d.create(tapi)
    r = d.update(tapi, plain["id"], active=False)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["status"] == "paused" and version(r) == 2
    assert d.get(tapi, plain["id"]) == r.json()
    assert ids(d.list_r(tapi, status="paused").json()["items"]) == [plain["id"]]
    r = d.update(tapi, plain["id"], active=True)
    assert r.json()["active"] is True and r.json()["status"] == "active" and version(r) == 3

    # paused wins over the dates; resumed, the dates decide again
    sched = d.create(tapi, start_date=t + H, active=False)
    assert sched["status"] == "paused"
    assert d.update(tapi, sched["id"], active=True).json()["status"] == "scheduled"
    exp = d.create(tapi, end_date=t - H)
    assert exp["status"] == "expired"
    assert d.update(tapi, exp["id"], active=False).json()["status"] == "paused"
    assert d.update(tapi, exp["id"], active=True).json()["status"] == "expired"
    # a paused renewing segment still shows its renewed end date
    E = d.trunc(t - 3.5 * DAY)
    x = d.create(tapi, end_date=E, extend=True, extend_days=1, active=False)
    assert x["status"] == "paused" and x[d.k("end_date")] == d.enc(E + 4 * DAY)
    r = d.update(tapi, x["id"], active=True)
    assert r.json()["status"] == "active" and r.json()[d.k("end_date")] == d.enc(E + 4 * DAY)
    if d is AUD:  # the merge patch pauses and resumes too
        m = merge(tapi, plain["id"], {"active": False})
        assert m.status_code == 200 and m.json()["status"] == "paused"
        m = merge(tapi, plain["id"], {"active": True})
        assert m.status_code == 200 and m.json()["status"] == "active"


OVERDUE = [  # (extend_days, how long ago the end date passed, k: periods to add)
    (1, 3.5 * DAY, 4),                      # overdue by three and a half periods: four on
    (2, 5 * DAY, 3),
    (7, 10 * DAY, 2),
    (30, 60 * DAY + 2 * S, 3),              # just past two whole periods
    (30, 60 * DAY - 30 * S, 2),             # just short of two
    (3650, DAY, 1),
    (1, dt.timedelta(microseconds=1500), 1),
]


def renew_and_check(d, api, cases):
    """cases: (end date, extend_days, the end date it must get). Each segment is created
    with its end date, and the answer shows the renewed one at once, exactly; then its
    stored end date is set back by SQL (as if that time had passed with no sweeper), reads
    show the same renewed date, and the sweeper stores it with version 2."""
    made = []
    for E, days, want in cases:
        r = d.create_r(api, end_date=E, extend=True, extend_days=days)
        assert r.status_code == 201, r.text
        seg = r.json()
        assert seg[d.k("end_date")] == d.enc(want), (E, days, seg[d.k("end_date")], d.enc(want))
        assert seg["status"] == "active" and seg["extend"] is True and version(r) == 1
        made.append(seg)
    backdate(DB_URL, d, api.tenant, {seg["id"]: E for seg, (E, _, _) in zip(made, cases)})
    for seg, (E, days, want) in zip(made, cases):
        g = d.get_r(api, seg["id"])
        assert g.json()[d.k("end_date")] == d.enc(want) and g.json()["status"] == "active", (E, days)
    for seg, (E, days, want) in zip(made, cases):
        wait_until(lambda: stored(d, api, seg["id"])[5] == 2, SWEEP_WAIT, what="the sweeper's renewal")
        assert stored(d, api, seg["id"]) == (None, want, True, True, days, 2), (E, days)
        g = d.get_r(api, seg["id"])
        assert g.json()[d.k("end_date")] == d.enc(want) and g.headers["ETag"] == '"2"'
        assert d.dec(g.json()[d.k("updated_at")]) > d.dec(seg[d.k("updated_at")])


def test_renewal_of_overdue_segments(d, tapi):
    """end + k × extend_days days for the smallest k that puts it after now: to the
    microsecond on /audiences, to the millisecond on /v1."""
    t = now()
    cases = []
    for days, overdue, k in OVERDUE:
        E = d.trunc(t - overdue)
        want = E + k * days * DAY
        if d is V1:  # the same, in the dialect's own unit
            assert epoch_ms(want) == epoch_ms(E) + k * days * 86_400_000
        else:
            assert iso(want) == iso(E + dt.timedelta(days=k * days))
        cases.append((E, days, want))
    renew_and_check(d, tapi, cases)


def test_renewal_from_the_first_years(d, tapi):
    """End dates long ago (year 1, just before the Unix epoch) renew to the exact instant
    too, on read and by the sweeper: hundreds of thousands of periods at once."""
    first = dt.datetime(1, 1, 1, 12, 34, 56, 789000, tzinfo=dt.timezone.utc)
    t_before = now()
    cases = []
    for E, days in [(first, 1), (first, 3650),
                    (dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.timezone.utc), 7)]:
        period = days * DAY
        k = (t_before - E) // period + 1
        assert k == (t_before - E + 60 * S) // period + 1, "a renewal boundary falls within a minute"
        cases.append((E, days, E + k * period))
    renew_and_check(d, tapi, cases)


def test_active_at_is_exact_to_the_unit(d, tapi):
    """Live from the start date included until the end date excluded, to the microsecond on
    /audiences and to the millisecond on /v1."""
    u = d.precision
    start = d.trunc(now() - H + dt.timedelta(microseconds=123457))
    end = d.trunc(start + dt.timedelta(minutes=7, microseconds=876543))
    seg = d.create(tapi, start_date=start, end_date=end)
    for at, live in [(start - u, False), (start, True), (end - u, True), (end, False)]:
        r = d.list_r(tapi, active_at=at)
        assert r.status_code == 200, r.text
        assert ids(r.json()["items"]) == ([seg["id"]] if live else []), (d.enc(at), live)


# ------------------------------------------------------------------ validation

def bad_dates(d):
    if d is AUD:
        return ["10000-01-01T00:00:00Z", "0000-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00",
                "0001-01-01T00:30:00+01:00", "2026-02-30T00:00:00Z", "2026-12-06", "tomorrow", "",
                1767225600000, True, {}, []]
    return [253402300800000, -62135596800001, "1767225600000", "2026-12-06T10:00:00Z",
            1767225600000.5, 1.7e12, True, {}, []]


DATE_CASES = [pytest.param(dd, f, v, id=f"{dd}-{f}-{json.dumps(v)}")
              for dd in DIALECTS for f in ("start_date", "end_date") for v in bad_dates(dd)]


@pytest.mark.parametrize("d,field,value", DATE_CASES)
def test_bad_dates_refused(tapi, d, field, value):
    b = problem(d.create_r(tapi, **{field: value}), 422, "validation_failed")
    assert pointers(b) == [d.ptr(field)]


@pytest.mark.parametrize("field,value,ptr", [
    ("extend_days", 0, "extend_days"), ("extend_days", 3651, "extend_days"),
    ("extend_days", -1, "extend_days"), ("extend_days", 1.5, "extend_days"),
    ("extend_days", "30", "extend_days"), ("extend_days", True, "extend_days"),
    ("extend_days", 30.0, "extend_days"), ("extend_days", 2 ** 32 + 30, "extend_days"),
    ("active", None, "active"), ("active", "true", "active"), ("active", 1, "active"),
    ("extend", None, "extend"), ("extend", "yes", "extend"), ("extend", 0, "extend"),
])
def test_bad_values_refused(d, tapi, field, value, ptr):
    body = d.body(**{field: value})
    b = problem(tapi.post(d.path, body), 422, "validation_failed")
    assert pointers(b) == [d.ptr(ptr)]


@pytest.mark.parametrize("extend_days", [1, 3650])
def test_extend_days_bounds_accepted(d, tapi, extend_days):
    assert d.create(tapi, extend_days=extend_days)[d.k("extend_days")] == extend_days


def test_date_rules_in_one_body(d, tapi):
    t = now()
    for body, ptr in [
        (dict(start_date=t + 2 * DAY, end_date=t + DAY), "end_date"),
        (dict(start_date=t + DAY, end_date=t + DAY), "end_date"),
        (dict(start_date=t - DAY, end_date=t - 2 * DAY), "end_date"),
        (dict(extend=True), "extend"),
        (dict(extend=True, end_date=None), "extend"),
        (dict(extend=True, start_date=t + DAY), "extend"),
    ]:
        b = problem(d.create_r(tapi, **body), 422, "validation_failed")
        assert pointers(b) == [d.ptr(ptr)], (body, b)
    # every problem at once
    b = problem(d.create_r(tapi, start_date="x", extend_days=0, active=None), 422)
    assert pointers(b) == sorted([d.ptr("start_date"), d.ptr("extend_days"), d.ptr("active")])
    # one instant of difference is enough
    one = d.precision
    seg = d.create(tapi, start_date=d.trunc(t), end_date=d.trunc(t) + one)
    assert d.dec(seg[d.k("end_date")]) - d.dec(seg[d.k("start_date")]) == one
    # an end in the past is fine on create: expired at once
    assert d.create(tapi, end_date=t - H)["status"] == "expired"


@pytest.mark.parametrize("status", ["expired", "paused", "scheduled", "nonsense", 5, None, ""])
def test_status_accepted_and_ignored(d, tapi, status):
    seg = d.create(tapi, status=status)
    assert seg["status"] == "active"
    r = d.update(tapi, seg["id"], status=status, name="renamed")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["name"] == "renamed"


def test_get_representation_sent_back(d, tapi):
    """A GET's body, status and all, is a valid update that changes nothing of the lifecycle."""
    t = now()
    seg = d.create(tapi, start_date=d.trunc(t + DAY), end_date=d.trunc(t + 3 * DAY), extend=True,
                   extend_days=9, active=False)
    got = d.get(tapi, seg["id"])
    r = tapi.patch(d.path, got)
    assert r.status_code == 200, r.text
    assert lc(d, r.json()) == lc(d, got)
    # a renewing segment: the shown (renewed) end date sent back becomes the stored one
    E = d.trunc(t - 3.5 * DAY)
    x = d.get(tapi, d.create(tapi, end_date=E, extend=True, extend_days=1)["id"])
    r = tapi.patch(d.path, x)
    assert r.status_code == 200, r.text
    assert r.json()[d.k("end_date")] == d.enc(E + 4 * DAY) and r.json()["status"] == "active"


def test_partial_updates_checked_against_stored_values(d, tapi):
    t = now()
    start, end = d.trunc(t + 10 * DAY), d.trunc(t + 20 * DAY)
    seg = d.create(tapi, start_date=start, end_date=end)
    g = d.get_r(tapi, seg["id"])
    before, etag = g.json(), g.headers["ETag"]
    for fields, ptr in [
        (dict(end_date=start - DAY), "end_date"),      # only the end, before the stored start
        (dict(end_date=start), "end_date"),            # equal to it
        (dict(start_date=end + DAY), "end_date"),      # only the start, after the stored end
        (dict(start_date=end), "end_date"),
        (dict(extend=True, end_date=None), "extend"),
        (dict(end_date=t - DAY), "end_date"),          # in the past, and before the start
    ]:
        b = problem(d.update(tapi, seg["id"], **fields), 422, "validation_failed")
        assert pointers(b) == [d.ptr(ptr)], (fields, b)
        unchanged(d, tapi, seg["id"], before, etag)
    # in one body both may move together
    r = d.update(tapi, seg["id"], start_date=end + DAY, end_date=end + 2 * DAY)
    assert r.status_code == 200, r.text
    assert (r.json()[d.k("start_date")], r.json()[d.k("end_date")]) == (d.enc(end + DAY), d.enc(end + 2 * DAY))
    # extend on a segment without an end date
    plain = d.create(tapi)
    g = d.get_r(tapi, plain["id"])
    b = problem(d.update(tapi, plain["id"], extend=True), 422)
    assert pointers(b) == [d.ptr("extend")]
    unchanged(d, tapi, plain["id"], g.json(), g.headers["ETag"])
    # removing the end of a renewing segment
    x = d.create(tapi, end_date=t + DAY, extend=True)
    g = d.get_r(tapi, x["id"])
    b = problem(d.update(tapi, x["id"], end_date=None), 422)
    assert pointers(b) == [d.ptr("extend")]
    unchanged(d, tapi, x["id"], g.json(), g.headers["ETag"])
    r = d.update(tapi, x["id"], end_date=None, extend=False)
    assert r.status_code == 200, r.text
    assert (r.json()[d.k("end_date")], r.json()["extend"]) == (None, False)
    # absent fields stay as they are
    y = d.create(tapi, start_date=start, end_date=end, extend=True, extend_days=3, active=False)
    r = d.update(tapi, y["id"], name="only the name")
    assert lc(d, r.json()) == lc(d, y)
    # null: the dates go, active and extend refuse it
    for f in ("active", "extend", "extend_days"):
        g = d.get_r(tapi, y["id"])
        b = problem(d.update(tapi, y["id"], **{f: None}), 422)
        assert pointers(b) == [d.ptr(f)]
        unchanged(d, tapi, y["id"], g.json(), g.headers["ETag"])
    r = d.update(tapi, y["id"], start_date=None)
    assert r.status_code == 200 and r.json()[d.k("start_date")] is None
    assert r.json()["status"] == "paused"


def test_kept_end_date_checked_as_reads_show_it(d, tapi):
    """A renewing segment whose stored end date passed: a new start date alone is checked
    against the end date reads show (renewed), not the stale stored one."""
    E = d.trunc(now() - 3.5 * DAY)
    shown = E + 4 * DAY
    # after the stored end, before the shown one: accepted
    seg, r = passed_then_written(d, tapi, E, lambda i: d.update(tapi, i, start_date=E + DAY))
    assert r.status_code == 200, r.text
    assert (r.json()[d.k("start_date")], r.json()[d.k("end_date")]) == (d.enc(E + DAY), d.enc(shown))
    assert stored(d, tapi, seg["id"])[:2] == (E + DAY, shown)
    # at or after the shown end: refused at the end date
    for start in (shown, shown + H):
        seg, r = passed_then_written(d, tapi, E, lambda i: d.update(tapi, i, start_date=start))
        b = problem(r, 422, "validation_failed")
        assert pointers(b) == [d.ptr("end_date")]
        assert stored(d, tapi, seg["id"])[0] is None


def merge(api, seg_id, patch, headers=None):
    return api.request("PATCH", AUD.path + "/" + seg_id, data=json.dumps(patch),
                       headers=dict({"Content-Type": "application/merge-patch+json"}, **(headers or {})))


def test_merge_patch_null_means_default(tapi):
    t = now()
    seg = AUD.create(tapi, start_date=t - DAY, end_date=t + DAY, extend=True, extend_days=5, active=False)
    r = merge(tapi, seg["id"], {"active": None})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True and r.json()["status"] == "active"
    r = merge(tapi, seg["id"], {"extend_days": None})
    assert r.json()["extend_days"] == 30
    g = AUD.get_r(tapi, seg["id"])
    b = problem(merge(tapi, seg["id"], {"end_date": None}), 422, "validation_failed")
    assert pointers(b) == ["/extend"]
    unchanged(AUD, tapi, seg["id"], g.json(), g.headers["ETag"])
    b = problem(merge(tapi, seg["id"], {"end_date": iso(t - 2 * DAY)}), 422)
    assert pointers(b) == ["/end_date"]
    b = problem(merge(tapi, seg["id"], {"start_date": iso(t + 2 * DAY)}), 422)
    assert pointers(b) == ["/end_date"]
    unchanged(AUD, tapi, seg["id"], g.json(), g.headers["ETag"])
    r = merge(tapi, seg["id"], {"end_date": None, "extend": None, "status": "expired"})
    assert r.status_code == 200, r.text
    assert (r.json()["end_date"], r.json()["extend"], r.json()["status"]) == (None, False, "active")
    r = merge(tapi, seg["id"], {"start_date": None})
    assert r.json()["start_date"] is None
    assert {k: r.json()[k] for k in LC_KEYS} == {"start_date": None, "end_date": None, "active": True,
                                                 "extend": False, "extend_days": 30, "status": "active"}
    for f in ("active", "extend", "extend_days", "start_date", "end_date"):
        b = problem(merge(tapi, seg["id"], {f: "bad"}), 422)
        assert pointers(b) == ["/" + f]


# ------------------------------------------------------------------ the end-date operation

def test_end_date_operation(d, tapi):
    t = now()
    seg = d.create(tapi, start_date=d.trunc(t - DAY), description="keep")
    g = d.get_r(tapi, seg["id"])
    E = d.trunc(t + dt.timedelta(days=3, microseconds=250001))
    r = d.set_end(tapi, seg["id"], end_date=E)
    assert r.status_code == 200, r.text
    out = r.json()
    assert lc(d, out) == dict(lc(d, seg), end_date=d.enc(E))
    assert version(r) == version(g) + 1
    assert d.dec(out[d.k("updated_at")]) >= d.dec(seg[d.k("updated_at")])
    for k in ("id", "name", "description", "created_at", "start_date"):
        assert out[d.k(k)] == seg[d.k(k)]
    g2 = d.get_r(tapi, seg["id"])
    assert g2.json() == out and g2.headers["ETag"] == r.headers["ETag"]
    # extend set with it, then cleared with it; absent extend stays
    r = d.set_end(tapi, seg["id"], end_date=E + DAY, extend=True)
    assert r.status_code == 200 and r.json()["extend"] is True and version(r) == version(g) + 2
    r = d.set_end(tapi, seg["id"], end_date=E + 2 * DAY)
    assert r.json()["extend"] is True and r.json()[d.k("end_date")] == d.enc(E + 2 * DAY)
    r = d.set_end(tapi, seg["id"], end_date=E, extend=False)
    assert r.json()["extend"] is False
    # null: no end any more
    r = d.set_end(tapi, seg["id"], end_date=None)
    assert r.status_code == 200, r.text
    assert r.json()[d.k("end_date")] is None and r.json()["status"] == "active"
    assert stored(d, tapi, seg["id"])[1] is None


def test_end_date_in_the_past_expires_at_once(d, tapi):
    t = now()
    seg = d.create(tapi, end_date=t + DAY)
    P = d.trunc(t - H)
    r = d.set_end(tapi, seg["id"], end_date=P)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "expired" and r.json()[d.k("end_date")] == d.enc(P)
    assert d.get(tapi, seg["id"])["status"] == "expired"
    assert seg["id"] in ids(d.list_r(tapi, status="expired").json()["items"])
    # with extend: renewed at once instead, the sweeper stores it
    P2 = d.trunc(t - 3.5 * DAY)
    r = d.set_end(tapi, seg["id"], end_date=P2, extend=True)
    assert r.status_code == 200, r.text
    v = version(r)
    assert r.json()["status"] == "active"
    assert r.json()[d.k("end_date")] == d.enc(P2 + 30 * DAY)  # extend_days is 30
    # stored renewed by this write, whose version covers the renewal: no sweep follows
    assert stored(d, tapi, seg["id"])[1] == P2 + 30 * DAY
    time.sleep(1.5)
    g = d.get_r(tapi, seg["id"])
    assert version(g) == v and g.json() == r.json()


def passed_then_written(d, api, E, write):
    """Creates a renewing segment (extend_days 1), sets its stored end date back to E and at
    once calls write(id) -> response; again when the module's sweeper renewed the row in
    between (a successful write then answers version 3, not 2), so that the write meets the
    passed end date."""
    for _ in range(5):
        seg = d.create(api, end_date=E, extend=True, extend_days=1)
        backdate(DB_URL, d, api.tenant, {seg["id"]: E})
        r = write(seg["id"])
        if r.status_code != 200 or version(r) == 2:
            return seg, r
    raise AssertionError("the sweeper renewed the row before the write, five times")


def test_write_over_a_passed_end_keeps_the_shown_end(d, tapi):
    """A renewing segment whose stored end date passed: a write that leaves the end date
    alone stores the end date reads showed, also when it turns extend off (the segment does
    not expire at once); the write's version covers the renewal: no sweep follows."""
    E = d.trunc(now() - 3.5 * DAY)
    want = d.enc(E + 4 * DAY)
    a, r = passed_then_written(d, tapi, E, lambda i: d.update(tapi, i, extend=False))
    assert r.status_code == 200, r.text
    assert (r.json()[d.k("end_date")], r.json()["extend"], r.json()["status"]) == (want, False, "active")
    b, r2 = passed_then_written(d, tapi, E, lambda i: d.update(tapi, i, name="renamed"))
    assert r2.status_code == 200, r2.text
    assert (r2.json()[d.k("end_date")], r2.json()["status"]) == (want, "active")
    time.sleep(2.2)  # sweeps
    for seg, resp in ((a, r), (b, r2)):
        g = d.get_r(tapi, seg["id"])
        assert g.json() == resp.json() and g.headers["ETag"] == resp.headers["ETag"] == '"2"'
        assert stored(d, tapi, seg["id"])[1] == E + 4 * DAY
    assert stored(d, tapi, a["id"])[3] is False


def test_end_date_refusals(d, tapi, srv):
    t = now()
    start = d.trunc(t + DAY)
    seg = d.create(tapi, start_date=start)
    g = d.get_r(tapi, seg["id"])
    before, etag = g.json(), g.headers["ETag"]
    cases = [
        (dict(end_date=start - H), "end_date"),
        (dict(end_date=start), "end_date"),
        (dict(end_date=t - H), "end_date"),              # past, but also before the start
        (dict(end_date=None, extend=True), "extend"),
        (dict(end_date=start + DAY, extend="yes"), "extend"),
        (dict(end_date=start + DAY, extend=None), "extend"),
        (dict(extend=True), "end_date"),                 # the date is required
        (dict(), "end_date"),
        (dict(end_date=start + DAY, colour=1), "colour"),
        (dict(end_date=start + DAY, start_date=t), "start_date"),
        (dict(end_date="tomorrow" if d is AUD else "1767225600000"), "end_date"),
        (dict(end_date="10000-01-01T00:00:00Z" if d is AUD else 253402300800000), "end_date"),
        (dict(end_date=start + DAY, extend_days=2), "extend_days"),  # not a field of this body
    ]
    for fields, ptr in cases:
        b = problem(d.set_end(tapi, seg["id"], **fields), 422, "validation_failed")
        assert pointers(b) == [d.ptr(ptr)], (fields, b)
        unchanged(d, tapi, seg["id"], before, etag)
    # the other dialect's name of the field
    other_key = {"endDate": d.enc(start + DAY)} if d is AUD else {"end_date": iso(start + DAY)}
    b = problem(d.set_end(tapi, seg["id"], raw=other_key), 422, "validation_failed")
    assert pointers(b) == sorted([d.ptr("end_date"), "/" + list(other_key)[0]])
    unchanged(d, tapi, seg["id"], before, etag)
    # a renewing segment cannot lose its end date here either
    x = d.create(tapi, end_date=t + DAY, extend=True)
    b = problem(d.set_end(tapi, x["id"], end_date=None), 422)
    assert pointers(b) == [d.ptr("extend")]
    # not a JSON object
    r = d.set_end(tapi, seg["id"], raw=[])
    assert r.status_code in (400, 422), r.text
    unchanged(d, tapi, seg["id"], before, etag)
    # unknown, malformed, another tenant's
    unknown = new_uuid() if d is AUD else "seg_AAAAAAAAAAAAA"
    problem(d.set_end(tapi, unknown, end_date=t + DAY), 404, "not_found")
    problem(d.set_end(tapi, "nope", end_date=t + DAY), 400, "invalid_path_parameter")
    other = tenant_api(srv)
    problem(d.set_end(other, seg["id"], end_date=start + DAY), 404, "not_found")
    # the write scope is needed
    reader = Api(srv, tenant=tapi.tenant, scope="segments:read")
    problem(d.set_end(reader, seg["id"], end_date=start + DAY), 403, "insufficient_scope")
    problem(tapi.post(d.one(tapi, seg["id"]) + "/end-date", d.fields(end_date=start + DAY), token=False), 401)
    unchanged(d, tapi, seg["id"], before, etag)


def test_end_date_if_match(d, tapi):
    t = now()
    seg = d.create(tapi)
    etag = d.get_r(tapi, seg["id"]).headers["ETag"]
    r1 = d.set_end(tapi, seg["id"], end_date=t + DAY, headers={"If-Match": etag})
    assert r1.status_code == 200, r1.text
    assert r1.headers["ETag"] != etag
    b = problem(d.set_end(tapi, seg["id"], end_date=t + 2 * DAY, headers={"If-Match": etag}), 412,
                "precondition_failed")
    assert b["detail"]
    g = d.get_r(tapi, seg["id"])
    assert g.json()[d.k("end_date")] == d.enc(d.trunc(t + DAY)) and g.headers["ETag"] == r1.headers["ETag"]
    r2 = d.set_end(tapi, seg["id"], end_date=t + 2 * DAY, headers={"If-Match": '"999", ' + r1.headers["ETag"]})
    assert r2.status_code == 200, r2.text
    assert d.set_end(tapi, seg["id"], end_date=None, headers={"If-Match": "*"}).status_code == 200
    problem(d.set_end(tapi, seg["id"], end_date=None, headers={"If-Match": "garbage"}), 400, "invalid_if_match")
    # a stale ETag after another kind of write (a PATCH) is stale here too
    e3 = d.get_r(tapi, seg["id"]).headers["ETag"]
    assert d.update(tapi, seg["id"], name="moved on").status_code == 200
    problem(d.set_end(tapi, seg["id"], end_date=t + DAY, headers={"If-Match": e3}), 412)
    # and one of the end-date operation is stale for a PATCH
    e4 = d.get_r(tapi, seg["id"]).headers["ETag"]
    assert d.set_end(tapi, seg["id"], end_date=t + DAY).status_code == 200
    problem(d.update(tapi, seg["id"], name="late", headers={"If-Match": e4}), 412)


# ------------------------------------------------------------------ list filters

def make_population(d, api):
    """Segments in every status, made in this order (the lists answer newest first)."""
    t0 = now().replace(microsecond=0)
    plan = [
        ("a_plain", "keep", dict()),
        ("a_window", "other", dict(start_date=t0 - 2 * H, end_date=t0 + 2 * H)),
        ("s_future", "keep", dict(start_date=t0 + H)),
        ("e_past", "other", dict(start_date=t0 - 3 * H, end_date=t0 - H)),
        ("p_paused", "keep", dict(start_date=t0 - 2 * H, active=False)),
        ("x_extend", "keep", dict(end_date=t0 - 3.5 * DAY, extend=True, extend_days=1)),
        ("x_started", "other", dict(start_date=t0 - 5 * DAY, end_date=t0 - 4 * DAY, extend=True, extend_days=1)),
    ]
    segs = {}
    for key, word, fields in plan:
        segs[key] = d.create(api, name=f"{word.upper()} {key}", **fields)
    t_after = now() + dt.timedelta(milliseconds=2)
    return t0, t_after, segs, [k for k, _, _ in plan]


def test_list_filters_status_and_active_at(d, tapi):
    t0, t_after, segs, order = make_population(d, tapi)
    newest_first = list(reversed(order))

    def names(**params):
        r = d.list_r(tapi, limit=500, **params)
        assert r.status_code == 200, r.text
        got = r.json()["items"]
        by_id = {s["id"]: k for k, s in segs.items()}
        return [by_id[s["id"]] for s in got]

    def want(*keys):
        return [k for k in newest_first if k in keys]

    assert names() == newest_first
    assert names(status="active") == want("a_plain", "a_window", "x_extend", "x_started")
    assert names(status="scheduled") == want("s_future")
    assert names(status="expired") == want("e_past")
    assert names(status="paused") == want("p_paused")
    assert names(status="expired,paused") == want("e_past", "p_paused")
    assert names(status="paused,expired") == want("e_past", "p_paused")
    assert names(status="active,scheduled,expired,paused") == newest_first
    assert names(active_at=t_after) == want("a_plain", "a_window", "x_extend", "x_started")
    assert names(active_at=t0 - 1.5 * H) == want("a_window", "e_past", "x_started")
    assert names(active_at=t0 + 1.5 * H) == want("a_plain", "a_window", "s_future", "x_extend", "x_started")
    assert names(active_at=t0 + 3 * H) == want("a_plain", "s_future", "x_extend", "x_started")
    assert names(active_at=t0 + 400 * DAY) == want("a_plain", "s_future", "x_extend", "x_started")
    # the edges: live from the start date included, until the end date excluded
    assert names(active_at=t0 - 2 * H) == want("a_window", "e_past", "x_started")
    assert names(active_at=t0 + 2 * H) == want("a_plain", "s_future", "x_extend", "x_started")
    assert names(active_at=t0 - H) == want("a_window", "x_started")
    assert names(active_at=t0 - 3 * H) == want("e_past", "x_started")
    assert names(active_at=t0 - 4.5 * DAY) == want("x_started")
    assert names(active_at=t0 - 6 * DAY) == []
    # with each other and with the other filters
    assert names(status="active", active_at=t0 + 3 * H) == want("a_plain", "x_extend", "x_started")
    assert names(status="scheduled", active_at=t0 + 3 * H) == want("s_future")
    assert names(status="expired", active_at=t_after) == []
    assert names(status="active,scheduled", name="keep") == want("a_plain", "s_future", "x_extend")
    assert names(active_at=t0 + 1.5 * H, name="keep") == want("a_plain", "s_future", "x_extend")
    assert names(status="paused", name="other") == []
    if d is AUD:
        assert names(status="paused", owner_id=OWNER) == want("p_paused")
        assert names(status="paused", owner_id=new_uuid()) == []
        assert names(status="active", management_type="systemmanaged") == []
        assert names(active_at=t_after, updated_since=segs["x_extend"]["updated_at"]) == \
            want("x_extend", "x_started")
    # a list item is the GET representation (the renewed end date and the status included)
    for s in d.list_r(tapi, limit=500).json()["items"]:
        g = d.get(tapi, s["id"])
        drop = d.k("updated_at")  # the sweeper may renew x_* between the two reads
        assert {k: v for k, v in s.items() if k != drop} == {k: v for k, v in g.items() if k != drop}
    # across pages of two
    assert ids(d.list_all(tapi, limit=2, status="active")) == \
        [segs[k]["id"] for k in want("a_plain", "a_window", "x_extend", "x_started")]
    assert ids(d.list_all(tapi, limit=2, active_at=t0 + 1.5 * H)) == \
        [segs[k]["id"] for k in want("a_plain", "a_window", "s_future", "x_extend", "x_started")]
    assert ids(d.list_all(tapi, limit=2, status="active,scheduled,expired", active_at=t0 + 3 * H, name="keep")) == \
        [segs[k]["id"] for k in want("a_plain", "s_future", "x_extend")]
    assert ids(d.list_all(tapi, limit=1, status="paused,expired")) == \
        [segs[k]["id"] for k in want("e_past", "p_paused")]


def test_list_pages_while_statuses_change(d, tapi):
    """Page 1 is read before the instant T at which some segments start and others end,
    the next pages after it: the keyset goes on from page 1's last item, no item twice,
    none skipped among those that match when their page is read."""
    T = d.trunc(now() + 2 * S)
    plan = ["AA", "BE", "BA", "OT", "AA", "BA", "BE", "OT", "AA", "BA", "BE", "AA", "BA"]  # oldest first
    made = []
    for i, kind in enumerate(plan):
        fields = {"BE": dict(end_date=T), "BA": dict(start_date=T)}.get(kind, {})
        name = ("other " if kind == "OT" else "keep ") + f"{i} {kind}"
        made.append((d.create(tapi, name=name, **fields)["id"], kind))
    newest = list(reversed(made))
    before = {"active": {"AA", "BE"}, "scheduled,expired": {"BA"}}
    after = {"active": {"AA", "BA"}, "scheduled,expired": {"BE"}}
    queries = {q: dict(status=q, name="keep") for q in before}
    pages, cursors = {}, {}
    for q, params in queries.items():
        r = d.list_r(tapi, limit=2, **params)
        assert r.status_code == 200, r.text
        pages[q] = ids(r.json()["items"])
        cursors[q] = r.json()["next_cursor"]
    assert now() < T - 0.1 * S, "creating and listing took too long for this test"
    sleep_until(T + 0.3 * S)
    for q, params in queries.items():
        seen, cursor = list(pages[q]), cursors[q]
        while cursor:
            r = d.list_r(tapi, limit=2, cursor=cursor, **params)
            assert r.status_code == 200, r.text
            seen += ids(r.json()["items"])
            cursor = r.json()["next_cursor"]
        first = [i for i, kind in newest if kind in before[q]][:2]
        assert pages[q] == first, q
        pos = [i for i, _ in newest].index(first[-1])
        rest = [i for i, kind in newest[pos + 1:] if kind in after[q]]
        assert seen == first + rest, (q, seen, first + rest)
        assert len(seen) == len(set(seen))


def test_list_pages_while_segments_are_edited(d, tapi):
    """Between pages of active_at and status lists, segments are paused, resumed, given an
    end date and created: the keyset neither repeats nor skips what still matches."""
    t = now()
    made = [d.create(tapi, name=f"e{i}")["id"] for i in range(9)]  # the newest is made[8]
    at = now() + dt.timedelta(milliseconds=5)
    late = []

    def edit(n):
        if n == 1:
            assert d.update(tapi, made[8], active=False).status_code == 200  # already seen
            assert d.update(tapi, made[5], active=False).status_code == 200  # still ahead: leaves
        if n == 2:
            r = d.set_end(tapi, made[2], end_date=t - dt.timedelta(minutes=1))  # ended before `at`
            assert r.status_code == 200, r.text
            late.append(d.create(tapi, name="late")["id"])  # newer than the cursor

    seen = ids(d.list_all(tapi, limit=2, between_pages=edit, active_at=at))
    # pages: [8, 7], [6, 4] (5 paused), [3, 1] (2 ended), [0]
    assert seen == [made[i] for i in (8, 7, 6, 4, 3, 1, 0)], seen

    def edit2(n):
        if n == 1:
            assert d.update(tapi, made[5], active=True).status_code == 200   # back, behind the cursor
            assert d.update(tapi, made[3], active=False).status_code == 200  # leaves

    seen = ids(d.list_all(tapi, limit=3, between_pages=edit2, status="active"))
    # pages: [late, 7, 6] (8 and 5 paused), [5, 4, 1] (3 paused, 2 expired), [0]
    assert seen == late + [made[i] for i in (7, 6, 5, 4, 1, 0)], seen


@pytest.mark.parametrize("d,param,value", [
    pytest.param(dd, "status", v, id=f"{dd}-status-{v}") for dd in DIALECTS
    for v in ["foo", "active,foo", "", "ACTIVE", "active,", ",active", "active;paused", "live"]
] + [
    pytest.param(AUD, "active_at", v, id=f"aud-active_at-{v}")
    for v in ["today", "", "1767225600000", "10000-01-01T00:00:00Z", "2026-13-01T00:00:00Z",
              "0000-01-01T00:00:00Z"]
] + [
    pytest.param(V1, "active_at", v, id=f"v1-active_at-{v}")
    for v in ["today", "", "2026-12-06T10:00:00Z", "1.5", "1767225600000.0", "253402300800000",
              "-62135596800001", "99999999999999999999"]
])
def test_list_bad_filter_values_400(tapi, d, param, value):
    b = problem(d.list_r(tapi, **{param: value}), 400, "invalid_query_parameter")
    assert pointers(b) == ["/query/" + param]


def test_list_filter_edges_accepted(tapi):
    for d, value in [(AUD, "2026-12-06T10:00:00+01:00"), (AUD, "0001-01-01T00:00:00Z"),
                     (AUD, "9999-12-31T23:59:59.999999Z"), (V1, "0"), (V1, "-62135596800000"),
                     (V1, "253402300799999")]:
        r = d.list_r(tapi, active_at=value)
        assert r.status_code == 200, (d, value, r.text)


# ------------------------------------------------------------------ bulk

def test_bulk_create_with_lifecycle_fields(d, tapi):
    t = now()
    E = d.trunc(t - 3.5 * DAY)
    start, end = d.trunc(t + H), d.trunc(t + 2 * DAY)
    bad_date = "not a date" if d is AUD else "1767225600000"
    items = [
        d.bulk_item("ok-0", start_date=start, end_date=end, extend=True, extend_days=3),
        d.bulk_item("bad-1", start_date=t + 2 * DAY, end_date=t + DAY),
        d.bulk_item("bad-2", extend=True),
        d.bulk_item("bad-3", extend_days=0),
        d.bulk_item("ok-4", end_date=E, extend=True, extend_days=1),
        d.bulk_item("ok-5", active=False, status="expired"),
        d.bulk_item("bad-6", start_date=bad_date, active=None),
        d.bulk_item("ok-7"),
        d.bulk_item("ok-8", end_date=t - H),
    ]
    b = envelope(tapi.post(d.path + "/bulk", {"data": items}))
    assert [s["name"] for s in b["data"]] == ["ok-0", "ok-4", "ok-5", "ok-7", "ok-8"]
    errs = sorted((e["source"]["pointer"], e["code"]) for e in b["errors"])
    assert errs == sorted([("/data/1" + d.ptr("end_date"), "validation_failed"),
                           ("/data/2" + d.ptr("extend"), "validation_failed"),
                           ("/data/3" + d.ptr("extend_days"), "validation_failed"),
                           ("/data/6" + d.ptr("start_date"), "validation_failed"),
                           ("/data/6" + d.ptr("active"), "validation_failed")]), errs
    by = {s["name"]: s for s in b["data"]}
    assert lc(d, by["ok-0"]) == {"start_date": d.enc(start), "end_date": d.enc(end), "active": True,
                                 "extend": True, "extend_days": 3, "status": "scheduled"}
    assert by["ok-4"][d.k("end_date")] == d.enc(E + 4 * DAY) and by["ok-4"]["status"] == "active"
    assert by["ok-5"]["status"] == "paused" and by["ok-5"]["active"] is False
    assert lc(d, by["ok-7"]) == {"start_date": None, "end_date": None, "active": True, "extend": False,
                                 "extend_days": 30, "status": "active"}
    assert by["ok-8"]["status"] == "expired"
    drop = d.k("updated_at")
    for s in b["data"]:
        g = d.get(tapi, s["id"])
        assert {k: v for k, v in g.items() if k != drop} == {k: v for k, v in s.items() if k != drop}
    # atomic: one lifecycle error stores nothing
    name = "atomic-" + tapi.tenant
    r = tapi.post(d.path + "/bulk?atomic=true", {"data": [d.bulk_item(name), d.bulk_item(name, extend=True)]})
    b = envelope(r, 422)
    assert b["data"] == [] and [e["source"]["pointer"] for e in b["errors"]] == ["/data/1" + d.ptr("extend")]
    assert psql(f"SELECT count(*) FROM {d.table} WHERE tenant = %s AND name = %s", tapi.tenant, name)[0][0] == 0


def test_bulk_update_with_lifecycle_fields(d, tapi):
    t = now()
    start = d.trunc(t + 10 * DAY)
    made = envelope(tapi.post(d.path + "/bulk", {"data": [
        d.bulk_item("A", start_date=start),                 # 0: a start date in ten days
        d.bulk_item("B"),                                   # 1
        d.bulk_item("C", end_date=t + DAY, extend=True),    # 2: renewing
        d.bulk_item("D"),                                   # 3: no end date
        d.bulk_item("E"),                                   # 4
        d.bulk_item("F", start_date=start, end_date=start + DAY),  # 5
    ]}))["data"]
    assert [s["name"] for s in made] == list("ABCDEF")
    before = {s["name"]: d.get_r(tapi, s["id"]) for s in made}
    mid = {s["name"]: s["id"] for s in made}
    E2 = d.trunc(t + 3 * DAY)
    upd = [
        d.bulk_update_item(mid["A"], "A", end_date=t + 5 * DAY),          # before A's stored start
        d.bulk_update_item(mid["B"], "B", active=False),
        d.bulk_update_item(mid["C"], "C", end_date=None),                  # a renewing one loses its end
        d.bulk_update_item(mid["D"], "D", extend=True),                    # no end date stored
        d.bulk_update_item(mid["E"], "E", end_date=E2, extend=True, extend_days=2, status="expired"),
        d.bulk_update_item(mid["F"], "F", start_date=start + 2 * DAY),     # after F's stored end
        d.bulk_update_item(new_uuid() if d is AUD else "seg_AAAAAAAAAAAAA", "G", active=False),  # unknown
    ]
    b = envelope(tapi.patch(d.path + "/bulk", {"data": upd}))
    assert [s["id"] for s in b["data"]] == [mid["B"], mid["E"]]
    errs = sorted((e["source"]["pointer"], e["code"]) for e in b["errors"])
    want = [("/data/0" + d.ptr("end_date"), "validation_failed"),
            ("/data/2" + d.ptr("extend"), "validation_failed"),
            ("/data/3" + d.ptr("extend"), "validation_failed"),
            ("/data/5" + d.ptr("end_date"), "validation_failed"),
            ("/data/6/id", "not_found")]
    assert errs == sorted(want), errs
    out = {s["id"]: s for s in b["data"]}
    assert out[mid["B"]]["status"] == "paused"
    assert lc(d, out[mid["E"]]) == {"start_date": None, "end_date": d.enc(E2), "active": True, "extend": True,
                                    "extend_days": 2, "status": "active"}
    for s in b["data"]:
        assert d.get(tapi, s["id"]) == s
    for n in "ACDF":
        unchanged(d, tapi, mid[n], before[n].json(), before[n].headers["ETag"])
    # atomic: a conflict with the stored start date keeps everything as it was
    r = tapi.patch(d.path + "/bulk?atomic=true", {"data": [
        d.bulk_update_item(mid["E"], "E", active=False), d.bulk_update_item(mid["A"], "A", end_date=start)]})
    b = envelope(r, 422)
    assert [e["source"]["pointer"] for e in b["errors"]] == ["/data/1" + d.ptr("end_date")]
    assert d.get(tapi, mid["E"])["active"] is True
