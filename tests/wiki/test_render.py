"""Rendered page bodies cached by content, and every render held to a CPU budget (in process).

Each view names its renders in the X-Robot-Render header (hit, miss, over-budget): a miss is a
render, so counting misses counts renders.
"""

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from git.cmd import Git as GitCommand
from git.exc import GitCommandError
from markupsafe import escape
from werkzeug.test import Client

from app.core.wikis import create_wiki
from app.wiki.otterwiki.patterns import linear_wiki_link
from app.wiki.otterwiki.render import RENDER_HEADER
from tests.conftest import children_of
from tests.conftest import forked_copies
from tests.wiki.instance import in_process

OWNER = ("did:plc:render-owner", "render-owner.test")


def _instance(data, **env):
    return in_process(data, [OWNER], **env)


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """Public wikis alpha, beta and gamma (kept free of costly pages) with an editor token
    each; the default budget. Each is opened now: an in-process instance made later in the
    module (test_a_corrupt_cache_file_never_breaks_a_view, `tight`) rebinds Otterwiki's
    globals, and a wiki this one opens after that finds no tables."""
    made = _instance(tmp_path_factory.mktemp("render"))
    made.tokens = {}
    for slug in ("alpha", "beta", "gamma"):
        create_wiki(made.settings, made.platform.store, slug, OWNER[0], public=True)
        made.tokens[slug] = made.platform.store.create_token(slug, OWNER[0], "editor")[1]
        assert view(made, slug, "/Home")[0].status_code == 200
    yield made
    made.app.tenancy.close()
    made.platform.store.close()


def put(wiki, slug, path, content):
    response = Client(wiki.app).put(
        f"/api/v1/pages/{path}",
        json={"content": content},
        base_url=f"http://{slug}.localhost",
        buffered=True,
        headers={"Authorization": f"Bearer {wiki.tokens[slug]}"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def view(wiki, slug, path):
    response = Client(wiki.app).get(path, base_url=f"http://{slug}.localhost", buffered=True)
    return response, response.headers.get(RENDER_HEADER, "")


def test_second_view_renders_nothing(wiki):
    put(wiki, "alpha", "Twice", "# Twice\n\nSome *text* and a [[Link]].\n")
    first, renders = view(wiki, "alpha", "/Twice")
    again, cached = view(wiki, "alpha", "/Twice")
    assert (first.status_code, renders) == (200, "miss")
    assert (again.status_code, cached) == (200, "hit")
    body = '<p>Some <em>text</em> and a <a href="/Link">Link</a>.</p>'
    assert body in first.get_data(as_text=True) and body in again.get_data(as_text=True)


def test_an_edit_renders_once_more(wiki):
    put(wiki, "alpha", "Edited", "# Before\n")
    view(wiki, "alpha", "/Edited")
    put(wiki, "alpha", "Edited", "# After\n")
    renders = [view(wiki, "alpha", "/Edited")[1] for _ in range(3)]
    assert renders == ["miss", "hit", "hit"]
    assert b"After" in view(wiki, "alpha", "/Edited")[0].get_data()


def test_wikis_with_the_same_page_never_share_an_entry(wiki):
    for slug in ("alpha", "beta"):
        put(wiki, slug, "Same", "# Same\n\nIdentical content.\n")
    assert [view(wiki, slug, "/Same")[1] for slug in ("alpha", "beta")] == ["miss", "miss"]


def test_no_view_carries_a_datatable_script_from_the_last_render(wiki):
    # Otterwiki's datatable embedding keeps its script in the renderer's state, which a cache
    # hit does not set: the page would carry the last rendered page's, another wiki's maybe.
    table = "{{Datatable\n| secret-column-of-alpha |\n|---|\n| x |\n}}\n"
    put(wiki, "alpha", "Table", table)
    put(wiki, "beta", "Plain", "# Plain\n")
    for slug, path in (("alpha", "/Table"), ("beta", "/Plain"), ("alpha", "/Table")):
        body = view(wiki, slug, path)[0].get_data(as_text=True)
        assert "simpleDatatables.DataTable(" not in body and "options_" not in body
    assert 'id="s-dt-' in view(wiki, "alpha", "/Table")[0].get_data(as_text=True)


def test_a_config_value_the_renderer_reads_is_never_served_stale(wiki):
    put(wiki, "beta", "Styled", "See [[Target Page|the title]].\n")
    before = view(wiki, "beta", "/Styled")[0].get_data(as_text=True)
    # What the admin's preferences form writes; another process may write it just as well.
    db = sqlite3.connect(wiki.settings.wiki_db_path("beta"))
    with db:
        db.execute("INSERT INTO preferences (name, value) VALUES ('WIKILINK_STYLE', 'LinkTitle')")
    db.close()
    after, renders = view(wiki, "beta", "/Styled")
    assert 'href="/the%20title"' in before and 'href="/Target%20Page"' not in before
    assert renders == "miss" and 'href="/Target%20Page"' in after.get_data(as_text=True)


def test_every_spelling_of_a_page_s_name_shares_one_render(wiki):
    """Review 54: the key held the page's URL as the request spelled it, so /Big, /big, /BIG
    (2^n spellings of an n-letter name, the page opens under each) each paid a whole render,
    over-budget ones 2 s each, and each stored an entry. The URL `./` links start from is the
    file's spelling now, the same HTML for every spelling."""
    put(wiki, "alpha", "Spelled Élan", "See [the sub page](./Sub) and ![x](./pic.png).\n")
    spellings = ["/Spelled%20Élan", "/spelled%20élan", "/SPELLED%20ÉLAN", "/sPeLlEd%20éLaN"]
    spellings += ["/Spelled%20%C3%89lan/view", "/spelled%20%c3%a9lan/", "/SPELLED%20ÉLAN.md"]
    answers = [view(wiki, "alpha", spelling) for spelling in spellings]
    assert [response.status_code for response, _ in answers] == [200] * len(spellings)
    assert [renders for _, renders in answers] == ["miss"] + ["hit"] * (len(spellings) - 1)
    targets = {_relative_targets(response.get_data(as_text=True)) for response, _ in answers}
    assert targets == {("/spelled%20%C3%A9lan/./Sub", "/spelled%20%C3%A9lan/./pic.png")}


def _relative_targets(page: str) -> tuple[str, ...]:
    return tuple(re.findall(r'(?:href|src)="([^"]*/\./[^"]*)"', page))


def test_a_run_of_brackets_renders_within_the_budget(wiki):
    """The wiki-link pattern spent ~25 s on 200 KB of `[` (quadratic: ~4 s on 80 KB). Now the
    cost is mistune's own, linear, token per bracket: about 1 s per 100 KB here, so 80 KB
    renders well within the 2 s budget and 200 KB is near it (test_render_stack takes either
    answer for 200 KB)."""
    put(wiki, "alpha", "Brackets", "[" * 80_000)
    response, renders = view(wiki, "alpha", "/Brackets")
    assert (response.status_code, renders) == (200, "miss")


@pytest.mark.parametrize(
    "heading",
    ['"' * 100_000, "ab " * 33_000, "`x` " * 25_000],
    ids=["quotes", "words", "code"],
)
def test_a_long_heading_is_whole_in_the_body_and_short_in_the_chrome(wiki, heading):
    """Review 41: the page's chrome repeats its first heading as title and og:title and every
    heading twice in the sidebar's contents: a 1 MB heading made each view 8.9 MB, past the
    body's growth bound. The body keeps the heading; the chrome has its first 200 characters
    and its anchor."""
    put(wiki, "alpha", "Long Heading", f"# {heading}\n\nSome text.\n\n## Second\n")
    response, _ = view(wiki, "alpha", "/Long%20Heading")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(page) < 7 * len(heading) + 200_000  # the body's share: 5 chars for each `"`
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    # Its first 200 characters (some as entities), or the page's name where its anchor is
    # too long for the contents.
    assert len(title) < 1_200
    assert page.count('href="#second"') >= 1


def test_long_anchors_and_many_headings_stay_out_of_the_chrome(wiki):
    """Review 42: a heading's anchor (its id, from its text) is in the body twice and in the
    contents twice: a 300 KB heading made each view 1.5 MB; and 3,000 headings of 190
    characters made each view 4.8 MB. The contents carry at most 64 KB of headings; the body
    keeps every heading with its anchor whole, so links to it from anywhere still lead there
    (review 43: cut anchors broke links from other pages)."""
    heading = "x" * 300_000
    put(wiki, "alpha", "Anchored", f"# {heading}\n\n[up](#{heading})\n\n## Next\n")
    page = view(wiki, "alpha", "/Anchored")[0].get_data(as_text=True)
    assert len(page) < 4.2 * len(heading) + 200_000  # text, id, its own link and [up]
    assert f'id="{heading}"' in page and page.count(f'href="#{heading}"') == 2
    long = "Lorem ipsum " * 12
    anchor = long.strip().lower().replace(" ", "-")
    put(wiki, "alpha", "Long Target", f"# Top\n\n## {long}\n")
    put(wiki, "alpha", "Long Linker", f"[there](Long%20Target#{anchor})\n")
    target = view(wiki, "alpha", "/Long%20Target")[0].get_data(as_text=True)
    assert f'id="{anchor}"' in target and f'href="#{anchor}"' in target
    many = "".join(f"## {n:04d} {'y' * 185}\n\ntext\n\n" for n in range(3000))
    put(wiki, "alpha", "Many Headings", many)
    page = view(wiki, "alpha", "/Many%20Headings")[0].get_data(as_text=True)
    assert len(page) < 4.2 * len(many)  # the body: each heading, its id and its own link
    assert 'href="#0000-' in page and f"2999 {'y' * 185}" in page  # contents begin; body whole


def deep_history(parent: str, commits: int) -> bytes:
    """A `git fast-import` stream onto commit `parent`: deep.md, then `commits` commits of
    other.md only."""
    stream = [b"commit refs/heads/main\ncommitter t <t@t> 1700000000 +0000\ndata 1\nc\n"]
    stream.append(b"from %s\nM 100644 inline deep.md\ndata 7\n# Deep\n\n" % parent.encode())
    for n in range(commits):
        text = b"%d\n" % n
        stream.append(b"commit refs/heads/main\ncommitter t <t@t> 1700000001 +0000\ndata 1\nc\n")
        stream.append(b"M 100644 inline other.md\ndata %d\n%s\n" % (len(text), text))
    return b"".join(stream)


def test_a_read_is_held_to_its_cpu_with_git_and_its_git_is_killed(wiki, monkeypatch):
    """Review 41's kind beyond the budgeted views: a page view at a revision asks git for the
    page's last commit there, reading the history back to it (0.5 s of git's CPU per 100,000
    commits), on every view. A read that passes its limit (here made 0.2 s) with its git
    answers 503 saying why, and its git is killed; the wiki serves the next request."""
    from app.wiki.otterwiki import request_limit

    create_wiki(wiki.settings, wiki.platform.store, "deep", OWNER[0], public=True)
    repo = wiki.settings.repo_path("deep")
    git = ["git", "-C", str(repo)]
    parent = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    history = deep_history(parent.strip(), 100_000)
    subprocess.run([*git, "fast-import", "--quiet"], input=history, check=True)
    subprocess.run([*git, "reset", "-q", "--hard", "main"], check=True)
    done = subprocess.run([*git, "log", "-1", "--format=%H", "--", "deep.md"], capture_output=True)
    made = done.stdout.decode().strip()  # the commit that made the page, 100,000 commits back
    monkeypatch.setattr(request_limit, "REQUEST_BUDGETS", 0.1)
    monkeypatch.setattr(request_limit, "REQUEST_MIN_SECONDS", 0)
    response, _ = view(wiki, "deep", f"/Deep/view/{made}")
    assert response.status_code == 503, response.status_code
    assert "took more than 0.2 s of CPU" in response.get_data(as_text=True)
    # Review 50: each view cost the whole limit again; the verdict is kept for this HEAD.
    again, outcome = view(wiki, "deep", f"/Deep/view/{made}")
    assert (again.status_code, outcome) == (503, "over-limit-known")
    # Review 54: Otterwiki's views that read by POST as well were held by no limit.
    client = Client(wiki.app)
    host = {"base_url": "http://deep.localhost", "buffered": True}
    page = client.get("/-/search", **host).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for path in ("/Deep/history", f"/Deep/diff/{made}/{made}"):
        posted = client.post(path, data={"csrf_token": csrf}, **host)
        assert posted.status_code == 503, (path, posted.status_code)
    monkeypatch.undo()
    assert view(wiki, "deep", "/Deep")[0].status_code == 200  # the wiki serves the next read
    leftover = subprocess.run(["pgrep", "-f", "rev-list"], capture_output=True, text=True)
    assert not [
        p
        for p in leftover.stdout.split()
        if os.path.exists(f"/proc/{p}/cwd") and os.readlink(f"/proc/{p}/cwd").startswith(str(repo))
    ]


def test_a_limit_passed_as_a_read_ends_leaves_git_whole(wiki, monkeypatch):
    """A read's limit may pass after its answer is made, as its last handlers run: the kill
    that follows takes the git cat-file processes GitPython keeps for the wiki. They were left
    in its cache as zombies the worker never reaped (a full run's forked-copy checks found one
    for minutes), and the wiki's next read asked a dead git. The read's end drops them: no
    zombie is left, and the next read at a revision answers."""
    from flask import request

    from app.wiki.otterwiki import request_limit

    put(wiki, "gamma", "Kept", "# Kept\n")
    repo = wiki.settings.repo_path("gamma")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True)
    at_head = f"/Kept/view/{head.stdout.decode().strip()}"

    def spend_past_the_limit(_error):  # a teardown run before the request limit's own
        if request.headers.get("X-Spend"):
            until = time.process_time() + 1.0
            while time.process_time() < until:
                pass

    app = wiki.app.tenancy.app  # Otterwiki's Flask app; teardowns run last added first
    teardowns = {**app.teardown_request_funcs}
    teardowns[None] = [*teardowns.get(None, []), spend_past_the_limit]
    monkeypatch.setattr(app, "teardown_request_funcs", teardowns)
    monkeypatch.setattr(request_limit, "REQUEST_BUDGETS", 0.1)
    monkeypatch.setattr(request_limit, "REQUEST_MIN_SECONDS", 0)
    for attempt in range(3):
        # The read starts the wiki's cat-file processes (the limit kills only the read's own).
        wiki.app.tenancy.open_wikis["gamma"].repo.git.clear_cache()
        spent = Client(wiki.app).get(
            at_head, base_url="http://gamma.localhost", headers={"X-Spend": "1"}, buffered=True
        )
        assert spent.status_code == 200, spent.status_code
        assert forked_copies() == [], attempt
        assert view(wiki, "gamma", at_head)[0].status_code == 200, attempt


def test_a_read_that_waits_past_its_wall_clock_answers_503_and_its_git_is_killed(wiki, monkeypatch):
    """Review 48: a lowered read's git gets little CPU on a busy host, so its CPU limit came
    late: two such readers held their workers until gunicorn's timeout killed them (an empty
    500). A read is held to a time too: past it, 503 saying so, and its git is killed."""
    from flask import request

    from app.wiki.otterwiki import request_limit

    put(wiki, "beta", "Waited", "# Waited\n")
    started = []

    refused = []

    def wait_on_git():  # a before-request handler run after the limit's own
        if request.headers.get("X-Wait"):
            started.append(subprocess.Popen(["sleep", "30"]))  # as a git that gets no CPU
            started[-1].wait(timeout=30)
            # Review 49: git started after the stop ran unbounded; it fails at once now.
            for _ in range(3):
                try:
                    GitCommand(str(wiki.settings.repo_path("beta"))).execute(["git", "version"])
                except GitCommandError as error:
                    refused.append(error)

    app = wiki.app.tenancy.app
    handlers = {**app.before_request_funcs}
    handlers[None] = [*handlers.get(None, []), wait_on_git]
    monkeypatch.setattr(app, "before_request_funcs", handlers)
    monkeypatch.setattr(request_limit, "REQUEST_WALL_SECONDS", 0.5)
    waited = Client(wiki.app).get(
        "/Waited", base_url="http://beta.localhost", headers={"X-Wait": "1"}, buffered=True
    )
    assert waited.status_code == 503, waited.status_code
    assert "took more than 0.5 s (a busy server)" in waited.get_data(as_text=True)
    assert started[0].returncode == -9  # killed
    assert len(refused) == 3 and "went past its limit" in str(refused[0])
    assert forked_copies() == []
    assert view(wiki, "beta", "/Waited")[0].status_code == 200


def test_attachments_are_listed_only_for_a_page_that_embeds_the_list(wiki, monkeypatch):
    """Review 49: Otterwiki listed a page's attachments, each with its last commit, on every
    render of every page, for the {{AttachmentList}} few embed: 600 attachments cost 3 s of
    each view, 2,000 a 503. They are listed where the list is embedded, once per render."""
    import otterwiki.wiki

    for name in ("Plain", "Listing"):
        put(wiki, "gamma", name, f"# {name}\n")
        for n in range(3):
            response = Client(wiki.app).put(
                f"/api/v1/pages/{name}/attachments/file{n}.txt",
                data=b"x",
                base_url="http://gamma.localhost",
                buffered=True,
                headers={"Authorization": f"Bearer {wiki.tokens['gamma']}"},
            )
            assert response.status_code in (200, 201), response.get_data(as_text=True)
    put(wiki, "gamma", "Listing", "# Listing\n\n{{AttachmentList}}\n")
    listed = []
    original = otterwiki.wiki.Page._attachments_list
    monkeypatch.setattr(
        otterwiki.wiki.Page,
        "_attachments_list",
        lambda page: listed.append(page.pagepath) or original(page),
    )
    plain, _ = view(wiki, "gamma", "/Plain")
    assert plain.status_code == 200 and listed == []
    listing, renders = view(wiki, "gamma", "/Listing")
    assert listing.status_code == 200 and renders == "miss"
    assert listed == ["Listing"] and "file2.txt" in listing.get_data(as_text=True)


def test_commit_metadata_is_read_once_per_commit(wiki, monkeypatch):
    """Review 49: each call named the commit's files anew (Otterwiki's cache by commit
    missed), a git diff-tree per attachment of a page added in one push."""
    from app.wiki.otterwiki import bounded_views

    put(wiki, "gamma", "Once", "# Once\n")
    storage = wiki.app.tenancy.server.storage
    wiki.app.tenancy.activate(wiki.platform.store.get_wiki("gamma"))
    named = []
    original = bounded_views._NamingChangedFiles.stats
    monkeypatch.setattr(
        bounded_views._NamingChangedFiles,
        "stats",
        property(lambda commit: named.append(commit.hexsha) or original.fget(commit)),
    )
    commit = storage.repo.head.commit
    first = storage._get_metadata_of_commit(commit)
    again = storage._get_metadata_of_commit(storage.repo.commit(commit.hexsha))
    assert first == again and "once.md" in first["files"]
    assert named == [commit.hexsha]


def test_a_page_whose_last_commit_rewrote_large_files_is_viewed_at_little_cost(wiki, monkeypatch):
    """Review 48: Otterwiki's commit metadata counted the lines of every file its commit
    changed (`git diff --numstat`): a page whose last commit also rewrote large files cost
    seconds of git's CPU on every view, past the read's limit (503), and so did its history
    and blame. Only the names are read now: the view fits a limit far below that count."""
    from app.wiki.otterwiki import request_limit

    create_wiki(wiki.settings, wiki.platform.store, "rewritten", OWNER[0], public=True)
    repo = wiki.settings.repo_path("rewritten")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    draws = random.Random(48)
    for version in ("first", "second"):
        for n in range(2):
            lines = "".join(draws.choice("ab") + "\n" for _ in range(200_000))
            (repo / f"data{n}.txt").write_text(lines)
        (repo / "rewritten.md").write_text(f"# Rewritten\n\nThe {version} version.\n")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", version], check=True)
    monkeypatch.setattr(request_limit, "REQUEST_BUDGETS", 0.1)
    monkeypatch.setattr(request_limit, "REQUEST_MIN_SECONDS", 0)
    for path in ("/Rewritten", "/Rewritten/history"):
        response, _ = view(wiki, "rewritten", path)
        assert response.status_code == 200, (path, response.status_code)
    assert "The second version." in view(wiki, "rewritten", "/Rewritten")[0].get_data(as_text=True)


@pytest.mark.parametrize("sliced", [False, True])
@pytest.mark.parametrize("calls", range(1, 9))
def test_a_timer_signal_landing_as_a_run_ends_leaves_no_budget_armed(calls, sliced):
    """Review 50: the budget's signal landed as a run's end began (Python runs a pending
    handler on entry to the next function called), before the disarming's own guard; the run
    stayed armed for the worker's life, and later requests of any wiki on it were stopped at
    random. Here the handler runs on entry to the `calls`-th function called after the run's
    work (inside a slice of the run, or not), as a signal would: wherever it lands, the run
    ends disarmed."""
    from app.wiki.otterwiki import budget as budgets

    budget, after_work = budgets._budget, []

    def work():
        after_work.append(0)
        return "made"

    def profile(_frame, event, _arg):
        if event == "call" and after_work:
            after_work[0] += 1
            if after_work[0] == calls:
                sys.setprofile(None)
                budget._expired(signal.SIGPROF, None)  # raises as the handler would

    sys.setprofile(profile)
    try:
        budget.run((lambda: budget.slice(work, 1.0)) if sliced else work, 5.0)
    except (budgets.RenderOverBudget, budgets.SliceOver):
        pass  # landed before an end began: the run or slice is stopped, as it should be
    finally:
        sys.setprofile(None)
    assert not budget.armed and not budget.slicing and not budget.ending
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGPROF) is not budget._expired


def test_nothing_is_cached_once_a_request_is_stopped(wiki):
    """Review 50: a render finished after its request's limit passed rested on git refused
    under it (its attachment list empty) and was kept in the cache for every view after."""
    from app.wiki.otterwiki import budget
    from app.wiki.otterwiki import render

    cache = render._cache_for(wiki.settings)
    app = wiki.app.tenancy.app
    with app.test_request_context(environ_base={budget.STOPPED: "more than 1 s of CPU"}):
        render.keep(cache, "robot-test-stopped", "made after the stop")
        render.keep(cache, "robot-test-verdict", "its verdict", 60, stopped_too=True)
    assert cache.get("robot-test-stopped") is None
    assert cache.get("robot-test-verdict") == "its verdict"


def test_the_attachment_list_reads_only_its_own_requests_page(wiki):
    """Review 50: the page index renders pages for their headings without a page context,
    and the list found the page another request had rendered last, maybe another wiki's."""
    from otterwiki.plugins import plugin_manager

    (listing,) = [p for p in plugin_manager.get_plugins() if hasattr(p, "_listed")]
    page = SimpleNamespace(_attachments_list=lambda: [{"filename": "theirs.txt"}])
    app = wiki.app.tenancy.app
    with app.test_request_context():
        listing.page_render_context(page=page, preview=False)
        assert listing.attachments == [{"filename": "theirs.txt"}]
    with app.test_request_context():
        assert listing.attachments == []


def test_a_verdict_is_kept_for_one_size_of_an_image_only(wiki):
    """Review 51: a thumbnail that passed the read's limit kept a verdict under a key without
    its size, so every size of the image and the image itself answered 503 for ten minutes,
    to anyone. The sizes Otterwiki reads are in the key."""
    import git

    from app.wiki.otterwiki import verdicts

    tenant = SimpleNamespace(
        slug="gamma",
        wiki=SimpleNamespace(created_at="then"),
        settings=wiki.settings,
        storage=SimpleNamespace(repo=git.Repo(wiki.settings.repo_path("gamma"))),
    )
    app = wiki.app.tenancy.app

    def key(path: str, method: str = "GET", data: dict | None = None, session=None) -> str:
        from flask import session as flask_session

        context = app.test_request_context(
            path, base_url="http://gamma.localhost", method=method, data=data
        )
        with context:
            flask_session.update(session or {})
            return verdicts.verdict_key(tenant)

    sizes = ["", "?thumbnail", "?size=80", "?width=1&height=1024", "?width=2&height=1024"]
    assert len({key(f"/Home/photo.png{query}") for query in sizes}) == len(sizes)
    # Review 52: values it reads as no number, and a view that reads no size, are one view.
    assert key("/Home/photo.png?width=abc") == key("/Home/photo.png?width=") != key("/Home")
    assert len({key(f"/Home/attachments{query}") for query in [*sizes, "?page=2"]}) == 1
    # Review 56: a page's path as Otterwiki opens it; `.md` and doubled slashes dodged the key.
    spellings = ["/Blamed/blame", "/blamed.md/blame", "/BLAMED.md/blame", "/blamed%2Emd/blame"]
    spellings += ["/blamed//blame", "/blamed///blame", "/blamed////blame", "/Blam.ed/blame"]
    assert len({key(spelling) for spelling in spellings}) == 1
    assert key("/Folder//Sub/blame") == key("/folder/sub/blame") != key("/folder/blame")
    # ... the sizes a posted view reads from its form (Otterwiki's request.values) ...
    posted = key("/Home/photo.png", "POST", {"width": "2", "height": "1024"})
    assert posted == key("/Home/photo.png?width=2&height=1024") != key("/Home/photo.png")
    # ... and a search's query and options, by URL or form: each search is a view of its own.
    searches = [{"query": "a"}, {"query": "b"}, {"query": "a", "is_regexp": "y"}]
    assert len({key("/-/search", "POST", form) for form in searches}) == 3
    assert key("/-/search/a") != key("/-/search/b")
    # Review 57: the editor and an old revision are views of their own, a revision as its
    # commit however it is spelled.
    head = tenant.storage.repo.head.commit.hexsha
    assert len({key("/Home"), key("/Home?edit"), key(f"/Home?revision={head}")}) == 3
    assert key(f"/Home?revision={head[:7]}") == key(f"/Home?revision={head.upper()}")
    assert key("/Home?edit", "POST", {"x": "1"}) == key("/Home", "POST", {"edit": ""})
    # ... and a search as Otterwiki reads it: from the form alone, the options as == "y".
    assert key("/-/search?query=a", "POST", {"query": "b"}) == key(
        "/-/search", "POST", {"query": "b"}
    )
    assert key("/-/search", "POST", {"query": "a", "is_regexp": "n1"}) == key(
        "/-/search", "POST", {"query": "a", "is_regexp": "n2"}
    )
    # Review 59: a diff's layout, by `?view` or else the one the session remembers, as
    # Otterwiki picks it: the side-by-side diff's 503 sat on the inline diff, for everyone.
    diff = f"/Home/diff/{head}/{head[:7]}"
    side_by_side = {"diff_view": "side-by-side"}
    assert key(diff) == key(f"{diff}?view=inline") == key(f"{diff}?view=other")
    assert key(f"{diff}?view=side-by-side") == key(diff, session=side_by_side) != key(diff)
    assert key(f"{diff}?view=inline", session=side_by_side) == key(diff)
    # ... and a preview's text and cursor: one costly text's verdict is no other text's.
    previews = [{"content": "a\nb"}, {"content": "b"}, {"content": "a\nb", "cursor_line": "0"}]
    assert len({key("/Home/preview", "POST", form) for form in previews + [{}]}) == 4
    # Review 60: no text (the page's) is not the empty text; a cursor is keyed by its line.
    assert key("/Home/preview", "POST", {"content": ""}) != key("/Home/preview", "POST", {})
    assert key("/Home/preview") == key("/Home/preview", "POST", {})
    one_line = [{"content": "a", "cursor_line": c} for c in ("1", "7", "abc", "99")]
    assert len({key("/Home/preview", "POST", form) for form in one_line}) == 1
    # Review 61: a search the URL names is keyed as written (regexes and case-sensitive
    # searches differ by case), and the form's query, which Otterwiki then ignores, is not.
    assert key("/-/search/(%5CD%2B)%2BX") != key("/-/search/(%5Cd%2B)%2Bx")
    assert key("/-/search/Foo") != key("/-/search/foo")
    assert key("/-/search/abc", "POST", {"query": "1"}) == key(
        "/-/search/abc", "POST", {"query": "2"}
    )


def test_a_costly_diff_layout_leaves_the_other_layout_served(wiki, monkeypatch):
    """Review 59's example: the side-by-side diff of a page went over the budget, and its
    verdict (503) then answered the inline diff of the same revisions too, for every visitor,
    until the wiki changed. Each layout is a view of its own."""
    import otterwiki.wiki

    put(wiki, "gamma", "Laid Out", "# Laid out\n\nfirst\n")
    put(wiki, "gamma", "Laid Out", "# Laid out\n\nsecond\n")
    repo = wiki.settings.repo_path("gamma")
    log = ["git", "-C", str(repo), "log", "-2", "--format=%H", "--", "laid out.md"]
    newer, older = subprocess.run(log, capture_output=True, text=True).stdout.split()
    diff = f"/Laid%20Out/diff/{older}/{newer}"

    def spin(*_args, **_kwargs):  # a side-by-side layout too costly to make
        while True:
            pass

    monkeypatch.setattr(otterwiki.wiki, "diff_side_by_side_html", spin)
    refused, outcome = view(wiki, "gamma", f"{diff}?view=side-by-side")
    assert (refused.status_code, outcome) == (503, "over-budget")
    for layout in ("?view=inline", ""):
        response, outcome = view(wiki, "gamma", f"{diff}{layout}")
        assert response.status_code == 200, (layout, outcome)
        assert "second" in response.get_data(as_text=True)
    again, outcome = view(wiki, "gamma", f"{diff}?view=side-by-side")
    assert (again.status_code, outcome) == (503, "over-budget-known")


@contextmanager
def stalling(monkeypatch, lowered: bool):
    """A block in which every confined sanitizer sleeps past its deadline (0.5 s), as one a
    busy host gives no CPU, and its request counts as `lowered` or not; yields the list that
    gets one item per confined run."""
    from app.core import confined
    from app.wiki.otterwiki import render
    from app.wiki.otterwiki import sanitize

    clean, run_confined, runs = sanitize._clean, confined.run_confined, []

    def counted(*args):
        runs.append(1)
        return run_confined(*args)

    with monkeypatch.context() as patch:
        patch.setattr(confined, "run_confined", counted)
        patch.setattr(sanitize, "SANITIZE_SECONDS", 0.5)
        patch.setattr(sanitize, "_clean", lambda html: time.sleep(5) or clean(html))
        # Else a render past 0.1 s of CPU (a busy test host) would be lowered at random.
        patch.setattr(render, "request_lowered", lambda: lowered)
        yield runs


def test_a_sanitizer_stalled_on_a_busy_host_is_no_verdict_on_the_page(wiki, monkeypatch):
    """Review 59: a page sanitized in a confined child that got no CPU for its 2 s (a busy
    host; here the child sleeps) was kept as its source view for good, for everyone. A stall
    is kept STALLED_SECONDS only (twice that after another), and the next view after renders
    the page."""
    from app.wiki.otterwiki import render
    from app.wiki.otterwiki import sanitize

    content = "<p>x</p>\n" * 1600 + "# Heading\n"  # too many tags to be surely cheap
    assert not sanitize.surely_cheap(content)
    put(wiki, "beta", "Stalled", content)
    monkeypatch.setattr(render, "STALLED_SECONDS", 1)
    with stalling(monkeypatch, lowered=False) as runs:
        stalled, outcome = view(wiki, "beta", "/Stalled")
        assert (stalled.status_code, outcome) == (200, "stalled")
        assert "busy server" in stalled.get_data(as_text=True)
        assert view(wiki, "beta", "/Stalled")[1] == "stalled"  # kept, a short time
        assert len(runs) == 1
        time.sleep(1.1)
        assert view(wiki, "beta", "/Stalled")[1] == "stalled"  # tried again: it stalls again
        assert len(runs) == 2
        time.sleep(1.1)
        assert view(wiki, "beta", "/Stalled")[1] == "stalled"  # ... and is kept twice as long
        assert len(runs) == 2
        time.sleep(1.1)
    response, outcome = view(wiki, "beta", "/Stalled")
    assert (response.status_code, outcome) == (200, "miss")
    assert response.get_data(as_text=True).count("<p>x</p>") == 1600
    assert view(wiki, "beta", "/Stalled")[1] == "hit"


def test_a_stall_in_a_lowered_request_is_shown_to_it_alone(wiki, monkeypatch):
    """Review 61: a request lowered to SCHED_IDLE (its own CPU, or a pool in debt that any
    visitor can cause) forks a sanitizer that gets nothing of a busy host; its stall was kept
    for every visitor, longer each time. It is shown to that request only, and counted not."""
    put(wiki, "beta", "Lowered", "<p>y</p>\n" * 1600)
    with stalling(monkeypatch, lowered=True) as runs:
        outcomes = [view(wiki, "beta", "/Lowered")[1] for _ in range(2)]
    assert outcomes == ["stalled", "stalled"] and len(runs) == 2  # each its own try
    response, outcome = view(wiki, "beta", "/Lowered")
    assert (response.status_code, outcome) == (200, "miss")
    assert response.get_data(as_text=True).count("<p>y</p>") == 1600


def test_a_cursor_renders_as_the_line_otterwiki_puts_it_on():
    """The render key holds the preview's cursor as the line Otterwiki's markdown puts it on
    (render.one_cursor), and a render from that value is the render from the value sent."""
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st
    from otterwiki.renderer import render as renderer

    from app.wiki.otterwiki.render import one_cursor

    lines = st.lists(
        st.sampled_from(["", "text", "# Head", "- item", "```", "| a |", "[[Link]]", "\r"]),
        max_size=12,
    )
    endings = st.sampled_from(["\n", "\r\n", "\u2028", ""])
    cursors = st.one_of(
        st.none(),
        st.integers(-3, 20).map(str),
        st.sampled_from(["", "abc", " 2", "+1", "1_0", "99999999999", "-0", "2.0"]),
    )

    @settings(max_examples=200, deadline=None, database=None)
    @given(lines, endings, cursors)
    def check(parts, ending, cursor):
        text = ending.join(parts)
        one = one_cursor(text, cursor)
        assert renderer.markdown(text, cursor=one) == renderer.markdown(text, cursor=cursor)

    check()


def test_every_spelling_of_a_preview_s_cursor_shares_one_render(wiki):
    """Review 59: `cursor_line` was in the render key as sent, so any string was one more
    render and cache entry; they are one when Otterwiki puts the cursor on the same line."""
    client, host = Client(wiki.app), "http://alpha.localhost"
    bearer = {"Authorization": f"Bearer {wiki.tokens['alpha']}"}
    editor = client.get("/Cursor?edit", base_url=host, buffered=True, headers=bearer)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', editor.get_data(as_text=True))
    renders = []
    for cursor in ["1", "2", "abc", "99999999999", " 0", "-7", "1_0"]:
        response = client.post(
            "/Cursor/preview",
            data={"content": "hello world", "cursor_line": cursor, "csrf_token": csrf[1]},
            base_url=host,
            buffered=True,
            headers=bearer,
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        renders.append(response.headers.get(RENDER_HEADER))
    assert renders == ["miss"] + ["hit"] * 6


def test_a_corrupt_cache_file_never_breaks_a_view(tmp_path):
    made = _instance(tmp_path)
    create_wiki(made.settings, made.platform.store, "torn", OWNER[0], public=True)
    made.tokens = {"torn": made.platform.store.create_token("torn", OWNER[0], "editor")[1]}
    made.settings.render_cache_dir.mkdir(parents=True)
    (made.settings.render_cache_dir / "cache.db").write_bytes(b"SQLite format 3\0" + b"x" * 999)
    put(made, "torn", "Page", "# Page\n")
    response, renders = view(made, "torn", "/Page")
    made.app.tenancy.close()
    made.platform.store.close()
    assert (response.status_code, renders) == (200, "miss")


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A wiki whose instance gives each render 10 ms of CPU: a 200 KB table takes far more."""
    made = _instance(tmp_path_factory.mktemp("tight"), ROBOT_RENDER_BUDGET="0.01")
    create_wiki(made.settings, made.platform.store, "tight", OWNER[0], public=True)
    made.tokens = {"tight": made.platform.store.create_token("tight", OWNER[0], "editor")[1]}
    yield made
    made.app.tenancy.close()
    made.platform.store.close()


@pytest.mark.parametrize("path", ["/-/changelog", "/Deep/history", "/Deep/blame"])
# GitPython drops git's Popen running when stopped mid-read: Python warns, unraisably.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_view_stopped_while_git_reads_leaves_no_git_behind(tight, path):
    """Review 47: a view stopped by its budget while git read (rev-list, blame) dropped git
    unwaited: it ran on, then stayed a zombie until the worker's next git, in another wiki's
    request, whose CPU it then counted (a false 503 there, its verdict kept). The stop kills
    the view's git and reaps it: nothing of it is left when the view answers."""
    repo = tight.settings.repo_path("deep")
    git = ["git", "-C", str(repo)]
    if not repo.exists():  # made by the first of these tests
        create_wiki(tight.settings, tight.platform.store, "deep", OWNER[0], public=True)
        parent = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        history = deep_history(parent.stdout.strip(), 30_000)
        subprocess.run([*git, "fast-import", "--quiet"], input=history, check=True)
        subprocess.run([*git, "reset", "-q", "--hard", "main"], check=True)
    response, renders = view(tight, "deep", path)
    assert response.status_code in (200, 503), response.status_code
    assert forked_copies() == []
    # This process's git but the cat-file processes GitPython keeps for the wikis it serves.
    git = [command(pid).split() for pid in children_of(os.getpid())]
    left = [words for words in git if words[:1] == ["git"] and words[1:2] != ["cat-file"]]
    assert left == []


def command(pid: int) -> str:
    """The command line of process `pid`, its arguments joined by spaces ("" once ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_over_budget_shows_the_escaped_source_once_and_is_cached(tight):
    put(tight, "tight", "Slow", "<b>x</b>\n\n" + "| a | b |\n|---|---|\n" + "| x | y |\n" * 20_000)
    first, renders = view(tight, "tight", "/Slow")
    again, cached = view(tight, "tight", "/Slow")
    assert (first.status_code, renders) == (200, "over-budget")
    assert (again.status_code, cached) == (200, "over-budget")
    assert "shown as its source" in first.get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in first.get_data(as_text=True)


def test_the_editor_opens_where_the_page_index_is_over_the_budget(tight):
    """Sixteenth review: in a wiki of 3,000 pages the index went over its budget, and the
    editor of a page, which Otterwiki builds the whole index for, answered 503 and kept that
    verdict: the page could not be edited in the browser. The index answers 503; the editor
    opens with the pages found in time, and says nothing of headings."""
    repo = tight.settings.repo_path("tight")
    # Enough pages that the build alone (about 0.1 ms a page, linear since list_pages) is far
    # past this instance's 10 ms budget: at 300 it sometimes fit.
    for n in range(3000):
        (repo / f"many{n:04d}.md").write_text(f"# Many {n}\n\n## Part\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "many"], check=True)
    index, _ = view(tight, "tight", "/-/index")
    assert index.status_code == 503, index.status_code
    assert "find pages with search" in index.get_data(as_text=True)
    # Twelfth review: each such view spent the budget again; the verdict is kept. Thirteenth:
    # `?x=1`, `?x=2` ... each cost a full budget; a query the view does not read shares it.
    for query in ("", "?x=1"):
        again, verdict = view(tight, "tight", "/-/index" + query)
        assert (again.status_code, verdict) == (503, "over-budget-known")
    for _ in range(2):  # the second time from the kept verdict, if one was kept
        editor = Client(tight.app).get(
            "/Many0001/edit",
            base_url="http://tight.localhost",
            headers={"Authorization": f"Bearer {tight.tokens['tight']}"},
            buffered=True,
        )
        text = editor.get_data(as_text=True)
        assert editor.status_code == 200, editor.status_code
        assert "## Part" in text and "not listed yet" not in text


def test_preview_goes_through_the_budget(tight):
    put(tight, "tight", "Preview", "| a |\n|---|\n" + "| x |\n" * 20_000)
    response = Client(tight.app).get(
        "/Preview/preview",
        base_url="http://tight.localhost",
        buffered=True,
        headers={"Authorization": f"Bearer {tight.tokens['tight']}"},
    )
    assert response.status_code == 200
    assert "shown as its source" in response.get_json()["preview_content"]


# Nesting nh3's parser (native: the budget's signal waits for it) would spend quadratic time
# on; the renders before it take ~0.3 s here. Without the bound the first took 0.3 s of nh3,
# `"<div>" * 50_000` took 10 s.
@pytest.mark.parametrize(
    "content",
    [
        "<div>" * 12_000,
        "<ul><li>" * 6_000,
        "<blockquote>" * 12_000 + "deep",
        # End tags that close nothing in html5ever's tree (review 35: counted as closing). Not
        # `<b><div></b>`: Otterwiki's BeautifulSoup pass closes the `<div>` at `</b>`, so the
        # view's HTML is flat (test_end_tags_that_close_nothing_count_no_closing counts it),
        # and its 1.7 s render made the answer depend on the machine's speed.
        "<div></i>" * 12_000,
        "<span></div>" * 12_000,
    ],
    ids=["div", "ul-li", "blockquote", "stray-end", "span-stray"],
)
def test_nesting_too_deep_for_the_sanitizer_shows_the_escaped_source(wiki, content):
    put(wiki, "beta", "Deep", content)
    response, renders = view(wiki, "beta", "/Deep")
    body = response.get_data(as_text=True)
    assert (response.status_code, renders) == (200, "over-budget")
    assert "shown as its source" in body and escape(content[:40]) in body


def test_a_page_nh3_would_spend_seconds_on_shows_its_escaped_source(wiki):
    """Review 38: a 47 KB page passed the nesting precheck and held its worker 17 s in nh3 (a
    list item's cell closing 3,000 bold elements html5ever made again at each later item).
    Now nh3 runs for it in a child that is stopped, and the view shows the source."""
    bold = "".join(f"<b id={number}>" for number in range(3000))
    content = "<ul><li><td>" + bold + "<li>x" * 3000 + "<td></ul>\n"
    put(wiki, "beta", "Remade", content)
    response, renders = view(wiki, "beta", "/Remade")
    body = response.get_data(as_text=True)
    # Stalled where the host gave nh3's child less than half its time (review 59).
    assert response.status_code == 200 and renders in ("over-budget", "stalled")
    assert "shown as its source" in body and escape(content[:40]) in body


def test_a_page_whose_sanitizer_cannot_fork_answers_503_and_keeps_no_verdict(wiki, monkeypatch):
    """Review 39: a confined step whose fork failed (a host out of processes or memory) raised
    OSError into the view: a 500. It is a 503 with Retry-After, and the next view renders."""
    import os

    from app.wiki.otterwiki.sanitize import surely_cheap

    content = "<p>x</p>\n" * 1600  # flat, but too many tags for the bound to call cheap
    assert not surely_cheap(content)
    put(wiki, "beta", "Forkless", content)

    def fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fork", fork)
        refused, _ = view(wiki, "beta", "/Forkless")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "try again" in refused.get_data(as_text=True)
    response, renders = view(wiki, "beta", "/Forkless")
    assert (response.status_code, renders) == (200, "miss")
    assert response.get_data(as_text=True).count("<p>x</p>") == 1600


def test_a_page_of_costly_includes_goes_over_its_budget_as_a_whole(wiki):
    """Review 39: each included page's render caught the page's budget stop as its own
    verdict, and the page went on, each later include getting 50 ms more: 450 includes held a
    worker 29 s (killed), 200 rendered as a "miss" after 14.5 s. The stop ends the page's
    render, and no included page keeps a verdict it did not earn."""
    table = "| a | b |\n|---|---|\n" + "| x | [[y|z]] |\n" * 3600  # ~0.7 s to render here
    for n in range(8):
        put(wiki, "beta", f"Costly{n}", table + str(n))
    put(wiki, "beta", "Includes", "".join(f"{{{{include|src=/Costly{n}}}}}\n\n" for n in range(8)))
    response, renders = view(wiki, "beta", "/Includes")
    assert (response.status_code, renders) == (200, "over-budget")
    assert "shown as its source" in response.get_data(as_text=True)
    alone, renders = view(wiki, "beta", "/Costly7")
    assert (alone.status_code, renders) == (200, "miss")


def test_a_page_far_larger_rendered_than_written_shows_its_source(wiki):
    """Review 40: 28 includes of a 1 MB page made a 650-byte page a 28 MB body, cached in the
    shared render cache and sent on every view. Past MAX_RENDER_GROWTH times its text (and a
    floor) the page shows its source; the included page itself renders."""
    put(wiki, "beta", "Leaf", "x" * 300_000)
    put(wiki, "beta", "Fanout", "".join("{{include|src=/Leaf}}\n\n" for _ in range(12)))
    response, renders = view(wiki, "beta", "/Fanout")
    body = response.get_data(as_text=True)
    assert (response.status_code, renders) == (200, "too-large")
    assert "shown as its source" in body and len(body) < 100_000
    leaf, renders = view(wiki, "beta", "/Leaf")
    assert (leaf.status_code, renders) == (200, "miss")


@pytest.mark.parametrize("markup", ["<div>\n<![a\n</div>", "<![x", "a <![if x]> b", "<![CDATA"])
def test_markup_the_html_parser_rejects_shows_its_source(wiki, markup):
    """Review 40: Otterwiki's BeautifulSoup (html.parser) rejects `<![a` with an exception:
    the page, the wiki's index and every page's editor (which lists every page) answered 500.
    The page shows its source; the index lists it."""
    put(wiki, "gamma", "Rejected", markup)
    response, renders = view(wiki, "gamma", "/Rejected")
    assert response.status_code == 200 and renders in ("unparsable", "miss"), renders
    assert "<![" not in response.get_data(as_text=True).split('class="page"', 1)[-1]
    index, _ = view(wiki, "gamma", "/-/index")
    assert index.status_code == 200 and "Rejected" in index.get_data(as_text=True)


def test_included_pages_are_sanitized_with_their_page_once(wiki, monkeypatch):
    """Review 39: each included page's HTML went to the sanitizer on its own, each in a
    confined child the view waited for (up to 2 s each, no CPU of its budget): 12 includes
    held a worker 20 s. The page's HTML, includes and all, is sanitized once; what an
    included page holds is still cleaned."""
    import os

    forks = []
    fork = os.fork

    def counted():
        forks.append(1)
        return fork()

    for n in range(6):
        put(wiki, "beta", f"Flat{n}", "x\n\n" * 1600 + f"[a](javascript:alert({n}))\n")
    put(
        wiki, "beta", "FlatIncludes", "".join(f"{{{{include|src=/Flat{n}}}}}\n\n" for n in range(6))
    )
    monkeypatch.setattr(os, "fork", counted)
    response, renders = view(wiki, "beta", "/FlatIncludes")
    body = response.get_data(as_text=True)
    assert (response.status_code, renders) == (200, "miss") and len(forks) <= 1
    assert body.count("<p>x</p>") == 6 * 1600 and "javascript:" not in body


# Otterwiki's block plugins (spoiler `>!`, fold `>|`, embeddings `{{...}}`) parse their
# insides recursively with no depth limit: a few hundred bytes exceed Python's recursion
# limit, and every view and preview answered 500 (review 34). Each is the escaped source.
_TOO_DEEP = {
    "spoiler": ">!" * 3000,
    "fold": ">|" * 3000,
    "spoiler-quote": ">!" * 150,
    "spoiler-fold": ">!>|" * 100,
    "fold-spoiler-spaced": ">| >! " * 1000,
    "video": "{{Video " * 151 + "}}" * 151,
}


@pytest.mark.parametrize("content", _TOO_DEEP.values(), ids=_TOO_DEEP.keys())
def test_nesting_past_the_recursion_limit_shows_the_escaped_source(wiki, content):
    put(wiki, "beta", "TooDeep", content)
    first, renders = view(wiki, "beta", "/TooDeep")
    again, cached = view(wiki, "beta", "/TooDeep")
    body = first.get_data(as_text=True)
    assert (first.status_code, renders) == (200, "too-deep")
    assert (again.status_code, cached) == (200, "too-deep")
    assert "nests deeper than the renderer can follow" in body
    assert escape(content[:40]) in body
    preview = Client(wiki.app).get(
        "/TooDeep/preview",
        base_url="http://beta.localhost",
        headers={"Authorization": f"Bearer {wiki.tokens['beta']}"},
        buffered=True,
    )
    assert preview.status_code == 200
    assert "nests deeper" in preview.get_json()["preview_content"]


def test_ordinary_nesting_still_renders(wiki):
    put(wiki, "beta", "Nested", "<div>" * 300 + "inside" + "</div>" * 300)
    response, renders = view(wiki, "beta", "/Nested")
    assert (response.status_code, renders) == (200, "miss")
    assert "<div><div>inside</div></div>" in response.get_data(as_text=True)


def test_nesting_work_counts_the_open_elements_at_each_start_tag():
    from app.wiki.otterwiki.sanitize import nesting_work

    # Three nested divs (0 + 1 + 2 open), a void br (nothing), a closed span (3), a b (2).
    html = "<div><div><DIV class=x><br><span>a</span></div><b>b</b></div></div>"
    assert nesting_work(html, limit=0) == 1  # stops once past the limit
    assert nesting_work(html, limit=100) == 0 + 1 + 2 + 3 + 2
    assert nesting_work("<p>" * 10, limit=100) == 0  # too few tags to reach the limit


# HTML whose end tags close nothing in html5ever's tree, so nh3 nests it as deep as its start
# tags (review 35: `"<div></i>" * 40_000` counted as no nesting and cost nh3 6 s): each
# counts as deep as it is, whatever the renderer before the sanitizer makes of it.
@pytest.mark.parametrize(
    "unit",
    [
        *("<div></i>", "<p><div></p>", "<b><div></b>", "<a><div></a>", "<span></div>"),
        # Review 36: end tags in an attribute value, a comment or a bogus comment.
        *('<div title="</div>">', "<div><!--</div>-->", "<div><?x </div>", "<div a=</div>>"),
        *("<div><!</div>", "<div></ </div>"),
    ],
)
def test_end_tags_that_close_nothing_count_no_closing(unit):
    from app.wiki.otterwiki.sanitize import MAX_NESTING_WORK
    from app.wiki.otterwiki.sanitize import nesting_work

    starts = 12 * len(re.findall(r"<[A-Za-z]", unit))
    assert nesting_work(unit * 12, limit=500) == sum(range(starts))  # all still open
    assert nesting_work(unit * 40_000) > MAX_NESTING_WORK


@pytest.mark.parametrize(
    "text",
    ["[[a]]", "[[a|b]]", "[[a#x|]]", "[[|a]]", "x [[a [[b]] y", "[[a[b]]", "[[a]b]]", "[[[[a]]]]"],
)
def test_linear_wiki_link_finds_what_otterwiki_found(text):
    import re

    from otterwiki.renderer_plugins import mistunePluginWikiLink as plugin

    original = r"\[\[(([^|\]]+)(?:#[^\]]*)?(?:(\|)([^\]]+))?)\]\]"
    found = [m.groups() for m in re.finditer(linear_wiki_link(original), text)]
    if "[[" not in text[2:].split("]")[0]:
        assert found == [m.groups() for m in re.finditer(original, text)]
    assert plugin.WIKI_LINK.startswith(r"\[\[(?=")


def _full_and_linear_block_scanners():
    from otterwiki.renderer import render

    from app.wiki.otterwiki.patterns import EmbeddingScanner
    from app.wiki.otterwiki.patterns import install_linear_embeddings

    install_linear_embeddings()
    scanner = render.block_parser.compile_sc()
    assert isinstance(scanner, EmbeddingScanner)
    return scanner.full, scanner


def _spans(found):
    return None if found is None else (found.span(), found.lastgroup, found.group(0))


# Pieces of Markdown that meet the embedding pattern (`{{Name ...}}` to a `}}` ending a line)
# and the block rules around it, so drawn texts hold embeddings, near misses and both.
_EMBEDDING_PIECES = ["{{", "}}", "{", "}", "X", "Video", " ", "a", "|k=v", "\n", "\n\n", "#", "- "]
_EMBEDDING_PIECES += ["> ", "```", "    ", "---", "<div>", "$$", ":::", ">!", ".", "[[a]]", "| b |"]
_EMBEDDING_PIECES += ["}}}", "{{{", "\r", "\r\n", "\u2028", "\t", "é"]


def test_the_embedding_scanner_answers_as_otterwikis_does():
    """The linear scanner (patterns.EmbeddingScanner) matches and searches every drawn text,
    from every position, to the same span and rule as Otterwiki's own compiled scanner."""
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st

    full, linear = _full_and_linear_block_scanners()
    pieces = st.lists(st.sampled_from(_EMBEDDING_PIECES), max_size=40).map("".join)

    @settings(max_examples=300, deadline=None, database=None)
    @given(pieces)
    def check(text):
        for pos in range(len(text) + 1):
            assert _spans(linear.match(text, pos)) == _spans(full.match(text, pos)), pos
            assert _spans(linear.search(text, pos)) == _spans(full.search(text, pos)), pos

    check()


# Blocks mistune parses as texts of their own inside the page's parse (embedding arguments and
# options, list items, quotes, spoilers, folds, footnotes), with embeddings inside and around.
_NESTING_PIECES = ["{{X ", "{{Video ", "}}", "}}\n", "|a=b", "\n", "\n\n", "- ", "  - ", "> "]
_NESTING_PIECES += [">! ", ">| ", "[^1]: ", "[^1]", "1. ", "text", "# ", "```\n", "| a |\n"]


def test_pages_render_as_otterwikis_own_scanner_renders_them(monkeypatch):
    """Whole renders, nested texts included, are the same with the linear embedding scanner
    as with Otterwiki's: what the scanner keeps of one text never answers for another."""
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st
    from otterwiki.renderer import OtterwikiBlockParser
    from otterwiki.renderer import render

    _full_and_linear_block_scanners()  # installed
    linear = OtterwikiBlockParser.compile_sc
    pieces = st.lists(st.sampled_from(_NESTING_PIECES), max_size=60).map("".join)

    @settings(max_examples=150, deadline=None, database=None)
    @given(pieces)
    def check(text):
        monkeypatch.setattr(OtterwikiBlockParser, "compile_sc", linear.__wrapped__)
        expected = render.markdown(text)
        monkeypatch.setattr(OtterwikiBlockParser, "compile_sc", linear)
        assert render.markdown(text) == expected

    check()


def test_the_embedding_scanner_keeps_nothing_after_a_render():
    """Review 39: what the scanner learned of a text was kept for the last 64 texts a thread
    rendered: 80 first views of 1 MB pages grew four workers by 1.1 GB for good. It goes
    with the parse now."""
    import gc

    from otterwiki.renderer import render

    from app.wiki.otterwiki.patterns import _ScannedText

    _full_and_linear_block_scanners()  # installed
    render.markdown("{{X" * 1000 + "\n- {{Y a}}\n> {{Z}}\n")
    gc.collect()
    assert [kept for kept in gc.get_objects() if isinstance(kept, _ScannedText)] == []


# Pieces of inline links: destinations with parentheses, escapes, whitespace, NUL, `<...>`, and
# titles in each kind of quote.
_LINK_PIECES = ["[", "]", "(", ")", "](", "\\", "\\(", "\\)", " ", "\n", "\t", "a", "/", "<", ">"]
_LINK_PIECES += ['"', "'", "\x00", "![", "`", "*", "\r\n", " (", ") "]
_LINK_PIECES += ['](a "', "](a '", "](a (", '" )', "' )", ") )", "](<a> (", "](a\\ "]


def test_link_destinations_and_titles_read_as_mistunes_own(monkeypatch):
    """app.wiki.otterwiki.link_destinations answers mistune's parse_link (destination and
    title) from every position of drawn texts exactly as mistune's readers do."""
    import mistune.helpers as helpers
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st

    from app.wiki.otterwiki.link_destinations import install_linear_link_destinations
    from app.wiki.otterwiki.link_destinations import reading

    install_linear_link_destinations()
    linear = (helpers.parse_link_href, helpers.parse_link_title)
    pieces = st.lists(st.sampled_from(_LINK_PIECES), max_size=40).map("".join)

    def every_read(text, readers):
        monkeypatch.setattr(helpers, "parse_link_href", readers[0])
        monkeypatch.setattr(helpers, "parse_link_title", readers[1])
        with reading(text):
            return [helpers.parse_link(text, pos) for pos in range(len(text) + 1)]

    @settings(max_examples=600, deadline=None, database=None)
    @given(pieces)
    def check(text):
        mistunes = every_read(text, [reader.__wrapped__ for reader in linear])
        assert every_read(text, linear) == mistunes

    check()


def test_pages_of_links_render_as_mistunes_own_readers_render_them(monkeypatch):
    """Whole renders of drawn pages of links, nested link texts included, are the same."""
    import mistune.helpers as helpers
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st
    from otterwiki.renderer import render

    from app.wiki.otterwiki.link_destinations import install_linear_link_destinations

    install_linear_link_destinations()
    linear = (helpers.parse_link_href, helpers.parse_link_title)
    more = ["[a](b)", "[[W]]", "[x [y](z) w](v)", "- ", "> ", "\n\n", "# ", "| a |\n"]
    pieces = st.lists(st.sampled_from(_LINK_PIECES + more), max_size=50).map("".join)

    @settings(max_examples=150, deadline=None, database=None)
    @given(pieces)
    def check(text):
        monkeypatch.setattr(helpers, "parse_link_href", linear[0].__wrapped__)
        monkeypatch.setattr(helpers, "parse_link_title", linear[1].__wrapped__)
        expected = render.markdown(text)
        monkeypatch.setattr(helpers, "parse_link_href", linear[0])
        monkeypatch.setattr(helpers, "parse_link_title", linear[1])
        assert render.markdown(text) == expected

    check()


_EMPHASIS_PIECES = ["*", "_", "**", "__", "***", "a", "b", " ", "\n", "*a", "a*", "_a", "a_"]
_EMPHASIS_PIECES += [" *", "* ", "(", ")", ".", "`x`", "[a](b)", "\\*", "&amp;", "<b>", "\n\n"]


def test_emphasis_pairs_as_mistunes_own(monkeypatch):
    """app.wiki.otterwiki.emphasis pairs the `*` and `_` runs of drawn texts exactly as
    mistune's own pairing does, its quirks included, at every emphasis depth limit."""
    import mistune
    import mistune.inline_parser as inline_parser
    from hypothesis import given
    from hypothesis import settings
    from hypothesis import strategies as st

    from app.wiki.otterwiki import emphasis

    emphasis.install_linear_emphasis()
    monkeypatch.setattr(emphasis, "SMALL", 0)  # every text through the index, however short
    linear = inline_parser._process_emphasis_delimiters
    pieces = st.lists(st.sampled_from(_EMPHASIS_PIECES), max_size=80).map("".join)

    @settings(max_examples=1500, deadline=None, database=None)
    @given(pieces, st.sampled_from([0, 1, 2, 3, 20]))  # 0: no limit
    def check(text, limit):
        markdown = mistune.Markdown(
            renderer=mistune.HTMLRenderer(),
            inline=mistune.InlineParser(max_emphasis_depth=limit),
        )
        monkeypatch.setattr(inline_parser, "_process_emphasis_delimiters", linear.__wrapped__)
        expected = markdown(text)
        monkeypatch.setattr(inline_parser, "_process_emphasis_delimiters", linear)
        assert markdown(text) == expected

    check()


@pytest.mark.parametrize("unit", ["a*b_", "_a*b", "*a_", "**a*", "a* *b ", "*. **_*"])
def test_runs_of_emphasis_render_within_the_budget(wiki, unit):
    """Review 40: mistune's emphasis pairing renumbered every delimiter after each pair it
    made: 40 KB of `a*b_` cost 5 s, 80 KB 11 s. 80 KB of each renders well within it now."""
    put(wiki, "alpha", "Emphasis", unit * (80_000 // len(unit)))
    response, renders = view(wiki, "alpha", "/Emphasis")
    assert (response.status_code, renders) == (200, "miss")


@pytest.mark.parametrize("unit", ["[a](", "[a](b", "[](((", "![]((", "[a](/", "[a](b (", "[a](\\("])
def test_runs_of_link_openings_render_within_the_budget(wiki, unit):
    """Review 39: mistune read a link's destination (and a title in parentheses) from every
    `](` to the end of a text without whitespace: 10 KB of `[a](` took the whole 2 s budget,
    40 KB 34 s. 50 KB of each renders well within it now."""
    put(wiki, "alpha", "Openings", unit * (50_000 // len(unit)))
    response, renders = view(wiki, "alpha", "/Openings")
    assert (response.status_code, renders) == (200, "miss")


@pytest.mark.parametrize(
    "unit",
    ["{{Video ", " x {{X a\n", "{{X a\n", "- {{X a\n", "> {{X a\n", "{{X\n\n", "{{X {{Y}}\n"],
)
def test_runs_of_embeddings_render_within_the_budget(wiki, unit):
    """Otterwiki's embedding pattern scans from every `{{Name` to the end of the text when no
    `}}` ends a line after it: 19 KB of `{{Video ` cost 2 s (quadratic). An embedding's
    arguments are parsed as a text of their own inside the page's parse (the last unit): that
    must not make the scanner start over on the page. 50 KB of each took 4-70 s; now it
    renders in well under a second (about 15 us a character at most, as Otterwiki's own
    parse of closed embeddings costs)."""
    put(wiki, "alpha", "Embeddings", unit * (50_000 // len(unit)))
    response, renders = view(wiki, "alpha", "/Embeddings")
    assert (response.status_code, renders) == (200, "miss")


# -- property: pathological Markdown up to PROPERTY_KB renders within the default budget -------

# Every construct below renders in linear time, at ~5-40 us a character here (tables and
# headings cost most), so 20 KB takes well under a second of the 2 s budget. Longer inputs may
# go over it, as they should: what stays unbounded is mistune's emphasis pass, stopped by the
# budget.
PROPERTY_KB = 20
_RUNS = ["[", "]", "[[", "]]", "*", "_", "$", "|", ">", "-", "`", "{{", "}}", "<", "==", "![", "[^"]
# Unclosed tags nested as deep as 20 KB allows (4,000 <div>: below what sanitize.py refuses).
_RUNS += ["<div>", "<span>", "<ul><li>", "<blockquote>", "<table>"]
# Otterwiki's block plugins, which nest without a depth limit (_TOO_DEEP).
_RUNS += [">!", ">|", ">!>|", "{{Video "]


def _block(draw_kind, size):
    kind, unit = draw_kind
    if kind == "run":
        return unit * (size // len(unit))
    if kind == "list":
        return "".join("  " * depth + "- item\n" for depth in range(size // 40))
    if kind == "quote":
        return ">" * (size // 4) + " quoted\n"
    if kind == "table":
        return "| a | b |\n|---|---|\n" + "| x | [[y|z]] |\n" * (size // 16)
    return "".join(f"{'#' * (1 + n % 6)} Heading {n}\n" for n in range(size // 14))


def _documents():
    from hypothesis import strategies as st

    kinds = st.one_of(
        st.tuples(st.just("run"), st.sampled_from(_RUNS)),
        st.tuples(st.sampled_from(["list", "quote", "table", "headings"]), st.just("")),
    )
    block = st.builds(_block, kinds, st.integers(min_value=1, max_value=PROPERTY_KB * 1024))
    return st.lists(block, min_size=1, max_size=4).map(
        lambda blocks: "\n".join(blocks)[: PROPERTY_KB * 1024]
    )


# Beautiful Soup warns when a page's HTML looks like a file name ("$$$$"); the suite turns
# warnings into errors, the service only logs them.
@pytest.mark.filterwarnings("ignore::bs4.MarkupResemblesLocatorWarning")
def test_pathological_markdown_answers_within_the_budget(wiki):
    from hypothesis import HealthCheck
    from hypothesis import given
    from hypothesis import settings

    pages = iter(range(10**6))

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(text=_documents())
    def check(text):
        path = f"Generated{next(pages)}"
        put(wiki, "alpha", path, text)
        response, renders = view(wiki, "alpha", f"/{path}")
        assert response.status_code == 200
        assert "over-budget" not in renders, f"{len(text)} characters went over the budget"

    check()


# -- the budget and the key on their own -------------------------------------------------------


def test_the_budget_stops_code_that_swallows_exceptions():
    from app.wiki.otterwiki.budget import RenderOverBudget
    from app.wiki.otterwiki.budget import _Budget

    def spin():
        while True:
            try:
                sum(range(1000))
            except Exception:  # as Otterwiki's embeddings do
                pass

    with pytest.raises(RenderOverBudget):
        _Budget().run(spin, 0.05)


def _burn(seconds: float) -> None:
    """Spend `seconds` of process CPU."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(range(1000))


def test_a_slice_stops_its_call_and_the_run_goes_on_with_its_budget():
    """The page index renders tables of contents in slices of its view's budget: a slice that
    runs out stops its own call only; the run's budget still stops the run."""
    from app.wiki.otterwiki.budget import RenderOverBudget
    from app.wiki.otterwiki.budget import SliceOver
    from app.wiki.otterwiki.budget import _Budget

    budget = _Budget()

    def sliced():
        with pytest.raises(SliceOver):
            budget.slice(lambda: _burn(10), 0.05)
        _burn(0.1)  # past the slice: the run goes on
        return "done"

    assert budget.run(sliced, 5.0) == "done"

    def over():
        assert budget.slice(lambda: _burn(0.02), 1.0) is None
        _burn(10)

    with pytest.raises(RenderOverBudget):
        budget.run(over, 0.3)
    assert not budget.armed and not budget.slicing


def test_an_uninterrupted_block_ends_before_the_budget_stops_it():
    """A cache row's commit stopped half-way broke the request's database session (500): such
    writes run whole, and what expired in them stops the code right after."""
    from app.wiki.otterwiki.budget import RenderOverBudget
    from app.wiki.otterwiki.budget import SliceOver
    from app.wiki.otterwiki.budget import _Budget

    budget = _Budget()
    reached = []

    def write():
        with budget.uninterrupted():
            _burn(0.2)  # past the slice
            reached.append("written")
        reached.append("after")

    def sliced():
        with pytest.raises(SliceOver):
            budget.slice(write, 0.02)
        return reached

    assert budget.run(sliced, 5.0) == ["written"]
    reached.clear()
    with pytest.raises(RenderOverBudget):
        budget.run(write, 0.02)
    assert reached == ["written"]


def test_a_stop_due_inside_the_sanitizer_comes_after_it(recwarn):
    """CI of session 8: a slice's stop landed in nh3's attribute filter, which native code
    calls and whose exceptions it drops (an unraisable warning); the stop was lost. The
    sanitizer runs whole, and the stop comes right after it."""
    from app.wiki.otterwiki.budget import SliceOver
    from app.wiki.otterwiki.budget import _Budget
    from app.wiki.otterwiki.budget import _budget
    from app.wiki.otterwiki.sanitize import _clean

    html = '<p><a href="/x" title="t" class="c">x</a></p>' * 40_000

    def sliced():
        with pytest.raises(SliceOver):  # raised as _clean returns, not lost inside it
            _budget.slice(lambda: _clean(html), 0.01)
        return "done"

    assert isinstance(_budget, _Budget) and _budget.run(sliced, 30.0) == "done"
    assert not [w for w in recwarn if "nraisable" in str(w.category)]


def test_the_key_is_the_same_in_every_process(tmp_path):
    import subprocess
    import sys

    script = (
        "from types import SimpleNamespace as N\n"
        "from app.wiki.otterwiki.render import render_key\n"
        "config = {'METHODS': {'POST', 'PUT', 'PATCH', 'DELETE'}, 'A': {None: 1, 'b': 2}}\n"
        "tenant = N(slug='s', wiki=N(created_at=1), settings=N(render_budget=2.0))\n"
        "print(render_key(N(env={'config': config}), 'text', None, {}, tenant, 'v'))\n"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1


# Markup after which html5ever reads the tags as tags, though a naive reader would not: a quote
# in an attribute's name, an abrupt comment, a comment inside raw text (review 36's kind).
@pytest.mark.parametrize(
    "lead", ['<div a"b>', "<!-->", "<!--->", "<textarea><!--</textarea>", "<script>'</script>"]
)
def test_markup_that_hides_nothing_from_html5ever_hides_no_tag_here(lead):
    from app.wiki.otterwiki.sanitize import MAX_NESTING_WORK
    from app.wiki.otterwiki.sanitize import nesting_work

    assert nesting_work(lead + "<div>" * 40_000) > MAX_NESTING_WORK
    assert nesting_work(lead + "<div>x</div>" * 40_000) <= MAX_NESTING_WORK


# Review 37: html5ever makes again, before each text, every formatting element still in its
# list once a block closed them; distinct attributes keep them from counting as alike. 28 KB
# of such markup made 2 million elements and held a worker 9-25 s. Each member of the kind
# is sanitized in a child stopped at its deadline, and shown as text.
def _formatting(name: str, count: int) -> str:
    return "".join(f'<{name} title="{number}">' for number in range(count))


@pytest.mark.parametrize(
    "html",
    [
        "<p>" + _formatting("b", 1000) + "<p>x</p>" * 2000,  # the reviewer's
        "<div>" + _formatting("i", 600) + "</div><div>x</div>" * 4000,  # an end tag closes them
        "<p>" + _formatting("strong", 500) + "<h2>x</h2><ul><li>y</ul>" * 2000,  # block starts
        "<p>" + _formatting("font", 500) + "<blockquote>x</blockquote>" * 4000,
        "<table><tr><td><p>" + _formatting("em", 800) + "<p>x</p>" * 2000,  # inside one cell
        "<p>" + _formatting("code", 300) + _formatting("u", 300) + "<p>x</p>" * 2000,
        # Review 38: list items, cells and rows close them too, and a td outside a table.
        "<ul><li><td>" + _formatting("b", 1500) + "<li>x" * 1500 + "<td></ul>",
        "<p><td>" + _formatting("b", 1000) + "<td></td><p>x</p>" * 2000,
        "<dl><dd>" + _formatting("i", 1000) + "<dd>x" * 2000,
        "<table>" + _formatting("b", 1000) + "x<tr>" * 2000,
    ],
)
def test_markup_nh3_spends_seconds_on_is_stopped_and_shown_as_text(html, monkeypatch):
    from app.wiki.otterwiki import sanitize

    assert not sanitize.surely_cheap(html)
    monkeypatch.setattr(sanitize, "SANITIZE_SECONDS", 0.3)  # nh3 takes about 1-2 s on each
    assert sanitize.sanitize_html(html).startswith("<pre>&lt;")  # shown as text


@pytest.mark.parametrize(
    "html",
    [
        "<p>a <b>b</b> <code>c</code> <a href='/x'>l</a> <em>e</em></p>" * 5000,  # all ended
        "<b>an unended bold" + "<p>its paragraphs</p>" * 5000,  # one made again each time
        "<table>" + "<tr><td>" + _formatting("b", 20) + "x</td></tr>" * 300 + "</table>",
        "<p>" + _formatting("b", 1000) + "x</p>",  # never closed by a block: never made again
        "<p>" + "<a href='/x'>" * 3000 + "</p><p>x</p>" * 300,  # a new link ends the one before
    ],
)
def test_formatting_that_ends_or_stays_open_is_sanitized(html):
    from app.wiki.otterwiki.sanitize import _clean
    from app.wiki.otterwiki.sanitize import sanitize_html

    assert sanitize_html(html) == _clean(html)  # in a child or not, nh3's answer


@pytest.mark.parametrize(
    "html",
    [
        "".join(f"<p>para {number} <b>bold\n\n" for number in range(150)),  # review 38
        "<ul>" + "".join(f"<li><b>Term {n}:</b> text <i>it" for n in range(200)) + "</ul>",
        "<p>a <b>b</b></p>" * 10,  # small: in this process
    ],
)
def test_sloppy_but_cheap_html_is_sanitized_not_shown_as_text(html):
    from app.wiki.otterwiki.sanitize import _clean
    from app.wiki.otterwiki.sanitize import sanitize_html

    assert sanitize_html(html) == _clean(html) and not _clean(html).startswith("<pre>")
