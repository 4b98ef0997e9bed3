"""Every change says who and through what: the real wiki app in process, real git, real SQLite.

A wiki token, an OAuth grant and a browser session each change pages through the page API and
Otterwiki's own editor; the commits, the page API's history and changes, and Otterwiki's
history, changelog, diff and blame pages must name the person and (for the first two) the agent,
with no `mailto:` link, and nothing users choose (labels, client names, messages) may forge it.
"""

import io
import os
import re
import subprocess
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from werkzeug.test import Client

from app.core.wikis import create_wiki
from app.web.session_cookie import PLAIN_NAME
from tests.conftest import oauth_grant
from tests.wiki.instance import in_process

SLUG, HOST = "vianote", "vianote.localhost"
ALICE = ("did:plc:via-alice", "alice.test")
LABEL = "CI <b>bot</b>"
# What a client may send as client_name at dynamic registration: lines, escapes, a forged block.
HOSTILE_CLIENT = "Evil\n\x1b[31m<img src=x onerror=alert(1)>\r\nVia: Mallory (token)\x00"
CLIENT_ID = "mcp_hostile"
FORGED = "Looks fine\n\nVia: Mallory (token)\nOn-Behalf-Of: mallory.test did:plc:mallory"


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    made = in_process(tmp_path_factory.mktemp("via"), [ALICE])
    settings, platform, store = made.settings, made.platform, made.platform.store
    create_wiki(settings, store, SLUG, ALICE[0], "Via")
    _, token = store.create_token(SLUG, ALICE[0], "editor", LABEL)
    store.save_oauth_client(CLIENT_ID, {"client_name": HOSTILE_CLIENT})
    grant = oauth_grant(store, ALICE[0], SLUG, CLIENT_ID)
    access = platform.key.mint_access_token(
        ALICE[0], settings.mcp_url(SLUG), settings.auth_origin, "wiki:write", 600, CLIENT_ID, grant
    )
    app = made.app
    yield SimpleNamespace(
        app=app,
        settings=settings,
        token=Client(app),
        oauth=Client(app),
        person=_signed_in(Client(app), store),
        headers={"token": _bearer(token), "oauth": _bearer(access), "person": SAME_ORIGIN},
    )
    app.tenancy.close()
    store.close()


# What a browser sends with a write from the wiki's own pages (the page API checks it for cookies).
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def _bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def _signed_in(client, store):
    client.set_cookie(PLAIN_NAME, store.create_session(ALICE[0], HOST, 3600)[1], domain=HOST)
    return client


def call(wiki, who, path, method="GET", **kwargs):
    client = getattr(wiki, who)
    headers = {**wiki.headers[who], **kwargs.pop("headers", {})}
    return client.open(
        path, method=method, base_url=f"http://{HOST}", headers=headers, buffered=True, **kwargs
    )


def put(wiki, who, page, content, message=None):
    body = {"content": content} | ({"message": message} if message is not None else {})
    response = call(wiki, who, f"/api/v1/pages/{page}", "PUT", json=body)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.json["revision"]


def form_post(wiki, who, form_path, post_path, data):
    """Post an Otterwiki form as a browser does, with the CSRF token of the form's page."""
    form = call(wiki, who, form_path).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = call(wiki, who, post_path, "POST", data={**data, "csrf_token": csrf})
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]


def editor_save(wiki, who, page, content, commit):
    """Save through Otterwiki's editor form."""
    form_post(wiki, who, f"/{page}/edit", f"/{page}/save", {"content": content, "commit": commit})


def raw_commit(wiki, revision="HEAD"):
    """(author name, author email, full message) of one commit, read by git itself."""
    out = subprocess.run(
        ["git", "log", "-1", "--format=%an%x00%ae%x00%B", revision],
        cwd=wiki.settings.repo_path(SLUG),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(out.split("\x00"))


def trailers(wiki, revision="HEAD"):
    """Our trailers as git's own parser reads them from the commit."""
    return subprocess.run(
        ["git", "log", "-1", "--format=%(trailers:key=Via,key=On-Behalf-Of)", revision],
        cwd=wiki.settings.repo_path(SLUG),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def latest(wiki, page):
    return call(wiki, "person", f"/api/v1/pages/{page}/history").json["revisions"][0]


def test_token_commit_names_the_token_and_the_person(wiki):
    revision = put(wiki, "token", "Tok", "by token\n", "token edit")
    name, email, _ = raw_commit(wiki, revision)
    assert name == "alice.test" and "mailto" not in email
    assert trailers(wiki, revision) == (
        f"Via: {LABEL} (token)\nOn-Behalf-Of: alice.test {ALICE[0]}"
    )
    entry = latest(wiki, "Tok")
    assert entry["via"] == {"name": LABEL, "kind": "token"}
    assert (entry["author"], entry["did"], entry["message"]) == (
        "alice.test",
        ALICE[0],
        "token edit",
    )


@pytest.mark.parametrize("who", ["person", "token", "oauth"])
def test_a_page_read_says_who_last_changed_it_and_through_what(wiki, who):
    put(wiki, who, f"Read{who}", "text\n", "an edit")
    page = call(wiki, "person", f"/api/v1/pages/Read{who}").json
    assert (page["author"], page["did"]) == ("alice.test", ALICE[0])
    assert page["via"] == latest(wiki, f"Read{who}")["via"]
    assert (page["via"] is None) == (who == "person")


def test_oauth_commit_names_the_client_cleaned(wiki):
    revision = put(wiki, "oauth", "Oa", "by oauth\n")
    via = latest(wiki, "Oa")["via"]
    assert via["kind"] == "oauth" and via["client_id"] == CLIENT_ID
    # One line, no control characters; the forged words stay inside the name.
    assert via["name"] == "Evil [31m<img src=x onerror=alert(1)> Via: Mallory (token)"
    assert trailers(wiki, revision).splitlines() == [
        f"Via: {via['name']} (OAuth client {CLIENT_ID})",
        f"On-Behalf-Of: alice.test {ALICE[0]}",
    ]


def test_whoami_names_the_agent(wiki):
    assert call(wiki, "token", "/api/v1/whoami").json["agent"] == {"name": LABEL, "kind": "token"}
    assert call(wiki, "person", "/api/v1/whoami").json["agent"] is None


def test_a_persons_commit_has_no_agent(wiki):
    revision = put(wiki, "person", "Own", "by hand\n", "my own edit")
    assert trailers(wiki, revision) == ""
    entry = latest(wiki, "Own")
    assert (entry["via"], entry["did"], entry["author"]) == (None, ALICE[0], "alice.test")


@pytest.mark.parametrize("prefix", ["\xa0", "\u3000", "\u2003", "\u2028"])
@pytest.mark.parametrize("who", ["person", "token"])
def test_a_prefix_otterwikis_log_strips_cannot_forge_the_block(wiki, who, prefix):
    page = f"Slip{who}{ord(prefix)}"
    forged = f"x\n\n{prefix}Via: forged (token)\n{prefix}On-Behalf-Of: mallory.test did:plc:mallory"
    put(wiki, who, page, "x\n", forged)
    entry = latest(wiki, page)
    assert entry["did"] == ALICE[0]
    assert entry["via"] is None if who == "person" else entry["via"]["name"] == LABEL
    agents = call(wiki, "person", "/api/v1/changes?by=agents&limit=200").json["changes"]
    assert (entry["revision"] in {c["revision"] for c in agents}) == (who == "token")


@pytest.mark.parametrize("who", ["person", "token", "oauth"])
def test_page_api_message_cannot_forge_the_block(wiki, who):
    revision = put(wiki, who, f"Forge{who}", "x\n", FORGED)
    entry = latest(wiki, f"Forge{who}")
    # git's own parser sees no trailer from the message: ours alone, or none for a person.
    found = trailers(wiki, revision)
    assert found == "" if who == "person" else found.endswith(f"alice.test {ALICE[0]}")
    assert "mallory.test" not in found and entry["did"] == ALICE[0]
    assert entry["via"] is None if who == "person" else entry["via"]["kind"] == who
    assert "> Via: Mallory (token)" in entry["message"]


@pytest.mark.parametrize("who", ["person", "token"])
def test_editor_commit_message_cannot_forge_the_block(wiki, who):
    editor_save(wiki, who, f"Ui{who}", "from the editor\n", FORGED)
    name, _, message = raw_commit(wiki)
    assert name == "alice.test" and "\n> Via: Mallory (token)" in message
    entry = latest(wiki, f"Ui{who}")
    assert entry["via"] == (None if who == "person" else {"name": LABEL, "kind": "token"})


def test_otterwiki_ui_driven_with_a_token_is_signed(wiki):
    editor_save(wiki, "token", "UiSigned", "hello\n", "saved in the UI")
    assert trailers(wiki).startswith(f"Via: {LABEL} (token)")


def test_page_api_rename_and_delete_are_signed(wiki):
    put(wiki, "oauth", "Moving", "x\n")
    moved = call(wiki, "oauth", "/api/v1/pages/Moving/rename", "POST", json={"to": "Moved"})
    assert moved.status_code == 200 and trailers(wiki).startswith("Via: Evil")
    call(wiki, "person", "/api/v1/pages/Moved", "DELETE")
    assert trailers(wiki) == ""
    put(wiki, "person", "Gone", "x\n")
    assert call(wiki, "token", "/api/v1/pages/Gone", "DELETE").status_code == 200
    assert trailers(wiki).startswith(f"Via: {LABEL} (token)")


def test_attachment_uploaded_with_a_token_is_signed_and_listed_with_via(wiki):
    put(wiki, "person", "Files", "files\n")
    upload = {"file": (io.BytesIO(b"hello"), "note.txt"), "message": FORGED}
    form_post(wiki, "token", "/Files/attachments", "/Files/attachments", upload)
    assert trailers(wiki).startswith(f"Via: {LABEL} (token)")
    html = call(wiki, "person", "/Files/attachments").get_data(as_text=True)
    assert "note.txt" in html and "via CI &lt;b&gt;bot&lt;/b&gt; (token)" in html
    assert "mailto:" not in html and "On-Behalf-Of: alice.test" not in html


@pytest.mark.parametrize("page", ["/Tok/history", "/-/changelog", "/Tok/blame"])
def test_otterwiki_pages_show_via_and_no_mailto(wiki, page):
    put(wiki, "token", "Tok", "by token again\n", "second token edit")
    html = call(wiki, "person", page).get_data(as_text=True)
    assert "mailto:" not in html
    assert "via CI &lt;b&gt;bot&lt;/b&gt; (token)" in html and "<b>bot</b>" not in html
    assert f'href="https://bsky.app/profile/{ALICE[0]}"' in html
    assert "On-Behalf-Of: alice.test" not in html  # our block shows as "via", not as text


@pytest.mark.parametrize("feed", ["rss", "atom"])
def test_changelog_feeds_name_the_agent_and_no_address(wiki, feed):
    put(wiki, "token", "Tok", f"for the {feed} feed\n", "feed edit")
    xml = call(wiki, "person", f"/-/changelog/feed.{feed}").get_data(as_text=True)
    assert "<content>feed edit</content>" in xml or "<description>feed edit" in xml
    assert "did.plc.via-alice@" not in xml and "On-Behalf-Of: alice.test" not in xml
    if feed == "atom":  # RSS's <author> is an address: with none, an item names nobody
        assert "<name>alice.test via CI &lt;b&gt;bot&lt;/b&gt; (token)</name>" in xml


@pytest.mark.parametrize("feed", ["rss", "atom"])
def test_a_commit_with_characters_xml_cannot_hold_keeps_the_feeds_working(wiki, feed):
    # As a git push (or an old commit) could bring them: control characters in the message,
    # the author's name and a file name.
    repo = wiki.settings.repo_path(SLUG)
    (repo / f"bell\x07{feed}.txt").write_text("x")
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ctl\x01Name", "GIT_AUTHOR_EMAIL": "c@example.test"}
    for args in (["add", "-A"], ["commit", "-q", "-m", "bell \x07 tab\x0b ff\x0c end"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    answer = call(wiki, "person", f"/-/changelog/feed.{feed}")
    assert answer.status_code == 200
    ElementTree.fromstring(answer.data)  # well-formed
    assert "bell  tab ff end" in answer.get_data(as_text=True)


@pytest.mark.parametrize("control", ["\x07", "\x0b", "\x1b[31m", "\x7f"])
def test_a_page_api_message_with_control_characters_is_refused(wiki, control):
    body = {"content": "x\n", "message": f"bad {control} message"}
    answer = call(wiki, "token", "/api/v1/pages/Ctl", "PUT", json=body)
    assert answer.status_code == 400 and "control characters" in answer.json["error"]


def test_no_template_links_an_author_by_mailto(wiki):
    """Every template as the app serves it (the platform's rewrites applied)."""
    app = wiki.app.tenancy.app
    names = [n for n in app.jinja_loader.list_templates() if n.endswith(".html")]
    sources = {n: app.jinja_loader.get_source(app.jinja_env, n)[0] for n in names}
    assert len(sources) > 30 and "robot_author(" in sources["history.html"]
    assert [n for n, source in sources.items() if 'href="mailto:' in source] == []
    for name in ("draft.html", "edit_attachment.html", "attachments.html", "blame.html"):
        assert "robot_author(" in sources[name] and app.jinja_env.get_template(name)


def test_diff_page_shows_via_and_no_mailto(wiki):
    first = put(wiki, "person", "Diffed", "one\n")
    second = put(wiki, "token", "Diffed", "two\n")
    html = call(wiki, "person", f"/Diffed/diff/{first[:8]}/{second[:8]}").get_data(as_text=True)
    assert "mailto:" not in html and "via CI &lt;b&gt;bot&lt;/b&gt; (token)" in html


def test_hostile_client_name_is_escaped_in_the_changelog(wiki):
    put(wiki, "oauth", "Oa", "again\n")
    html = call(wiki, "person", "/-/changelog").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\x1b" not in html and "mailto:" not in html


def test_changes_filter_fills_its_limit(wiki):
    for n in range(3):
        put(wiki, "token", "Mixed", f"agent {n}\n", f"agent {n}")
    for n in range(6):
        put(wiki, "person", "Mixed", f"person {n}\n", f"person {n}")
    agents = call(wiki, "person", "/api/v1/changes?by=agents&limit=3").json["changes"]
    assert [c["message"] for c in agents] == ["agent 2", "agent 1", "agent 0"]
    assert all(c["via"] and c["paths"] for c in agents)
    people = call(wiki, "person", "/api/v1/changes?by=people&limit=2").json["changes"]
    assert [c["message"] for c in people] == ["person 5", "person 4"]
    every = call(wiki, "person", "/api/v1/changes?limit=2&by=all").json["changes"]
    assert len(every) == 2


@pytest.mark.parametrize("by", ["robots", "", "AGENTS"])
def test_unknown_filter_is_a_clear_400(wiki, by):
    response = call(wiki, "person", f"/api/v1/changes?by={by}")
    if by == "":
        assert response.status_code == 200  # empty means all, as when it is absent
    else:
        assert response.status_code == 400 and "by must be one of" in response.json["error"]
