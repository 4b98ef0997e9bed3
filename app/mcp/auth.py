"""Authorization for the MCP service: which wiki a request is for, and who is calling.

An ASGI layer in front of the FastMCP app. The Host names the wiki (unknown -> 404); every `/mcp`
request must carry a Bearer credential that is valid for THAT wiki (a wiki token, a session JWT,
or an OAuth access token whose `aud` is this wiki's MCP URL), checked against the platform DB on
every request so a revoked token stops at once. It also serves the RFC 9728 protected-resource
metadata per wiki host.
"""

from __future__ import annotations

import json

import anyio.to_thread

from app.core.errors import Forbidden
from app.core.errors import NotFound
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.errors import error_body
from app.core.identity import ANONYMOUS
from app.core.identity import SCOPES
from app.core.identity import Caller
from app.core.identity import authenticate
from app.core.identity import bearer_token
from app.core.platform import Platform
from app.core.slugs import slug_from_host
from app.core.store import Wiki
from app.mcp import oauth_proxy
from app.mcp.rpc import MAX_REQUEST_BYTES
from app.mcp.rpc import too_large

MCP_PATH = "/mcp"
PRM_PATHS = ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp")
# Claude.ai has been seen calling these on the MCP origin whatever the metadata says: the
# authorization server answers them here too (app/mcp/oauth_proxy.py).
AUTH_SERVER_PATHS = (oauth_proxy.AUTHORIZE_PATH, *oauth_proxy.FORWARDED_PATHS)
# Paths answered on any Host (health checks come from supervisor scripts and `robot check`).
HOSTLESS_PATHS = ("/healthz",)


def prm_url(platform: Platform, slug: str) -> str:
    """Return where the protected-resource metadata of wiki `slug` is published (path form)."""
    return platform.settings.mcp_origin(slug) + PRM_PATHS[1]


def protected_resource_metadata(platform: Platform, slug: str) -> dict:
    """Return the RFC 9728 metadata document of wiki `slug`'s MCP endpoint."""
    settings = platform.settings
    return {
        "resource": settings.mcp_url(slug),
        "authorization_servers": [settings.auth_origin],
        "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": f"{settings.wiki_host(slug)} wiki",
    }


def challenge_header(platform: Platform, slug: str, error: str | None = None) -> tuple:
    """Return the `WWW-Authenticate` header (ASGI name and value) of a refusal on wiki `slug`.

    RFC 6750 3 with RFC 9728 5.1's `resource_metadata`, whose URL starts an MCP client's OAuth
    flow, and the scopes to ask for (MCP authorization 2025-11-25, "Scope Selection Strategy").
    `error` is the RFC 6750 3.1 code: none for a request that carried no credential.
    """
    value = f'Bearer resource_metadata="{prm_url(platform, slug)}", scope="{" ".join(SCOPES)}"'
    if error:
        value += f', error="{error}"'
    return b"www-authenticate", value.encode()


def verify_caller(
    platform: Platform, slug: str, authorization: str | None, wiki: Wiki | None = None
) -> Caller:
    """Return the caller of wiki `slug`'s MCP endpoint, or raise Unauthorized/Forbidden.

    Without a credential the caller is ANONYMOUS on a public wiki (who may read, as in a
    browser) and Unauthorized on a private one; a credential that is present but not valid is
    Unauthorized either way, never taken for anonymous.
    """
    settings, store = platform.settings, platform.store
    wiki = wiki or store.get_wiki(slug)
    if not authorization:
        if wiki.is_public:
            return ANONYMOUS
        raise Unauthorized("this MCP endpoint needs 'Authorization: Bearer <token>'")
    caller = authenticate(settings, platform.key, store, slug, authorization, None)
    if "READ" not in caller.permissions(wiki.is_public):
        raise Forbidden("you are not a member of this wiki")
    return caller


def admit(
    platform: Platform, host: str | None, authorization: str | None, needs_caller: bool
) -> tuple[Wiki, Caller | None]:
    """Return (wiki, caller) of a request to the wiki at `host`; raise NotFound for no such wiki.

    The wiki's row is read on every request, so a wiki made private stops anonymous callers at
    once.
    """
    slug = slug_from_host(host, platform.settings.platform_domain)
    wiki = platform.store.find_wiki(slug) if slug else None
    if wiki is None:
        raise NotFound("no wiki at this address")
    if not needs_caller:
        return wiki, None
    return wiki, verify_caller(platform, slug, authorization, wiki)


def admit_writes(platform: Platform, host: str | None, authorization: str | None) -> bool:
    """Whether admitting this request would write to the platform DB (a wiki token's last use).

    On SQLite that write may wait on the lock, so it belongs on a worker thread. Every other
    check only reads (a WAL reader never waits on a writer) and takes tens of microseconds.
    """
    try:
        credential = bearer_token(authorization)
    except Unauthorized:
        return False
    slug = slug_from_host(host, platform.settings.platform_domain)
    return bool(credential and slug) and platform.store.token_use_would_write(credential, slug)


class McpAuth:
    """ASGI middleware: resolve the wiki, serve its metadata, admit only its callers to /mcp."""

    def __init__(self, app, platform: Platform):
        self.app = app
        self.platform = platform

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in HOSTLESS_PATHS:
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        needs_caller = path == MCP_PATH and scope["method"] != "OPTIONS"
        host, authorization = _header(scope, b"host"), _header(scope, b"authorization")
        try:
            # On PostgreSQL every query is a round trip to a server that may stall: off the loop.
            if not self.platform.settings.database_is_sqlite or (
                needs_caller and admit_writes(self.platform, host, authorization)
            ):
                wiki, caller = await anyio.to_thread.run_sync(
                    admit, self.platform, host, authorization, needs_caller
                )
            else:
                wiki, caller = admit(self.platform, host, authorization, needs_caller)
        except NotFound as error:
            await _send_json(send, 404, error_body(error))
            return
        except RobotError as error:
            slug = slug_from_host(host, self.platform.settings.platform_domain)
            await self._refuse(send, slug, error, bool(authorization))
            return
        slug = wiki.slug
        if path in PRM_PATHS:
            await _send_json(send, 200, protected_resource_metadata(self.platform, slug))
            return
        if path in AUTH_SERVER_PATHS:
            await oauth_proxy.answer(self.platform, slug, scope, receive, send)
            return
        if caller is not None:
            declared = _header(scope, b"content-length") or ""
            if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
                # Past auth, the POST is a JSON-RPC request: its refusal is a JSON-RPC error.
                await _send_json(send, 413, too_large())
                return
            receive = _capped(receive, MAX_REQUEST_BYTES)
            state = scope.setdefault("state", {})
            state["wiki"], state["wiki_slug"], state["caller"] = wiki, slug, caller
            state["authorization"] = authorization
        await self.app(scope, receive, send)

    async def _refuse(self, send, slug: str, error: RobotError, had_credential: bool) -> None:
        """Answer 401/403 with an RFC 6750 challenge and the platform's JSON error body.

        These are HTTP-level answers, given before any JSON-RPC message is read (MCP
        Authorization: the client acts on the status and on `WWW-Authenticate`, whose
        `resource_metadata` starts its OAuth flow; RFC 6750 3 defines no body). So the body
        stays the `{"ok": false, "error", "status"}` shape every robot service answers auth
        failures with, for people and scripts reading it, and is not a JSON-RPC error object.
        """
        if error.status == 401 and had_credential:
            code = "invalid_token"
        elif error.status == 403:
            code = "insufficient_scope"
        else:
            code = None
        headers = [challenge_header(self.platform, slug, code)]
        await _send_json(send, error.status, error_body(error), headers)


def _capped(receive, limit: int):
    """Wrap `receive` so a body (chunked, say) past `limit` reads as a client disconnect."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
