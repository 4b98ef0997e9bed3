"""Otterwiki's editor in process: a save over a newer revision is merged, or shown to resolve.

Real Otterwiki, git and SQLite behind the gateway; the other writer goes through the page API
with its own token, as an agent over MCP does.
"""

from __future__ import annotations

import html
import random
import re
import subprocess

import pytest

from tests.wiki import test_tenancy

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused here
OWNER = test_tenancy.OWNER_A
AGENT = ("did:plc:editor-merge-agent", "merge-agent.test")
HOST = "alpha.localhost"
BASE = "# Plan\n\ntop line\n\nmiddle line\n\nbottom line\n"


@pytest.fixture(scope="module")
def alice(wiki):
    return test_tenancy.Browser(wiki, OWNER)


@pytest.fixture(scope="module")
def agent(wiki):
    """Writes pages of alpha through the page API with an editor's token of its own."""
    wiki.store.upsert_user(*AGENT)
    wiki.store.set_member("alpha", AGENT[0], "editor")
    token = wiki.store.create_token("alpha", AGENT[0], "editor")[1]
    browser = test_tenancy.Browser(wiki)

    def put(path, content):
        url, headers = f"/api/v1/pages/{path}", {"Authorization": f"Bearer {token}"}
        answer = browser.open(HOST, url, "PUT", json={"content": content}, headers=headers)
        assert answer.status_code in (200, 201), answer.get_data(as_text=True)
        return answer.get_json()

    return put


def open_editor(alice, page) -> dict:
    """GET the editor of `page`; return its form's csrf_token and base_revision."""
    text = alice.text(HOST, f"/{page}/edit")
    return fields_of(text)


def fields_of(text: str) -> dict:
    found = {}
    for name in ("csrf_token", "base_revision"):
        values = set(re.findall(rf'name="{name}" value="([^"]*)"', text))
        assert len(values) == 1, (name, values)  # every save form sends the same
        found[name] = values.pop()
    return found


def save(alice, page, form, content):
    data = {**form, "content": content, "commit": "from the editor"}
    return alice.open(HOST, f"/{page}/save", "POST", data=data)


def content_of(alice, page) -> str:
    return alice.open(HOST, f"/api/v1/pages/{page}").get_json()["content"]


def revisions(wiki) -> list[str]:
    repo = wiki.settings.repo_path("alpha")
    log = subprocess.run(["git", "log", "--format=%H"], cwd=repo, capture_output=True, text=True)
    return log.stdout.split()


def test_the_editor_sends_the_revision_it_opened(alice, agent):
    written = agent("Opened", "text\n")
    assert written["revision"].startswith(open_editor(alice, "Opened")["base_revision"])
    assert open_editor(alice, "Never/Written")["base_revision"] == ""


def test_a_save_over_a_change_elsewhere_is_merged_with_a_message(alice, agent):
    agent("Merged", BASE)
    form = open_editor(alice, "Merged")
    agent("Merged", BASE.replace("bottom line", "bottom line, by the agent"))
    answer = save(alice, "Merged", form, BASE.replace("top line", "top line, by alice"))
    assert answer.status_code == 302
    page = content_of(alice, "Merged")
    assert "top line, by alice" in page and "bottom line, by the agent" in page
    shown = html.unescape(alice.text(HOST, "/Merged"))
    assert "your changes were merged with those made since by merge-agent.test" in shown


def test_an_overlapping_save_shows_both_commits_nothing_then_saves_the_resolution(
    wiki, alice, agent
):
    agent("Overlap", BASE)
    form = open_editor(alice, "Overlap")
    theirs = agent("Overlap", BASE.replace("middle line", "middle line, by the agent"))
    mine = BASE.replace("middle line", "middle <script>alert(1)</script> by alice")
    before = revisions(wiki)
    answer = save(alice, "Overlap", form, mine)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 409 and revisions(wiki) == before
    assert "<script>alert(1)</script>" not in text  # shown escaped, never as markup
    textarea = re.search(r'<textarea id="content_editor"[^>]*>(.*?)</textarea>', text, re.S)
    assert html.unescape(textarea.group(1)).strip() == mine.strip()
    panel = html.unescape(re.search(r'id="robot-conflict".*?</div>', text, re.S).group(0))
    assert "-middle line, by the agent\n+middle <script>" in panel
    assert "merge-agent.test" in panel and "<<<<<<< yours" in panel
    again = fields_of(text)
    assert theirs["revision"].startswith(again["base_revision"])
    resolved = mine.replace("by alice", "by alice and the agent")
    assert save(alice, "Overlap", again, resolved).status_code == 302
    assert content_of(alice, "Overlap") == resolved


def test_a_draft_continued_later_keeps_its_revision_and_merges(alice, agent):
    written = agent("Drafted", BASE)
    form = open_editor(alice, "Drafted")
    mine = BASE.replace("top line", "top, drafted")
    # What the editor's script sends: the draft and the revision the editor opened.
    draft = {**form, "content": mine, "revision": form["base_revision"]}
    assert alice.open(HOST, "/Drafted/draft", "POST", data=draft).status_code == 200
    agent("Drafted", BASE.replace("bottom line", "bottom, by the agent"))
    text = alice.open(HOST, "/Drafted/edit", "POST", data={**form, "draft": "edit"})
    text = html.unescape(text.get_data(as_text=True))
    assert "Saving merges the draft with them." in text and "overwrites" not in text
    continued = fields_of(text)
    assert written["revision"].startswith(continued["base_revision"])
    assert save(alice, "Drafted", continued, mine).status_code == 302
    assert content_of(alice, "Drafted") == mine.replace("bottom line", "bottom, by the agent")


def test_a_new_page_someone_else_created_meanwhile_is_a_conflict(wiki, alice, agent):
    form = open_editor(alice, "Fresh/Page")
    agent("Fresh/Page", "the agent was first\n")
    before = revisions(wiki)
    answer = save(alice, "Fresh/Page", form, "# Mine\n")
    assert answer.status_code == 409 and revisions(wiki) == before
    assert "created by someone else" in html.unescape(answer.get_data(as_text=True))


def test_a_page_deleted_meanwhile_is_a_conflict(wiki, alice, agent):
    agent("Gone", BASE)
    form = open_editor(alice, "Gone")
    deleted = alice.open(
        HOST, "/api/v1/pages/Gone", "DELETE", headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert deleted.status_code == 200
    answer = save(alice, "Gone", form, BASE + "more\n")
    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 409 and "deleted or renamed while you edited it" in page
    assert "without base_revision" not in page
    assert alice.open(HOST, "/api/v1/pages/Gone").status_code == 404


@pytest.mark.parametrize("base", ["HEAD", "zz", "0" * 65, "../x"])
def test_a_malformed_base_revision_is_a_400_and_writes_nothing(wiki, alice, agent, base):
    agent("Malformed", BASE)
    form = {**open_editor(alice, "Malformed"), "base_revision": base}
    before = revisions(wiki)
    answer = save(alice, "Malformed", form, "changed\n")
    assert answer.status_code == 400 and "revision" in answer.get_data(as_text=True)
    assert revisions(wiki) == before


@pytest.mark.parametrize(
    ("base", "drafted"),
    [
        ("a " * 12_000, "a " * 12_000 + "b"),  # thirty-first review: 22 s, a worker killed
        ("., " * 3_000, ",. " * 3_000),  # cubic in difflib: 226 s for 3,000 marks
        (("x y " * 2_000 + "\n") * 20, ("y x " * 2_000 + "\n") * 20),  # many costly lines
    ],
    ids=["one-long-line", "punctuation", "many-lines"],
)
def test_the_draft_overview_of_costly_lines_answers(alice, agent, base, drafted):
    """The editor's draft overview marks changed words with Otterwiki's word diff, whose cost
    was cubic in a line's words and which no view budget held: the edit view of a page with
    such a draft answered 500 once its worker was killed, every time. Now word diffs have
    WORD_DIFF_SECONDS a request; past them lines show whole, and the overview answers."""
    written = agent(f"Costly{len(base)}", base)
    page = f"Costly{len(base)}"
    form = open_editor(alice, page)
    draft = {**form, "content": drafted, "revision": written["revision"]}
    assert alice.open(HOST, f"/{page}/draft", "POST", data=draft).status_code == 200
    answer = alice.open(HOST, f"/{page}/edit")
    assert answer.status_code == 200, answer.status_code
    text = answer.get_data(as_text=True)
    compared = "removed" in text and "added" in text
    assert "Continue editing draft" in text and (compared or "too large to compare" in text)


def test_a_draft_too_large_to_compare_in_the_budget_opens_without_the_comparison(alice, agent):
    """Thirty-second review: a draft of 80,000 lines (400 KB) against a page as long kept the
    edit view 30 s in difflib, Pygments and the side-by-side rows, until its worker was killed
    (a 500). The overview is held to the render budget: past it, its buttons and a notice."""
    rng = random.Random(32)
    base = "\n".join(f"l{rng.randrange(810)}" for _ in range(80_000)) + "\n"
    drafted = "\n".join(f"l{rng.randrange(810)}" for _ in range(80_000)) + "\n"
    written = agent("Longdraft", base)
    form = open_editor(alice, "Longdraft")
    draft = {**form, "content": drafted, "revision": written["revision"]}
    assert alice.open(HOST, "/Longdraft/draft", "POST", data=draft).status_code == 200
    answer = alice.open(HOST, "/Longdraft/edit")
    assert answer.status_code == 200, answer.status_code
    text = answer.get_data(as_text=True)
    assert "too large to compare" in text and "Continue editing draft" in text
    assert len(text) < 1_000_000  # not the 15 MB of rows
    # and the draft opens in the editor, whole
    opened = alice.open(HOST, "/Longdraft/edit", "POST", data={**form, "draft": "edit"})
    assert opened.status_code == 200
    assert html.unescape(opened.get_data(as_text=True)).count("\nl") >= 79_000
