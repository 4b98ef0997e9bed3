"""A wiki repository for the tests of app.pages: real git, one page (Home) by ALICE."""

import pytest
from otterwiki.gitstorage import GitStorage

from app.core.git_env import LITERAL_PATHSPECS
from app.pages.storage import Pages

ALICE = ("alice.test", "did.plc.alice@localhost")


@pytest.fixture(autouse=True)
def literal_pathspecs(monkeypatch):
    """git reads paths literally, as in the wiki service (app.core.git_env.apply_to_process)."""
    for name, value in LITERAL_PATHSPECS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def repo(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def pages(repo):
    wiki = Pages(GitStorage(str(repo), initialize=True))
    wiki.write("Home", "# Home\n\nWelcome.\n", ALICE)
    return wiki
