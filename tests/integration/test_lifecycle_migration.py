"""Migration 0002_lifecycle over a database that already holds segments (issue #20): rows
written with the previous schema become active, with no dates, extend false and 30-day
periods, and keep their version and updated_at."""
import datetime as dt
import os
import re
import shutil
import subprocess

from lifecycle_util import (AUD, DAY, UTC, V1, epoch_ms, fresh_database, iso, now, sql, tenant_api,
                            version)
from segtest import BIN, ROOT, SECRET, Api, Server

GROUPS = '[{"type": "AND", "constraints": [{"field": "country", "relation": "==", "value": "PL"}]}]'
OWNER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def migrate(url, migrations_dir):
    env = dict(os.environ, SEGMENTD_DATABASE_URL=url, SEGMENTD_MIGRATIONS_DIR=migrations_dir,
               SEGMENTD_JWT_SECRET=SECRET, SEGMENTD_LOG_LEVEL="info")
    p = subprocess.run([BIN, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert marker not in p.stderr, p.stderr
    return p


def columns(url, table):
    return {r[0] for r in sql(url, "SELECT column_name FROM information_schema.columns "
                                   "WHERE table_schema = 'public' AND table_name = %s", table)}


def test_migration_over_existing_rows(tmp_path):
    old_dir = tmp_path / "migrations"
    old_dir.mkdir()
    shutil.copy(os.path.join(ROOT, "migrations", "0001_segments.sql"), old_dir)
    real_dir = os.path.join(ROOT, "migrations")
    versions = sorted(int(re.match(r"(\d+)_", f).group(1)) for f in os.listdir(real_dir)
                      if re.match(r"\d+_.*\.sql$", f))
    assert 2 in versions

    with fresh_database("migrate") as url:
        migrate(url, str(old_dir))
        assert [r[0] for r in sql(url, "SELECT version FROM schema_migrations ORDER BY version")] == [1]
        assert "end_date" not in columns(url, "audience_segments")

        # rows of the previous schema, both dialects, two tenants, versions above 1
        t_created = dt.datetime(2024, 6, 1, 0, 0, 0, 1000, tzinfo=UTC)
        t_updated = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        aud_rows = [("mig-a", "0b6f3c1e-1111-4c2d-9e8f-000000000001", 3),
                    ("mig-a", "0b6f3c1e-1111-4c2d-9e8f-000000000002", 1),
                    ("mig-b", "0b6f3c1e-1111-4c2d-9e8f-000000000003", 7)]
        v1_rows = [("mig-a", "seg_MigratedRow01", 5), ("mig-b", "seg_MigratedRow02", 1),
                   ("mig-b", "seg_MigratedRow03", 2)]
        for tenant, seg_id, ver in aud_rows:
            sql(url, "INSERT INTO audience_segments (tenant, id, management_type, name, owner_id, "
                     "approximated_size, description, properties, created_at, updated_at, version) "
                     "VALUES (%s, %s, 'selfmanaged', %s, %s, 12, 'old', '{\"k\": [\"v\"]}', %s, %s, %s)",
                tenant, seg_id, "old " + seg_id[-1], OWNER, t_created, t_updated, ver)
        for tenant, seg_id, ver in v1_rows:
            sql(url, "INSERT INTO v1_segments (tenant, id, name, description, constraints, created_at, "
                     "updated_at, version) VALUES (%s, %s, %s, NULL, %s::jsonb, %s, %s, %s)",
                tenant, seg_id, "old " + seg_id[-1], GROUPS, t_created, t_updated, ver)

        p = migrate(url, real_dir)
        assert "migrations up to date" in p.stderr
        assert [r[0] for r in sql(url, "SELECT version FROM schema_migrations ORDER BY version")] == versions
        for table, rows in (("audience_segments", aud_rows), ("v1_segments", v1_rows)):
            assert {"start_date", "end_date", "active", "extend", "extend_days"} <= columns(url, table)
            got = sql(url, f"SELECT tenant, id::text, version, updated_at, start_date, end_date, active, "
                           f"extend, extend_days FROM {table}")
            assert sorted(got, key=lambda r: r[1]) == sorted([(tn, i, v, t_updated, None, None, True, False, 30) for tn, i, v in rows],
                                 key=lambda r: r[1]), got

        # the server (which migrates nothing itself here) reads them
        s = Server(env={"SEGMENTD_DATABASE_URL": url, "SEGMENTD_AUTO_MIGRATE": "0",
                        "SEGMENTD_LIFECYCLE_SWEEP_S": "1"}).start()
        try:
            assert Api(s).get("/readyz", token=None).status_code == 200
            for d, rows in ((AUD, aud_rows), (V1, v1_rows)):
                for tenant, seg_id, ver in rows:
                    api = Api(s, tenant=tenant)
                    g = d.get_r(api, seg_id)
                    assert g.status_code == 200, g.text
                    seg = g.json()
                    assert version(g) == ver
                    assert {f: seg[d.k(f)] for f in ("start_date", "end_date", "active", "extend",
                                                     "extend_days", "status")} == \
                        {"start_date": None, "end_date": None, "active": True, "extend": False,
                         "extend_days": 30, "status": "active"}
                    if d is AUD:
                        assert seg["updated_at"] == "2025-01-02T03:04:05.678901Z"
                        assert seg["created_at"] == "2024-06-01T00:00:00.001000Z"
                        assert seg["name"] == "old " + seg_id[-1] and seg["properties"] == {"k": ["v"]}
                    else:
                        assert seg["updatedAt"] == epoch_ms(t_updated)
                        assert seg["createdAt"] == epoch_ms(t_created)
                        assert seg["name"] == "old " + seg_id[-1]
                # the lists and their filters see them as every other segment
                mine = {tn: [i for tn2, i, _ in rows if tn2 == tn] for tn, _, _ in rows}
                for tenant, expect in mine.items():
                    api = Api(s, tenant=tenant)
                    for params, result in [({"status": "active"}, expect), ({"status": "expired,paused"}, []),
                                           ({"active_at": now()}, expect),
                                           ({"active_at": t_created}, expect),
                                           ({"active_at": t_created - dt.timedelta(microseconds=1000)}, [])]:
                        r = d.list_r(api, limit=500, **params)
                        assert r.status_code == 200, r.text
                        assert sorted(x["id"] for x in r.json()["items"]) == sorted(result), (d, params)
            # the version goes on from the stored one, on both dialects
            api = Api(s, tenant="mig-a")
            r = AUD.set_end(api, aud_rows[0][1], end_date=now() + DAY, headers={"If-Match": '"3"'})
            assert r.status_code == 200, r.text
            assert version(r) == 4 and r.json()["status"] == "active"
            r = V1.update(api, v1_rows[0][1], active=False, headers={"If-Match": '"5"'})
            assert r.status_code == 200, r.text
            assert version(r) == 6 and r.json()["status"] == "paused"
            # and new segments on the migrated database carry the new fields
            fresh = tenant_api(s)
            seg = AUD.create(fresh, end_date=now() - 1.5 * DAY, extend=True, extend_days=1)
            assert seg["status"] == "active" and AUD.dec(seg["end_date"]) > now()
            assert iso(AUD.dec(seg["end_date"])) == seg["end_date"]
        finally:
            assert s.stop() == 0
