"""The API reference page (GET /docs) in a real browser: Debian's chromium, driven by
playwright-core (tests/browser/reference_page.mjs), on a real segmentd and PostgreSQL.

The page loads without a console error, a CSP violation or a request leaving the server; it
shows every operation of openapi.yaml, compared with the document's own list; the operation
tried shows each documented status with its media types, the errors as problem details with
the document's examples; "Try it out" with a token lists a segment made just before; a
screenshot is kept in .data/ for a person to look at. Run by scripts/test-browser (once per
scripts/test), not by the black-box suite: it needs chromium and node."""
import json
import os
import subprocess
import sys
import time
import uuid
from urllib.parse import unquote

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from segtest import ROOT, SPEC, Api, Server, make_token  # noqa: E402

SCREENSHOT = os.path.join(ROOT, ".data", "docs-reference.png")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
TRY = ("/v1/segments", "get")


def spec_operations():
    return {(m.upper(), path, op["operationId"])
            for path, item in SPEC["paths"].items() for m, op in item.items() if m in METHODS}


def deref(doc):
    """doc with its $ref followed (local references only)."""
    while isinstance(doc, dict) and "$ref" in doc:
        node = SPEC
        for part in doc["$ref"].lstrip("#/").split("/"):
            node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
        doc = node
    return doc


def documented_example(media):
    """The example Swagger UI shows first for a media type of openapi.yaml, or None."""
    if "example" in media:
        return media["example"]
    for ex in (media.get("examples") or {}).values():
        return deref(ex).get("value")
    return None


def check_responses_shown(shown, responses):
    """The expanded operation shows each documented status with its media types, and the
    problem details of each error status, with the example openapi.yaml gives it."""
    codes = [r["code"] for r in shown]
    assert len(codes) == len(set(codes)) and set(codes) == set(map(str, responses)), codes
    for row in shown:
        doc = deref(responses[row["code"]])
        content = doc.get("content") or {}
        assert sorted(row["mediaTypes"]) == sorted(content), row
        if row["code"] >= "400":
            assert row["mediaTypes"] == ["application/problem+json"], row
            body = json.loads(row["example"])
            assert {"type", "title", "status", "code"} <= set(body), row
        want = documented_example(content[row["mediaTypes"][0]]) if content else None
        if want is not None:
            assert json.loads(row["example"]) == want, row


def test_reference_page_in_chromium():
    server = Server().start()
    try:
        token = make_token(scope="segments:read segments:write")
        name = "browser " + uuid.uuid4().hex[:12]
        made = Api(server, token=token).post("/v1/segments", {
            "name": name,
            "constraints": [{"type": "AND", "constraints": [
                {"field": "country", "relation": "==", "value": "PL"}]}]})
        assert made.status_code == 201, made.text
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        started = time.monotonic()
        run = subprocess.run(
            ["node", os.path.join(HERE, "reference_page.mjs"), "--url", server.url, "--token", token,
             "--try", SPEC["paths"][TRY[0]][TRY[1]]["operationId"], "--screenshot", SCREENSHOT],
            capture_output=True, text=True, timeout=180)
        seconds = time.monotonic() - started
        assert run.returncode == 0, run.stderr[-4000:]
        report = json.loads(run.stdout)
    finally:
        assert server.stop() == 0
    print(f"\nbrowser run {seconds:.1f} s, timings (ms) {report['timings']}, "
          f"{len(report['operations'])} operations, screenshot {SCREENSHOT}")

    assert report["console"] == [], report["console"]
    assert report["pageErrors"] == [], report["pageErrors"]
    assert report["cspViolations"] == [], report["cspViolations"]
    assert report["failedRequests"] == [], report["failedRequests"]
    assert report["foreignRequests"] == [], report["foreignRequests"]
    assert report["title"].startswith(SPEC["info"]["title"])

    shown = [(o["method"], o["path"], o["operationId"]) for o in report["operations"]]
    assert len(shown) == len(set(shown)), "an operation is shown twice"
    want = spec_operations()
    assert set(shown) - want == set(), "shown but not in openapi.yaml"
    assert want - set(shown) == set(), "in openapi.yaml but not shown"

    check_responses_shown(report["tryResponses"], SPEC["paths"][TRY[0]][TRY[1]]["responses"])
    tried = report["tryIt"]
    assert tried["sentAuthorization"], tried
    assert tried["status"] == 200 and tried["shownStatus"] == "200", tried
    assert tried["url"].startswith(server.url + TRY[0]), tried
    assert made.json()["id"] in tried["shownBody"] and name in tried["shownBody"], tried["shownBody"][:2000]

    with open(SCREENSHOT, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(SCREENSHOT) > 50_000
