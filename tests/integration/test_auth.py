"""Bearer JWT checks (issue: server foundation, Auth)."""
import base64
import json
import os
import tempfile
import time

import pytest

from segtest import (SECRET, Api, Server, b64url, make_token, openssl_rsa_pair, problem,
                     rs256_signer)

SEG = "/audiences/segments"


def assert_invalid(r):
    body = problem(r, 401, "invalid_token")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # RFC 6750: the body says no more than that the token is invalid
    assert "signature" not in body["detail"].lower() or "badly signed" in body["detail"]
    return body


def test_missing_token_is_401_with_bearer_challenge(api):
    r = api.get(SEG, token=None)
    problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in r.headers["WWW-Authenticate"]


def test_valid_token_is_accepted(api):
    assert api.get(SEG).status_code == 200


@pytest.mark.parametrize("alg_name", ["none", "NoNe"])
def test_alg_none_refused(api, alg_name):
    tok = make_token(alg=alg_name)
    assert_invalid(api.get(SEG, token=tok))
    # and with a junk signature
    head, body, _ = tok.split(".")
    assert_invalid(api.get(SEG, token=f"{head}.{body}.AAAA"))


def test_other_hmac_alg_refused(api):
    """The configured algorithm is the only one: HS512 with the right secret is refused."""
    assert_invalid(api.get(SEG, token=make_token(alg="HS512")))


def test_bad_signature_refused(api):
    assert_invalid(api.get(SEG, token=make_token(secret="x" * 40)))


def test_stripped_signature_refused(api):
    head, body, _ = make_token().split(".")
    assert_invalid(api.get(SEG, token=f"{head}.{body}."))


def test_altered_payload_refused(api):
    head, body, sig = make_token(tenant="t1").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tenant"] = "t2"
    assert_invalid(api.get(SEG, token=f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"))


def test_expired_refused(api):
    now = int(time.time())
    assert_invalid(api.get(SEG, token=make_token(claims={"exp": now - 3600, "iat": now - 7200})))


def test_leeway_applies(api):
    """exp a few seconds ago is still within the default 30 s leeway."""
    now = int(time.time())
    assert api.get(SEG, token=make_token(claims={"exp": now - 5})).status_code == 200


def test_future_nbf_refused(api):
    assert_invalid(api.get(SEG, token=make_token(claims={"nbf": int(time.time()) + 3600})))


def test_future_iat_refused(api):
    assert_invalid(api.get(SEG, token=make_token(claims={"iat": int(time.time()) + 3600})))


@pytest.mark.parametrize("exp", ["9999999999", 9999999999.0, None, True])
def test_mistyped_or_missing_exp_refused(api, exp):
    tok = make_token(claims={"exp": exp})
    if exp is None:
        tok = make_token(claims={"exp": None})
    assert_invalid(api.get(SEG, token=tok))


def test_mistyped_nbf_refused(api):
    assert_invalid(api.get(SEG, token=make_token(claims={"nbf": "0"})))


def test_missing_tenant_refused(api):
    assert_invalid(api.get(SEG, token=make_token(tenant=None)))


def test_tenant_not_a_string_refused(api):
    assert_invalid(api.get(SEG, token=make_token(claims={"tenant": 42})))


def test_huge_token_refused(api):
    tok = make_token(claims={"pad": "x" * 5000})
    assert_invalid(api.get(SEG, token=tok))


def test_garbage_tokens_refused(api):
    for tok in ["abc", "a.b", "a.b.c.d", "!!!.???.***", "Zm9v.YmFy.YmF6"]:
        assert_invalid(api.get(SEG, token=tok))


def test_wrong_scheme_refused(api):
    r = api.get(SEG, token=None, headers={"Authorization": "Basic " + make_token()})
    assert_invalid(r)


def test_kid_jku_x5u_headers_are_ignored(api):
    """Header hints are never fetched: the token is checked with the configured key only."""
    tok = make_token(header={"kid": "other", "jku": "http://127.0.0.1:9/jwks",
                             "x5u": "http://127.0.0.1:9/cert"})
    assert api.get(SEG, token=tok).status_code == 200
    forged = make_token(secret="y" * 40, header={"jku": "http://127.0.0.1:9/jwks"})
    assert_invalid(api.get(SEG, token=forged))


def test_missing_scope_is_403(api, reader):
    r = reader.post(SEG, {"management_type": "selfmanaged", "name": "x",
                          "owner_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"})
    problem(r, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert 'scope="segments:write"' in r.headers["WWW-Authenticate"]
    assert reader.get(SEG).status_code == 200


def test_no_scope_at_all_is_403_on_reads(server):
    api = Api(server, token=make_token(scope="profile"))
    problem(api.get(SEG), 403, "insufficient_scope")


def test_scp_array_is_accepted(server):
    api = Api(server, token=make_token(scope=None, claims={"scp": ["segments:read"]}))
    assert api.get(SEG).status_code == 200


def test_log_says_which_check_failed(server, api):
    api.get(SEG, token=make_token(claims={"exp": 1000}), headers={"X-Request-Id": "why-expired"})
    time.sleep(0.2)
    recs = [r for r in server.log_records() if r.get("request_id") == "why-expired"]
    assert recs and "expired" in recs[0].get("detail", ""), recs


def test_issuer_and_audience_checked():
    s = Server(env={"SEGMENTD_JWT_ISSUER": "https://issuer.example",
                    "SEGMENTD_JWT_AUDIENCE": "segmentd-api"}).start()
    try:
        api = Api(s)
        good = make_token(claims={"iss": "https://issuer.example", "aud": "segmentd-api"})
        assert api.get(SEG, token=good).status_code == 200
        in_list = make_token(claims={"iss": "https://issuer.example", "aud": ["x", "segmentd-api"]})
        assert api.get(SEG, token=in_list).status_code == 200
        assert_invalid(api.get(SEG, token=make_token(claims={"iss": "https://evil", "aud": "segmentd-api"})))
        assert_invalid(api.get(SEG, token=make_token(claims={"iss": "https://issuer.example", "aud": "other"})))
        assert_invalid(api.get(SEG, token=make_token(claims={"aud": "segmentd-api"})))
        assert_invalid(api.get(SEG, token=make_token(claims={"iss": "https://issuer.example"})))
    finally:
        assert s.stop() == 0


def test_algorithm_confusion_refused():
    """RS256 configured: a token HMAC-signed with the public key PEM as secret is refused."""
    with tempfile.TemporaryDirectory() as d:
        key, pub = openssl_rsa_pair(d)
        s = Server(env={"SEGMENTD_JWT_ALG": "RS256", "SEGMENTD_JWT_SECRET": None,
                        "SEGMENTD_JWT_PUBLIC_KEY_FILE": pub}).start()
        try:
            api = Api(s, token="unused")
            good = make_token(alg="RS256", signer=rs256_signer(key))
            assert api.get(SEG, token=good).status_code == 200
            pem = open(pub, "rb").read()
            for secret in (pem, pem.strip()):
                assert_invalid(api.get(SEG, token=make_token(alg="HS256", secret=secret)))
            assert_invalid(api.get(SEG, token=make_token(alg="none")))
            head, body, sig = good.split(".")
            assert_invalid(api.get(SEG, token=f"{head}.{body}.{sig[:-4]}AAAA"))
        finally:
            assert s.stop() == 0
