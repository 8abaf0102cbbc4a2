"""docs/quickstart.md as a test: every command block of the page runs as written, in one
bash session, against a real segmentd, and its output must be the answer the page shows.

How the page is read:
- A command block is fenced ```sh. The fenced block right after it (```http, ```json,
  ```ndjson or ```text) is the answer the page shows for it; a command block without one
  must just succeed (exit status 0).
- `<!-- quickstart-test: skip -->` before a command block: the test does not run it (the
  start, `./scripts/run`: the test starts its own segmentd instead).
- `<!-- quickstart-test: then BASE=server -->` before a command block: run it, then point
  `BASE` at the test's segmentd (the page's own `BASE` is scripts/run's address).
- The blocks run in a scratch folder laid out as a checkout after `./scripts/run`:
  `build/segmentd` is the binary under test and `.data/dev-jwt-secret` the test server's
  secret, so the page's token command mints a token that server accepts.

How an answer is compared (so that the page stays readable and cannot rot):
- ```http: the status code of the first line, then each header the page shows (the page
  may leave headers out), then the body as below; curl -i prints them.
- ```json: the same JSON, formatting aside: objects with the same keys, arrays as long,
  equal values. ```ndjson: line by line, each line as JSON. ```text: line by line.
- What differs from run to run matches by kind only: uuids, `seg_…` and `imp_…` ids
  wherever they appear, and the values of the keys in VOLATILE (times, `no`, request ids).
"""
import json
import os
import re
import select
import shutil
import subprocess
import tempfile

import pytest

from segtest import BIN, ROOT, SECRET

PAGE = os.path.join(ROOT, "docs", "quickstart.md")
VOLATILE = {"created_at", "updated_at", "createdAt", "updatedAt", "computed_at", "computedAt",
            "startedAt", "receivedAt", "finishedAt", "no", "request_id", "traceId"}
IDS = [(re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
       (re.compile(r"\bseg_[0-9A-Za-z]{13}\b"), "<seg_id>"),
       (re.compile(r"\bimp_[0-9A-Za-z]{13}\b"), "<imp_id>")]
ANSWER_KINDS = ("http", "json", "ndjson", "text")
BLOCK_TIMEOUT = 60


def parse_page(text):
    """[(line, marker, command, (kind, answer) or None)] of the page's command blocks."""
    fence = re.compile(r"^```([a-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
    steps, marker, last_end = [], None, 0
    for m in fence.finditer(text):
        between = text[last_end:m.start()]
        last_end = m.end()
        kind, body = m.group(1), m.group(2)
        found = re.findall(r"<!--\s*quickstart-test:\s*(.*?)\s*-->", between)
        if kind == "sh":
            marker = found[-1] if found else None
            line = text.count("\n", 0, m.start()) + 1
            steps.append([line, marker, body, None])
        elif kind in ANSWER_KINDS and steps and steps[-1][3] is None and not found:
            steps[-1][3] = (kind, body)
    for _, marker, _, _ in steps:
        assert marker in (None, "skip", "then BASE=server"), f"unknown marker {marker!r}"
    return [tuple(s) for s in steps]


# ---------------------------------------------------------------- comparing answers

def normalize(s):
    for rx, kind in IDS:
        s = rx.sub(kind, s)
    return s


def same_json(expected, actual, where="", key=None):
    """None when actual is the answer the page shows, else what differs and where."""
    if key in VOLATILE:
        if type(expected) is not type(actual):
            return f"{where}: expected a {type(expected).__name__}, got {actual!r}"
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        if set(expected) != set(actual):
            return (f"{where}: keys differ: the page has {sorted(set(expected) - set(actual))} "
                    f"that the answer lacks, the answer {sorted(set(actual) - set(expected))}")
        for k in expected:
            diff = same_json(expected[k], actual[k], f"{where}/{k}", k)
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: expected {len(expected)} items, got {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = same_json(e, a, f"{where}/{i}")
            if diff:
                return diff
        return None
    if isinstance(expected, str) and isinstance(actual, str):
        if normalize(expected) != normalize(actual):
            return f"{where}: expected {expected!r}, got {actual!r}"
        return None
    if type(expected) is not type(actual) or expected != actual:
        return f"{where}: expected {expected!r}, got {actual!r}"
    return None


def parse_json(text, what):
    try:
        return json.loads(text)
    except ValueError as e:
        raise AssertionError(f"{what} is not JSON ({e}):\n{text}") from None


def compare_body(kind, expected, actual):
    if kind == "json":
        return same_json(parse_json(expected, "the page's answer"), parse_json(actual, "the output"))
    exp_lines = [line for line in expected.splitlines() if line.strip()]
    act_lines = [line for line in actual.splitlines() if line.strip()]
    if len(exp_lines) != len(act_lines):
        return f"expected {len(exp_lines)} lines, got {len(act_lines)}"
    for n, (e, a) in enumerate(zip(exp_lines, act_lines), 1):
        if kind == "ndjson":
            diff = same_json(parse_json(e, f"the page's line {n}"), parse_json(a, f"output line {n}"))
            if diff:
                return f"line {n}{diff}"
        elif normalize(e.rstrip()) != normalize(a.rstrip()):
            return f"line {n}: expected {e!r}, got {a!r}"
    return None


def compare(kind, expected, actual):
    if kind != "http":
        return compare_body(kind, expected, actual)
    exp_head, _, exp_body = expected.partition("\n\n")
    act_head, _, act_body = actual.replace("\r\n", "\n").partition("\n\n")
    exp_lines, act_lines = exp_head.splitlines(), act_head.splitlines()
    exp_status, act_status = exp_lines[0].split()[1], (act_lines or [""])[0].split()[1:2]
    if act_status != [exp_status]:
        return f"expected status {exp_status}, got {act_lines[:1]}"
    headers = {}
    for line in act_lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    for line in exp_lines[1:]:
        name, _, value = line.partition(":")
        got = headers.get(name.strip().lower())
        if got is None or normalize(got) != normalize(value.strip()):
            return f"header {name.strip()}: expected {value.strip()!r}, got {got!r}"
    if exp_body.strip() or act_body.strip():
        kind = "json" if exp_body.lstrip().startswith(("{", "[")) else "text"
        return compare_body(kind, exp_body, act_body)
    return None


# ---------------------------------------------------------------- running the page

class Shell:
    """One bash session: the blocks share its variables and its folder, as in a terminal."""

    def __init__(self, cwd, env):
        self.cwd = cwd
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.n = 0

    def run(self, script):
        """(exit status, output) of the script run in this session (stdin is /dev/null)."""
        self.n += 1
        path = os.path.join(self.cwd, f".block{self.n}.sh")
        out = os.path.join(self.cwd, f".block{self.n}.out")
        with open(path, "w") as f:
            f.write(script)
        self.proc.stdin.write(f'. "{path}" >"{out}" 2>&1 </dev/null; echo "rc=$?"\n')
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], BLOCK_TIMEOUT)
        assert ready, f"the block did not end within {BLOCK_TIMEOUT} s:\n{script}"
        line = self.proc.stdout.readline()
        assert line.startswith("rc="), f"bash said {line!r}"
        with open(out) as f:
            return int(line[3:]), f.read()

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # a block still running: a timed-out step
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def checkout():
    """A scratch folder laid out as a checkout once ./scripts/run has run."""
    d = tempfile.mkdtemp(prefix="quickstart-")
    os.makedirs(os.path.join(d, "build"))
    os.symlink(os.path.abspath(BIN), os.path.join(d, "build", "segmentd"))
    os.makedirs(os.path.join(d, ".data"))
    with open(os.path.join(d, ".data", "dev-jwt-secret"), "w") as f:
        f.write(SECRET)
    yield d
    shutil.rmtree(d)


def shell_env(home):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def test_page_markers_and_answers_are_found():
    with open(PAGE) as f:
        steps = parse_page(f.read())
    markers = [m for _, m, _, _ in steps]
    assert markers.count("skip") == 1 and markers.count("then BASE=server") == 1, markers
    assert sum(1 for s in steps if s[3]) >= 10, "most commands show their answer"


def test_the_comparison_catches_a_difference():
    page = '{"id": "seg_jfe34NrGegjL3", "count": 3, "computed_at": "2026-12-06T10:00:00Z"}'
    assert same_json(json.loads(page), {"id": "seg_AAAAAAAAAAAAA", "count": 3,
                                        "computed_at": "2027-01-01T00:00:00Z"}) is None
    assert "count" in same_json(json.loads(page), {"id": "seg_AAAAAAAAAAAAA", "count": 4,
                                                   "computed_at": "x"})
    assert "keys differ" in same_json({"a": 1}, {"a": 1, "b": 2})
    assert "status 201" in compare("http", "HTTP/1.1 201 Created\n\n{}", "HTTP/1.1 200 OK\r\n\r\n{}")
    assert "ETag" in compare("http", 'HTTP/1.1 200 OK\nETag: "2"\n\n{}',
                             'HTTP/1.1 200 OK\r\nETag: "1"\r\n\r\n{}')


def test_quickstart_runs_as_written(server, checkout):
    assert shutil.which("curl") and shutil.which("jq"), \
        "the quick start needs curl and jq: apt-get install -y curl jq"
    with open(PAGE) as f:
        steps = parse_page(f.read())
    shell = Shell(checkout, shell_env(checkout))
    try:
        for line, marker, command, answer in steps:
            if marker == "skip":
                continue
            rc, out = shell.run(command)
            where = f"docs/quickstart.md:{line}"
            if os.environ.get("QUICKSTART_SHOW") == "1":
                print(f"----- {where} rc={rc}\n{out}")
            assert rc == 0, f"{where}: exit status {rc}:\n{command}\n{out}"
            if answer:
                diff = compare(answer[0], answer[1], out)
                assert diff is None, f"{where}: {diff}\n--- command\n{command}--- output\n{out}"
            if marker == "then BASE=server":
                rc, out = shell.run(f"BASE={server.url}\n")
                assert rc == 0, out
    finally:
        shell.close()
