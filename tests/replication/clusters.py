"""Real PostgreSQL 15 clusters for the replication tests, started and stopped by the tests:
a primary, and standbys made from it with pg_basebackup (streaming replication). Unix
sockets only, trust authentication, in SEGMENTD_REPL_DIR (scripts/test-replication)."""
import os
import shlex
import subprocess
import time

import psycopg2

BASE = os.environ["SEGMENTD_REPL_DIR"]
PGBIN = os.environ["SEGMENTD_REPL_PGBIN"]
RUNAS = shlex.split(os.environ.get("SEGMENTD_REPL_RUNAS", ""))  # as root: run as postgres


def _run(*argv, check=True, timeout=120):
    return subprocess.run(RUNAS + list(argv), check=check, capture_output=True, text=True, timeout=timeout)


class Cluster:
    """One cluster in BASE/<name>: pg/ (data), run/ (socket), postgres.log."""

    def __init__(self, name):
        self.name = name
        self.home = os.path.join(BASE, name)
        self.data = os.path.join(self.home, "pg")
        self.sock = os.path.join(self.home, "run")
        self.log = os.path.join(self.home, "postgres.log")
        self.dsn = f"host={self.sock} port=5432 user=postgres"

    def _dirs(self):
        if os.path.exists(self.home):
            _run("rm", "-rf", self.home)
        _run("mkdir", "-p", self.sock)

    def init_primary(self):
        """initdb, and the settings of a primary that streams to standbys."""
        self._dirs()
        _run(os.path.join(PGBIN, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C.UTF-8")
        self._append_conf(["wal_level = replica", "max_wal_senders = 10", "hot_standby = on",
                           "synchronous_commit = on"])
        return self

    def make_synchronous(self, app_name):
        """From now on every commit waits until standby app_name has flushed its WAL
        (synchronous_standby_names; set once the standby streams, or commits would wait for
        it), and waits until it is the synchronous standby."""
        self.query("ALTER SYSTEM SET synchronous_standby_names = %s", app_name, db="postgres")
        self.query("SELECT pg_reload_conf()", db="postgres")
        self.wait_streaming(app_name, sync="sync")

    def init_standby(self, primary, app_name):
        """A standby of primary, cloned by pg_basebackup -R (standby.signal and
        primary_conninfo), streaming under application_name app_name."""
        self._dirs()
        _run(os.path.join(PGBIN, "pg_basebackup"), "-D", self.data, "-d",
             f"{primary.dsn} application_name={app_name}", "-R", "-X", "stream", "-c", "fast")
        self._append_conf(["primary_conninfo = '%s application_name=%s'" % (primary.dsn, app_name)])
        return self

    def _append_conf(self, lines):
        text = "\n".join(lines) + "\n"
        p = subprocess.run(RUNAS + ["sh", "-c", "cat >> " + shlex.quote(os.path.join(self.data, "postgresql.auto.conf"))],
                           input=text, text=True, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr

    def start(self):
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.sock}' -c port=5432 "
                "-c max_connections=100")
        p = _run(os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                 "-o", opts, "start", check=False)
        assert p.returncode == 0, f"{self.name} did not start: {p.stderr}\n{self.tail()}"
        return self

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            _run(os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop",
                 check=False)

    def promote(self):
        p = _run(os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-w", "-t", "60", "promote", check=False)
        assert p.returncode == 0, f"{self.name} was not promoted: {p.stderr}\n{self.tail()}"

    def remove(self):
        self.stop("immediate")
        if os.path.exists(self.home):
            _run("rm", "-rf", self.home)

    def tail(self, n=20):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def query(self, sql, *params, db="segmentd"):
        conn = psycopg2.connect(f"{self.dsn} dbname={db}", connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def wait_streaming(self, app_name, state="streaming", sync=None, timeout=60):
        """Waits until the standby app_name streams from this primary (and, with sync, in
        that sync_state)."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            rows = self.query("SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                              app_name, db="postgres")
            if rows and rows[0][0] == state and (sync is None or rows[0][1] == sync):
                return
            time.sleep(0.2)
        raise AssertionError(f"{app_name} did not reach {state}/{sync}: {rows}\n{self.tail()}")

