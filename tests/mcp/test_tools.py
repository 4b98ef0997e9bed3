"""Every MCP tool, driven by two real clients over HTTP against the running stack."""

import asyncio
from types import SimpleNamespace

import pytest
import pytest_asyncio

from tests.mcp.clients import KINDS
from tests.mcp.clients import attach
from tests.mcp.clients import held
from tests.mcp.clients import last_line

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

SLUG = "mcp-tools"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:mcp-tools-owner", "mcp-tools-owner.test")
TOOLS = {
    "read_page",
    "write_page",
    "edit_page",
    "append_to_page",
    "list_pages",
    "search_pages",
    "get_history",
    "get_recent_changes",
    "rename_page",
    "delete_page",
    "get_links",
    "find_orphaned_pages",
    "list_attachments",
    "read_attachment",
}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    token = last_line(stack.robot("token", "create", SLUG, "--user", OWNER[0], "--role", "editor"))
    return SimpleNamespace(stack=stack, token=token)


@pytest_asyncio.fixture(params=KINDS)
async def mcp(request, wiki):
    async with held(request.param, wiki.stack, HOST, wiki.token) as session:
        session.prefix = request.param.capitalize()  # each client works under its own pages
        yield session


def body(read):
    """The Markdown of a read_page answer: its last content block."""
    return read.content[-1].text


async def write(mcp, name, content, **extra):
    result = await mcp.call("write_page", path=f"{mcp.prefix}/{name}", content=content, **extra)
    assert not result.is_error, result.text
    return result.data


async def write_over(mcp, name, content, base):
    """Call write_page on top of revision `base`; return the result, an error or not."""
    path = f"{mcp.prefix}/{name}"
    return await mcp.call("write_page", path=path, content=content, base_revision=base)


async def edit_over(mcp, name, old_text, new_text, base):
    """Call edit_page on top of revision `base`; return the result, an error or not."""
    path = f"{mcp.prefix}/{name}"
    return await mcp.call(
        "edit_page", path=path, old_text=old_text, new_text=new_text, base_revision=base
    )


async def test_tools_are_listed_with_descriptions_and_schemas(mcp):
    tools = {tool.name: tool for tool in await mcp.tools()}
    assert TOOLS <= set(tools) and len(tools) >= 14
    assert all(
        tool.description and tool.input_schema["type"] == "object" for tool in tools.values()
    )


async def test_write_creates_then_read_returns_text_and_structure(mcp):
    created = await write(mcp, "Notes", "# Notes\n\nhello agents\n", message="first notes")
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Notes")
    assert created["created"] is True
    assert "hello agents" in read.text and f"revision: {created['revision']}" in read.text
    assert body(read) == "# Notes\n\nhello agents\n"


async def test_write_with_stale_base_revision_is_a_conflict(mcp):
    first = await write(mcp, "Contended", "one\n")
    second = await write(mcp, "Contended", "two\n", base_revision=first["revision"])
    stale = await write_over(mcp, "Contended", "three\n", first["revision"])
    assert stale.is_error and "Conflict" in stale.text and second["revision"] in stale.text
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Contended")
    assert body(read) == "two\n"


async def test_write_over_a_change_elsewhere_is_merged_and_says_so(mcp):
    base = "# Merged\n\nfirst\n\nmiddle\n\nlast\n"
    first = await write(mcp, "Merged", base)
    theirs = await write(mcp, "Merged", base.replace("last", "last, by someone"))
    mine = base.replace("first", "first, by the agent")
    result = await write_over(mcp, "Merged", mine, first["revision"])
    assert not result.is_error, result.text
    assert result.data["merged"] is True and result.data["merged_over"] == theirs["revision"]
    assert "merged" in result.text and theirs["revision"] in result.text
    assert "mcp-tools-owner.test" in result.text
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Merged")
    assert "first, by the agent" in body(read) and "last, by someone" in body(read)


async def test_overlapping_write_is_a_tool_error_with_the_merge_to_resolve(mcp):
    first = await write(mcp, "Overlap", "zero\n\none\ntwo\n\nend\n")
    # Someone changes a line the agent changes too, and one the agent left alone.
    theirs = await write(mcp, "Overlap", "zero\n\none\nTWO\n\nEND\n")
    result = await write_over(mcp, "Overlap", "zero\n\none\n2\n\nend\n", first["revision"])
    assert result.is_error and theirs["revision"] in result.text
    assert "<<<<<<< yours\n2\n=======\nTWO\n>>>>>>> current" in result.text
    # Their other change shows as kept, never as something the agent would undo.
    assert "END" in result.text and "-END" not in result.text
    assert "a change by mcp-tools-owner.test made" in result.text
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Overlap")
    assert body(read) == "zero\n\none\nTWO\n\nEND\n"
    assert f"revision: {theirs['revision']}" in read.text


async def test_edit_page_at_an_older_revision_merges_over_changes_elsewhere(mcp):
    first = await write(mcp, "EditMerge", "alpha\n\nbeta\n\ngamma\n")
    theirs = await write(mcp, "EditMerge", "alpha\n\nbeta\n\ngamma, changed\n")
    result = await edit_over(mcp, "EditMerge", "alpha", "ALPHA", first["revision"])
    assert not result.is_error, result.text
    assert result.data["merged_over"] == theirs["revision"] and "merged" in result.text
    read = await mcp.call("read_page", path=f"{mcp.prefix}/EditMerge")
    assert body(read) == "ALPHA\n\nbeta\n\ngamma, changed\n"


async def test_read_one_section(mcp):
    await write(mcp, "Guide", "# Guide\n\n## Install\n\npip it\n\n## Use\n\nrun it\n")
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Guide", section="Install")
    assert body(read) == "## Install\n\npip it\n" and read.data["section"] == "Install"
    missing = await mcp.call("read_page", path=f"{mcp.prefix}/Guide", section="Nope")
    assert missing.is_error and "'Install'" in missing.text


async def test_read_an_older_revision(mcp):
    old = await write(mcp, "Versioned", "old text\n")
    await write(mcp, "Versioned", "new text\n")
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Versioned", revision=old["revision"])
    assert body(read) == "old text\n"


async def test_edit_page_replaces_exactly_one_span(mcp):
    await write(mcp, "Edited", "alpha beta gamma\n")
    edited = await mcp.call(
        "edit_page", path=f"{mcp.prefix}/Edited", old_text="beta", new_text="BETA"
    )
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Edited")
    assert not edited.is_error and body(read) == "alpha BETA gamma\n"


@pytest.mark.parametrize(
    ("old_text", "says"), [("delta", "not found"), ("a", "occurs"), ("", "empty")]
)
async def test_edit_page_absent_ambiguous_or_empty_span_fails(mcp, old_text, says):
    await write(mcp, "Spans", "alpha beta gamma\n")
    result = await mcp.call(
        "edit_page", path=f"{mcp.prefix}/Spans", old_text=old_text, new_text="x"
    )
    assert result.is_error and says in result.text


async def test_edit_page_with_stale_base_revision_conflicts(mcp):
    first = await write(mcp, "EditRace", "one two\n")
    await write(mcp, "EditRace", "one two three\n")
    result = await edit_over(mcp, "EditRace", "two", "2", first["revision"])
    assert result.is_error and "Conflict" in result.text


async def test_edit_page_span_missing_at_the_base_says_so(mcp):
    first = await write(mcp, "EditBase", "one\n")
    await write(mcp, "EditBase", "one\n\nadded later\n")
    result = await edit_over(mcp, "EditBase", "added later", "x", first["revision"])
    assert result.is_error and "as it was at revision" in result.text


async def test_appends_at_the_same_time_all_land(mcp):
    # The reviewer's example: ten agents appending at once; none may fail or be lost.
    await write(mcp, "Journal", "# Journal\n")
    calls = [
        mcp.call("append_to_page", path=f"{mcp.prefix}/Journal", content=f"entry {i}")
        for i in range(10)
    ]
    results = await asyncio.gather(*calls)
    assert [r.text for r in results if r.is_error] == []
    text = body(await mcp.call("read_page", path=f"{mcp.prefix}/Journal"))
    assert sorted(line for line in text.split("\n") if line.startswith("entry ")) == sorted(
        f"entry {i}" for i in range(10)
    )


async def test_append_to_existing_and_new_page(mcp):
    await write(mcp, "Log", "day one\n")
    await mcp.call("append_to_page", path=f"{mcp.prefix}/Log", content="day two")
    fresh = await mcp.call("append_to_page", path=f"{mcp.prefix}/NewLog", content="first entry")
    read = await mcp.call("read_page", path=f"{mcp.prefix}/Log")
    assert body(read).rstrip() == "day one\n\nday two"
    assert not fresh.is_error and fresh.data["created"] is True


async def test_list_pages_by_prefix_with_sizes(mcp):
    await write(mcp, "Listed/One", "12345\n")
    result = await mcp.call("list_pages", prefix=f"{mcp.prefix}/Listed")
    assert [p["path"] for p in result.data["pages"]] == [f"{mcp.prefix}/Listed/One"]
    assert result.data["pages"][0]["size"] == 6 and result.data["pages"][0]["last_changed"]


async def test_list_pages_comes_a_few_at_a_time(mcp):
    """Twelfth review: list_pages failed on a wiki of 10,000 pages with long names (a 10 MB
    answer, past the MCP service's 8 MiB). It lists `limit` at a time, and says what follows."""
    for name in ("C", "A", "B"):
        await write(mcp, f"Paged/{name}", "x\n")
    first = await mcp.call("list_pages", prefix=f"{mcp.prefix}/Paged", limit=2)
    assert [p["path"] for p in first.data["pages"]] == [
        f"{mcp.prefix}/Paged/A",
        f"{mcp.prefix}/Paged/B",
    ]
    assert first.data["next"] == f"{mcp.prefix}/Paged/B" and "after=" in first.text
    rest = await mcp.call(
        "list_pages", prefix=f"{mcp.prefix}/Paged", limit=2, after=first.data["next"]
    )
    assert [p["path"] for p in rest.data["pages"]] == [f"{mcp.prefix}/Paged/C"]
    assert "next" not in rest.data


async def test_search_pages_returns_snippets(mcp):
    word = f"zebracorn{mcp.kind}"
    await write(mcp, "Searchable", f"# Zoo\n\nThe {word} lives here.\n")
    result = await mcp.call("search_pages", query=word)
    hit = next(r for r in result.data["results"] if r["path"] == f"{mcp.prefix}/Searchable")
    assert any(word in snippet for snippet in hit["snippets"]) and word in result.text


async def test_history_and_recent_changes(mcp):
    await write(mcp, "Storied", "v1\n", message=f"{mcp.kind} chapter one")
    await write(mcp, "Storied", "v2\n", message=f"{mcp.kind} chapter two")
    history = await mcp.call("get_history", path=f"{mcp.prefix}/Storied", limit=5)
    changes = await mcp.call("get_recent_changes", limit=5)
    messages = [r["message"] for r in history.data["revisions"]]
    assert messages[:2] == [f"{mcp.kind} chapter two", f"{mcp.kind} chapter one"]
    assert f"{mcp.kind} chapter two" in changes.text


async def test_rename_with_link_update_and_links(mcp):
    target, source = f"{mcp.prefix}/Target", f"{mcp.prefix}/Source"
    await write(mcp, "Target", "the target\n")
    await write(mcp, "Source", f"see [[{target}]]\n")
    links = await mcp.call("get_links", path=target)
    assert source in links.data["backlinks"]
    renamed = await mcp.call(
        "rename_page", path=target, new_path=f"{mcp.prefix}/Moved", update_links=True
    )
    assert not renamed.is_error and source in renamed.data["updated_pages"]
    read = await mcp.call("read_page", path=source)
    assert f"{mcp.prefix}/Moved" in body(read)


async def test_delete_page(mcp):
    await write(mcp, "Doomed", "bye\n")
    deleted = await mcp.call("delete_page", path=f"{mcp.prefix}/Doomed", message="tidy up")
    gone = await mcp.call("read_page", path=f"{mcp.prefix}/Doomed")
    history = await mcp.call("get_history", path=f"{mcp.prefix}/Doomed", limit=1)
    assert not deleted.is_error and gone.is_error and "does not exist" in gone.text
    assert history.data["revisions"][0]["message"] == "tidy up"


async def test_find_orphaned_pages(mcp):
    await write(mcp, "Lonely", "nobody links here\n")
    result = await mcp.call("find_orphaned_pages")
    assert f"{mcp.prefix}/Lonely" in result.data["pages"]


async def test_attachments_listed_and_read_as_text_image_and_blob(mcp, wiki):
    await write(mcp, "Files", "see attachments\n")
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Files", "notes.txt", b"plain words\n")
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Files", "dot.png", PNG)
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Files", "data.bin", bytes(range(256)))
    listed = await mcp.call("list_attachments", path=f"{mcp.prefix}/Files")
    assert {a["name"] for a in listed.data["attachments"]} == {"notes.txt", "dot.png", "data.bin"}
    text = await mcp.call("read_attachment", path=f"{mcp.prefix}/Files", name="notes.txt")
    image = await mcp.call("read_attachment", path=f"{mcp.prefix}/Files", name="dot.png")
    blob = await mcp.call("read_attachment", path=f"{mcp.prefix}/Files", name="data.bin")
    assert text.text == "plain words\n"
    assert image.content[0].type == "image" and image.data["size"] == len(PNG)
    assert blob.content[0].type == "resource" and blob.data["encoding"] == "base64"


async def test_attachment_over_the_cap_is_refused(mcp, wiki):
    await write(mcp, "Big", "big file below\n")
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Big", "big.txt", b"x" * 5000)
    result = await mcp.call(
        "read_attachment", path=f"{mcp.prefix}/Big", name="big.txt", max_bytes=1000
    )
    assert result.is_error and "1000 bytes" in result.text


async def test_attachment_at_an_older_revision(mcp, wiki):
    await write(mcp, "Versions", "versioned file below\n")
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Versions", "v.txt", b"first\n")
    first = await mcp.call("get_recent_changes", limit=1)
    attach(wiki.stack, SLUG, f"{mcp.prefix}/Versions", "v.txt", b"second\n")
    old = await mcp.call(
        "read_attachment",
        path=f"{mcp.prefix}/Versions",
        name="v.txt",
        revision=first.data["changes"][0]["revision"],
    )
    assert old.text == "first\n"


JUNK = {"a": [1, {"b": None}], "c": "x" * 1000}  # nested junk, never echoed back
DUMP_MARKS = ("validation error", "pydantic", "type=", "input_value", "For further information")


def _types(spec: dict) -> set:
    """The JSON types a parameter's schema admits (`str | None` is an anyOf of two)."""
    return {arm.get("type") for arm in spec.get("anyOf", [spec])}


def _valid(spec: dict):
    return {"string": "Sweep/Page", "integer": 1, "boolean": False}[spec["type"]]


def _wrong(spec: dict):
    """A value of a type the parameter does not take."""
    return {"string": 123, "integer": "many", "boolean": "maybe"}[(_types(spec) - {"null"}).pop()]


def bad_calls(tool) -> list[tuple[dict, str]]:
    """Every kind of bad argument for `tool`, each with what its answer must say.

    Kinds: a required argument missing, an unknown one, and for each parameter a wrong type,
    nested junk, null (where it is not nullable) and each bound overstepped (and a huge int).
    """
    props, required = tool.input_schema["properties"], tool.input_schema.get("required", [])
    base = {name: _valid(props[name]) for name in required}
    calls = [({**base, "zzz_unknown": 1}, "unknown argument 'zzz_unknown'")]
    if required:
        calls.append(({k: v for k, v in base.items() if k != required[0]}, required[0]))
    for name, spec in props.items():
        must = f"argument '{name}' must be"
        calls += [({**base, name: _wrong(spec)}, must), ({**base, name: JUNK}, must)]
        if "null" not in _types(spec):
            calls.append(({**base, name: None}, must))
        if "minimum" in spec:
            calls.append(({**base, name: spec["minimum"] - 1}, f"{must} at least"))
        if "maximum" in spec:
            calls.append(({**base, name: spec["maximum"] + 1}, f"{must} at most"))
            calls.append(({**base, name: 10**40}, f"{must} at most"))
    return calls


async def test_every_bad_argument_of_every_tool_is_a_short_tool_error(mcp):
    """MCP 2025-06-18+: input validation errors are tool errors (isError) the model can read."""
    tools, seen = await mcp.tools(), 0
    for tool in tools:
        for arguments, says in bad_calls(tool):
            result = await mcp.call(tool.name, **arguments)
            where = f"{tool.name}({arguments!r:.80}): {result.text}"
            assert result.is_error, where
            assert result.text.startswith(f"Invalid arguments for {tool.name}: "), where
            assert says in result.text and len(result.text) < 200, where
            assert not any(mark in result.text for mark in DUMP_MARKS), where
            seen += 1
    assert seen > 100  # the sweep really covered the tools


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("read_page", {"path": 123}, "argument 'path' must be a string"),
        ("read_page", {}, "missing required argument 'path'"),
        ("read_page", {"path": "Home", "x": 1}, "unknown argument 'x'"),
        ("search_pages", {"query": "a", "limit": -5}, "argument 'limit' must be at least 1"),
        ("search_pages", {"query": ""}, "argument 'query' must not be empty"),
        ("get_history", {"path": "Home", "limit": 1.5}, "argument 'limit' must be an integer"),
    ],
)
async def test_the_reviewers_examples_read_plainly(mcp, tool, arguments, says):
    result = await mcp.call(tool, **arguments)
    assert result.is_error and result.text == f"Invalid arguments for {tool}: {says}"
