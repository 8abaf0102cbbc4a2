"""Keys, JWK Sets and tokens signed in Python for the JWKS tests (python3-cryptography),
and a local HTTP server that serves a JWK Set the test can change, slow down or break."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from segtest import make_token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int, size=None) -> str:
    size = size or (n.bit_length() + 7) // 8
    return b64(n.to_bytes(size, "big"))


_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}


class Key:
    """A private key, its public JWK and a signer for make_token."""

    def __init__(self, kind, kid, bits=2048, crv="P-256", secret=None, jwk_extra=None):
        self.kind, self.kid, self.crv = kind, kid, crv
        if kind == "RSA":
            self.priv = rsa.generate_private_key(65537, bits)
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": _int_b64(pub.n), "e": _int_b64(pub.e)}
        elif kind == "EC":
            curve, self.size = _CURVES[crv]
            self.priv = ec.generate_private_key(curve())
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": crv, "x": _int_b64(pub.x, self.size),
                        "y": _int_b64(pub.y, self.size)}
        elif kind == "OKP":
            self.priv = ed25519.Ed25519PrivateKey.generate()
            raw = self.priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        elif kind == "oct":
            self.priv = secret
            self.jwk = {"kty": "oct", "k": b64(secret)}
        if kid is not None:
            self.jwk["kid"] = kid
        self.jwk.update(jwk_extra or {})

    def public_pem(self) -> bytes:
        return self.priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, alg, data: bytes) -> bytes:
        if self.kind == "RSA":
            return self.priv.sign(data, padding.PKCS1v15(), _HASH[alg[2:]]())
        if self.kind == "EC":
            r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(_HASH[alg[2:]]())))
            return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")
        if self.kind == "OKP":
            return self.priv.sign(data)
        raise ValueError("oct keys sign through make_token's secret")

    def token(self, alg, kid="same", header=None, **kw):
        """A token signed by this key with alg; kid "same" = this key's kid."""
        hdr = dict(header or {})
        if kid == "same":
            kid = self.kid
        if kid is not None:
            hdr["kid"] = kid
        if self.kind == "oct":
            return make_token(alg=alg, secret=self.priv, header=hdr, **kw)
        return make_token(alg=alg, header=hdr, signer=lambda d: self.sign(alg, d), **kw)


def jwks(*keys, extra=None):
    doc = {"keys": [k.jwk if isinstance(k, Key) else k for k in keys]}
    doc.update(extra or {})
    return json.dumps(doc).encode()


class JwksServer:
    """Serves GET / with .body (bytes), .status, .delay (s) and .cache_control; counts hits."""

    def __init__(self, body=b'{"keys":[]}', cache_control=None):
        self.body, self.status, self.delay, self.cache_control = body, 200, 0.0, cache_control
        self.hits = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(time.monotonic())
                if outer.delay:
                    time.sleep(outer.delay)
                body = outer.body
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    if outer.cache_control:
                        self.send_header("Cache-Control", outer.cache_control)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
