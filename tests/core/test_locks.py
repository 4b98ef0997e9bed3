"""The per-wiki write lock, across processes: a waiter's place is asked for only when the lock
is busy, and a refusal from it or a wait past the timeout is 503 with Retry-After."""

import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from app.core.errors import Unavailable
from app.core.locks import BUSY_RETRY
from app.core.locks import wiki_write_lock


@contextmanager
def held_elsewhere(wiki_dir, seconds: float):
    """The lock, held by another process for `seconds`."""
    code = (
        "import sys, time; from pathlib import Path; from app.core.locks import wiki_write_lock\n"
        "with wiki_write_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(wiki_dir), str(seconds)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_free_lock_never_asks_for_a_place_to_wait(tmp_path):
    asked = []
    with wiki_write_lock(tmp_path, 1.0, lambda: asked.append(1)):
        pass
    assert asked == []


def test_a_busy_lock_is_waited_for_in_the_place_given(tmp_path):
    entered = []

    @contextmanager
    def place():
        entered.append("in")
        yield
        entered.append("out")

    with held_elsewhere(tmp_path, 0.5):
        with wiki_write_lock(tmp_path, 10.0, place):
            assert entered == ["in", "out"]  # left once the lock is ours


def test_a_refused_place_refuses_at_once_and_a_long_wait_is_503(tmp_path):
    def no_place():
        raise Unavailable("busy", retry_after=BUSY_RETRY)

    with held_elsewhere(tmp_path, 30):
        with pytest.raises(Unavailable):
            with wiki_write_lock(tmp_path, 20.0, no_place):
                pass
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            with wiki_write_lock(tmp_path, 0.3):
                pass
        assert time.monotonic() - started >= 0.3
    assert refused.value.status == 503 and refused.value.retry_after == BUSY_RETRY
