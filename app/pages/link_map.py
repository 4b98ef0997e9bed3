"""Which pages each page of a wiki links to, kept by page blob so that /links, /orphans (and
MCP's get_links and find_orphaned_pages, which call them) read each page once per version.

Both answers need every page's links: each call read and parsed every page, and on a wiki of
9,900 link-heavy pages (7 MB) one call took 19 s, the next was killed at the worker timeout,
and two at once killed two workers (twenty-fifth review). The map is kept in one JSON file
in the wiki's folder (Settings.link_map_path), keyed by blob id and the folder the page is
in (relative links depend on it), for the wiki's link rules; it is derived from git, never
backed up, and rebuilt when unreadable. A call reads at most FILL_SECONDS of pages it has not
seen; past that it keeps what it read and answers 503 (Retry-After), and the next call goes
on from there.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
import time
from pathlib import Path

import git

from app.core.errors import Unavailable
from app.pages.links import outgoing_links
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import PathRules

# Wall-clock seconds one call may spend reading pages not in the map yet.
FILL_SECONDS = 4.0
# Seconds a caller told to wait is asked to come back after.
FILL_RETRY = 2
# Changed when what is kept per page changes: an older file is read as empty.
FORMAT = 1
_REGULAR_FILE_MODES = {"100644", "100755"}


def page_blobs(repo: git.Repo) -> dict[str, tuple[str, str]]:
    """Map each page file (`.md`) at `repo`'s HEAD to (mode, blob id); {} without commits.
    One `git ls-tree` reads only the tree, never a page."""
    try:
        listing = repo.git.execute(
            ["git", "ls-tree", "-r", "-z", "--full-tree", "HEAD"], stdout_as_string=False
        )
    except git.exc.GitCommandError:
        return {}  # no commits yet
    blobs = {}
    for entry in listing.split(b"\0"):
        info, _, name = entry.partition(b"\t")
        filename = name.decode("utf-8", errors="surrogateescape")
        if not filename.endswith(".md") or not info:
            continue
        mode, kind, sha = info.decode("ascii").split()
        if kind == "blob":
            blobs[filename] = (mode, sha)
    return blobs


class LinkMap:
    """The links of every page of one wiki, read from its HEAD through the kept map at `path`
    (None: none kept, every page read each time).

    `repo` is the wiki's git.Repo, `rules` its PathRules and `wikilink_style` Otterwiki's
    WIKILINK_STYLE: they decide what a link names, so a map kept for other ones is dropped.
    """

    def __init__(self, path: Path | None, repo: git.Repo, rules: PathRules, wikilink_style: str):
        self.path = None if path is None else Path(path)
        self.repo = repo
        self.rules = rules
        self.wikilink_style = wikilink_style

    def outgoing(self) -> dict[str, list[str]]:
        """Map each page path at HEAD to the page paths it links to (canonical, in order).

        Raises Unavailable (503, Retry-After FILL_RETRY s) when the pages not yet in the map
        took more than FILL_SECONDS to read: what was read is kept for the next call.
        """
        blobs = page_blobs(self.repo)
        kept = self._load()
        deadline = time.monotonic() + FILL_SECONDS
        found: dict[str, list[str]] = {}
        fresh: dict[str, list[str]] = {}
        left = 0
        for filename, (mode, sha) in blobs.items():
            key = f"{sha}:{posixpath.dirname(filename)}"
            targets = kept.get(key)
            if targets is None:
                if time.monotonic() >= deadline:
                    left += 1
                    continue
                targets = self._read(filename, mode, sha)
            fresh[key] = targets
            found[self.rules.page_path(filename)] = targets
        if fresh.keys() != kept.keys():
            self._save(fresh)  # only what HEAD holds: the map never outgrows the wiki
        if left:
            raise Unavailable(
                f"this wiki's links are being read ({len(blobs) - left} of {len(blobs)} pages "
                "so far); try again in a moment",
                retry_after=FILL_RETRY,
            )
        return found

    def _read(self, filename: str, mode: str, sha: str) -> list[str]:
        """The links of one page's blob; none for a symlink, a page too big for the editor
        (only a push makes one) or one that is not UTF-8 text, as before."""
        if mode not in _REGULAR_FILE_MODES:
            return []
        _, _, size = self.repo.git.get_object_header(sha)
        if size > MAX_CONTENT_BYTES:
            return []
        try:
            text = self.repo.git.get_object_data(sha)[3].decode("utf-8")
        except UnicodeDecodeError:
            return []
        return outgoing_links(self.rules, filename[:-3], text, self.wikilink_style)

    def _rules_key(self) -> list:
        return [FORMAT, self.rules.retain_case, self.wikilink_style]

    def _load(self) -> dict[str, list[str]]:
        if self.path is None:
            return {}
        try:
            kept = json.loads(self.path.read_text(encoding="utf-8"))
            if kept["rules"] == self._rules_key() and isinstance(kept["pages"], dict):
                return kept["pages"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing, torn by a crash before the rename, or another format: rebuilt
        return {}

    def _save(self, pages: dict[str, list[str]]) -> None:
        """Write the map whole and rename it into place: a reader sees the old or the new.
        Two workers saving at once keep one's; the other's pages are read again later."""
        if self.path is None:
            return
        try:
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".links-")
        except OSError:
            return  # a wiki folder we cannot write to: answer without keeping
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as file:
                json.dump({"rules": self._rules_key(), "pages": pages}, file)
            os.replace(temporary, self.path)
        except (OSError, ValueError):
            Path(temporary).unlink(missing_ok=True)
