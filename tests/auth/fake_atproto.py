"""A fake ATProto network on 127.0.0.1: PLC directory, handle hosts, a PDS and its OAuth server.

One Flask app served by werkzeug on a free loopback port (plain HTTP, plus the same app over
TLS for handle hosts, with a throwaway CA), so the auth service under test reaches it over real
HTTP. The authorization server enforces what a real one does: PAR only, DPoP proofs (signature,
htm, htu, fresh jti, its nonce via `use_dpop_nonce`), the DPoP key of the PAR at the token
endpoint, PKCE S256, single-use codes, and client authentication (ATProto's loopback client, or
a private_key_jwt assertion checked against the JWKS the test fetched from our auth service).
`Knobs` make it misbehave for the negative cases.

Usage: `with FakeNetwork(tmp_path) as net: did = net.add_account("alice.test")`. In process, a
Fetcher takes `net.resolve` and `net.client_ssl`, and FakeDns(net.txt) answers TXT lookups; a
stack takes `make_stack(**net.stack_env())`, a browser `net.sign_in_with_browser(...)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import abort
from flask import jsonify
from flask import redirect
from flask import request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from app.core.outbound import OutboundError
from tests.auth.fake_servers import make_tls

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The private address a "private" handle resolves to (refused before any connection).
PRIVATE_ADDRESS = "10.1.2.3"
# Handle hosts the TLS certificate names (OpenSSL refuses a wildcard directly under a TLD).
TLS_NAMES = ("alice.test", "bob.test", "carol.test")


@dataclass
class Knobs:
    """Ways to make the network misbehave; all off by default."""

    wrong_sub: str | None = None  # the token answer names this DID instead
    wrong_iss: str | None = None  # the redirect back carries this iss
    no_par: bool = False  # the AS metadata offers no PAR
    pds_redirects: bool = False  # the PDS answers its metadata with a redirect
    garbage_as_metadata: bool = False  # the AS metadata is not JSON
    slow_as_metadata: float = 0.0  # seconds the AS waits before its metadata
    private_handles: set[str] = field(default_factory=set)  # resolve to PRIVATE_ADDRESS


class FakeNetwork:
    """PLC + handle hosts (*.test) + one PDS that is also its own authorization server."""

    def __init__(self, tmp: Path, tls_names: tuple[str, ...] = TLS_NAMES):
        self.knobs = Knobs()
        self.accounts: dict[str, str] = {}  # did -> handle
        self.txt: dict[str, list[str]] = {}  # DNS TXT records (serve them with FakeDns)
        self.trusted_clients: dict[str, dict] = {}  # client_id -> JWKS (confidential clients)
        self.nonce = secrets.token_urlsafe(12)
        self.seen_jti: set[str] = set()
        self.requests: dict[str, dict] = {}  # request_uri -> pushed request
        self.codes: dict[str, dict] = {}  # code -> pushed request
        self.tokens_issued: list[dict] = []
        self.revoked: list[str] = []
        self._ca_path, cert, key = make_tls(tmp, tls_names)
        self.app = _make_app(self)
        self._http = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        self._https = make_server(
            "127.0.0.1",
            0,
            self.app,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=server_ssl,
        )
        self.port = self._http.server_port
        self.tls_port = self._https.server_port
        self.origin = f"http://127.0.0.1:{self.port}"
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            for server in (self._http, self._https)
        ]

    def __enter__(self) -> FakeNetwork:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self._http, self._https):
            server.shutdown()
            server.server_close()

    def add_account(self, handle: str) -> str:
        """Register an account whose DID document claims `handle`; return its did:plc."""
        did = "did:plc:" + "".join(secrets.choice(_BASE32) for _ in range(24))
        self.accounts[did] = handle
        return did

    def trust_client(self, client_id: str, jwks: dict) -> None:
        """Accept private_key_jwt assertions of `client_id` signed by a key of `jwks`."""
        self.trusted_clients[client_id] = jwks

    def stack_env(self) -> dict[str, str]:
        """The environment that points a local stack's sign-in at this network (make_stack)."""
        return {
            "PLATFORM_DOMAIN": "localhost",
            "ATPROTO_PLC_URL": self.origin,
            "ATPROTO_ALLOW_INSECURE_LOOPBACK": "1",
        }

    def sign_in_with_browser(self, browser, auth_origin: str, did: str, decision="approve"):
        """Drive `browser` (tests.browser.Browser) from the login form through this network's
        consent page; returns once the browser is back on `auth_origin`'s host (any of the
        platform's ports: sign-in lands on the api's dashboard) or 127.0.0.1."""
        browser.get(auth_origin + "/auth/login")
        browser.type("#account", did)
        browser.click("button[type=submit]")
        _wait_for_url(browser, self.origin + "/oauth/authorize?")
        browser.click("#approve" if decision == "approve" else "#deny")
        parts = urlsplit(auth_origin)
        platform = f"{parts.scheme}://{parts.hostname}:"
        _wait_for_url(browser, (platform, f"http://127.0.0.1:{parts.port}/"), leave=self.origin)

    # -- for the in-process Fetcher -----------------------------------------------------------

    @property
    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._ca_path))

    def resolve(self, host: str, port: int) -> list[tuple[str, int]]:
        """Name resolution of the fake world: *.test is this server (443 = its TLS port)."""
        if host in self.knobs.private_handles:
            return [(PRIVATE_ADDRESS, port)]
        if host.endswith(".test"):
            return [("127.0.0.1", self.tls_port if port == 443 else self.port)]
        if host == "127.0.0.1":
            return [(host, port)]
        raise OutboundError(f"the name {host} does not resolve")

    def document(self, did: str) -> dict:
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{self.accounts[did]}"],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": self.origin,
                }
            ],
        }

    def metadata(self) -> dict:
        origin = self.origin
        meta = {
            "issuer": origin,
            "authorization_endpoint": origin + "/oauth/authorize",
            "token_endpoint": origin + "/oauth/token",
            "revocation_endpoint": origin + "/oauth/revoke",
            "pushed_authorization_request_endpoint": origin + "/oauth/par",
            "require_pushed_authorization_requests": True,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["atproto", "transition:generic"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": True,
        }
        if self.knobs.no_par:
            del meta["pushed_authorization_request_endpoint"]
            meta["require_pushed_authorization_requests"] = False
        return meta


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # keep test output readable
        pass


class _Refused(Exception):
    def __init__(self, error: str, description: str, status: int = 400, headers=None):
        self.body = {"error": error, "error_description": description}
        self.status, self.headers = status, headers or {}


def _check_dpop(net: FakeNetwork) -> str:
    """Verify the request's DPoP proof (RFC 9449 section 4.3); return the key's thumbprint."""
    proof = request.headers.get("DPoP", "")
    try:
        header = _header(proof)
        key = ECKey.import_key(header["jwk"])
        token = jwt.decode(proof, key, algorithms=["ES256"])
    except (JoseError, ValueError, KeyError, TypeError, IndexError) as error:
        raise _Refused("invalid_dpop_proof", f"bad DPoP proof: {error}") from None
    claims = token.claims
    if token.header.get("typ") != "dpop+jwt" or "d" in header["jwk"]:
        raise _Refused("invalid_dpop_proof", "DPoP proof typ or key is wrong")
    if claims.get("htm") != request.method or claims.get("htu") != request.base_url:
        raise _Refused("invalid_dpop_proof", "DPoP proof is for another request")
    if abs(time.time() - claims.get("iat", 0)) > 60 or claims.get("jti") in net.seen_jti:
        raise _Refused("invalid_dpop_proof", "DPoP proof is stale or replayed")
    if claims.get("nonce") != net.nonce:
        raise _Refused(
            "use_dpop_nonce", "use the server's nonce", headers={"DPoP-Nonce": net.nonce}
        )
    net.seen_jti.add(claims["jti"])
    return key.thumbprint()


def _header(token: str) -> dict:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _check_client(net: FakeNetwork, form) -> tuple[str, str | None]:
    """Authenticate the client; return (client_id, the loopback client's redirect_uri or None)."""
    client_id = form.get("client_id", "")
    if client_id.startswith("http://localhost"):
        if form.get("client_assertion"):
            raise _Refused("invalid_client", "the loopback client is public", 401)
        query = parse_qs(urlsplit(client_id).query)
        return client_id, query.get("redirect_uri", [None])[0]
    jwks = net.trusted_clients.get(client_id)
    if jwks is None or form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _Refused("invalid_client", "unknown client or no client assertion", 401)
    try:
        token = jwt.decode(form.get("client_assertion", ""), KeySet.import_key_set(jwks))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "value": net.origin},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as error:
        raise _Refused("invalid_client", f"client assertion rejected: {error}", 401) from None
    if token.claims["jti"] in net.seen_jti:
        raise _Refused("invalid_client", "client assertion replayed", 401)
    net.seen_jti.add(token.claims["jti"])
    return client_id, None


def _make_app(net: FakeNetwork) -> Flask:
    app = Flask("fake_atproto")

    @app.errorhandler(_Refused)
    def refused(error: _Refused):
        response = jsonify(error.body)
        response.status_code = error.status
        response.headers.update(error.headers)
        return response

    @app.get("/<path:did>")
    def plc(did):
        if did not in net.accounts:
            abort(404)
        return jsonify(net.document(did))

    @app.get("/.well-known/atproto-did")
    def handle_did():
        host = request.host.split(":")[0]
        dids = [did for did, handle in net.accounts.items() if handle == host]
        if not dids:
            abort(404)
        return Response(dids[0], mimetype="text/plain")

    @app.get("/.well-known/oauth-protected-resource")
    def protected_resource():
        if net.knobs.pds_redirects:
            return redirect("http://127.0.0.1:1/elsewhere", 302)
        return jsonify({"resource": net.origin, "authorization_servers": [net.origin]})

    @app.get("/.well-known/oauth-authorization-server")
    def server_metadata():
        time.sleep(net.knobs.slow_as_metadata)
        if net.knobs.garbage_as_metadata:
            return Response("<html>not json</html>", mimetype="text/html")
        return jsonify(net.metadata())

    @app.post("/oauth/par")
    def par():
        if net.knobs.no_par:
            abort(404)
        jkt = _check_dpop(net)
        client_id, loopback_redirect = _check_client(net, request.form)
        form = request.form
        if form.get("code_challenge_method") != "S256" or not form.get("code_challenge"):
            raise _Refused("invalid_request", "PKCE S256 is required")
        if loopback_redirect is not None and form.get("redirect_uri") != loopback_redirect:
            raise _Refused("invalid_request", "redirect_uri is not the client's")
        if "atproto" not in form.get("scope", "").split() or not form.get("state"):
            raise _Refused("invalid_request", "scope atproto and state are required")
        request_uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(12)
        net.requests[request_uri] = {**form.to_dict(), "client_id": client_id, "jkt": jkt}
        response = jsonify({"request_uri": request_uri, "expires_in": 300})
        response.status_code = 201
        response.headers["DPoP-Nonce"] = net.nonce
        return response

    @app.get("/oauth/authorize")
    def authorize_page():
        pushed = net.requests.get(request.args.get("request_uri", ""))
        if pushed is None or pushed["client_id"] != request.args.get("client_id"):
            abort(400)
        uri = request.args["request_uri"]
        return (
            "<!doctype html><title>Fake AS</title><h1>Authorize?</h1>"
            f"<p id='hint'>{pushed.get('login_hint', '')}</p>"
            "<form method='post' action='/oauth/authorize'>"
            f"<input type='hidden' name='request_uri' value='{uri}'>"
            "<button id='approve' name='decision' value='approve'>Approve</button>"
            "<button id='deny' name='decision' value='deny'>Deny</button></form>"
        )

    @app.post("/oauth/authorize")
    def authorize_decision():
        pushed = net.requests.pop(request.form.get("request_uri", ""), None)
        if pushed is None:
            abort(400)
        iss = net.knobs.wrong_iss or net.origin
        if request.form.get("decision") != "approve":
            query = {"error": "access_denied", "state": pushed["state"], "iss": iss}
        else:
            code = secrets.token_urlsafe(16)
            net.codes[code] = pushed
            query = {"code": code, "state": pushed["state"], "iss": iss}
        return redirect(pushed["redirect_uri"] + "?" + urlencode(query), 302)

    @app.post("/oauth/token")
    def token():
        jkt = _check_dpop(net)
        client_id, _ = _check_client(net, request.form)
        form = request.form
        pushed = net.codes.pop(form.get("code", ""), None)
        if pushed is None or pushed["client_id"] != client_id:
            raise _Refused("invalid_grant", "unknown or used code")
        if pushed["jkt"] != jkt:
            raise _Refused("invalid_dpop_proof", "the DPoP key is not the PAR's")
        if form.get("redirect_uri") != pushed["redirect_uri"]:
            raise _Refused("invalid_grant", "redirect_uri differs")
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pushed["code_challenge"]:
            raise _Refused("invalid_grant", "PKCE verifier does not match")
        dids = [d for d, h in net.accounts.items() if pushed.get("login_hint") in (d, h)]
        sub = net.knobs.wrong_sub or (dids[0] if dids else next(iter(net.accounts)))
        answer = {
            "access_token": secrets.token_urlsafe(24),
            "refresh_token": secrets.token_urlsafe(24),
            "token_type": "DPoP",
            "scope": "atproto",
            "sub": sub,
            "expires_in": 3600,
        }
        net.tokens_issued.append({**answer, "jkt": jkt})
        response = jsonify(answer)
        response.headers["DPoP-Nonce"] = net.nonce
        return response

    @app.post("/oauth/revoke")
    def revoke():
        _check_client(net, request.form)
        net.revoked.append(request.form.get("token", ""))
        return ""

    return app


def _wait_for_url(browser, prefix, timeout: float = 20, leave: str | None = None) -> None:
    """Wait until the browser's URL starts with `prefix` (and has left `leave`, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        url = browser.url
        if url.startswith(prefix) and not (leave and url.startswith(leave)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"browser at {url}, expected {prefix}")
        time.sleep(0.1)
