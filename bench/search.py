"""Benchmark: search through the wiki's FTS5 index vs the scan of every page it replaced.

Builds a wiki of N pages (default 2,000) of generated but realistic Markdown (headings, prose
of a few hundred words at Zipf frequencies, lists, a name per page) in one git commit, times the
index build from nothing, then answers a few queries both ways in the same run: through
`app.pages.search.search` (the index, warm: built and up to date) and through `scan` below,
the search the page API and MCP used before the index (every page read from disk, searched
for the query as one case-insensitive phrase, snippets cut around matching lines). Prints each
query's best time of --runs both ways (the least moved by other load on a shared machine)
and the ratio; goal >= 20x at 2,000 pages (GOAL). Also prints
the time one query takes to fold in a fresh commit of one page (the index follows HEAD).

    .venv/bin/python bench/search.py [--pages 2000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from otterwiki.gitstorage import GitStorage  # noqa: E402
from otterwiki.gitstorage import StorageError  # noqa: E402

from app.pages.fulltext import SearchIndex  # noqa: E402
from app.pages.search import search  # noqa: E402
from app.pages.storage import Pages  # noqa: E402

GOAL = 20.0
AUTHOR = ("bench", "bench@localhost")
# (what the index is asked, what the scan is asked): the scan knows only one literal phrase.
QUERIES = [
    ("retro friday", "retro"),
    ("quarterly", "quarterly"),
    ("deploy*", "deploy"),
    ('"release checklist"', "release checklist"),
    ("kubernetes OR terraform", "kubernetes"),
]
WORDS = (
    "the a of and to in is for on with as by at from that this it be are was were will can "
    "team project meeting notes plan review release deploy deployment service database "
    "customer support ticket incident postmortem retro sprint backlog roadmap budget design "
    "architecture api endpoint latency cache queue worker schedule monday tuesday wednesday "
    "thursday friday quarterly weekly goal metric dashboard alert oncall runbook checklist "
    "migration schema backup restore security token access policy document draft decision "
    "owner update status risk blocker dependency launch feedback user research interview "
    "kubernetes terraform python javascript testing staging production rollout rollback "
    "invoice contract vendor hiring onboarding laptop office travel expense quota forecast "
    "pipeline artifact container cluster node network firewall certificate domain email "
    "newsletter campaign marketing sales lead partner pricing discount renewal churn survey "
    "glossary faq tutorial guide howto reference appendix changelog milestone estimate "
    "prototype wireframe mockup accessibility localization translation font color layout"
).split()
# Word frequencies in text fall off as 1/rank (Zipf's law): the first words are the common ones.
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]


def paragraph(rng: random.Random, sentences: int) -> str:
    """`sentences` sentences of 8 to 18 words drawn at Zipf frequencies."""
    out = []
    for _ in range(sentences):
        words = rng.choices(WORDS, WEIGHTS, k=rng.randint(8, 18))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def page_text(rng: random.Random, n: int) -> str:
    """Page `n`'s Markdown: a title, an intro, 2 to 5 sections of prose and lists (~1-3 KB)."""
    parts = [f"# Page {n}\n", paragraph(rng, 4)]
    for _ in range(rng.randint(2, 5)):
        parts.append(f"\n## {paragraph(rng, 1)[:40]}\n")
        parts.append(paragraph(rng, rng.randint(2, 6)))
        parts.append("\n".join(f"- {paragraph(rng, 1)}" for _ in range(rng.randint(0, 4))))
    return "\n\n".join(parts) + "\n"


def build_wiki(folder: Path, count: int) -> Pages:
    """A repository of `count` generated pages in folders, committed at once."""
    rng = random.Random(13)
    storage = GitStorage(str(folder / "repo"), initialize=True)
    for n in range(count):
        name = f"area-{n % 20}/{' '.join(rng.choices(WORDS, k=2))} {n}.md"
        path = folder / "repo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page_text(rng, n))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=folder / "repo", check=True)
    subprocess.run([*git, "commit", "-qm", "pages"], cwd=folder / "repo", check=True)
    return Pages(storage)


def scan(pages: Pages, query: str, limit: int = 20) -> list[dict]:
    """The search before the index: read every page, find `query` as one phrase, any case."""
    needle = query.strip().casefold()
    scored = []
    for filename in pages.page_files():
        try:
            text = pages.storage.load(filename)
        except StorageError:
            continue
        path = pages.rules.page_path(filename)
        count, snippets = 0, []
        for line in text.splitlines():
            folded = line.casefold()
            at = folded.find(needle)
            if at < 0:
                continue
            count += folded.count(needle)
            if len(snippets) < 3:
                snippets.append(line[max(0, at - 80) : at + len(needle) + 80].strip())
        if needle in path.casefold() or count:
            scored.append((needle not in path.casefold(), -count, path, snippets))
    scored.sort()
    return [{"path": p, "snippets": s} for _, _, p, s in scored[:limit]]


def best_seconds(work, runs: int) -> float:
    """The shortest of `runs` timed calls of `work`: the one least slowed by other load."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        pages = build_wiki(folder, args.pages)
        print(f"wiki of {args.pages} pages written in {time.perf_counter() - start:.1f} s")
        index = folder / "search.db"
        start = time.perf_counter()
        SearchIndex(index, pages.storage.repo).refresh()
        build = time.perf_counter() - start
        size = index.stat().st_size / 1e6
        print(f"index build: {build:.2f} s ({size:.1f} MB)")
        print(f"{'query':28} {'index':>10} {'scan':>10}  ratio")
        ratios = []
        for indexed, scanned in QUERIES:
            fast = best_seconds(lambda q=indexed: search(pages, q, 20, index), args.runs)
            slow = best_seconds(lambda q=scanned: scan(pages, q), args.runs)
            ratios.append(slow / fast)
            verdict = "ok" if ratios[-1] >= GOAL else f"below the goal of {GOAL:.0f}x"
            print(
                f"{indexed:28} {fast * 1e3:8.2f} ms {slow * 1e3:8.1f} ms  "
                f"{ratios[-1]:6.1f}x  {verdict}"
            )
        pages.write("Fresh", "a freshly written zanzibar page\n", AUTHOR)
        start = time.perf_counter()
        found = search(pages, "zanzibar", 20, index)
        catch_up = time.perf_counter() - start
        assert [hit["path"] for hit in found] == ["Fresh"]
        print(f"first query after a one-page commit (index catches up): {catch_up * 1e3:.1f} ms")
        print(f"headline: median ratio {statistics.median(ratios):.1f}x (goal >= {GOAL:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
