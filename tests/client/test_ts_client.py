"""The TypeScript client's node:test suite (clients/typescript/test/) against a live segmentd
on the test PostgreSQL, its traffic sent through Prism's validating proxy (tests/prism).
Run by scripts/test-client, which installs, checks and builds the client first."""
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import requests
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from segtest import ROOT, Server, make_token  # noqa: E402

CLIENT = os.path.join(ROOT, "clients", "typescript")
PRISM = os.path.join(ROOT, "tests", "prism", "node_modules", ".bin", "prism")
ALL_SCOPES = "segments:read segments:write devices:read devices:write webhooks:write"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prism:
    """`prism proxy openapi.yaml <upstream>`: forwards every request and reports in the
    `sl-violations` header what breaks the spec (without --errors it changes no answer)."""

    def __init__(self, upstream, spec=os.path.join(ROOT, "openapi.yaml")):
        self.port = free_port()
        self.log = open(os.path.join(ROOT, ".data", "prism.log"), "ab")
        self.proc = subprocess.Popen(
            [PRISM, "proxy", spec, upstream,
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prism exited: see .data/prism.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("prism did not listen within 60 s: see .data/prism.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def test_prism_reports_a_response_that_breaks_the_spec(tmp_path):
    """The check below is only as good as Prism's response validation: a spec whose /healthz
    answer says "okay" must make Prism flag segmentd's {"status": "ok"}."""
    with open(os.path.join(ROOT, "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    assert spec["components"]["schemas"]["Health"]["properties"]["status"]["const"] == "ok"
    spec["components"]["schemas"]["Health"]["properties"]["status"]["const"] = "okay"
    broken = tmp_path / "openapi.yaml"
    broken.write_text(json.dumps(spec))
    server = Server().start()
    prism = None
    try:
        prism = Prism(server.url, spec=str(broken))
        r = requests.get(prism.url + "/healthz", timeout=30)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        violations = json.loads(r.headers.get("sl-violations", "[]"))
        assert [v["location"] for v in violations] == [["response", "body", "status"]], violations
    finally:
        if prism:
            prism.stop()
        rc = server.stop()
    assert rc == 0


def test_typescript_client_through_prism():
    os.makedirs(os.path.join(ROOT, ".data"), exist_ok=True)
    server = Server().start()
    prism = None
    try:
        prism = Prism(server.url)
        tenant = "ts-" + uuid.uuid4().hex[:12]  # a tenant of its own: lists hold only this run
        env = dict(os.environ,
                   SEGMENTD_URL=prism.url,
                   SEGMENTD_VIA_PRISM="1",
                   SEGMENTD_TOKEN=make_token(tenant=tenant, scope=ALL_SCOPES),
                   SEGMENTD_READ_TOKEN=make_token(tenant=tenant, scope="segments:read"),
                   SEGMENTD_OPENAPI=os.path.join(ROOT, "openapi.yaml"))
        r = subprocess.run(["node", "--test", "--test-reporter=spec", "dist/test/"],
                           cwd=CLIENT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        out = r.stdout.decode("utf-8", "replace")
        print(out)
        assert r.returncode == 0, "the TypeScript client suite failed:\n" + out[-8000:]
        assert "no violations" in out
    finally:
        if prism:
            prism.stop()
        rc = server.stop()
    assert rc == 0, "segmentd exited with %s" % rc
