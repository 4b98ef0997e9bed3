"""Through the real wiki service: a hammered wiki runs lower, a lone reader never looks hammered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from app.wiki.turns import LOW_NICE
from app.wiki.turns import can_restore_priority

pytestmark = pytest.mark.stack

OWNER = ("did:plc:turnsowner", "turns-owner.test")
HAMMERED, OTHER = "turns-hammered", "turns-other"


@pytest.fixture(scope="module")
def wikis(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    for slug in (HAMMERED, OTHER):
        create_wiki(stack.settings, store, slug, OWNER[0], public=True)
    _, secret = store.create_token(HAMMERED, OWNER[0], "editor")
    store.close()
    with stack.client("otterwiki", host=f"{HAMMERED}.localhost") as client:
        # A big page: each view (from the render cache) is several milliseconds of work.
        content = "# Big\n\n" + "A line of [brackets] and *emphasis*.\n\n" * 4000
        response = client.put(
            "/api/v1/pages/Big",
            json={"content": content},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 201
    return stack


def turn_file(stack, slug: str) -> Path:
    return stack.settings.wiki_dir(slug) / "turn-0.lock"


def views(stack, slug: str, path: str, count: int) -> list[int]:
    with stack.client("otterwiki", host=f"{slug}.localhost") as client:
        return [client.get(path).status_code for _ in range(count)]


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


def test_a_lone_reader_never_makes_its_wiki_look_hammered(wikis):
    assert views(wikis, OTHER, "/", 60) == [200] * 60
    # One client's requests never overlap: nobody waited, so the wiki was never contended.
    assert turn_file(wikis, OTHER).stat().st_mtime <= time.time()


@pytest.mark.skipif(not can_restore_priority(), reason="the stack may not restore priorities")
def test_a_hammered_wiki_runs_lower_while_other_wikis_answer(wikis):
    pids = workers(wikis)
    base = {pid: nice(pid) for pid in pids}
    seen: set[int] = set()
    hammering = threading.Event()
    hammering.set()

    def sample():
        while hammering.is_set():
            seen.update(nice(pid) for pid in pids)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            hammers = [pool.submit(views, wikis, HAMMERED, "/Big", 40) for _ in range(3)]
            other = pool.submit(views, wikis, OTHER, "/", 40)
            statuses = [status for hammer in hammers for status in hammer.result()]
            assert other.result() == [200] * 40
    finally:
        hammering.clear()
        sampler.join()
    assert statuses == [200] * 120
    # Three clients at once made the wiki wait for its turn, which marked it contended...
    assert turn_file(wikis, HAMMERED).stat().st_mtime > started
    # ...and its views ran at the lowest priority (the kernel caps niceness at 19).
    assert {min(nice + LOW_NICE, 19) for nice in base.values()} & seen
    # Every worker is put back once its response is out.
    deadline = time.monotonic() + 10
    while {pid: nice(pid) for pid in pids} != base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {pid: nice(pid) for pid in pids} == base
