"""Fixtures of the management pages' tests: an api app and a browser-like client signed in."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from app.api_server import create_app
from app.core.wikis import create_wiki
from app.web.session_cookie import PLAIN_NAME
from tests.conftest import ALICE
from tests.conftest import BOB

CAROL = ("did:plc:carol", "carol.test")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FIELD_ERROR = re.compile(r'<p class="field-error" id="([a-z_]+)-error" role="alert">([^<]*)</p>')
_MESSAGE = re.compile(r'id="message">([^<]*)<')


class PageClient:
    """A Flask test client that acts like a browser on the platform's own pages."""

    def __init__(self, app, platform):
        self.client = app.test_client()
        self.platform = platform
        self.origin = platform.settings.api_origin

    def sign_in(self, user) -> str:
        """Sign `user` in at the apex; returns their session id."""
        session, secret = self.platform.store.create_session(user[0], "localhost", 3600)
        self.client.set_cookie(PLAIN_NAME, secret, domain="localhost")
        return session.id

    def get(self, path: str):
        return self.client.get(path)

    def token(self, page: str = "/app/") -> str:
        """The CSRF token of the forms on `page`."""
        return _CSRF.search(self.get(page).get_data(as_text=True)).group(1)

    def post(self, path: str, data: dict, csrf: str | None = "fresh", origin: str | None = "own"):
        """Post a form as the page would: a fresh CSRF token and our Origin, unless told."""
        form = dict(data)
        if csrf == "fresh":
            form["csrf_token"] = self.token()
        elif csrf is not None:
            form["csrf_token"] = csrf
        headers = {"Origin": self.origin if origin == "own" else origin} if origin else {}
        return self.client.post(path, data=form, headers=headers)


def field_errors(response) -> dict[str, str]:
    """The messages shown next to fields: {field name: message}."""
    return dict(_FIELD_ERROR.findall(response.get_data(as_text=True)))


def message(response) -> str:
    """The message of an error page ('' when there is none)."""
    found = _MESSAGE.search(response.get_data(as_text=True))
    return found.group(1) if found else ""


@pytest.fixture
def people(store):
    """Alice, Bob and Carol exist; Alice owns alpha, in which Bob is editor; Carol owns gamma."""
    for user in (ALICE, BOB, CAROL):
        store.upsert_user(*user)
    return ALICE, BOB, CAROL


@pytest.fixture
def alpha(platform, people):
    create_wiki(platform.settings, platform.store, "alpha", ALICE[0], "Alpha notes")
    platform.store.set_member("alpha", BOB[0], "editor")
    create_wiki(platform.settings, platform.store, "gamma", CAROL[0], "Gamma")
    return "alpha"


@pytest.fixture
def app(platform, network):
    """The api app, resolving handles and DIDs on the fake ATProto network."""
    app = create_app(platform.settings)
    app.extensions["robot"] = replace(app.extensions["robot"], network=network)
    return app


@pytest.fixture
def alice(app, platform, people):
    """A browser signed in as Alice."""
    page = PageClient(app, platform)
    page.sign_in(ALICE)
    return page


@pytest.fixture
def bob(app, platform, people):
    """A browser signed in as Bob."""
    page = PageClient(app, platform)
    page.sign_in(BOB)
    return page


@pytest.fixture
def stranger(app, platform):
    """A browser that is not signed in."""
    return PageClient(app, platform)
