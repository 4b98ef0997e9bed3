"""git's commit-graph kept up to date after writes (app/core/commit_graph.py), with real git."""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from pathlib import Path

import pytest

from app.core import commit_graph
from app.core import usage
from app.core.wikis import create_wiki
from tests.core.test_usage import commit
from tests.core.test_usage import git


@pytest.fixture(autouse=True)
def every_repository_is_long(monkeypatch):
    """These tests' repositories hold a few commits: let them have a graph all the same."""
    monkeypatch.setattr(commit_graph, "MIN_COMMITS", 1)


def bloom_checks(repo: Path, path: str) -> int:
    """How many commits `git log -- path` judged by their changed-path Bloom filter (git's
    trace2 "bloom" statistics): every commit of the graph but the root, none without one."""
    trace = repo.parent / "trace2.json"
    trace.unlink(missing_ok=True)
    subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%H", "--", path],
        env={"PATH": "/usr/bin:/bin", "GIT_TRACE2_EVENT": str(trace)},
        check=True,
        capture_output=True,
    )
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("category") == "bloom" and event.get("key") == "statistics":
            found = event["value"]  # false positives are among the "maybe"s
            return found["filter_not_present"] + found["maybe"] + found["definitely_not"]
    return 0


def child_commands() -> list[str]:
    """The command lines of this process's children (any thread's)."""
    commands = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                pass  # ended meanwhile
    return commands


def wait_for_writers(repo: Path, timeout: float = 60.0) -> None:
    """Wait until no `git commit-graph write` runs in `repo` (they run detached, at nice 19:
    slow on a loaded host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = []
        for proc in Path("/proc").iterdir():
            try:
                command = (proc / "cmdline").read_bytes()
                if b"commit-graph" in command and (proc / "cwd").resolve() == repo.resolve():
                    running.append(proc.name)
            except OSError:
                continue  # not a process, ended, or not ours to read
        if not running:
            return
        time.sleep(0.05)
    raise AssertionError(f"git commit-graph still runs in {repo}")


def repo_with_pages(tmp_path: Path, count: int, name: str = "p") -> Path:
    """A new repository of `count` commits, each adding page `{name}N.md`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for n in range(count):
        commit(repo, {f"{name}{n}.md": b"x"})
    return repo


def commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def wait_for_bloom_checks(repo: Path, path: str, wanted: int, timeout: float = 60.0) -> int:
    """Poll `bloom_checks` until it is `wanted` (the writer runs detached); return the last."""
    deadline = time.monotonic() + timeout
    while (checked := bloom_checks(repo, path)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return checked


def test_record_extends_the_graph_with_each_write(tmp_path):
    repo = repo_with_pages(tmp_path, 3, "page")
    assert bloom_checks(repo, "page0.md") == 0  # no graph yet
    assert commit_graph.refresh(repo)
    assert wait_for_bloom_checks(repo, "page0.md", 2) == 2
    commit(repo, {"page3.md": b"x"})
    assert bloom_checks(repo, "page0.md") == 2  # the new commit is not in it
    assert commit_graph.refresh(repo)
    assert wait_for_bloom_checks(repo, "page0.md", 3) == 3


def test_usage_record_starts_it_and_it_never_waits(settings, store, users):
    create_wiki(settings, store, "graph-one", users[0])
    repo = settings.repo_path("graph-one")
    for n in range(5):
        commit(repo, {f"p{n}.md": b"y"})
    # A step the wiki's creation started may still run (a loaded CI host): while it holds the
    # lock a write starts none, by design. Record once none runs.
    lock = repo / commit_graph.LOCK
    deadline = time.monotonic() + 60
    while lock.exists() and time.monotonic() < deadline:
        if subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 0:
            break
        time.sleep(0.05)
    usage.record(store, "graph-one", repo)
    every = commits(repo) - 1  # the root commit has no filter
    assert wait_for_bloom_checks(repo, "Home.md", every) == every
    # git runs as no one's child: nothing left for this process to reap.
    assert not any("commit-graph" in command for command in child_commands())


def test_a_short_history_gets_no_graph(tmp_path, monkeypatch):
    """Below MIN_COMMITS reading the graph costs git more than walking the history."""
    monkeypatch.setattr(commit_graph, "MIN_COMMITS", 5)
    repo = repo_with_pages(tmp_path, 4)
    assert commit_graph.refresh(repo)  # started; it ends at once
    commit(repo, {"p4.md": b"x"})
    assert commit_graph.refresh(repo)
    assert wait_for_bloom_checks(repo, "p0.md", 4) == 4  # five commits: it has one now
    # the step that wrote it may still be ending (a CI run: it wrote again after the rm)
    wait_for_writers(repo)
    subprocess.run(["rm", "-rf", str(repo / ".git/objects/info/commit-graphs")], check=True)
    monkeypatch.setattr(commit_graph, "MIN_COMMITS", 6)
    assert commit_graph.refresh(repo)
    wait_for_writers(repo)  # the detached step (its command line names commit-graph) ended
    assert bloom_checks(repo, "p0.md") == 0


def test_one_step_at_a_time_per_repository(tmp_path):
    """Seventh review: four writes to a long history started four full graph builds at once."""
    repo = repo_with_pages(tmp_path, 3)
    with open(repo / commit_graph.LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a step already running
        assert commit_graph.refresh(repo)
        wait_for_writers(repo)  # it gave up at once
        assert bloom_checks(repo, "p0.md") == 0
    assert commit_graph.refresh(repo)
    assert wait_for_bloom_checks(repo, "p0.md", 2) == 2
