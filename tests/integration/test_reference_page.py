"""GET /docs and its assets: served from the binary, no token, the page's headers (a strict
Content-Security-Policy, exact content types, ETag and 304), HEAD, and 404 for an unknown
file. The page in a real browser is tests/browser/ (scripts/test-browser)."""
import os
import re

import jsonschema
import pytest

from segtest import ROOT, SPEC, check_against_spec

VENDOR = os.path.join(ROOT, "docs", "reference", "vendor")
# name under /docs/ -> (file in docs/reference/, Content-Type)
ASSETS = {
    "reference.js": ("reference.js", "text/javascript; charset=utf-8"),
    "swagger-ui-bundle.js": ("vendor/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("vendor/swagger-ui.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": ("vendor/favicon-32x32.png", "image/png"),
    "LICENSE": ("vendor/LICENSE", "text/plain; charset=utf-8"),
    "NOTICE": ("vendor/NOTICE", "text/plain; charset=utf-8"),
    "swagger-ui-bundle.js.LICENSE.txt": ("vendor/swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8"),
}


def source(rel):
    with open(os.path.join(ROOT, "docs", "reference", rel), "rb") as f:
        return f.read()


def check_headers(path, r):
    """The response's headers against those openapi.yaml documents for its status."""
    template = "/docs" if path == "/docs" else "/docs/{asset}"
    doc = SPEC["paths"][template]["get"]["responses"][str(r.status_code)]
    if "$ref" in doc:  # the page's 304 is the asset's
        doc = SPEC["paths"]["/docs/{asset}"]["get"]["responses"][str(r.status_code)]
    for name, h in doc.get("headers", {}).items():
        while "$ref" in h:
            ref = h["$ref"].split("/")
            if ref[1] == "components":
                h = SPEC["components"]["headers"][ref[-1]]
            else:
                h = SPEC["paths"]["/docs/{asset}"]["get"]["responses"]["200"]["headers"][ref[-1]]
        if h.get("required"):
            assert name in r.headers, f"{path} {r.status_code}: no {name}"
        if name in r.headers:
            jsonschema.validate(r.headers[name], h["schema"])


def test_page_needs_no_token(api):
    r = api.get("/docs", token=None)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.content == source("index.html")
    check_headers("/docs", r)
    # every file the page loads is one of the assets, linked relative to /docs
    for link in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        if link == "openapi.yaml":
            continue
        assert link.startswith("docs/") and link[5:] in ASSETS, link


def test_page_policy_is_strict(api):
    csp = api.get("/docs", token=None).headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in csp and "http" not in csp
    r = api.get("/docs", token=None)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Authorization" not in r.request.headers


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_asset_is_the_committed_file(api, name):
    rel, ctype = ASSETS[name]
    r = api.get("/docs/" + name, token=None)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype
    assert r.content == source(rel)
    check_headers("/docs/" + name, r)


def test_the_assets_are_those_documented():
    param = [p for p in SPEC["paths"]["/docs/{asset}"]["get"]["parameters"] if p.get("name") == "asset"][0]
    assert sorted(param["schema"]["enum"]) == sorted(ASSETS)
    assert sorted(os.listdir(VENDOR)) == sorted(rel[7:] for rel, _ in ASSETS.values() if rel.startswith("vendor/"))


def test_etag_answers_304(api):
    for path in ("/docs", "/docs/swagger-ui-bundle.js"):
        r = api.get(path, token=None)
        tag = r.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{16}"', tag)
        for inm in (tag, "W/" + tag, '"other", ' + tag, "*"):
            again = api.get(path, token=None, headers={"If-None-Match": inm})
            assert again.status_code == 304, inm
            assert again.content == b"" and again.headers["ETag"] == tag
            check_headers(path, again)
        other = api.get(path, token=None, headers={"If-None-Match": '"0000000000000000"'})
        assert other.status_code == 200 and other.content == r.content
    tags = {api.get("/docs/" + n, token=None).headers["ETag"] for n in ASSETS}
    assert len(tags) == len(ASSETS)


def test_head(api):
    for path in ("/docs", "/docs/swagger-ui.css"):
        g = api.get(path, token=None)
        h = api.request("HEAD", path, token=None)
        assert h.status_code == 200 and h.content == b""
        for k in ("Content-Type", "Content-Length", "ETag", "Content-Security-Policy", "Cache-Control"):
            assert h.headers[k] == g.headers[k], k


@pytest.mark.parametrize("path", ["/docs/nope.js", "/docs/index.html", "/docs/..%2Fopenapi.yaml",
                                  "/docs/vendor%2Fswagger-ui.css", "/docs/reference.js/x", "/docs/"])
def test_unknown_file_is_404(api, path):
    r = api.get(path, token=None)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"
    assert "Content-Security-Policy" not in r.headers


def test_other_methods_are_405(api):
    r = api.post("/docs/reference.js", {}, token=None)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_a_token_changes_nothing(api):
    with_token = api.get("/docs/reference.js")
    assert with_token.status_code == 200 and with_token.content == source("reference.js")
    assert with_token.headers["Cache-Control"] == "no-cache"
    check_against_spec("GET", "/docs/reference.js", with_token)
