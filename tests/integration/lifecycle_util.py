"""Helpers of the segment lifecycle tests (issue #20): one object per dialect that knows its
field names, its date format and its routes, so that each test runs on both dialects; fresh
databases for the tests that must not share one with other sweepers; /metrics sums."""
import contextlib
import datetime as dt
import re
import time
import urllib.parse
import uuid

import psycopg2
import requests

from segtest import DB_URL, Api

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
GROUPS = [{"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]
LC_KEYS = ["start_date", "end_date", "active", "extend", "extend_days", "status"]


def now():
    return dt.datetime.now(UTC)


def iso(t):
    """The /audiences form of an instant: UTC, six fraction digits, Z."""
    t = t.astimezone(UTC)
    return f"{t.year:04d}-" + t.strftime("%m-%dT%H:%M:%S.%fZ")  # %Y writes year 1 as "1"


def epoch_ms(t):
    return (t - EPOCH) // dt.timedelta(milliseconds=1)


def from_ms(ms):
    return EPOCH + dt.timedelta(milliseconds=ms)


def version(r):
    """The version an ETag carries ("3")."""
    tag = r.headers["ETag"]
    assert re.fullmatch(r'"\d+"', tag), tag
    return int(tag.strip('"'))


def wait_until(fn, timeout, interval=0.1, what="condition"):
    """Calls fn until it returns something true; returns that, or fails after timeout s."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s (last: {v!r})")
        time.sleep(interval)


def sleep_until(t):
    """Sleeps until the instant t (a datetime) has passed."""
    d = (t - now()).total_seconds()
    if d > 0:
        time.sleep(d)


class Dialect:
    """A dialect's routes, field names and date format. Tests name the fields as the
    /audiences dialect does (start_date, end_date, extend_days, created_at, updated_at)
    and pass instants as datetimes; k() and enc() turn them into the dialect's own."""

    def __init__(self, name):
        self.name = name
        self.aud = name == "aud"
        self.path = "/audiences/segments" if self.aud else "/v1/segments"
        self.dialect_label = "audiences" if self.aud else "v1"
        self.table = "audience_segments" if self.aud else "v1_segments"
        self.order_col = "no" if self.aud else "seq"
        self.precision = dt.timedelta(microseconds=1) if self.aud else dt.timedelta(milliseconds=1)

    def __repr__(self):
        return self.name

    # ---- names and values

    CAMEL = {"start_date": "startDate", "end_date": "endDate", "extend_days": "extendDays",
             "created_at": "createdAt", "updated_at": "updatedAt"}

    def k(self, field):
        return field if self.aud else self.CAMEL.get(field, field)

    def ptr(self, field):
        return "/" + self.k(field)

    def enc(self, t):
        """An instant as the dialect writes it (None stays None; other values pass as they are,
        so that tests can send wrong types)."""
        if isinstance(t, dt.datetime):
            return iso(t) if self.aud else epoch_ms(t)
        return t

    def dec(self, v):
        if v is None:
            return None
        if self.aud:
            assert isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", v), v
            return dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert isinstance(v, int) and not isinstance(v, bool), v
        return from_ms(v)

    def trunc(self, t):
        """t as the dialect can carry it (v1: whole milliseconds, rounded down)."""
        if self.aud:
            return t
        return from_ms(epoch_ms(t))

    def fields(self, **lc):
        """Lifecycle (or other) fields named the /audiences way -> this dialect's body part."""
        return {self.k(f): self.enc(v) for f, v in lc.items()}

    # ---- bodies and routes

    def body(self, name=None, **lc):
        name = name or "lc " + uuid.uuid4().hex[:8]
        if self.aud:
            b = {"management_type": "selfmanaged", "name": name, "owner_id": OWNER}
        else:
            b = {"name": name, "constraints": GROUPS}
        b.update(self.fields(**lc))
        return b

    def create_r(self, api, name=None, **lc):
        return api.post(self.path, self.body(name, **lc))

    def create(self, api, name=None, **lc):
        r = self.create_r(api, name, **lc)
        assert r.status_code == 201, r.text
        return r.json()

    def one(self, api, seg_id):
        return self.path + "/" + seg_id

    def get_r(self, api, seg_id):
        return api.get(self.one(api, seg_id))

    def get(self, api, seg_id):
        r = self.get_r(api, seg_id)
        assert r.status_code == 200, r.text
        return r.json()

    def update(self, api, seg_id, headers=None, **lc):
        """The partial update whose body names the id: PATCH /audiences/segments (with the
        fields that route requires: the name, unless given, is the current one) or
        PATCH /v1/segments."""
        b = {"id": seg_id}
        if self.aud:
            b.update(management_type="selfmanaged", owner_id=OWNER)
            if "name" not in lc:
                b["name"] = self.get(api, seg_id)["name"]
        b.update(self.fields(**lc))
        return api.patch(self.path, b, headers=headers)

    def set_end(self, api, seg_id, headers=None, raw=None, **lc):
        """POST …/{id}/end-date; raw replaces the body."""
        body = raw if raw is not None else self.fields(**lc)
        return api.post(self.one(api, seg_id) + "/end-date", body, headers=headers)

    def bulk_item(self, name=None, **lc):
        return self.body(name, **lc)

    def bulk_update_item(self, seg_id, name=None, **lc):
        """A bulk update item; the /audiences one needs the seed's fields, the name among them."""
        b = {"id": seg_id}
        if self.aud:
            assert name, "a bulk update item of /audiences/segments carries the name"
            b.update(management_type="selfmanaged", owner_id=OWNER, name=name)
        elif name:
            b["name"] = name
        b.update(self.fields(**lc))
        return b

    def list_r(self, api, **params):
        q = {}
        for k, v in params.items():
            q[k] = self.enc(v) if isinstance(v, dt.datetime) else v
        return api.get(self.path, params=q)

    def list_all(self, api, limit=2, between_pages=None, **params):
        """Every page of a list; between_pages(n) runs after page n. Returns the items."""
        items, cursor, n = [], None, 0
        while True:
            p = dict(params, limit=limit)
            if cursor:
                p["cursor"] = cursor
            r = self.list_r(api, **p)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["items"]) <= limit
            items += page["items"]
            cursor = page["next_cursor"]
            n += 1
            if not cursor:
                return items
            if between_pages:
                between_pages(n)


AUD = Dialect("aud")
V1 = Dialect("v1")
DIALECTS = [AUD, V1]


def tenant_api(server, prefix="lc", scope=None):
    """An Api on a tenant of its own (api.tenant): lists hold only what the test made."""
    tenant = f"{prefix}-{uuid.uuid4().hex[:12]}"
    api = Api(server, tenant=tenant, **({"scope": scope} if scope else {}))
    api.tenant = tenant
    return api


# ---------------------------------------------------------------- fresh databases

def db_url_for(name):
    if DB_URL.startswith(("postgres://", "postgresql://")):
        p = urllib.parse.urlsplit(DB_URL)
        return urllib.parse.urlunsplit(p._replace(path="/" + name))
    if re.search(r"(^|\s)dbname=\S+", DB_URL):
        return re.sub(r"(^|\s)dbname=\S+", r"\1dbname=" + name, DB_URL)
    return DB_URL + " dbname=" + name


def _admin(statement):
    """A statement outside a transaction (CREATE/DROP DATABASE)."""
    with contextlib.closing(psycopg2.connect(DB_URL)) as conn:
        conn.autocommit = True
        conn.cursor().execute(statement)


@contextlib.contextmanager
def fresh_database(tag):
    """An empty database of its own (no sweeper of another test reaches it); dropped after."""
    name = f"lc_{tag}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield db_url_for(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql(url, query, *params):
    """segtest.psql on the database of url."""
    with contextlib.closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------- time travel

def backdate(url, d, tenant, ends):
    """Sets stored end dates ({id: datetime}) without a write of segmentd: the rows look as
    they would after their end passed while no sweeper ran. (A write of segmentd stores an
    end date that has passed, with extend true, already renewed: the write's version covers
    that renewal. Only time passing leaves a stored end date behind, and the tests cannot
    wait days.) version and updated_at stay."""
    with contextlib.closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
        for seg_id, end in ends.items():
            cur.execute(f"UPDATE {d.table} SET end_date = %s WHERE tenant = %s AND id = %s",
                        (end, tenant, seg_id))
            assert cur.rowcount == 1, seg_id


# ---------------------------------------------------------------- metrics

SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


def metric_sum(server, name, **labels):
    """The sum of the samples of name in server's /metrics whose labels include labels;
    None when there is no such sample."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    total, found = 0.0, False
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    return total if found else None

