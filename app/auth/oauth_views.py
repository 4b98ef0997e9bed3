"""The OAuth endpoints MCP clients call: /register, /authorize (sign-in and consent), /token,
/revoke.

Each also answers under /auth/ (the prefix a reverse proxy sends to the auth service). Errors
follow the RFCs: JSON `error`/`error_description` at /register, /token and /revoke; at /authorize a
redirect carrying `error` once the client and its redirect_uri are verified, else an HTML page.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request

from app.auth.oauth_errors import is_description_error
from app.auth.oauth_server import GrantUser
from app.auth.oauth_server import OAuthServer
from app.auth.oauth_server import revoke_token
from app.auth.sessions import current_apex_session
from app.core.errors import BadRequest
from app.core.identity import READ_SCOPE
from app.core.identity import WRITE_SCOPE
from app.web.flask_app import current_platform
from app.web.flask_app import json_body

bp = Blueprint("oauth", __name__, template_folder="templates")

# Consent and error pages load only our stylesheet, run nothing, and post only to themselves,
# whence the approval redirects to the client (form-action covers that redirect too).
_PAGE_CSP = (
    "default-src 'none'; style-src {styles}; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self' {client}"
)
# The last resort when authlib itself quoted an input an error description may not hold.
_UNQUOTABLE = "a parameter holds characters this server refuses (quotes, backslashes, controls)"
_ACCESS = {
    READ_SCOPE: "read its pages, history and attachments",
    WRITE_SCOPE: "create, edit, rename and delete pages",
}


# Browser-based MCP clients (the MCP Inspector, web agents) register, redeem codes and revoke by
# fetch: these endpoints take no cookie and no ambient credential, so any origin may call them.
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "600",
}


@bp.after_request
def _cors(response):
    if request.endpoint in ("oauth.register", "oauth.token", "oauth.revoke"):
        response.headers.update(_CORS_HEADERS)
    return response


def _server() -> OAuthServer:
    return current_app.extensions["robot_oauth"]


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _json_error(error: str, description: str, status: int = 400):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return _no_store(response)


@bp.post("/register")
@bp.post("/auth/register")
def register():
    """RFC 7591 dynamic client registration of a public client."""
    try:
        json_body()  # one parser for every JSON body: bad, deep or non-object JSON is a 400
    except BadRequest as error:
        return _json_error("invalid_client_metadata", error.message)
    try:
        return _no_store(_server().create_endpoint_response("client_registration"))
    except ValueError as error:
        if not is_description_error(error):
            raise
        return _json_error("invalid_client_metadata", _UNQUOTABLE)


@bp.post("/token")
@bp.post("/auth/token")
def token():
    """The token endpoint: authorization_code (PKCE S256) and refresh_token (rotated)."""
    try:
        return _server().create_token_response()
    except ValueError as error:
        if not is_description_error(error):
            raise
        return _json_error("invalid_request", _UNQUOTABLE)


@bp.post("/revoke")
@bp.post("/auth/revoke")
def revoke():
    """RFC 7009 token revocation: revoke the grant of a refresh or access token.

    Form fields: `token` (required), `token_type_hint` (accepted and ignored, §2.1 allows it:
    our refresh tokens and JWT access tokens tell themselves apart), `client_id` (a public
    client authenticates by it alone, as at /token). Answers 200 with an empty body whether
    or not the token was known, live or the client's (§2.2); 401 invalid_client for a missing
    or unknown client; 400 invalid_request for a missing or repeated `token`.
    """
    client_ids = request.form.getlist("client_id")
    client_id = client_ids[0] if len(client_ids) == 1 else ""
    if not client_id or len(client_id) > 200 or _server().find_client(client_id) is None:
        refused = _json_error("invalid_client", "an unknown or missing 'client_id'", 401)
        if scheme := request.headers.get("Authorization", "").split(" ", 1)[0]:
            # RFC 6749 §5.2: a client that tried the Authorization header is told its scheme
            # failed; ours are public clients that send `client_id` in the form.
            refused.headers["WWW-Authenticate"] = f'{scheme[:20]} realm="robot"'
        return refused
    tokens = request.form.getlist("token")
    if len(tokens) != 1 or not tokens[0]:
        return _json_error("invalid_request", "send one 'token' (form-encoded) to revoke")
    revoke_token(current_platform(), client_id, tokens[0])
    return _no_store(current_app.response_class(status=200))


@bp.route("/authorize", methods=["GET", "POST"])
@bp.route("/auth/authorize", methods=["GET", "POST"])
def authorize():
    """Ask a signed-in member to let a client act in one wiki; answer the client by redirect."""
    platform = current_platform()
    session = current_apex_session()
    if session is None:
        here = platform.settings.auth_origin + request.full_path.rstrip("?")
        login = platform.settings.auth_origin + "/auth/login?" + urlencode({"return_to": here})
        return _no_store(redirect(login, code=303))
    user = GrantUser(session.user_did)
    server = _server()
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _authorize_error(error)
    except ValueError as error:
        if not is_description_error(error):
            raise
        return _page("oauth_error.html", 400, None, message=_UNQUOTABLE)
    slug = grant.request.wiki_slug
    role = platform.store.role_of(slug, user.did)
    csrf = _csrf_token(session.id, grant)
    if request.method == "GET" and role is None:
        return _page("oauth_not_member.html", 403, grant, slug=slug, csrf=csrf)
    if request.method == "GET":
        return _page("oauth_consent.html", 200, grant, slug=slug, csrf=csrf, role=role)
    sent = request.form.get("csrf", "").encode()
    if not hmac.compare_digest(sent, csrf.encode()):
        return _page("oauth_error.html", 400, grant, message="The form expired; start again.")
    # Only a member may approve; anything but an approval is a denial (access_denied).
    approved = role is not None and request.form.get("decision") == "approve"
    grant_user = user if approved else None
    return _no_store(server.create_authorization_response(grant_user=grant_user, grant=grant))


def _authorize_error(error: OAuth2Error):
    """Redirect an error to a verified redirect_uri (with `iss`, RFC 9207), else show it."""
    if error.redirect_uri:
        _status, _body, headers = error()
        location = dict(headers)["Location"]
        issuer = current_platform().settings.auth_origin
        return _no_store(redirect(add_params_to_uri(location, {"iss": issuer}), code=302))
    message = error.description or error.error
    return _page("oauth_error.html", 400, None, message=message)


def _csrf_token(session_id: str, grant) -> str:
    """A token only this session's consent page for this request can hold (HMAC, not stored)."""
    payload = grant.request.payload
    request_id = "\n".join(
        (session_id, grant.client.client_id, payload.redirect_uri or "", grant.request.wiki_slug)
    )
    key = current_app.extensions["robot_consent_key"]
    return hmac.new(key, request_id.encode(), hashlib.sha256).hexdigest()


def _page(template: str, status: int, grant, **context):
    settings = current_platform().settings
    client_origin = ""
    if grant is not None:
        redirect_uri = grant.request.payload.redirect_uri or grant.client.get_default_redirect_uri()
        parts = urlsplit(redirect_uri)
        client_origin = f"{parts.scheme}://{parts.netloc}"
        scopes = grant.request.scope.split()
        if context.get("role") == "viewer":
            scopes = [READ_SCOPE]
        context.update(
            client=grant.client,
            redirect_host=parts.netloc,
            access=[_ACCESS[s] for s in scopes if s in _ACCESS],
            wiki_host=settings.wiki_host(context.get("slug", "")),
        )
    page = render_template(
        f"auth/{template}",
        stylesheet=settings.api_origin + "/static/robot.css",
        domain=settings.platform_domain,
        **context,
    )
    policy = _PAGE_CSP.format(styles=settings.api_origin, client=client_origin).rstrip()
    headers = {"Content-Security-Policy": policy, "Cache-Control": "no-store"}
    return page, status, headers
