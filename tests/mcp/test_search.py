"""MCP search_pages through two real MCP clients against the running stack: the index's
query syntax, ranked and highlighted results, hostile queries as plain tool errors."""

from types import SimpleNamespace

import pytest
import pytest_asyncio

from tests.mcp.clients import KINDS
from tests.mcp.clients import held
from tests.mcp.clients import last_line

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

SLUG = "mcp-search"
OTHER = "mcp-search-other"
OWNER = ("did:plc:mcp-search-owner", "mcp-search-owner.test")


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    for slug in (SLUG, OTHER):
        last_line(stack.robot("wiki", "create", slug, "--owner", OWNER[0]))
    token = last_line(stack.robot("token", "create", SLUG, "--user", OWNER[0], "--role", "editor"))
    other = last_line(stack.robot("token", "create", OTHER, "--user", OWNER[0], "--role", "editor"))
    return SimpleNamespace(stack=stack, token=token, other=other)


@pytest_asyncio.fixture(params=KINDS)
async def mcp(request, wiki):
    async with held(request.param, wiki.stack, f"{SLUG}.localhost", wiki.token) as session:
        session.prefix = request.param.capitalize()
        yield session


async def write(mcp, name, content):
    result = await mcp.call("write_page", path=f"{mcp.prefix}/{name}", content=content)
    assert not result.is_error, result.text


async def test_the_description_states_the_query_syntax(mcp):
    tool = next(t for t in await mcp.tools() if t.name == "search_pages")
    for part in ('"retro on', "retro*", "OR", "-draft"):
        assert part in tool.description
    assert "phrase" in tool.input_schema["properties"]["query"]["description"]


async def test_words_in_any_order_ranked_and_highlighted(mcp):
    word = f"retro{mcp.kind}"
    await write(mcp, "Weekly", f"# Weekly\n\nNotes: the {word} on Friday went well.\n")
    await write(mcp, "Lunch", "Friday lunch only.\n")
    result = await mcp.call("search_pages", query=f"{word} friday")
    assert not result.is_error, result.text
    hits = result.data["results"]
    assert [hit["path"] for hit in hits] == [f"{mcp.prefix}/Weekly"]
    snippet, spans = hits[0]["snippets"][0], hits[0]["highlights"][0]
    assert [snippet[a:b] for a, b in spans] == [word, "Friday"] and hits[0]["score"] > 0
    assert f"**{word}** on **Friday**" in result.text


@pytest.mark.parametrize(
    "query", ['name:x NEAR(a b) ^c "open', "a* OR -b AND (c)", "x\x00y", "é" * 200]
)
async def test_fts5_syntax_and_odd_queries_answer_plainly(mcp, query):
    result = await mcp.call("search_pages", query=query)
    assert not result.is_error and "page(s) match" in result.text, result.text


@pytest.mark.parametrize(
    ("query", "says"),
    [('!!! "" ::', "no words"), ("-draft", "only excludes"), ("x" * 201, "at most 200")],
)
async def test_bad_queries_are_tool_errors_that_say_why(mcp, query, says):
    result = await mcp.call("search_pages", query=query)
    assert result.is_error and says in result.text and "Traceback" not in result.text


async def test_another_wikis_pages_are_never_found(mcp, wiki):
    await write(mcp, "Mine", f"okapi{mcp.kind} here\n")
    async with held(mcp.kind, wiki.stack, f"{OTHER}.localhost", wiki.other) as other:
        result = await other.call("search_pages", query=f"okapi{mcp.kind}")
        assert not result.is_error and result.data["results"] == []
        # the token of this wiki opens nothing in the other one
    mine = await mcp.call("search_pages", query=f"okapi{mcp.kind}")
    assert [hit["path"] for hit in mine.data["results"]] == [f"{mcp.prefix}/Mine"]
