"""A new wiki's starter pages: Home and the Agent Guide, as Otterwiki names and shows them."""

import subprocess

import pytest

from app.core import starter_pages
from app.core.wikis import create_wiki
from app.mcp.tools import build_server
from app.pages.paths import PathRules


@pytest.fixture
def repo(settings, store, users):
    create_wiki(settings, store, "alpha", users[0], "Team Notes")
    return settings.repo_path("alpha")


def test_a_new_wiki_has_home_and_the_agent_guide_in_one_commit(repo):
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "--name-only", "HEAD"], capture_output=True, text=True
    ).stdout.splitlines()
    assert sorted(PathRules().page_path(name) for name in files) == ["Agent Guide", "Home"]
    log = subprocess.run(["git", "-C", str(repo), "log", "--oneline"], capture_output=True)
    assert len(log.stdout.splitlines()) == 1


def test_home_says_what_the_wiki_is_and_links_the_guide(repo):
    home = (repo / starter_pages.HOME_FILE).read_text()
    assert home.startswith("# Team Notes\n") and "[[Agent Guide]]" in home


def test_the_guide_names_the_wikis_mcp_url(settings, repo):
    guide = (repo / starter_pages.GUIDE_FILE).read_text()
    assert settings.mcp_url("alpha") in guide


@pytest.mark.asyncio
async def test_the_guide_lists_every_mcp_tool_by_its_real_name():
    tools = {tool.name for tool in await build_server(pages=None).list_tools()}
    assert {name for name, _ in starter_pages.MCP_TOOLS} == tools
