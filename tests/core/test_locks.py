"""The wiki's write lock: one holder, at most one request waiting, a busy lock is 503."""

import threading

import pytest

from app.core.errors import Unavailable
from app.core.locks import BUSY_RETRY
from app.core.locks import wiki_write_lock


def test_a_busy_lock_is_503_with_retry_after(tmp_path):
    with wiki_write_lock(tmp_path):
        with pytest.raises(Unavailable) as refused:
            with wiki_write_lock(tmp_path, timeout=0.05):
                pass
    assert refused.value.status == 503 and refused.value.retry_after == BUSY_RETRY
    assert "busy" in refused.value.message


def test_one_request_waits_for_the_lock_and_another_is_refused_at_once(tmp_path):
    """Seventeenth review: eight writes of one wiki, its lock held, held every worker of the
    host for 20 s. One waits; the next is refused at once; once the first has the lock, the
    waiting place is free again."""
    got = threading.Event()
    release = threading.Event()

    def waiter():
        with wiki_write_lock(tmp_path, timeout=30, one_waiter=True):
            got.set()
            release.wait(30)

    with wiki_write_lock(tmp_path):
        first = threading.Thread(target=waiter)
        first.start()
        while not (tmp_path / "write-wait.lock").exists():
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)  # it holds the waiting place
        with pytest.raises(Unavailable) as refused:
            with wiki_write_lock(tmp_path, timeout=30, one_waiter=True):
                pass
        assert refused.value.retry_after == BUSY_RETRY and not got.is_set()
    assert got.wait(30)  # the first waiter has the lock now, and the waiting place is free
    outcome = []

    def next_waiter():
        try:
            with wiki_write_lock(tmp_path, timeout=30, one_waiter=True):
                outcome.append("entered")
        except Unavailable:
            outcome.append("refused")

    second = threading.Thread(target=next_waiter)
    second.start()
    threading.Event().wait(0.1)
    release.set()
    first.join()
    second.join()
    assert outcome == ["entered"]


def test_without_one_waiter_any_number_wait(tmp_path):
    """Operator tasks (backups, wiki creation) wait their turn whatever requests do."""
    done = []

    def task():
        with wiki_write_lock(tmp_path, timeout=30):
            done.append(1)

    with wiki_write_lock(tmp_path):
        threads = [threading.Thread(target=task) for _ in range(3)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.2)
        assert done == []
    for thread in threads:
        thread.join()
    assert done == [1, 1, 1]
