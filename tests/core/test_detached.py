"""Detached steps (app/core/detached.py): one per repository and kind, SLOTS on the host."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.core import detached
from app.core.locks import try_lock


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def start_waiting_step(repo: Path) -> bool:
    """Start a step in `repo` that says it started, then runs until a `stop` file appears."""
    script = "touch started; while [ ! -e stop ]; do sleep 0.05; done; touch stopped"
    env = {"PATH": os.environ["PATH"]}
    return detached.start_detached(repo, "step.lock", ("sh", "-c", script), env)


def slot_taken(folder: Path, n: int) -> bool:
    fd = os.open(folder / f"slot-{n}.lock", os.O_RDONLY | os.O_CREAT)
    try:
        return not try_lock(fd)
    finally:
        os.close(fd)


def test_steps_beyond_the_instances_slots_are_not_started(tmp_path, monkeypatch):
    """Twenty-fourth review: one owner with 20 wikis started 20 search catch-ups at once.
    Steps hold one of SLOTS of the instance while they run; a start with none free gives up."""
    monkeypatch.setattr(detached, "_slots_folder", None)
    detached.use_slots_in(tmp_path)
    repos = []
    for n in range(detached.SLOTS + 2):
        repo = tmp_path / f"wiki{n}" / "repo"
        repo.mkdir(parents=True)
        repos.append(repo)
    try:
        for repo in repos[: detached.SLOTS]:
            assert start_waiting_step(repo)
            wait_for(repo / "started")
        assert all(slot_taken(tmp_path, n) for n in range(detached.SLOTS))
        for repo in repos[detached.SLOTS :]:
            assert not start_waiting_step(repo)
        (repos[0] / "stop").touch()
        wait_for(repos[0] / "stopped")
        deadline = time.monotonic() + 30
        while slot_taken(tmp_path, 0) and slot_taken(tmp_path, 1):
            assert time.monotonic() < deadline, "the ended step kept its slot"
            time.sleep(0.02)
        # Another start in a repository whose step runs ends at once, taking no slot.
        assert start_waiting_step(repos[1])
        time.sleep(0.5)
        late = repos[detached.SLOTS]
        assert start_waiting_step(late)
        wait_for(late / "started")
    finally:
        for repo in repos:
            (repo / "stop").touch()
    for repo in repos[: detached.SLOTS + 1]:
        wait_for(repo / "stopped")
    assert not (repos[-1] / "started").exists()


def test_loading_the_platform_names_the_slots_folder(tmp_path, monkeypatch):
    from app.core.platform import Platform
    from app.core.platform import init_instance
    from app.core.settings import Settings

    monkeypatch.setattr(detached, "_slots_folder", None)
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / "data")})
    init_instance(settings)
    Platform.load(settings).store.close()
    assert detached._slots_folder == settings.run_dir / "detached"
