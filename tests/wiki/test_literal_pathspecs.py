"""A page or attachment name means exactly that file to git, never a glob or pathspec magic.

Reviewer's finding: git read page names as pathspecs, so the history of page `a*` listed the
commits of `ab`, and `:(exclude)x` had no history at all. Every git the wiki service starts now
reads paths literally (app.core.git_env.LITERAL_PATHSPECS): Otterwiki's history, blame, diff,
rename and delete views, and the page API's own git calls alike. Real git and Otterwiki, in
process. A write to a page whose name starts with ':' also stages it by its literal name
(app.wiki.otterwiki.storage.stage_with_git): GitPython's parser of `git diff --raw -z` split
that name and raised in a thread (a test error here), which Otterwiki's `update` ran into.
"""

from __future__ import annotations

import html
import re
import subprocess
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from werkzeug.test import Client

from app.core.wikis import create_wiki
from app.pages import last_commit_index
from app.web.session_cookie import PLAIN_NAME
from tests.wiki.instance import in_process
from tests.wiki.test_attachment_api import otterwiki_form

SLUG = "globs"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:globs-owner", "globs-owner.test")
EDITOR = ("did:plc:globs-editor", "globs-editor.test")

# Names git would read as a glob or as magic; each is a page of its own here.
MAGIC = ["a*", "[ab]", ":(exclude)x", ":(glob)**", ":(icase)AB", ":/top", "*", ":(attr)x"]
# Plain pages such a pattern would match (or, excluded, would leave as the only match).
PLAIN = ["ab", "aa", "x", "top", "b"]
PAGES = MAGIC + PLAIN
# The page API refuses these characters in a page path, before git sees them.
REFUSED = {"a?": "?", ":!x": "!", "a\\b": "\\"}


def git(wiki, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=wiki.repo, capture_output=True, text=True, check=True)
    return done.stdout


def tree(wiki) -> dict[str, str]:
    """Every file at HEAD, with its blob id."""
    listing = git(wiki, "ls-tree", "-r", "-z", "--full-tree", "HEAD").split("\0")
    return {entry.split("\t", 1)[1]: entry.split()[2] for entry in listing if entry}


def api(wiki, method: str, path: str, token: str = "editor", **kwargs):
    """`method` on the page API as `token`'s holder; the answer buffered."""
    headers = {"Authorization": f"Bearer {wiki.tokens[token]}"}
    return wiki.client.open(
        path, method=method, base_url=f"http://{HOST}", headers=headers, buffered=True, **kwargs
    )


def page_url(name: str, tail: str = "") -> str:
    return "/api/v1/pages/" + quote(name, safe="") + tail


def view(wiki, name: str, tail: str):
    """An Otterwiki view of page `name` (`tail`: "/history", "/blame" ...), as a visitor."""
    url = "/" + quote(name, safe="") + tail
    return wiki.client.get(url, base_url=f"http://{HOST}", buffered=True)


def filename(name: str) -> str:
    return name.lower() + ".md"


def form(wiki, name: str, action: str, data: dict):
    """Post Otterwiki's rename or delete form of page `name` as the signed-in owner."""
    url = "/" + quote(name, safe="") + "/" + action
    return otterwiki_form(wiki.browser, url, url, data, host=HOST)


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """A public wiki with each of PAGES written twice, all once before any twice; each page's
    revisions, newest first."""
    made = in_process(tmp_path_factory.mktemp("globs"), [OWNER, EDITOR])
    store = made.platform.store
    create_wiki(made.settings, store, SLUG, OWNER[0], "Globs", public=True)
    store.set_member(SLUG, EDITOR[0], "editor")
    tokens = {
        "editor": store.create_token(SLUG, EDITOR[0], "editor")[1],
        "owner": store.create_token(SLUG, OWNER[0], "admin")[1],
    }
    browser = Client(made.app)
    browser.set_cookie(PLAIN_NAME, store.create_session(OWNER[0], HOST, 600)[1], domain=HOST)
    wiki = SimpleNamespace(
        client=Client(made.app),
        browser=browser,
        tokens=tokens,
        repo=made.settings.repo_path(SLUG),
        revisions={name: [] for name in PAGES},
    )
    for turn in ("one", "two"):
        for name in PAGES:
            body = {"content": f"{turn} of {name}\n", "message": f"{turn} {name}"}
            answer = api(wiki, "PUT", page_url(name), json=body)
            assert answer.status_code in (200, 201), (name, answer.get_data(as_text=True))
            wiki.revisions[name].insert(0, answer.get_json()["revision"])
    yield wiki
    made.app.tenancy.close()
    store.close()


@pytest.mark.parametrize("name", REFUSED)
def test_the_page_api_refuses_some_names_before_git_sees_them(wiki, name):
    answer = api(wiki, "PUT", page_url(name), json={"content": "x"})
    assert answer.status_code == 400
    assert f"must not contain {REFUSED[name]}" in answer.get_json()["error"]


def test_every_name_is_its_own_file(wiki):
    assert {filename(name) for name in PAGES} <= set(tree(wiki))


@pytest.mark.parametrize("name", PAGES)
def test_the_page_api_history_lists_only_the_pages_own_commits(wiki, name):
    answer = api(wiki, "GET", page_url(name, "/history"))
    assert answer.status_code == 200
    revisions = answer.get_json()["revisions"]
    assert [r["revision"] for r in revisions] == wiki.revisions[name]
    assert [r["message"] for r in revisions] == [f"two {name}", f"one {name}"]


@pytest.mark.parametrize("name", PAGES)
def test_the_page_api_reads_the_pages_own_last_commit(wiki, name):
    answer = api(wiki, "GET", page_url(name))
    assert answer.status_code == 200
    page = answer.get_json()
    assert page["content"] == f"two of {name}\n"
    assert page["revision"] == wiki.revisions[name][0]


@pytest.mark.parametrize("name", PAGES)
def test_the_history_view_lists_only_the_pages_own_commits(wiki, name):
    answer = view(wiki, name, "/history")
    assert answer.status_code == 200
    shown = re.findall(r'id="radio-a-([0-9a-f]+)"', answer.get_data(as_text=True))
    assert len(shown) == 2
    own = wiki.revisions[name]
    assert all(full.startswith(short) for short, full in zip(shown, own, strict=True))


@pytest.mark.parametrize("name", PAGES)
def test_the_blame_view_shows_the_pages_own_text(wiki, name):
    for tail in ("/blame", f"/blame/{wiki.revisions[name][1]}"):
        answer = view(wiki, name, tail)
        assert answer.status_code == 200, tail
        text = html.unescape(answer.get_data(as_text=True))
        turn = "two" if tail == "/blame" else "one"
        assert f"{turn} of {name}" in text
        mine = f"{turn} of {name}"
        assert not [o for o in PAGES if f"{turn} of {o}" not in mine and f"{turn} of {o}" in text]


@pytest.mark.parametrize("name", PAGES)
def test_the_diff_view_shows_the_pages_own_change(wiki, name):
    older, newer = reversed(wiki.revisions[name])
    answer = view(wiki, name, f"/diff/{older}/{newer}")
    assert answer.status_code == 200
    text = html.unescape(answer.get_data(as_text=True))
    assert f"one of {name}" in text and f"two of {name}" in text


def test_a_merge_names_only_those_who_changed_that_page(wiki):
    """The merged_authors of a write over an older base come from `git log base..head --
    <page>`: a glob there named whoever changed a neighbour."""
    base = wiki.revisions["a*"][0]
    assert api(wiki, "PUT", page_url("ab"), "owner", json={"content": "owner's ab\n"}).status_code
    changed = api(wiki, "PUT", page_url("a*"), json={"content": "two of a*\nmore\n"})
    assert changed.status_code == 200
    merged = api(
        wiki, "PUT", page_url("a*"), json={"content": "first\ntwo of a*\n", "base_revision": base}
    )
    assert merged.status_code == 200 and merged.get_json()["merged"] is True
    assert merged.get_json()["merged_authors"] == [EDITOR[1]]


ATTACHMENTS = ["*", "a*", "[ab]", ":(exclude)f", ":(glob)**", "ab", "f"]


def test_attachments_with_magic_names_and_on_magic_pages_are_their_own(wiki):
    """Upload to page `*` and page `ab`; each attachment's history (Otterwiki's attachment
    view) is its own upload; deleting a magic one removes it alone."""
    uploaded = {}
    for page in ("*", "ab"):
        for name in ATTACHMENTS:
            url = page_url(page, "/attachments/" + quote(name, safe=""))
            answer = api(wiki, "PUT", url, data=f"{name} on {page}".encode())
            assert answer.status_code == 201, (page, name, answer.get_data(as_text=True))
            uploaded[page, name] = answer.get_json()["revision"]
    for page in ("*", "ab"):
        listed = api(wiki, "GET", page_url(page, "/attachments")).get_json()["attachments"]
        assert sorted(a["name"] for a in listed) == sorted(ATTACHMENTS)
        assert all(a["last_changed"] for a in listed)
        for name in ATTACHMENTS:
            url = "/" + quote(page, safe="") + "/attachment/" + quote(name, safe="")
            shown = wiki.browser.get(url, base_url=f"http://{HOST}", buffered=True)
            assert shown.status_code == 200, (page, name)
            commits = re.findall(r'title="revert commit ([0-9a-f]+)"', shown.get_data(as_text=True))
            assert len(commits) == 1 and uploaded[page, name].startswith(commits[0]), (page, name)
    for name in ATTACHMENTS:
        if name in ("ab", "f"):
            continue
        before = tree(wiki)
        gone = api(wiki, "DELETE", page_url("*", "/attachments/" + quote(name, safe="")))
        assert gone.status_code == 200, (name, gone.get_data(as_text=True))
        before.pop(f"*/{name}")
        assert tree(wiki) == before


def test_the_last_commit_walk_of_folder_star_reads_that_folder_alone(wiki):
    """app.pages.last_commit_index dates a page's attachments with `git log -- <folder>`."""
    found, _, _ = last_commit_index.walk(wiki.repo, under="*")
    assert found and all(name.startswith("*/") for name in found)


@pytest.mark.parametrize("name", MAGIC)
def test_rename_and_delete_act_on_the_page_alone(wiki, name):
    """API rename away, Otterwiki's rename back, Otterwiki's delete, then again the page API's
    delete: each time every other file stays as it was."""
    own = filename(name)
    stem = own[:-3]

    def moved(before: dict, old: str, new: str) -> dict:
        """`before` with page `old` and its folder (attachments) as `new`'s."""
        after = {}
        for path, blob in before.items():
            if path == f"{old}.md" or path.startswith(f"{old}/"):
                path = new + path[len(old) :]
            after[path] = blob
        return after

    before = tree(wiki)
    answer = api(wiki, "POST", page_url(name, "/rename"), json={"to": "Moved"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert tree(wiki) == moved(before, stem, "moved")

    before = tree(wiki)
    answer = form(wiki, "Moved", "rename", {"new_pagename": name, "message": "back"})
    assert answer.status_code in (200, 302), answer.get_data(as_text=True)[:500]
    assert tree(wiki) == moved(before, "moved", stem)
    assert api(wiki, "GET", page_url(name, "/history")).get_json()["revisions"][0]["message"] == (
        "back"
    )

    before = tree(wiki)
    answer = form(wiki, name, "delete", {"message": "gone"})
    assert answer.status_code in (200, 302), answer.get_data(as_text=True)[:500]
    before.pop(own)
    assert tree(wiki) == before

    api(wiki, "PUT", page_url(name), json={"content": f"again {name}\n"})
    before = tree(wiki)
    assert api(wiki, "DELETE", page_url(name)).status_code == 200
    before.pop(own)
    assert tree(wiki) == before
