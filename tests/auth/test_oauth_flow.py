"""The whole MCP OAuth dance on the real stack, driven by the official `mcp` SDK's OAuth client.

Registration -> authorize -> sign in -> consent -> token -> tool call -> refresh, over real HTTP
on loopback; the consent is given by a browser-like client holding a real platform session.
"""

import asyncio
import re
import time
from contextlib import asynccontextmanager
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client as SdkClient
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientMetadata

from app.core.store import Store
from app.web.session_cookie import cookie_name
from tests.browser import Browser
from tests.browser import browser_available
from tests.mcp.clients import last_line
from tests.mcp.clients import rpc

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

ALPHA, BETA = "oauth-alpha", "oauth-beta"
OWNER = ("did:plc:oauth-owner", "oauth-owner.test")
READER = ("did:plc:oauth-reader", "oauth-reader.test")
STRANGER = ("did:plc:oauth-stranger", "oauth-stranger.test")
CALLBACK = "http://127.0.0.1:9/callback"  # never dialled: the handler reads the redirect


class Loopback(httpx2.AsyncBaseTransport):
    """Dial 127.0.0.1 for every host (Python does not resolve *.localhost), keeping Host."""

    def __init__(self):
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        request.url = request.url.copy_with(host="127.0.0.1")
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self):
        self.tokens = self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Person:
    """A user at a browser: signs in when sent to the login page, then answers the consent."""

    def __init__(self, env, did: str, decision: str = "approve"):
        self.env, self.did, self.decision = env, did, decision
        self.callback = None
        self.consent_page = ""

    async def redirect_handler(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(transport=Loopback(), timeout=30) as http:
            first = await http.get(authorization_url)
            assert first.status_code == 303, first.text
            login = urlsplit(first.headers["location"])
            assert login.path == "/auth/login"
            back = parse_qs(login.query)["return_to"][0]
            settings = self.env.stack.settings
            _session, secret = self.env.store.create_session(
                self.did, settings.platform_domain, 600
            )
            cookies = {"Cookie": f"{cookie_name(settings)}={secret}"}
            page = await http.get(back, headers=cookies)
            self.consent_page = page.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            form = {"csrf": csrf, "decision": self.decision}
            answer = await http.post(back, data=form, headers=cookies)
            assert answer.status_code == 302, answer.text
            self.callback = answer.headers["location"]

    @property
    def answer(self) -> dict:
        """The parameters the server redirected back to the client with."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.callback).query).items()}

    async def callback_handler(self) -> AuthorizationCodeResult:
        params = self.answer
        if "error" in params:
            raise Refused(params["error"])
        return AuthorizationCodeResult(
            code=params["code"], state=params["state"], iss=params["iss"]
        )


class BrowserPerson(Person):
    """The same person in headless Chromium: the consent page's form, CSP and redirect for real."""

    def __init__(self, env, did: str, browser: Browser):
        super().__init__(env, did)
        self.browser = browser

    async def redirect_handler(self, authorization_url: str) -> None:
        await asyncio.to_thread(self._consent, authorization_url)

    def _consent(self, authorization_url: str) -> None:
        settings, browser = self.env.stack.settings, self.browser
        browser.get(authorization_url)
        assert urlsplit(browser.url).path == "/auth/login"
        _session, secret = self.env.store.create_session(self.did, settings.platform_domain, 600)
        browser.get(settings.auth_origin + "/healthz")
        browser.add_cookie(cookie_name(settings), secret)
        browser.record_csp_violations()
        browser.get(authorization_url)
        self.consent_page = browser.text()
        self.violations = browser.csp_violations()
        browser.click("button[value=approve]")  # CSP form-action must let the redirect through
        deadline = time.monotonic() + 20
        while "code=" not in browser.url and time.monotonic() < deadline:
            time.sleep(0.1)
        self.callback = browser.url


class Refused(Exception):
    """The authorization server answered the client with an error."""


def refused(error: BaseException) -> bool:
    """Whether `error` is, or a task group's error holds, a Refused."""
    inner = getattr(error, "exceptions", ())
    return isinstance(error, Refused) or any(refused(e) for e in inner)


def mcp_url(stack, slug: str) -> str:
    return stack.settings.mcp_url(slug)


@asynccontextmanager
async def connected(env, person: Person, slug: str = ALPHA, callback: str = CALLBACK):
    """An SDK client session to wiki `slug` that authorizes itself through `person`."""
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url(env.stack, slug),
        client_metadata=OAuthClientMetadata(
            client_name="e2e agent",
            redirect_uris=[callback],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
    )
    timeout = httpx2.Timeout(60.0, connect=10.0)
    async with httpx2.AsyncClient(auth=provider, transport=Loopback(), timeout=timeout) as http:
        async with SdkClient(
            streamable_http_client(mcp_url(env.stack, slug), http_client=http)
        ) as client:
            yield SimpleNamespace(client=client, provider=provider, storage=storage)


@pytest.fixture(scope="module")
def env(stack):
    for did, handle in (OWNER, READER, STRANGER):
        last_line(stack.robot("user", "add", "--did", did, "--handle", handle))
    for slug in (ALPHA, BETA):
        last_line(stack.robot("wiki", "create", slug, "--owner", OWNER[0]))
    last_line(stack.robot("member", "add", ALPHA, "--user", READER[0], "--role", "viewer"))
    store = Store(stack.settings.database_url)
    yield SimpleNamespace(stack=stack, store=store)
    store.close()


async def test_the_whole_dance_then_refresh(env):
    person = Person(env, OWNER[0])
    async with connected(env, person) as session:
        written = await session.client.call_tool(
            "write_page", {"path": "OAuth", "content": "via OAuth"}
        )
        assert not written.is_error, written
        assert "oauth-alpha.localhost" in person.consent_page
        first = session.storage.tokens
        assert first.scope == "wiki:read wiki:write"
        session.provider.context.token_expiry_time = time.time() - 1  # the token ran out
        read = await session.client.call_tool("read_page", {"path": "OAuth"})
        assert "via OAuth" in str(read.content)
        second = session.storage.tokens
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token


@pytest.mark.skipif(not browser_available(), reason="needs Debian's chromium and chromedriver")
async def test_consent_in_a_browser(env):
    browser = Browser()
    # A page that answers 200 on any host: the browser lands on it with the code.
    landing = f"http://127.0.0.1:{env.stack.port('auth')}/healthz"
    try:
        person = BrowserPerson(env, OWNER[0], browser)
        async with connected(env, person, callback=landing) as session:
            listed = await session.client.call_tool("list_pages", {})
    finally:
        browser.close()
    assert not listed.is_error and "e2e agent" in person.consent_page
    assert person.answer["iss"] == env.stack.settings.auth_origin and person.violations == []


async def test_a_viewers_token_is_refused_on_writes(env):
    async with connected(env, Person(env, READER[0])) as session:
        read = await session.client.call_tool("list_pages", {})
        written = await session.client.call_tool("write_page", {"path": "X", "content": "no"})
        assert not read.is_error
        assert session.storage.tokens.scope == "wiki:read"
    assert written.is_error and "wiki:write" in str(written.content)


async def test_demotion_to_viewer_stops_writes_at_once(env):
    env.store.upsert_user(*STRANGER)
    env.store.set_member(ALPHA, STRANGER[0], "editor")
    async with connected(env, Person(env, STRANGER[0])) as session:
        before = await session.client.call_tool("write_page", {"path": "D", "content": "1"})
        env.store.set_member(ALPHA, STRANGER[0], "viewer")
        after = await session.client.call_tool("write_page", {"path": "D", "content": "2"})
        read = await session.client.call_tool("read_page", {"path": "D"})
    env.store.remove_member(ALPHA, STRANGER[0])
    assert not before.is_error and after.is_error and not read.is_error
    assert "role in this wiki is viewer" in str(after.content)


async def test_a_token_for_alpha_is_refused_by_beta(env):
    async with connected(env, Person(env, OWNER[0])) as session:
        await session.client.call_tool("list_pages", {})
        token = session.storage.tokens.access_token
    assert rpc(env.stack, f"{ALPHA}.localhost", token).status_code == 200
    refused = rpc(env.stack, f"{BETA}.localhost", token)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]


async def test_removing_the_member_revokes_access_at_once(env):
    env.store.set_member(ALPHA, STRANGER[0], "editor")
    async with connected(env, Person(env, STRANGER[0])) as session:
        await session.client.call_tool("list_pages", {})
        tokens, client_id = session.storage.tokens, session.storage.client_info.client_id
    env.store.remove_member(ALPHA, STRANGER[0])
    assert rpc(env.stack, f"{ALPHA}.localhost", tokens.access_token).status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    with env.stack.client("auth") as auth:
        refreshed = auth.post("/token", data={**form, "client_id": client_id})
    assert refreshed.json()["error"] == "invalid_grant"
    env.store.set_member(ALPHA, STRANGER[0], "editor")  # re-added: the old grant stays dead
    assert rpc(env.stack, f"{ALPHA}.localhost", tokens.access_token).status_code == 401
    with env.stack.client("auth") as auth:
        refreshed = auth.post("/token", data={**form, "client_id": client_id})
    assert refreshed.json()["error"] == "invalid_grant"
    env.store.remove_member(ALPHA, STRANGER[0])


async def test_a_non_member_is_refused_at_consent(env):
    env.store.upsert_user(*STRANGER)
    person = Person(env, STRANGER[0], decision="deny")
    with pytest.raises(Exception) as raised:  # noqa: B017 - task groups wrap it (below)
        async with connected(env, person, slug=BETA) as session:
            await session.client.call_tool("list_pages", {})
    assert refused(raised.value)
    assert "not a member" in person.consent_page
    assert person.answer["error"] == "access_denied" and "code" not in person.answer


async def test_registration_and_token_answer_on_the_mcp_origin(env):
    with env.stack.client("mcp", host=f"{ALPHA}.localhost") as mcp:
        registered = mcp.post("/register", json={"redirect_uris": [CALLBACK]})
        assert registered.status_code == 201, registered.text
        form = {"grant_type": "authorization_code", "code": "nope", "code_verifier": "v" * 50}
        client_id = registered.json()["client_id"]
        token = mcp.post("/token", data={**form, "client_id": client_id})
        metadata = mcp.get("/.well-known/oauth-authorization-server").json()
        preflight = mcp.options(
            "/register",
            headers={
                "Origin": "https://inspector.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
    assert (token.status_code, token.json()["error"]) == (400, "invalid_grant")
    assert preflight.headers.get_list("access-control-allow-origin") == ["*"]
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert metadata["issuer"] == env.stack.settings.auth_origin


async def test_revoking_the_grant_on_the_mcp_origin_stops_its_access_token(env):
    async with connected(env, Person(env, OWNER[0])) as session:
        await session.client.call_tool("list_pages", {})
        tokens, client_id = session.storage.tokens, session.storage.client_info.client_id
    assert rpc(env.stack, f"{ALPHA}.localhost", tokens.access_token).status_code == 200
    form = {"token": tokens.refresh_token, "token_type_hint": "refresh_token"}
    with env.stack.client("mcp", host=f"{ALPHA}.localhost") as mcp:
        revoked = mcp.post("/revoke", data={**form, "client_id": client_id})
    assert revoked.status_code == 200, revoked.text
    refused = rpc(env.stack, f"{ALPHA}.localhost", tokens.access_token)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]
    with env.stack.client("auth") as auth:
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        refreshed = auth.post("/token", data={**form, "client_id": client_id})
    assert refreshed.json()["error"] == "invalid_grant"
