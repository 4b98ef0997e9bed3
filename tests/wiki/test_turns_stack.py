"""Through the real wiki service: an owner whose wikis are hammered runs low and is refused what
it cannot wait for; a lone reader, a page with its images, and a slow body never make an owner
look hammered."""

from __future__ import annotations

import http.client
import io
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import PIL.Image
import pytest

from app.core.locks import wiki_write_lock
from app.core.settings import gunicorn_workers
from app.core.store import Store
from app.core.wikis import create_wiki
from app.web.bodies import SLOW_AFTER
from app.wiki.gateway import FORM_BODY_BYTES
from app.wiki.sends import SLOW_SEND
from app.wiki.turns import CPU
from app.wiki.turns import CROWD
from app.wiki.turns import DEBT_LOW
from app.wiki.turns import LOW_NICE
from app.wiki.turns import WRITE_WAIT
from app.wiki.turns import can_restore_priority
from app.wiki.turns import debt

pytestmark = pytest.mark.stack

# The hammering owner's two wikis, and another owner's wiki.
OWNER = ("did:plc:turnsowner", "turns-owner.test")
OTHER_OWNER = ("did:plc:turnsother", "turns-other.test")
HAMMERED, SIBLING, OTHER = "turns-hammered", "turns-sibling", "turns-other"
OWNERS = {HAMMERED: OWNER, SIBLING: OWNER, OTHER: OTHER_OWNER}
# A viewer the hammering owner let into SIBLING only.
VIEWER = ("did:plc:turnsviewer", "turns-viewer.test")
# An editor of HAMMERED, made by the test that needs a second pool of writers.
EDITOR = ("did:plc:turnseditor", "turns-editor.test")


@pytest.fixture(scope="module")
def wikis(stack):
    store = Store(stack.settings.database_url)
    secrets = {}
    for slug, (did, handle) in OWNERS.items():
        store.upsert_user(did, handle)
        create_wiki(stack.settings, store, slug, did, public=True)
        secrets[slug] = store.create_token(slug, did, "editor")[1]
    store.upsert_user(*VIEWER)
    store.add_member(SIBLING, *VIEWER, "viewer")
    stack.viewer_token = store.create_token(SIBLING, VIEWER[0], "viewer")[1]
    store.close()
    stack.other_token = secrets[OTHER]
    stack.hammered_token = secrets[HAMMERED]
    for slug in (HAMMERED, SIBLING):
        with stack.client("otterwiki", host=f"{slug}.localhost") as client:
            # A big page: each view (from the render cache) is several milliseconds of work.
            content = "# Big\n\n" + "A line of [brackets] and *emphasis*.\n\n" * 4000
            response = client.put(
                "/api/v1/pages/Big",
                json={"content": content},
                headers={"Authorization": f"Bearer {secrets[slug]}"},
            )
            assert response.status_code == 201
            # A big image: each thumbnail or resize of it is a fraction of a second of CPU.
            stored = client.put(
                "/api/v1/pages/Big/attachments/big.png",
                content=big_png(),
                headers={"Authorization": f"Bearer {secrets[slug]}"},
            )
            assert stored.status_code in (200, 201), stored.text
    return stack


def big_png(side: int = 3000) -> bytes:
    """A PNG of side x side pixels that compresses well: small to send, costly to decode."""
    buffer = io.BytesIO()
    PIL.Image.linear_gradient("L").resize((side, side)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def crowd_debt(stack, slug: str, kind: str = CROWD) -> float:
    """The crowd debt (or `kind` debt) of the owner of wiki `slug`, shared by all that owner's
    wikis."""
    return debt(stack.settings.owner_turns_dir(OWNERS[slug][0]), kind)


def drained(stack, slug: str) -> None:
    """Wait until what the module's earlier tests left of the owner's debts is gone."""
    time.sleep(max(crowd_debt(stack, slug), crowd_debt(stack, slug, CPU)) + 0.05)
    assert crowd_debt(stack, slug) == crowd_debt(stack, slug, CPU) == 0.0


def views(stack, slug: str, path: str, count: int) -> list[int]:
    with stack.client("otterwiki", host=f"{slug}.localhost") as client:
        answers = [client.get(path) for _ in range(count)]
    for answer in answers:
        assert answer.status_code in (200, 429), answer.text
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1 and "try again" in answer.text
    return [answer.status_code for answer in answers]


def workers(stack) -> list[int]:
    master = stack.pid("otterwiki")
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def nice(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return int(fields[16])


class WorkerPriorities:
    """The wiki service's workers' priorities, sampled every half millisecond while inside."""

    def __init__(self, stack, owner_of: str | None = None):
        self.base = {pid: nice(pid) for pid in workers(stack)}
        self.seen: set[int] = set()
        # The highest crowd debt of the owner of wiki `owner_of` while sampling.
        self._debt = (lambda: crowd_debt(stack, owner_of)) if owner_of else (lambda: 0.0)
        self.peak_debt = 0.0
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample)

    def __enter__(self) -> WorkerPriorities:
        self._sampling.set()
        self._sampler.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._sampling.clear()
        self._sampler.join()

    def _sample(self) -> None:
        while self._sampling.is_set():
            self.seen.update(nice(pid) for pid in self.base)
            self.peak_debt = max(self.peak_debt, self._debt())
            time.sleep(0.0005)

    def went_low(self) -> bool:
        """Whether a worker ran at the lowest priority (the kernel caps niceness at 19)."""
        return bool({min(nice + LOW_NICE, 19) for nice in self.base.values()} & self.seen)

    def assert_put_back(self) -> None:
        """Every worker's priority is put back once its response is out (just after the
        client has it: wait a little)."""
        deadline = time.monotonic() + 10
        while self._now() != self.base and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self._now() == self.base

    def _now(self) -> dict[int, int | None]:
        return {pid: nice(pid) for pid in self.base}


def test_a_lone_reader_never_makes_its_wiki_look_hammered(wikis):
    drained(wikis, OTHER)
    assert views(wikis, OTHER, "/", 60) == [200] * 60
    assert crowd_debt(wikis, OTHER) == 0.0  # one client's requests never wait for each other


def test_a_page_and_its_images_at_once_stay_clear_of_debt(wikis):
    with wikis.client("otterwiki", host=f"{OTHER}.localhost") as client:
        names = [f"img{n}.png" for n in range(8)]
        for name in names:
            stored = client.put(
                f"/api/v1/pages/Home/attachments/{name}",
                content=b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
                headers={"Authorization": f"Bearer {wikis.other_token}"},
            )
            assert stored.status_code in (200, 201), stored.text
    drained(wikis, OTHER)  # the uploads' own waits, if any
    paths = ["/Home"] + [f"/Home/a/{name}" for name in names]
    with ThreadPoolExecutor(max_workers=6) as pool:  # as a browser does
        statuses = list(pool.map(lambda path: views(wikis, OTHER, path, 1)[0], paths))
    assert statuses == [200] * len(paths)
    assert crowd_debt(wikis, OTHER) < DEBT_LOW  # a little wait, never enough to run low


# What a browser fetches beside each page: Otterwiki's files, changed (MathJax's component,
# answered with the platform's configuration in front) or not, the favicon and the manifest
# (refused 429 on a page of thumbnails, review 47).
BESIDE_A_PAGE = [
    "/static/mathjax/tex-chtml.js",
    "/static/robot/handlers.js",
    "/favicon.ico",
    "/manifest.webmanifest",
    "/static/css/otterwiki.css",
]


def test_what_a_browser_fetches_beside_a_page_takes_no_turn(wikis):
    """CI: MathJax's component took a turn of the visitor's pool, so a browser loading a page
    with math, while the page's own turn and one wait were taken, was refused it (429) and
    showed no math. Otterwiki's own files take no turn, so a crowded pool still gets them."""
    drained(wikis, HAMMERED)
    auth = {"Authorization": f"Bearer {wikis.hammered_token}"}

    def fetch(path: str) -> tuple[str, int]:
        with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
            return path, client.get(path, headers=auth).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        crowd = [pool.submit(fetch, "/api/v1/pages/Big") for _ in range(4)]
        time.sleep(0.05)  # the crowd holds the pool's turn and waiting place first
        beside = list(pool.map(fetch, BESIDE_A_PAGE * 2))
        assert {status for _, status in (c.result() for c in crowd)} <= {200, 429}
    assert beside == [(path, 200) for path in BESIDE_A_PAGE * 2]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("//static/mathjax/tex-svg.js", 404),
        ("/%2fstatic/mathjax/core.js", 404),
        ("//static/mathjax/./tex-chtml.js", 200),
        ("//static/css/..%2fmathjax/tex-chtml.js", 200),
        ("//static/mathjax%2f.%2ftex-chtml.js", 200),
    ],
)
def test_no_spelling_reaches_mathjax_without_its_safe_configuration(wikis, path, status):
    """Twenty-second review: through gunicorn, a leading `//` served the package's MathJax
    components, withheld or unconfigured. The path is sent as written (no client cleans it)."""
    connection = http.client.HTTPConnection("127.0.0.1", wikis.port("otterwiki"), timeout=30)
    connection.putrequest("GET", path, skip_host=True)
    connection.putheader("Host", f"{OTHER}.localhost")
    connection.endheaders()
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status == status
    assert status != 200 or body.startswith(b"/* robot: MathJax safe extension on")


def test_a_slow_body_holds_no_turn(wikis):
    """A writer trickling a body to a route that reads it never makes the wiki's readers wait
    (anyone else's slow body is cut at once: test_a_slow_small_body_...)."""
    drained(wikis, OTHER)
    port = wikis.port("otterwiki")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(
            f"GET /Home/preview HTTP/1.1\r\nHost: {OTHER}.localhost\r\n"
            f"Authorization: Bearer {wikis.other_token}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 60000\r\n\r\ncontent=".encode()
        )
        for _ in range(5):
            slow.sendall(b"a")
            assert views(wikis, OTHER, "/", 1) == [200]
    assert crowd_debt(wikis, OTHER) == 0.0  # none of those views waited for a turn


@pytest.mark.skipif(not can_restore_priority(), reason="the stack may not restore priorities")
@pytest.mark.parametrize(
    "hammered",
    [[HAMMERED] * 3, [HAMMERED, SIBLING]],
    ids=["three clients on one wiki", "one client on each of two wikis of one owner"],
)
def test_a_hammered_owner_runs_lower_while_other_owners_wikis_answer(wikis, hammered):
    drained(wikis, HAMMERED)
    with WorkerPriorities(wikis, HAMMERED) as priorities:
        with ThreadPoolExecutor(max_workers=4) as pool:
            hammers = [pool.submit(views, wikis, slug, "/Big", 40) for slug in hammered]
            other = pool.submit(views, wikis, OTHER, "/", 40)
            statuses = [status for hammer in hammers for status in hammer.result()]
            assert other.result() == [200] * 40
    assert 200 in statuses and set(statuses) <= {200, 429}
    # Clients at once made the owner's wikis wait for its turn, which counted against it (it
    # may have drained by the end, on a busy host)...
    assert priorities.peak_debt > 0
    # ...and its views ran at the lowest priority, while the other owner's were never refused.
    assert priorities.went_low()
    priorities.assert_put_back()


@pytest.mark.skipif(not can_restore_priority(), reason="the stack may not restore priorities")
def test_one_heavy_request_runs_low_after_its_first_tenth_of_a_second(wikis):
    """A first render of a costly page, by the only client of an owner owing nothing."""
    drained(wikis, OTHER)
    with wikis.client("otterwiki", host=f"{OTHER}.localhost") as client:
        content = f"# Heavy {time.time()}\n\n" + "Some [brackets] and *emphasis* here.\n\n" * 6000
        stored = client.put(
            "/api/v1/pages/Heavy",
            json={"content": content},
            headers={"Authorization": f"Bearer {wikis.other_token}"},
        )
        assert stored.status_code in (200, 201), stored.text
    drained(wikis, OTHER)  # the view below is lowered by nothing its owner owes
    with WorkerPriorities(wikis) as priorities:
        assert views(wikis, OTHER, "/Heavy", 1) == [200]
    assert priorities.went_low()
    priorities.assert_put_back()


# What an anonymous crowd asks for: a page, a thumbnail, an image resized by the page view.
CROWDED_PATHS = ["/Big", "/Big/t/big.png/1024", "/Big/big.png?width=900"]


@pytest.mark.parametrize("path", CROWDED_PATHS)
def test_a_crowd_of_anonymous_readers_never_locks_the_owner_out(wikis, path):
    """Anonymous clients crowd a public wiki; its owner's own reads, now and then, all answer,
    and the crowd is refused the page views it cannot wait for; a thumbnail without a turn
    is the file itself."""
    drained(wikis, HAMMERED)
    done = threading.Event()

    def crowd() -> list[int]:
        return crowd_until(wikis, HAMMERED, path, done)

    def owner_reads() -> list[int]:
        auth = {"Authorization": f"Bearer {wikis.hammered_token}"}
        answers = []
        with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
            time.sleep(1)  # the crowd has run up its debt
            for _ in range(30):
                answers.append(client.get("/api/v1/pages/Big", headers=auth).status_code)
                time.sleep(0.05)
        return answers

    with ThreadPoolExecutor(max_workers=4) as pool:
        crowds = [pool.submit(crowd) for _ in range(3)]
        try:
            owner = pool.submit(owner_reads).result()
        finally:
            done.set()
        statuses = [status for client in crowds for status in client.result()]
    assert owner == [200] * 30
    if path != "/Big":
        # A thumbnail or resize that finds no turn sends the file itself, at no CPU cost
        # (twenty-fifth review: a member's own page of images was refused 429), by the page
        # view's arguments or by the thumbnail route alike.
        assert set(statuses) == {200}
    else:
        assert 429 in statuses  # the crowd was refused what it could not wait for


def crowd_until(stack, slug: str, path: str, done: threading.Event, token=None) -> list[int]:
    """One client asking wiki `slug` for `path` (with `token`, else anonymous) until `done`;
    the statuses it got."""
    statuses = []
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    with stack.client("otterwiki", host=f"{slug}.localhost") as client:
        while not done.is_set():
            statuses.append(client.get(path, headers=auth).status_code)
    return statuses


def test_a_viewer_crowding_one_wiki_never_locks_the_owner_out_of_another(wikis):
    """Fourth review: a viewer of one of the owner's wikis, crowding it, got the owner's own
    views of another wiki refused. Now only the viewer's wiki's members are crowded."""
    drained(wikis, HAMMERED)
    done = threading.Event()
    auth = {"Authorization": f"Bearer {wikis.hammered_token}"}
    with ThreadPoolExecutor(max_workers=3) as pool:
        crowds = [
            pool.submit(crowd_until, wikis, SIBLING, "/Big", done, wikis.viewer_token)
            for _ in range(3)
        ]
        try:
            time.sleep(1)  # the crowd has run up its debt
            with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
                owner = []
                for _ in range(30):
                    owner.append(client.get("/api/v1/pages/Big", headers=auth).status_code)
                    time.sleep(0.05)
        finally:
            done.set()
        statuses = [status for client in crowds for status in client.result()]
    assert owner == [200] * 30
    assert 429 in statuses


def test_a_member_opening_many_pages_at_once_is_refused_what_finds_no_place(wikis):
    """Sixteenth review: one member opening six editors at once held every worker, and another
    tenant waited 2-4 s. What finds neither a turn nor a waiting place is now refused at once
    (429, Retry-After), for members as for visitors; another owner's wiki answers meanwhile."""
    drained(wikis, HAMMERED)
    auth = {"Authorization": f"Bearer {wikis.hammered_token}"}
    before = workers(wikis)

    def member_view(_n) -> tuple[int, str | None]:
        with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
            answer = client.get("/api/v1/pages/Big", headers=auth)
        assert answer.status_code in (200, 429), answer.text
        return answer.status_code, answer.headers.get("Retry-After")

    statuses, other = [], []
    # Bursts of ten: with six, on a host loaded by other work, the member's requests once came
    # in one after another and every one found a turn (a CI run).
    with ThreadPoolExecutor(max_workers=10) as pool:
        for _ in range(5):  # five bursts at once, another tenant reading between them
            statuses += list(pool.map(member_view, range(10)))
            other += views(wikis, OTHER, "/", 1)
    assert other == [200] * 5
    assert {status for status, _ in statuses} == {200, 429}
    assert all(int(after) >= 1 for status, after in statuses if status == 429)
    assert workers(wikis) == before  # none was killed for running too long


def test_writes_waiting_for_a_held_write_lock_never_hold_every_worker(wikis):
    """Seventeenth review: with one wiki's write lock held (a long push), eight writes to it
    held all four workers for 20 s, and another owner's page waited as long. Nineteenth:
    strangers' writes, to be refused 401, waited for the lock too. Twentieth: a write waiting
    with its turn got the owner's views refused 429. Twenty-first: one owner's writes filled
    the host's places to wait, and another owner's save was refused.

    Now each pool (the owner, the wiki's members) has one place to wait, an owner's pools all
    but one of the host's (half the workers), taken before the turn: the rest are refused at
    once (503, Retry-After), strangers get their 401 at once, and meanwhile the owner writes
    to another wiki, views the locked one, another owner's page answers, and another owner's
    write waits for its own locked wiki and is written once the lock is free."""
    drained(wikis, HAMMERED)
    store = Store(wikis.settings.database_url)
    store.upsert_user(*EDITOR)
    store.add_member(HAMMERED, *EDITOR, "editor")
    member_token = store.create_token(HAMMERED, EDITOR[0], "editor")[1]
    sibling_token = store.create_token(SIBLING, OWNER[0], "editor")[1]
    store.close()
    callers = [wikis.hammered_token] * 4 + [member_token] * 4 + [None] * 2
    owner = {"Authorization": f"Bearer {wikis.hammered_token}"}
    per_owner = max(1, max(1, len(workers(wikis)) // 2) - 1)

    def write(n) -> tuple[int, str | None]:
        token = callers[n]
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
            answer = client.put(f"/api/v1/pages/Locked{n}", json={"content": "x"}, headers=auth)
        return answer.status_code, answer.headers.get("Retry-After")

    def other_owners_write() -> int:
        with wikis.client("otterwiki", host=f"{OTHER}.localhost") as client:
            return client.put(
                "/api/v1/pages/Free",
                json={"content": "x"},
                headers={"Authorization": f"Bearer {wikis.other_token}"},
            ).status_code

    with ThreadPoolExecutor(max_workers=len(callers) + 1) as pool:
        with wiki_write_lock(wikis.settings.wiki_dir(HAMMERED)):
            writes = [pool.submit(write, n) for n in range(len(callers))]
            deadline = time.monotonic() + WRITE_WAIT * 0.5  # before the waiters give up
            while sum(f.done() for f in writes) < len(callers) - per_owner:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            done = {n: f.result() for n, f in enumerate(writes) if f.done()}
            other = views(wikis, OTHER, "/", 1)
            with wikis.client("otterwiki", host=f"{SIBLING}.localhost") as client:
                sibling = client.put(
                    "/api/v1/pages/Free",
                    json={"content": "x"},
                    headers={"Authorization": f"Bearer {sibling_token}"},
                )
            with wikis.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
                own_view = client.get("/api/v1/pages/Big", headers=owner)
            # Another owner's write to its own locked wiki finds a place left and waits.
            with wiki_write_lock(wikis.settings.wiki_dir(OTHER)):
                third = pool.submit(other_owners_write)
                time.sleep(1.0)
                third_waited = not third.done()
            waiting = [n for n, f in enumerate(writes) if not f.done()]
    assert third_waited and third.result() == 201
    assert other == [200] and sibling.status_code == 201 and own_view.status_code == 200
    assert len(waiting) <= per_owner and {n // 4 for n in waiting} <= {0, 1}, (done, waiting)
    assert all(done[n][0] == 401 for n in (8, 9)), done  # strangers: no wait for the lock
    refused = [done[n] for n in range(8) if n in done]
    assert all(status in (429, 503) and int(after) >= 1 for status, after in refused), done
    # Those that waited wrote once the lock was free.
    assert all(writes[n].result()[0] == 201 for n in waiting)


def slow_upload(
    stack,
    slug: str,
    token: str | None,
    request: str = "PUT /api/v1/pages/Home/attachments/slow.bin",
    length: int = 100000,
) -> socket.socket:
    """A client that sends a request's headers (an upload's, unless `request` says otherwise)
    and a first bit of its `length`-byte body, then waits."""
    sock = socket.create_connection(("127.0.0.1", stack.port("otterwiki")), timeout=30)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(
        f"{request} HTTP/1.1\r\nHost: {slug}.localhost\r\n{auth}"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        "first".encode()
    )
    return sock


def assert_slow_upload_stored(upload: socket.socket) -> None:
    """Past SLOW_AFTER (the upload has taken a place by then), send the rest of the body of
    `upload` (slow_upload's default) and check it was stored."""
    with upload:
        time.sleep(SLOW_AFTER + 0.3)
        upload.sendall(b"x" * (100000 - len("first")))
        answer = upload.recv(65536).decode("latin-1")
    assert answer.startswith(("HTTP/1.1 200", "HTTP/1.1 201")), answer


def answer_of(sock: socket.socket) -> str:
    """Everything the service sends on `sock` until it closes the connection."""
    return b"".join(iter(lambda: sock.recv(65536), b"")).decode("latin-1")


def test_slow_bodies_never_hold_every_worker(wikis):
    """Writers trickling bodies take a place each, one per pool of callers (app.web.bodies):
    a pool's second slow body is refused, another pool's finds a place, and pages still
    answer."""
    senders = [slow_upload(wikis, OTHER, wikis.other_token)]
    try:
        time.sleep(SLOW_AFTER + 0.3)  # it has taken its pool's place by now
        refused = slow_upload(wikis, OTHER, wikis.other_token)
        senders.append(refused)
        answer = answer_of(refused)
        assert answer.startswith("HTTP/1.1 503") and "Retry-After: 5" in answer, answer
        assert "try again" in answer
        # Another owner's writer (another pool) finds a place.
        assert_slow_upload_stored(slow_upload(wikis, HAMMERED, wikis.hammered_token))
        assert views(wikis, OTHER, "/", 5) == [200] * 5
    finally:
        for sender in senders:
            sender.close()
    # Once they are gone, a slow body of the first pool takes a place again.
    time.sleep(0.5)
    assert_slow_upload_stored(slow_upload(wikis, OTHER, wikis.other_token))  # stored whole


UPLOADER = ("did:plc:turnsuploader", "turns-uploader.test")


def test_one_owners_slow_uploads_leave_a_place_for_another_owner(wikis):
    """Twenty-second review: members of three wikis of one owner trickled uploads, took every
    slow place, and another owner's writes and pushes were refused at once. Now one owner's
    pools hold all places but one together: the third of them is refused, another owner's
    slow upload finds its place and is stored."""
    store = Store(wikis.settings.database_url)
    store.upsert_user(*UPLOADER)
    tokens = []
    for slug in (HAMMERED, SIBLING):  # a pool of members each
        store.add_member(slug, *UPLOADER, "editor")
        tokens.append((slug, store.create_token(slug, UPLOADER[0], "editor")[1]))
    store.close()
    tokens.append((HAMMERED, wikis.hammered_token))  # the owner's own pool
    per_owner = max(1, gunicorn_workers() - 2)
    senders = []
    try:
        for slug, token in tokens[:per_owner]:
            senders.append(slow_upload(wikis, slug, token))
            time.sleep(SLOW_AFTER + 0.3)  # it has taken its place by now
        refused = slow_upload(wikis, *tokens[per_owner])
        senders.append(refused)
        answer = answer_of(refused)
        assert answer.startswith("HTTP/1.1 503") and "this owner's wikis" in answer, answer
        assert_slow_upload_stored(slow_upload(wikis, OTHER, wikis.other_token))
    finally:
        for sender in senders:
            sender.close()


def test_a_caller_who_cannot_write_is_refused_a_large_body_before_sending_it(wikis):
    """Anonymous, on a public wiki: answered at once, while the body has not even begun."""
    with slow_upload(wikis, OTHER, None) as anonymous:
        answer = answer_of(anonymous)
    assert answer.startswith("HTTP/1.1 401") and "may write to this wiki" in answer, answer


def test_a_slow_small_body_from_a_caller_who_cannot_write_takes_no_place(wikis):
    """Anonymous clients trickle search-sized bodies, more of them than there are places: each
    is cut at once with 408, and a writer's slow upload still finds a place."""
    places = gunicorn_workers() - 1
    requests = ["GET /api/v1/pages/Home", "POST /-/search", "POST /Home/preview"]
    strangers = [
        # Search's form may send no more (FORM_BODY_BYTES < READER_BODY_BYTES).
        slow_upload(wikis, OTHER, None, requests[n % len(requests)], FORM_BODY_BYTES - 1)
        for n in range(places + 1)
    ]
    try:
        for stranger in strangers:
            answer = answer_of(stranger)
            assert answer.startswith("HTTP/1.1 408") and "may not write" in answer, answer
        assert_slow_upload_stored(slow_upload(wikis, OTHER, wikis.other_token))
    finally:
        for stranger in strangers:
            stranger.close()


def slow_reader(stack, slug: str, path: str, token: str | None = None) -> socket.socket:
    """A client that asks for `path` (with `token`, if given) with a receive window of a few
    kilobytes, then reads nothing until told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", stack.port("otterwiki")))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {slug}.localhost\r\n{auth}\r\n".encode())
    return sock


def store_large(stack, slug: str, token: str, size: int) -> None:
    with stack.client("otterwiki", host=f"{slug}.localhost") as client:
        stored = client.put(
            "/api/v1/pages/Home/attachments/large.bin",
            content=os.urandom(size),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert stored.status_code in (200, 201), stored.text


LARGE = 8 * 1024 * 1024


def received(reader: socket.socket) -> int:
    return len(answer_of(reader).encode("latin-1"))


def test_slow_readers_never_hold_every_worker(wikis):
    """Fourth review: four clients reading a 10 MB attachment slowly held every worker for
    27 s. Sixth review: strangers reading slowly took every place, and the owner's own
    download begun then was cut. Now a crowd of anonymous slow readers holds one place (its
    pool's); the rest are cut, the owner's slow download finds a place, and pages answer."""
    store_large(wikis, OTHER, wikis.other_token, LARGE)
    strangers, owner = [], None
    try:
        for _ in range(gunicorn_workers()):
            strangers.append(slow_reader(wikis, OTHER, "/Home/a/large.bin"))
            time.sleep(0.2)  # the first one takes the crowd's place
        owner = slow_reader(wikis, OTHER, "/Home/a/large.bin", wikis.other_token)
        time.sleep(SLOW_SEND + 1)
        assert views(wikis, OTHER, "/", 5) == [200] * 5  # a worker is free for everyone
        sizes = [received(reader) for reader in strangers]
        owners = received(owner)
    finally:
        for reader in [*strangers, owner]:
            if reader is not None:
                reader.close()
    assert owners > LARGE  # the body and its head
    whole = [n for n in sizes if n > LARGE]
    assert len(whole) == 1 and len(sizes) - len(whole) == gunicorn_workers() - 1, sizes


def test_a_visitor_gives_its_place_up_to_the_wikis_owner(wikis):
    """Seventh review: two anonymous slow readers of two owners' public wikis and one account
    reading its own wiki slowly took every place, and another owner's own download was cut.
    Now the owner has a visitor's place given up: one stranger is cut instead."""
    store_large(wikis, OTHER, wikis.other_token, LARGE)
    store_large(wikis, HAMMERED, wikis.hammered_token, LARGE)
    readers, member, owner = [], None, None
    try:
        for slug in (OTHER, HAMMERED):  # two visitors' pools: the places visitors may take
            readers.append(slow_reader(wikis, slug, "/Home/a/large.bin"))
            time.sleep(0.2)
        member = slow_reader(wikis, HAMMERED, "/Home/a/large.bin", wikis.hammered_token)
        time.sleep(SLOW_SEND + 0.5)  # all three places taken
        owner = slow_reader(wikis, OTHER, "/Home/a/large.bin", wikis.other_token)
        time.sleep(SLOW_SEND + 1.5)  # past its deadline, it has a visitor's place
        assert views(wikis, OTHER, "/", 3) == [200] * 3
        strangers = [received(reader) for reader in readers]
        assert received(member) > LARGE and received(owner) > LARGE
    finally:
        for reader in [*readers, member, owner]:
            if reader is not None:
                reader.close()
    assert sorted(n > LARGE for n in strangers) == [False, True], strangers
