"""Search in the real wiki app, in process: the UI's /-/search and the page API share one index
that follows HEAD whichever way a page was written; results stay in their wiki."""

import contextlib
import logging
import re
import subprocess
from types import SimpleNamespace
from urllib.parse import quote

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client

from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.wikis import create_wiki
from app.pages.query import MAX_QUERY_CHARS
from app.web.session_cookie import PLAIN_NAME
from tests.conftest import forked_copies

OWNER = ("did:plc:search-owner", "search-owner.test")
OTHER = ("did:plc:search-other", "search-other.test")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """alpha (private, OWNER's), beta (private, OTHER's), pub (public, OWNER's)."""
    data = tmp_path_factory.mktemp("search")
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(data), "MULTI_TENANT": "true"})
    init_instance(settings)
    platform = Platform.load(settings)
    store = platform.store
    for did, handle in (OWNER, OTHER):
        store.upsert_user(did, handle)
    create_wiki(settings, store, "alpha", OWNER[0])
    create_wiki(settings, store, "beta", OTHER[0])
    create_wiki(settings, store, "pub", OWNER[0], public=True)
    token = store.create_token("alpha", OWNER[0], "editor")[1]
    from app.wsgi import create_app

    app = create_app(settings)
    yield SimpleNamespace(app=app, settings=settings, store=store, token=token)
    app.tenancy.close()
    store.close()


class Visitor:
    """A werkzeug client on wiki hosts, signed in as `user` (a session per host) or anonymous."""

    def __init__(self, world, user=None):
        self.client, self.world, self.user, self.hosts = Client(world.app), world, user, set()

    def open(self, slug, path, method="GET", **kwargs):
        host = f"{slug}.localhost"
        if self.user and host not in self.hosts:
            secret = self.world.store.create_session(self.user[0], host, 3600)[1]
            self.client.set_cookie(PLAIN_NAME, secret, domain=host)
            self.hosts.add(host)
        return self.client.open(
            path, method=method, base_url=f"http://{host}", buffered=True, **kwargs
        )

    def form_post(self, slug, form_path, post_path, data):
        page = self.open(slug, form_path).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return self.open(slug, post_path, method="POST", data={**data, "csrf_token": token})

    def save(self, slug, page, content):
        response = self.form_post(
            slug, f"/{page}/edit", f"/{page}/save", {"content": content, "commit": "ui save"}
        )
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]

    def search(self, slug, query, **form):
        if form:
            return self.form_post(slug, "/-/search", "/-/search", {"query": query, **form})
        return self.open(slug, "/-/search/" + quote(query, safe=""))


@pytest.fixture(scope="module")
def owner(world):
    return Visitor(world, OWNER)


def api(world, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {world.token}"}
    response = Client(world.app).open(
        path, "http://alpha.localhost", method=method, headers=headers, buffered=True, **kwargs
    )
    return response.status_code, response.get_json()


def commit_in_repo(world, slug, filename, text):
    """A commit made in the repository itself: what a `git push` leaves behind."""
    repo = world.settings.repo_path(slug)
    (repo / filename).write_text(text)
    for args in (["add", filename], ["commit", "-qm", "pushed"]):
        subprocess.run(
            ["git", "-c", "user.name=p", "-c", "user.email=p@x", *args], cwd=repo, check=True
        )


def test_ui_search_shows_ranked_highlighted_escaped_results(world, owner):
    owner.save("alpha", "Weekly", "# Weekly\n\nNotes: the retro on Friday <script>x()</script>.\n")
    owner.save("alpha", "Retro", "# Retro\n\nWhat went well on Friday.\n")
    html = owner.search("alpha", "retro Friday").get_data(as_text=True)
    assert html.index('href="/Retro"') < html.index('href="/Weekly"')  # name match first
    assert '<mark class="text-match">retro</mark> on <mark class="text-match">Friday</mark>' in (
        html
    )
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>x()" not in html
    assert '<span class="page-match">Retro</span>' in html


def test_ui_form_post_and_otterwikis_own_modes_still_work(owner):
    owner.save("alpha", "Forms", "zebrafinch sings\n")
    posted = owner.search("alpha", "zebra*", is_casesensitive="").get_data(as_text=True)
    assert '<mark class="text-match">zebrafinch</mark>' in posted
    regexp = owner.search("alpha", "zebra.inch", is_regexp="y").get_data(as_text=True)
    assert 'href="/Forms"' in regexp  # Otterwiki's scan answers regular expressions


def test_a_backtracking_regular_expression_answers_with_what_it_found(owner, caplog):
    """(?:a|aa)+$ on a line of a's that ends otherwise backtracks exponentially: once 5 s per
    line, and a 500 at the first timeout. Now the scan ends within its deadline, and
    Otterwiki's notice says the results may be incomplete."""
    owner.save("alpha", "Trap", ("a" * 40 + "!\n") * 50)
    for n in range(30):
        owner.save("alpha", f"After/{n}", "many\nlines\n" * 20)
    with caplog.at_level(logging.WARNING):
        response = owner.search("alpha", "(?:a|aa)+$", is_regexp="y")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Search regex timed out" in html
    # Sixteenth review: a warning for every line of every page after the deadline (37 MB of
    # log in a minute, pushing out what came before).
    warned = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(warned) <= 4, len(warned)  # once for each pattern and kind of call at most


# Patterns each review found costing a worker far more than its budget in the regex package:
# memory (recursion, subroutines, repeated captures, compiled-out repeats) or CPU it did not
# time (fuzzy matching, long literal runs), with a page that makes them costly.
COSTLY = [
    ("((?R)|a)b", "a" * 200_000),  # twenty-seventh review: recursion, past 1 GB
    ("(?(DEFINE)(?<x>a|(?&x)(?&x)))(?&x)b", "a" * 5_000),
    ("(?<x>(?&x)a|a)b", "a" * 100_000),
    ("(a(?1)?)b", "a" * 200_000),
    ("(?P<n>a(?P>n)?)b", "a" * 200_000),
    ("(a(?-1)?)b", "a" * 200_000),
    ("(?:abc){e<=3}x{e<=3}", "abd" * 100_000),  # fuzzy
    ("a(?#[){e<=2}(?#])", "b" * 200_000),  # twenty-eighth: fuzzy between comments
    ("(?x)a#[\n{e<=3}\n#]\n", "b" * 200_000),
    ("(?:(?:a{1000}){1000}){1000}b", "a"),  # compiled out: gigabytes
    ("(?:a{1000}){1000}b", "a"),
    ("(?:((((((((((a))))))))))|(b))*\\d", "ab" * 500_000),  # twenty-ninth: captures
    ("(.)*\\d", "x" * 1_000_000),
    ("(?x)#\\\n(?:a(?1)?b)", "a" * 200_000),  # thirtieth: comments read apart
    ("a" * 5000 + "\\d", "a" * 200_000),  # a long run compared without timeouts
    ("(?:a|aa)+$", ("a" * 40 + "!\n") * 50),  # backtracking
]


def child_peak_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


@pytest.mark.parametrize(("pattern", "text"), COSTLY, ids=[p[:40] for p, _ in COSTLY])
def test_a_costly_pattern_costs_the_worker_nothing_and_answers(owner, pattern, text):
    """Twenty-seventh to thirtieth reviews: one anonymous search took a worker past 1 GB (a
    500), or 59 s, each by another shape of pattern. Now the scan runs in a confined child:
    whatever the pattern, the page answers with a notice (or what it found), the worker's
    memory stays as it was, the child never passes its cap, and no child is left."""
    import resource

    from app.wiki.otterwiki.search import REGEX_SCAN_MEMORY_BYTES

    owner.save("alpha", "Costly", text + "\n")
    owner.save("alpha", "Costly/Plain", "nothing to see\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = owner.search("alpha", pattern, is_regexp="y")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    notices = ("Error in search term", "timed out", "too much memory", 'href="/Costly"', "No match")
    assert any(notice in html for notice in notices), html[-3000:]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB
    with open("/proc/self/statm") as statm:
        ours = int(statm.read().split()[0]) * resource.getpagesize()
    assert child_peak_kib() * 1024 < ours + REGEX_SCAN_MEMORY_BYTES + 64 * 2**20
    assert forked_copies() == []
    # and the wiki's next search is answered as ever
    owner.save("alpha", "Costly", "spent\n")  # the other tests' scans need not read it
    found = owner.search("alpha", "noth.ng to", is_regexp="y").get_data(as_text=True)
    assert 'href="/Costly/Plain"' in found


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("a{1,3}z", "xaaz"),
        ("x{2}", "axxb"),
        ("[{}]e", "a{e}"),
        ("\\N{LATIN SMALL LETTER A}q", "aq"),
        ("(a)?bq", "bq"),
        ("(\\d{1,3}\\.){3}\\d{1,3}", "at 10.0.0.1"),
        ("\\p{Han}+", "漢字"),  # the regex package's syntax, as in Otterwiki
        ("(?:abc){e<=1}", "abd"),  # fuzzy matching, bounded like the rest
        ("(\\w+)\\s+\\2", "very very"),  # group 1 is Otterwiki's own around the pattern
        ("(?x) f o o", "foo"),
    ],
)
def test_otterwikis_regular_expressions_find_what_they_match(owner, pattern, text):
    name = f"Finds/{abs(hash(pattern))}"
    owner.save("alpha", name, f"before\n{text}\nafter\n")
    html = owner.search("alpha", pattern, is_regexp="y").get_data(as_text=True)
    assert f'href="/{name}"' in html, html[-2000:]
    assert "timed out" not in html and "Error" not in html


@pytest.mark.parametrize("pattern", ["\\p{Han}+(", "(", "a{2,1}", "(?P<1>a)", "[z-a]"])
def test_a_pattern_that_does_not_compile_is_otterwikis_error_notice(owner, pattern):
    owner.save("alpha", "Compiles", "(((\n")
    response = owner.search("alpha", pattern, is_regexp="y")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Error in search term" in html and 'href="/Compiles"' not in html


def test_a_scan_past_its_memory_cap_answers_with_a_notice(owner, monkeypatch):
    from app.wiki.otterwiki import search

    owner.save("alpha", "Memory", "mmm\n")
    monkeypatch.setattr(search, "REGEX_SCAN_MEMORY_BYTES", 8 * 2**20)
    monkeypatch.setattr(search, "REGEX_SCAN_SECONDS", 60.0)  # the cap ends it, not the time
    response = owner.search("alpha", "(?:(?:m{1000}){1000}){10}", is_regexp="y")
    assert response.status_code == 200
    assert "The search needed too much memory" in response.get_data(as_text=True)


def test_a_scan_past_its_deadline_answers_at_once_with_the_notice(owner, monkeypatch):
    from app.wiki.otterwiki import search

    for n in range(5):
        owner.save("alpha", f"Scanned/{n}", "zzz\n" * 10)
    assert 'href="/Scanned/0"' in owner.search("alpha", "z+", is_regexp="y").get_data(as_text=True)
    monkeypatch.setattr(search, "REGEX_SCAN_SECONDS", 0.0)
    response = owner.search("alpha", "z+", is_regexp="y")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Search regex timed out" in html and 'href="/Scanned/0"' not in html
    assert forked_copies() == []


def test_matches_are_found_as_finditer_finds_them_up_to_a_limit(monkeypatch):
    import regex

    from app.wiki.otterwiki import search

    for pattern, text in (("a+", "aa b aaa"), ("x*", "axxb"), ("^l", "l\nl"), ("(?m)^l", "l\nl")):
        compiled = regex.compile(pattern)
        expected = [m.span() for m in compiled.finditer(text)]
        assert [m.span() for m in search._matches(compiled, text)] == expected, pattern
        monkeypatch.setattr(search, "MAX_COUNTED", 1)
        assert [m.span() for m in search._matches(compiled, text)] == expected[:1]
        monkeypatch.undo()


def test_the_scans_answer_is_bounded_whatever_the_lines(owner, monkeypatch):
    """Twenty-fourth review: the regular-expression and match-case scan sent each matched
    line whole, 75 MB of HTML for one query over one-line pages of 1 MB. Now a line shows a
    window around its first match, a page a few lines, the page a bounded number of pages;
    what is shown is escaped, the matches marked."""
    from app.wiki.otterwiki import search
    from app.wiki.otterwiki.search import EXCERPT_CHARS
    from app.wiki.otterwiki.search import EXCERPT_LINES

    # The scan's deadline is another test's: on a loaded host it cut this one's scan short.
    monkeypatch.setattr(search, "REGEX_SCAN_SECONDS", 120.0)

    line = "<b>q</b>" * 25_000 + " needle " + "&" * 200_000
    for n in range(3):
        owner.save("alpha", f"Wide/{n}", line + "\n")
    owner.save("alpha", "Tall", "needle\n" * 5_000)
    owner.save("alpha", "NeedleName", "nothing here\n")
    for form in ({"is_regexp": "y"}, {"is_casesensitive": "y"}):
        response = owner.search("alpha", "needle", **form)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert len(html) < 60_000, len(html)
        found = html[html.index("Search matched") :]
        assert "<b>q" not in found and "&lt;b&gt;q&lt;/b&gt;" in found, found[:3000]
        assert html.count('<mark class="text-match">needle</mark>') <= 3 + EXCERPT_LINES
        assert "…" in html and "&amp;" * EXCERPT_CHARS not in html
        assert 'href="/Tall"' in html and "(5000 matches found)" in html
        for n in range(3):
            assert f'href="/Wide/{n}"' in html
    named = owner.search("alpha", "needlename", is_regexp="y").get_data(as_text=True)
    assert re.search('<span class="page-match">needlename</span>', named, re.IGNORECASE)
    assert "(Name matches)" in named


def test_the_scan_answers_the_best_pages_only(owner, monkeypatch):
    from app.wiki.otterwiki import search

    monkeypatch.setattr(search, "MAX_RESULTS", 3)
    for n in range(6):
        owner.save("alpha", f"Ranked/{n}", "rankme\n" * (n + 1))
    html = owner.search("alpha", "rankme", is_regexp="y").get_data(as_text=True)
    shown = re.findall(r'href="/Ranked/(\d)"', html)
    assert shown == ["5", "4", "3"], shown


def test_ui_query_without_words_says_so(owner):
    response = owner.search("alpha", '"" !!! ::')
    assert response.status_code == 200
    assert "no words" in response.get_data(as_text=True)


def test_writes_through_every_channel_are_found_at_once(world, owner):
    status, _ = api(world, "PUT", "/api/v1/pages/Channel/Api", json={"content": "kiwiapi"})
    assert status == 201
    owner.save("alpha", "Channel/Ui", "kiwiui\n")
    commit_in_repo(world, "alpha", "channel-pushed.md", "kiwipush\n")
    for word, path in (("kiwiapi", "Channel/Api"), ("kiwiui", "Channel/Ui")):
        assert [r["path"] for r in api(world, "GET", f"/api/v1/search?q={word}")[1]["results"]] == [
            path
        ]
    assert 'href="/Channel-Pushed"' in owner.search("alpha", "kiwipush").get_data(as_text=True)
    api(world, "POST", "/api/v1/pages/Channel/Api/rename", json={"to": "Channel/Moved"})
    assert api(world, "GET", "/api/v1/search?q=kiwiapi")[1]["results"][0]["path"] == (
        "Channel/Moved"
    )
    api(world, "DELETE", "/api/v1/pages/Channel/Moved")
    assert api(world, "GET", "/api/v1/search?q=kiwiapi")[1]["results"] == []


def test_page_api_answers_bad_queries_with_400(world):
    for query in ("", "!!!", "-only", "x" * 201, '"NEAR(a b)" name:x ^y'):
        status, body = api(world, "GET", "/api/v1/search", query_string={"q": query})
        assert status in (200, 400) and body, query
        if status == 400:
            assert "query" in body["error"]
    status, body = api(world, "GET", "/api/v1/search", query_string={"q": "\x00"})
    assert status == 400


def test_a_search_past_its_cpu_answers_503_saying_what_to_do(world, owner, monkeypatch):
    """Review 34: 66 words over pages of one word held a worker until gunicorn killed it. A
    query past QUERY_CPU_SECONDS (none, here) is stopped in SQLite: the API answers 503 JSON,
    the UI a page saying what to do; too many terms are a 400 / a notice."""
    status, _ = api(world, "PUT", "/api/v1/pages/Common", json={"content": "m " * 5000})
    assert status == 201
    monkeypatch.setattr("app.pages.fulltext.QUERY_CPU_SECONDS", 0.0)
    monkeypatch.setattr("app.pages.fulltext._PROGRESS_STEPS", 1)  # a small page: few steps
    status, body = api(world, "GET", "/api/v1/search", query_string={"q": "m " * 66})
    assert status == 503 and "fewer or rarer words" in body["error"], body
    response = owner.search("alpha", "m m m")
    assert response.status_code == 503
    assert "fewer or rarer words" in response.get_data(as_text=True)
    monkeypatch.undo()
    many = " ".join(f"w{n}" for n in range(11))
    status, body = api(world, "GET", "/api/v1/search", query_string={"q": many})
    assert status == 400 and "more than 10 different terms" in body["error"]
    assert "more than 10 different terms" in owner.search("alpha", many).get_data(as_text=True)


@hypothesis.settings(max_examples=100, deadline=None)
@given(st.text(max_size=MAX_QUERY_CHARS + 20))
def test_any_query_is_answered_or_refused_with_a_reason(world, query):
    status, body = api(world, "GET", "/api/v1/search", query_string={"q": query})
    assert (status == 200 and "results" in body) or (status == 400 and body["error"]), body


def test_results_stay_in_their_wiki_and_follow_its_permissions(world, owner):
    owner.save("alpha", "Private", "quetzalsecret\n")
    other, anonymous = Visitor(world, OTHER), Visitor(world)
    assert "quetzalsecret" not in other.search("alpha", "quetzalsecret").get_data(as_text=True)
    assert other.search("alpha", "quetzalsecret").status_code == 403
    assert anonymous.search("alpha", "quetzalsecret").status_code == 302  # to sign in
    assert 'href="/Private"' not in other.search("beta", "quetzalsecret").get_data(as_text=True)
    owner.save("pub", "Open", "quetzalopen\n")
    assert 'href="/Open"' in anonymous.search("pub", "quetzalopen").get_data(as_text=True)
    assert 'href="/Private"' not in anonymous.search("pub", "quetzalsecret").get_data(as_text=True)


def test_twenty_fifth_review_pages_of_matches_answer_the_ui_and_the_api_bounded(world, owner):
    """A page of one word 100,000 times (200 KB) and a huge table: `GET /-/search/...`, a POST
    to /-/search and the page API each timed out a worker (FTS5 snippets and highlights of
    whole pages cost their matches squared). Now each answers, its snippets a bounded piece
    of the page, marked and escaped."""
    from app.pages.fulltext import CHUNK_CHARS
    from app.pages.fulltext import COUNTED_CHUNKS
    from app.pages.fulltext import OVERLAP_CHARS

    status, _ = api(world, "PUT", "/api/v1/pages/Heavy/Many", json={"content": "zq " * 100_000})
    assert status == 201
    table = "| zx | <b> |\n|---|---|\n" + "| zx | zx |\n" * 20_000
    status, _ = api(world, "PUT", "/api/v1/pages/Heavy/Table", json={"content": table})
    assert status == 201
    for query in ("zq", "zq*", '"zq zq"'):
        status, body = api(world, "GET", "/api/v1/search", query_string={"q": query})
        assert status == 200 and [r["path"] for r in body["results"]] == ["Heavy/Many"]
        found = body["results"][0]
        assert len(found["snippets"][0]) <= CHUNK_CHARS + 2 * OVERLAP_CHARS + 2
        assert 0 < found["matches"] <= COUNTED_CHUNKS * CHUNK_CHARS
        html = owner.search("alpha", query).get_data(as_text=True)
        assert 'href="/Heavy/Many"' in html and len(html) < 60_000
    posted = owner.search("alpha", "zx", is_casesensitive="")
    html = posted.get_data(as_text=True)
    assert posted.status_code == 200 and 'href="/Heavy/Table"' in html and len(html) < 60_000
    assert '<mark class="text-match">zx</mark>' in html and "<b> |" not in html


def test_a_pool_that_waited_goes_before_one_that_just_scanned(world, owner):
    """Reviews 34 and 35: one client looping scans (in up to four pools) kept another owner's
    every scan refused. A pool refused while the slot was busy leaves a want; the next free
    slot is its, and a pool that scanned since is refused until it has had its turn."""
    from app.core.locks import one_of_slots
    from app.wiki.heavy import SLOTS

    owner.save("alpha", "Waiting", "wait me\n")
    owner.save("pub", "Open", "wait me too\n")
    visitor = Visitor(world)  # the owner's anonymous visitors: another pool
    assert owner.search("alpha", "wait.me", is_regexp="y").status_code == 200
    with contextlib.ExitStack() as taken:
        for _ in range(SLOTS):
            assert taken.enter_context(one_of_slots(world.settings.run_dir, "regex-scan", SLOTS))
        assert visitor.search("pub", "wait.me", is_regexp="y").status_code == 429
    refused = owner.search("alpha", "wait.me", is_casesensitive="y")  # it scanned; they wait
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert owner.search("alpha", "wait me").status_code == 200  # the index takes no slot
    found = visitor.search("pub", "wait.me", is_regexp="y")
    assert found.status_code == 200 and 'href="/Open"' in found.get_data(as_text=True)
    again = owner.search("alpha", "wait.me", is_regexp="y")  # the waiting pool had its turn
    assert again.status_code == 200 and 'href="/Waiting"' in again.get_data(as_text=True)


def test_an_owner_that_waited_goes_before_any_pool_of_an_owner_that_just_scanned(world, owner):
    """Review 36: fairness was between pools, so an owner with twenty wikis and a second
    account a member of each had twenty-two pools, each one that had not scanned yet going
    before another owner who waited. Owners come first: a pool of an owner that scanned
    since waits, even one that never scanned itself."""
    from app.core.locks import one_of_slots
    from app.wiki.heavy import SLOTS

    owner.save("alpha", "Hog", "hog me\n")
    owner.save("pub", "Hog", "hog me\n")
    other = Visitor(world, OTHER)
    other.save("beta", "Waited", "hog me\n")
    member = ("did:plc:search-member", "search-member.test")
    world.store.add_member("pub", *member, "editor")
    fresh_pool = Visitor(world, member)  # pub's members: a pool that never scanned
    assert owner.search("alpha", "hog.me", is_regexp="y").status_code == 200
    with contextlib.ExitStack() as taken:
        for _ in range(SLOTS):
            assert taken.enter_context(one_of_slots(world.settings.run_dir, "regex-scan", SLOTS))
        assert other.search("beta", "hog.me", is_regexp="y").status_code == 429
    refused = fresh_pool.search("pub", "hog.me", is_regexp="y")  # its owner scanned: it waits
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    found = other.search("beta", "hog.me", is_regexp="y")
    assert found.status_code == 200 and 'href="/Waited"' in found.get_data(as_text=True)
    again = fresh_pool.search("pub", "hog.me", is_regexp="y")  # the waiting owner had its turn
    assert again.status_code == 200 and 'href="/Hog"' in again.get_data(as_text=True)


def test_a_query_of_words_the_pages_repeat_takes_a_heavy_search_slot(world, owner, monkeypatch):
    """Review 35: four clients each running 1-s queries held every worker. A query whose
    ranking may read more than HEAVY_INSTANCES word instances (here, 100) takes one of the
    host's heavy-search slots: with them taken it is a 429 in the API and the UI; a query of
    rare words takes none."""
    from app.core.locks import one_of_slots
    from app.wiki.heavy import HEAVY_SEARCH_KIND
    from app.wiki.heavy import SLOTS

    status, _ = api(world, "PUT", "/api/v1/pages/Repeats", json={"content": "zz " * 300})
    assert status == 201
    monkeypatch.setattr("app.pages.fulltext.HEAVY_INSTANCES", 100)
    with contextlib.ExitStack() as taken:
        for _ in range(SLOTS):
            slot = one_of_slots(world.settings.run_dir, HEAVY_SEARCH_KIND, SLOTS)
            assert taken.enter_context(slot)
        for query in ("zz", "Ẑz", "z*", '"zz zz"'):
            status, body = api(world, "GET", "/api/v1/search", query_string={"q": query})
            assert status == 429 and "rarer words" in body["error"], (query, body)
        assert owner.search("alpha", "zz").status_code == 429
        status, body = api(world, "GET", "/api/v1/search", query_string={"q": "kiwiapi"})
        assert status == 200
    status, body = api(world, "GET", "/api/v1/search", query_string={"q": "zz"})
    assert status == 200 and [hit["path"] for hit in body["results"]] == ["Repeats"]


def test_a_scan_finding_every_slot_taken_is_refused_at_once(world, owner):
    """Thirty-second review: scans held four workers 2 s each (waiting, which no lowered
    priority shortens), and another wiki's views were 29 times slower at p99. SCAN_SLOTS run
    at once on the host; the next is a 429 with Retry-After, at once, and once a slot is free
    the scan runs."""
    from app.core.locks import one_of_slots
    from app.wiki.heavy import SLOTS as SCAN_SLOTS

    owner.save("alpha", "Slotted", "slot me\n")
    slots = world.settings.run_dir
    with contextlib.ExitStack() as taken:
        for _ in range(SCAN_SLOTS):
            assert taken.enter_context(one_of_slots(slots, "regex-scan", SCAN_SLOTS))
        refused = owner.search("alpha", "slot.me", is_regexp="y")
        assert refused.status_code == 429, refused.status_code
        assert int(refused.headers["Retry-After"]) >= 1
        assert "another regular-expression" in refused.get_data(as_text=True)
        assert forked_copies() == []  # refused before any child was made
    found = owner.search("alpha", "slot.me", is_regexp="y")
    assert found.status_code == 200 and 'href="/Slotted"' in found.get_data(as_text=True)
