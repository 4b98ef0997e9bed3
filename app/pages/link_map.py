"""Which pages each page of a wiki links to, kept by page blob so that /links, /orphans (and
MCP's get_links and find_orphaned_pages, which call them) and a rename's update of links read
each page once per version.

Both answers need every page's links: each call read and parsed every page, and on a wiki of
9,900 link-heavy pages (7 MB) one call took 19 s, the next was killed at the worker timeout
(twenty-fifth review). The map is kept in a SQLite file in the wiki's folder
(Settings.link_map_path), one row per page blob, or per blob and folder for a page with
relative links (what they name depends on where the page is), for the wiki's link rules. A
blob pushed under many names is one row, read once: a map kept by blob *and* folder in one
JSON file grew with the names (79 MB from one page pushed under 1,500 names) and every call
loaded and rewrote it whole (twenty-sixth review). The map is derived from git, never backed
up, and rebuilt when unreadable. A call reads at most FILL_SECONDS of pages it has not seen;
past that it keeps what it read and answers 503 (Retry-After), and the next call goes on.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import sqlite3
import time
from pathlib import Path

import git

from app.core.errors import PayloadTooLarge
from app.core.errors import Unavailable
from app.pages.files import page_blobs
from app.pages.files import page_text
from app.pages.links import PageLinks
from app.pages.links import page_links
from app.pages.paths import PathRules

# Wall-clock seconds one call may spend reading pages not in the map yet.
FILL_SECONDS = 4.0
# Seconds a caller told to wait is asked to come back after.
FILL_RETRY = 2
# Links (page and file-folder targets) of all distinct page versions at HEAD, summed, that
# one call holds: a relative-link page pushed under many folders is one set each, and
# past this the wiki is too big to answer for (PayloadTooLarge), not a worker's death.
MAX_MAP_LINKS = 1_000_000
# Changed when what is kept per page changes, or how a page's links are read (3: comments,
# math, HTML blocks, escapes and dot segments read as the renderer does): a map of another
# format is cleared.
FORMAT = 3
# Seconds a writer waits for another worker's write before keeping nothing this time.
BUSY_TIMEOUT = 2.0
# Keys a query looks up at once (SQLite's default limit of variables is 32,766).
_BATCH = 500
_NONE = PageLinks((), (), False)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (key TEXT PRIMARY KEY, found TEXT NOT NULL);
"""


class LinkMap:
    """The links of every page of one wiki, read from its HEAD through the kept map at `path`
    (None: none kept, every page read each time).

    `repo` is the wiki's git.Repo, `rules` its PathRules and `wikilink_style` Otterwiki's
    WIKILINK_STYLE: they decide what a link names, so a map kept for other ones is cleared.
    """

    def __init__(self, path: Path | None, repo: git.Repo, rules: PathRules, wikilink_style: str):
        self.path = None if path is None else Path(path)
        self.repo = repo
        self.rules = rules
        self.wikilink_style = wikilink_style

    def read(self) -> dict[str, PageLinks]:
        """Map each page file at HEAD to its PageLinks (pages with one text share one object).

        Raises Unavailable (503, Retry-After FILL_RETRY s) when the pages not yet in the map
        took more than FILL_SECONDS to read: what was read is kept for the next call; and
        PayloadTooLarge (413) past MAX_MAP_LINKS links.
        """
        try:
            blobs = list(page_blobs(self.repo))
        except git.exc.GitCommandError:
            return {}  # no commits yet
        db = self._connect()
        try:
            kept = self._load(db, blobs) if db else {}
            found, fresh, left = self._fill(blobs, kept)
            if db:
                self._save(db, fresh, None if left else set(kept) | set(fresh))
        finally:
            if db:
                db.close()
        if left:
            raise Unavailable(
                f"this wiki's links are being read ({len(blobs) - left} of {len(blobs)} pages "
                "so far); try again in a moment",
                retry_after=FILL_RETRY,
            )
        return found

    def outgoing(self) -> dict[str, tuple[str, ...]]:
        """Map each page path at HEAD to the page paths it links to (canonical, in order);
        pages of one text share one tuple. Raises as `read`."""
        return {self.rules.page_path(f): links.pages for f, links in self.read().items()}

    def _fill(self, blobs, kept: dict[str, PageLinks]):
        """(each page file's PageLinks, the rows read now by key, how many pages were left
        unread at the deadline)."""
        deadline = time.monotonic() + FILL_SECONDS
        found: dict[str, PageLinks] = {}
        fresh: dict[str, PageLinks] = {}
        counted: set[str] = set()
        total = left = 0
        for filename, mode, sha in blobs:
            by_folder = f"{sha}:{posixpath.dirname(filename)}"
            key = sha if sha in kept or sha in fresh else by_folder
            links = kept.get(key) or fresh.get(key)
            if links is None:
                if time.monotonic() >= deadline:
                    left += 1
                    continue
                links = self._links_of(filename, mode, sha)
                key = by_folder if links.relative else sha
                fresh[key] = links
            if key not in counted:
                counted.add(key)
                total += len(links.pages) + len(links.folders)
                if total > MAX_MAP_LINKS:
                    raise PayloadTooLarge(
                        f"this wiki's pages hold more than {MAX_MAP_LINKS} links; its links "
                        "and orphans cannot be listed (a rename can still move a page "
                        "without update_links)"
                    )
            found[filename] = links
        return found, fresh, left

    def _links_of(self, filename: str, mode: str, sha: str) -> PageLinks:
        """The links of one page's blob; none for a symlink, a page too big for the editor
        (only a push makes one) or one that is not UTF-8 text, as before."""
        text = page_text(self.repo, mode, sha)
        if not text:
            return _NONE
        return page_links(self.rules, filename[:-3], text, self.wikilink_style)

    # -- the kept rows ------------------------------------------------------------------

    def _rules_key(self) -> str:
        return json.dumps([FORMAT, self.rules.retain_case, self.wikilink_style])

    def _connect(self) -> sqlite3.Connection | None:
        """The kept map, ready for this wiki's rules; None when none is kept or it cannot be
        opened (a folder we cannot write to): then every page is read, nothing kept."""
        if self.path is None:
            return None
        for _ in range(2):
            db = None
            try:
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                rules = db.execute("SELECT value FROM meta WHERE key = 'rules'").fetchone()
                if rules != (self._rules_key(),):
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("DELETE FROM links")
                    db.execute("REPLACE INTO meta VALUES ('rules', ?)", (self._rules_key(),))
                    db.execute("COMMIT")
                return db
            except sqlite3.DatabaseError as error:
                if db is not None:
                    db.close()
                if isinstance(error, sqlite3.OperationalError):
                    return None  # busy or unwritable: answer without keeping
                self._remove()  # not a database (torn, or an older format): rebuilt
        return None

    def _load(self, db: sqlite3.Connection, blobs) -> dict[str, PageLinks]:
        """The kept rows of HEAD's page blobs, by key (blob, or blob:folder)."""
        keys = {sha for _, _, sha in blobs}
        keys.update(f"{sha}:{posixpath.dirname(filename)}" for filename, _, sha in blobs)
        ordered = list(keys)
        kept = {}
        try:
            for start in range(0, len(ordered), _BATCH):
                batch = ordered[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                query = f"SELECT key, found FROM links WHERE key IN ({marks})"  # noqa: S608
                for key, found in db.execute(query, batch):
                    pages, folders, relative = json.loads(found)
                    kept[key] = PageLinks(tuple(pages), tuple(folders), relative)
        except (sqlite3.DatabaseError, ValueError, TypeError):
            return {}  # unreadable rows: read the pages again, and write them over
        return kept

    def _save(self, db: sqlite3.Connection, fresh: dict[str, PageLinks], used) -> None:
        """Keep the rows read now; with `used` (the keys HEAD needs, given once the map is
        whole) drop every other row, so the map never outgrows what HEAD holds."""
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "REPLACE INTO links VALUES (?, ?)",
                (
                    (key, json.dumps([links.pages, links.folders, links.relative]))
                    for key, links in fresh.items()
                ),
            )
            if used is not None:
                (rows,) = db.execute("SELECT count(*) FROM links").fetchone()
                if rows > len(used):
                    db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY)")
                    db.executemany(
                        "INSERT OR IGNORE INTO temp.used VALUES (?)", ((k,) for k in used)
                    )
                    db.execute("DELETE FROM links WHERE key NOT IN (SELECT key FROM temp.used)")
            db.execute("COMMIT")
        except sqlite3.DatabaseError:
            if db.in_transaction:
                db.execute("ROLLBACK")  # busy, or a full disk: what was read is read again

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
