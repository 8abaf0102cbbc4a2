"""Keys from a JWK Set (issue #25): a file, or a URL served by this test process that the
tests rotate, break, slow down and flood with unknown kids; every pairing of a key with an
algorithm it must not verify."""
import concurrent.futures
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest

from jwks_util import JwksServer, Key, b64, jwks
from segtest import BIN, SANITIZED, Api, Server, make_token, problem

SEG = "/audiences/segments"
ALL_ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
            "EdDSA"]
NO_SINGLE_KEY = {"SEGMENTD_JWT_SECRET": None}


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": Key("RSA", "rsa-1"),
        "rsa384": Key("RSA", "rsa-384-only", jwk_extra={"alg": "RS384", "use": "sig"}),
        "ec256": Key("EC", "ec-256", crv="P-256"),
        "ec384": Key("EC", "ec-384", crv="P-384"),
        "ec521": Key("EC", "ec-521", crv="P-521", jwk_extra={"key_ops": ["verify"]}),
        "ed": Key("OKP", "ed-1"),
        "hs32": Key("oct", "hs-32", secret=os.urandom(32)),
        "hs64": Key("oct", "hs-64", secret=os.urandom(64)),
    }


# what each key verifies: its kty's family, its curve, its alg, a long enough secret
ALLOWED = {
    "rsa": {"RS256", "RS384", "RS512"}, "rsa384": {"RS384"}, "ec256": {"ES256"},
    "ec384": {"ES384"}, "ec521": {"ES512"}, "ed": {"EdDSA"}, "hs32": {"HS256"},
    "hs64": {"HS256", "HS384", "HS512"},
}


def start(env, **kw):
    e = dict(NO_SINGLE_KEY)
    e.update(env)
    return Server(env=e, **kw).start()


def failed_start(env, timeout=20):
    """Runs serve with env; returns (exit code, stderr) of a start-up that must fail."""
    e = dict(NO_SINGLE_KEY)
    e.update(env)
    s = Server(env=e)
    r = subprocess.run([BIN, "serve"], env=s.env, capture_output=True, timeout=timeout)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def status(api, token):
    return api.get(SEG, token=token).status_code


def metric(server, name):
    text = Api(server, token="unused").get("/metrics", token=False, check=False).text
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} not in /metrics"
    return total


def wait_for(cond, timeout=8.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def fresh(key, alg, **kw):
    """A token no cache has seen: a new jti each time."""
    claims = dict(kw.pop("claims", {}) or {})
    claims["jti"] = uuid.uuid4().hex
    return key.token(alg, claims=claims, **kw)


# ---------------------------------------------------------------- a file of keys

def attacker_tokens(keys, name, alg):
    """Tokens with the kid of keys[name] and header alg, signed the ways an attacker would:
    HMAC with the public key's forms as the secret, or a key of alg's family."""
    key = keys[name]
    if alg.startswith("HS"):
        pub = json.dumps(key.jwk).encode()
        secrets = [pub]
        if key.kind != "oct":
            secrets += [key.public_pem(), key.public_pem().strip()]
        else:
            secrets.append(key.priv)  # the real secret, with an alg its length cannot carry
        for s in secrets:
            yield make_token(alg=alg, secret=s, header={"kid": key.kid})
        return
    signer = {"RS": keys["rsa"], "ES": {"ES256": keys["ec256"], "ES384": keys["ec384"],
                                        "ES512": keys["ec521"]}.get(alg), "Ed": keys["ed"]}[alg[:2]]
    yield signer.token(alg, kid=key.kid)


def test_file_every_algorithm_and_every_confusion(keys):
    """Each key verifies exactly its algorithms; every other pairing of kid and alg is
    refused, HMAC-with-the-public-key forgeries included."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "jwks.json")
        with open(path, "wb") as f:
            f.write(jwks(*keys.values()))
        s = start({"SEGMENTD_JWT_JWKS_FILE": path})
        try:
            api = Api(s, token="unused")
            for name, key in keys.items():
                for alg in ALL_ALGS:
                    if alg in ALLOWED[name]:
                        assert status(api, key.token(alg)) == 200, (name, alg)
                    else:
                        for tok in attacker_tokens(keys, name, alg):
                            assert status(api, tok) == 401, (name, alg)
                # alg none and lower-case names are never an algorithm
                none = make_token(alg="none", header={"kid": key.kid})
                assert status(api, none) == 401
                if key.kind == "RSA":
                    assert status(api, key.token("rs256")) == 401
            # no kid, several keys: no key is picked
            assert status(api, keys["rsa"].token("RS256", kid=None)) == 401
            # crit names an extension nobody implements; typ of an access token is fine
            assert status(api, keys["ed"].token("EdDSA", header={"crit": ["exp"]})) == 401
            assert status(api, keys["ed"].token("EdDSA", header={"typ": "at+jwt"})) == 200
            assert status(api, keys["ed"].token("EdDSA", header={"typ": "JOSE+JSON"})) == 401
            # a flipped signature byte
            good = keys["ec256"].token("ES256")
            head, body, sig = good.split(".")
            assert status(api, f"{head}.{body}.{sig[:-4]}AAAA") == 401
            # the claims are checked as with one key
            assert status(api, keys["rsa"].token("RS256", ttl=-100)) == 401
            assert status(api, keys["rsa"].token("RS256", claims={"tenant": None})) == 401
            body = problem(api.get(SEG, token=keys["rsa"].token("RS256", kid="nope")), 401,
                           "invalid_token")
            assert "kid" not in body["detail"]  # the reason is logged, not told
            assert metric(s, "segmentd_jwks_keys") == len(keys)
            assert metric(s, "segmentd_jwks_unknown_kid_total") >= 1
        finally:
            assert s.stop() == 0


def test_file_refused_keys_and_settings(keys):
    """Keys that cannot verify are skipped, and a file with none stops start-up; a JWKS
    with the single-key settings is refused; `segmentd token` needs the secret."""
    enc = dict(keys["rsa"].jwk, kid="enc", use="enc")
    priv = dict(keys["ed"].jwk, kid="priv", d=b64(b"x" * 32))
    short = Key("oct", "short", secret=b"s" * 16)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "jwks.json")
        with open(path, "wb") as f:
            f.write(jwks(enc, priv, short, keys["ec256"]))
        s = start({"SEGMENTD_JWT_JWKS_FILE": path})
        try:
            api = Api(s, token="unused")
            assert status(api, keys["ec256"].token("ES256")) == 200
            assert status(api, keys["rsa"].token("RS256", kid="enc")) == 401
            assert status(api, keys["ed"].token("EdDSA", kid="priv")) == 401
            assert status(api, short.token("HS256")) == 401
            assert metric(s, "segmentd_jwks_keys") == 1
            assert any("skipped" in line and "use is not" in line for line in s.lines)
        finally:
            assert s.stop() == 0
        for doc, why in [(jwks(enc, priv), "no key that verifies"), (b"{", "not JSON"),
                         (b'{"keys": {}}', '"keys" array'),
                         (jwks(*[dict(keys["ed"].jwk, kid=str(i)) for i in range(101)]), "at most 100")]:
            with open(path, "wb") as f:
                f.write(doc)
            rc, err = failed_start({"SEGMENTD_JWT_JWKS_FILE": path})
            assert rc != 0 and "SEGMENTD_JWT_JWKS_FILE" in err and why in err, err
        rc, err = failed_start({"SEGMENTD_JWT_JWKS_FILE": path, "SEGMENTD_JWT_SECRET": "x" * 40})
        assert rc != 0 and "SEGMENTD_JWT_SECRET: must not be set with SEGMENTD_JWT_JWKS_FILE" in err
        rc, err = failed_start({"SEGMENTD_JWT_JWKS_FILE": path, "SEGMENTD_JWT_ALG": "RS256"})
        assert rc != 0 and "SEGMENTD_JWT_ALG: must not be set" in err
        rc, err = failed_start({"SEGMENTD_JWT_JWKS_FILE": path,
                                "SEGMENTD_JWT_JWKS_URL": "http://127.0.0.1:9/"})
        assert rc != 0 and "both set" in err
        rc, err = failed_start({"SEGMENTD_JWT_JWKS_URL": "file:///etc/passwd"})
        assert rc != 0 and "http:// or https://" in err
        e = dict(Server(env=NO_SINGLE_KEY).env, SEGMENTD_JWT_JWKS_FILE=path)
        r = subprocess.run([BIN, "token", "--tenant", "t1"], env=e, capture_output=True)
        assert r.returncode != 0 and b"not a JWK Set" in r.stderr


# ---------------------------------------------------------------- a URL

def url_env(js, min_refresh="1", timeout_ms="1000"):
    return {"SEGMENTD_JWT_JWKS_URL": js.url, "SEGMENTD_JWT_JWKS_MIN_REFRESH_S": min_refresh,
            "SEGMENTD_JWT_JWKS_TIMEOUT_MS": timeout_ms}


def test_url_rotation(keys):
    """A new kid appears (the token naming it triggers a refresh) and the old one goes:
    even a token verified and cached under the old set is refused after the refresh."""
    js = JwksServer(jwks(keys["rsa"]))
    s = start(url_env(js))
    try:
        api = Api(s, token="unused")
        old = keys["rsa"].token("RS256")
        assert status(api, old) == 200
        hits = len(js.hits)
        js.body = jwks(keys["ec256"])
        new = keys["ec256"].token("ES256")
        # the first use of the new kid asks for the refresh and is answered 401 at once
        assert wait_for(lambda: status(api, new) == 200), "the new kid never verified"
        assert len(js.hits) > hits
        assert status(api, old) == 401
        assert status(api, fresh(keys["rsa"], "RS256")) == 401
        assert metric(s, "segmentd_jwks_keys") == 1
        assert metric(s, 'segmentd_jwks_refreshes_total{result="ok"}') >= 2
    finally:
        assert s.stop() == 0
        js.close()


def test_url_max_age_refreshes_in_the_background(keys):
    """Cache-Control max-age drives the refreshes (floored at the minimum interval)."""
    js = JwksServer(jwks(keys["ed"]), cache_control="public, max-age=0")
    s = start(url_env(js))
    try:
        assert wait_for(lambda: len(js.hits) >= 3, timeout=6), js.hits
        gaps = [b - a for a, b in zip(js.hits, js.hits[1:])]
        assert min(gaps) >= 0.9, gaps
        js.cache_control = "max-age=3600"
        time.sleep(2.5)  # the fetch that reads max-age=3600
        n = len(js.hits)
        time.sleep(2)
        assert len(js.hits) == n
    finally:
        assert s.stop() == 0
        js.close()


@pytest.mark.parametrize("case", ["refused", "http500", "malformed", "oversized", "slow",
                                  "no_usable_key"])
def test_url_down_at_start(keys, case):
    """Start-up fails, saying which setting and why, when the first fetch fails."""
    js = JwksServer(jwks(keys["rsa"]))
    env = url_env(js, timeout_ms="500")
    why = {"refused": "Failed to connect", "http500": "HTTP status 500", "malformed": "not JSON",
           "oversized": "larger than 1048576", "slow": "imed out",
           "no_usable_key": "only a JWKS file"}[case]
    if case == "refused":
        env["SEGMENTD_JWT_JWKS_URL"] = "http://user:hunter2@127.0.0.1:9/jwks.json"
    elif case == "http500":
        js.status = 500
    elif case == "malformed":
        js.body = b'{"keys": [}'
    elif case == "oversized":
        js.body = b'{"keys": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    elif case == "slow":
        js.delay = 2
    else:
        js.body = jwks(keys["hs32"])
    try:
        rc, err = failed_start(env)
        assert rc != 0, err
        assert "SEGMENTD_JWT_JWKS_URL: cannot load the key set" in err and why in err, err
        assert "hunter2" not in err  # credentials in the URL are not logged
    finally:
        js.close()


def test_url_down_later_serves_the_last_good_set(keys):
    """Failed, malformed, oversized and slow refreshes keep the last good set; requests
    never wait for a fetch; the set comes back when the URL does."""
    js = JwksServer(jwks(keys["rsa"]))
    s = start(url_env(js, timeout_ms="2000"))
    try:
        api = Api(s, token="unused")
        good = lambda: status(api, fresh(keys["rsa"], "RS256"))  # noqa: E731
        assert good() == 200
        unknown = keys["ed"].token("EdDSA", kid="rotated-in")
        for breakage, result in [("status", "fetch_failed"), ("malformed", "invalid"),
                                 ("oversized", "fetch_failed"), ("slow", "fetch_failed")]:
            before = metric(s, f'segmentd_jwks_refreshes_total{{result="{result}"}}')
            js.status, js.delay, js.body = 200, 0, jwks(keys["rsa"])
            if breakage == "status":
                js.status = 503
            elif breakage == "malformed":
                js.body = b"<html>maintenance</html>"
            elif breakage == "oversized":
                js.body = b'{"keys": [' + b" " * (1 << 20) + b"]}"
            else:
                js.delay = 3
            time.sleep(1.05)  # past the minimum interval since the last fetch
            t0 = time.monotonic()
            assert status(api, unknown) == 401  # asks for a refresh, does not wait for it
            assert good() == 200
            assert time.monotonic() - t0 < 1.0  # a request waiting for the fetch: >= 2 s
            assert wait_for(lambda: metric(s, f'segmentd_jwks_refreshes_total{{result="{result}"}}')
                            > before), breakage
            assert good() == 200
        assert metric(s, "segmentd_jwks_refresh_failures") >= 4
        js.status, js.delay = 200, 0
        js.body = jwks(keys["rsa"], dict(keys["ed"].jwk, kid="rotated-in"))
        assert wait_for(lambda: status(api, unknown) == 200, timeout=10)
        assert metric(s, "segmentd_jwks_refresh_failures") == 0
        assert any("refresh failed" in line for line in s.lines)
    finally:
        assert s.stop() == 0
        js.close()


def test_kid_flood_fetches_at_most_once_per_interval(keys):
    """Hundreds of tokens with made-up kids: all refused, and the URL is fetched at most
    once every SEGMENTD_JWT_JWKS_MIN_REFRESH_S."""
    js = JwksServer(jwks(keys["ec384"]))
    s = start(url_env(js, min_refresh="2"))
    try:
        api = Api(s, token="unused")
        n = 100 if SANITIZED else 300
        toks = [keys["ec384"].token("ES384", kid=uuid.uuid4().hex) for _ in range(n)]
        hits = len(js.hits)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda t: status(Api(s, token="unused"), t), toks))
        took = time.monotonic() - t0
        assert set(codes) == {401}
        assert len(js.hits) - hits <= took / 2 + 2, (len(js.hits) - hits, took)
        assert metric(s, "segmentd_jwks_unknown_kid_total") >= n
        assert status(api, keys["ec384"].token("ES384")) == 200
    finally:
        assert s.stop() == 0
        js.close()
