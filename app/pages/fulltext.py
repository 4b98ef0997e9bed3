"""A wiki's full-text index: SQLite FTS5 over the pages at HEAD, brought up to date per query.

The index lives in its own file beside the repository (`search.db`, derived data: backups leave
it out, and a missing or corrupt file is built again). It records the commit it holds; every
query first compares that with HEAD and, when they differ, applies `git diff-tree` between the
two commits (or, when the recorded commit is gone, e.g. after a forced push, reads the whole
tree again). So pages written through the UI, the page API, MCP or a `git push` are found by the
next query, without any hook. It reads committed blobs only, never the working tree.

A query's cost is bounded whatever the pages hold. FTS5's `snippet()` is quadratic in the
matches of the text it is given (it scores every match against every other) and `highlight()`
nearly so (it copies its output at every match): over a page of "a " * 20,000 one query spent
8 s, 6.7 s of it in snippet(), and at 100,000 a worker was killed (twenty-fifth review). So
pages are ranked on their whole text, which is never highlighted, and snippets and match
counts are cut from a second table holding each page's text in pieces of about CHUNK_CHARS
characters (`_excerpts`): a hit has a few pieces highlighted and one snippeted, whatever its
page; what is left grows with the matching text, as FTS5's own ranking does.

Several processes share the file: WAL lets queries read while one updates, and an update runs
in `BEGIN IMMEDIATE`, re-checking the recorded commit once it holds the write lock, so two
workers never index the same change twice. A new file is set up (WAL, schema) by one process
at a time, under an flock on `search.db.lock` beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import git.exc

from app.core.detached import start_module
from app.core.errors import Unavailable
from app.core.git_env import git_env
from app.core.locks import file_lock
from app.pages.files import REGULAR_FILE_MODES
from app.pages.files import head_commit
from app.pages.files import page_blobs
from app.pages.files import page_file_name
from app.pages.files import page_text
from app.pages.paths import PathRules
from app.pages.query import any_fts
from app.pages.query import parse
from app.pages.query import to_fts

# Bump when the schema or what is indexed changes: an index of another version is rebuilt.
SCHEMA_VERSION = "4"
# bm25 weights of the columns (name, body): a word in the page's name counts ten in its text.
NAME_WEIGHT, BODY_WEIGHT = 10.0, 1.0
# Words of context in a snippet: about a sentence, small enough for an agent's context.
SNIPPET_TOKENS = 24
# Marks around matches inside SQLite; removed from indexed text, so they can only be ours.
OPEN, CLOSE = "\x02", "\x03"
ELLIPSIS = "…"
_MARKS = str.maketrans("", "", OPEN + CLOSE)
_SPACE = re.compile(r"\s+")
_OPEN = re.compile(OPEN)
# Pieces of page text that snippets and counts are cut from (module docstring): a core of
# about CHUNK_CHARS characters (cut after a space, from half of it on) with up to
# OVERLAP_CHARS of the text before and after it, so a phrase across a cut is still found
# whole in one piece, and a match in a core has half a snippet's words around it.
CHUNK_CHARS = 480
OVERLAP_CHARS = 120
# A piece's rowid: its page's id * CHUNK_SPAN + its number in the page (a page of
# MAX_CONTENT_BYTES makes at most MAX_CONTENT_BYTES / (CHUNK_CHARS / 2) pieces, far fewer).
CHUNK_SPAN = 1 << 20
# Pieces of a page whose matches are counted: `matches` counts these only (Hit).
COUNTED_CHUNKS = 8
# Where a piece may end: after the last space in a window, else after its last character
# of no word; where it may begin: after the first of either.
_LAST_SPACE = re.compile(r".*\s", re.DOTALL)
_LAST_BREAK = re.compile(r".*[\W_]", re.DOTALL)
_FIRST_SPACE = re.compile(r"\s")
_FIRST_BREAK = re.compile(r"[\W_]")
_WORDS = re.compile(r"[^\W_]+")
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
# CPU seconds (this thread's) a query may spend ranking and cutting snippets, past bringing
# the index up to date: SQLite checks the time every _PROGRESS_STEPS of its virtual machine
# and stops the statement there. FTS5 ranks a page in one step, so a query can overrun by one
# page's ranking (about 0.1 s per term over a page of 1 MB of one repeated word, and
# app.pages.query caps the terms). A wiki of ordinary text ranks a common word in well under
# a tenth of it.
QUERY_CPU_SECONDS = 1.0
_PROGRESS_STEPS = 1000
# Word instances a query's ranking may read, at most, without holding one of the host's slots
# for heavy searches: FTS5's bm25 reads every instance of every term in each page it ranks,
# about 25 ms per million here, and the worst of a query is known before it runs from the
# index's own counts (`_instances`). A wiki of ordinary text holds far fewer instances of
# its most common word. Four clients each running 1-s queries of words a page repeats held
# every worker of the host, and other wikis' views waited seconds (review 35).
HEAVY_INSTANCES = 4_000_000
# What FTS5 spends on each page a term matches, beyond its instances, in instances' worth:
# `a` over 200,000 one-line pages cost 0.41 s, as much as 8 million instances in a few pages
# (review 36: ten such words, under HEAVY_INSTANCES by instances alone, held a worker 1 s).
PAGE_INSTANCES = 40
# Distinct words of the index a prefix (`m*`) is counted over before it counts as heavy.
PREFIX_WORDS = 10_000
# What an instance of a word a prefix stands for costs, in instances' worth: the snippet pass
# of a prefix steps through every matching piece of the pages between the first hit and the
# last (`_pass`), about 0.45 us an instance here against ranking's 0.025 (review 37: a prefix
# estimated at 174,000 cost 0.084 s, and 0.5 GB of such text would cost 1 s per query
# without taking a heavy-search slot).
PREFIX_INSTANCES = 20
# Seconds a writer waits for another process's update before giving up.
BUSY_TIMEOUT = 30.0
# Bytes of page text a query indexes itself (about 2 s here); a catch-up of more is a detached
# step's (app.core.detached), and queries meanwhile are answered 503 with Retry-After.
INLINE_BYTES = 4 * 1024 * 1024
CATCH_UP_RETRY = 5
# A change to the index: (page file name, git mode, blob sha or None for a file deleted).
Change = tuple[str, str, str | None]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, filename TEXT NOT NULL UNIQUE);
CREATE VIRTUAL TABLE IF NOT EXISTS pages USING fts5(
    filename UNINDEXED, name, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    body, lead UNINDEXED, core UNINDEXED, last UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE IF NOT EXISTS page_words USING fts5vocab(pages, 'row');
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '{SCHEMA_VERSION}');
"""
# The query's own words, tokenized as the index tokenizes (case and accents folded), to look
# up in `page_words` (`_instances`); per connection, in memory.
_QUERY_WORDS = """
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5(
    word, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens USING fts5vocab(temp, query_words, instance);
DELETE FROM temp.query_words;
"""

# FTS5 sorts by its own `rank` column before SQLite steps the rows, so the names are
# highlighted for the LIMIT rows returned only. The body is never highlighted here: that cost
# grows with the square of its matches (module docstring); `_CHUNKS` cuts the snippets.
_QUERY = f"""
SELECT filename, rank, highlight(pages, 1, char(2), char(3)), rowid
FROM pages
WHERE pages MATCH ? AND rank MATCH 'bm25(0.0, {NAME_WEIGHT}, {BODY_WEIGHT})'
ORDER BY rank
LIMIT ?
"""
# The pieces that match in a range of pages, in order, of the pages {pages} only (`_pass`).
# robot_want(rowid) is asked before a piece is highlighted, robot_marked(...) given the
# highlight before it is snippeted: only a few pieces of each hit are marked, however many
# match (`_Excerpts`).
_CHUNKS = f"""
SELECT rowid,
       CASE WHEN robot_want(rowid) THEN
           CASE WHEN robot_marked(rowid, lead, core, last, highlight(chunks, 0, char(2), char(3)))
                THEN snippet(chunks, 0, char(2), char(3), '{ELLIPSIS}', {SNIPPET_TOKENS})
           END
       END
FROM chunks
WHERE chunks MATCH ? AND rowid BETWEEN ? AND ? AND rowid / {CHUNK_SPAN} IN ({{pages}})
LIMIT ?
"""


@dataclass(frozen=True)
class Marked:
    """Plain text and the [start, end) code point offsets of its highlighted matches."""

    text: str
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, marked: str) -> Marked:
        """Split FTS5 output with OPEN/CLOSE marks (whitespace collapsed) into text and spans."""
        text, spans, start = [], [], 0
        length = 0
        for piece in re.split(f"([{OPEN}{CLOSE}])", _SPACE.sub(" ", marked).strip()):
            if piece == OPEN:
                start = length
            elif piece == CLOSE:
                spans.append((start, length))
            else:
                text.append(piece)
                length += len(piece)
        return cls("".join(text), tuple(spans))


def pieces(text: str, spans) -> list[tuple[str, bool]]:
    """Cut `text` at `spans` ([start, end) offsets): [(piece, is_a_match), ...] in order.

    Spans out of order, overlapping or out of range are skipped, so hostile offsets from a
    client-side copy cannot raise.
    """
    out, at = [], 0
    for span in spans:
        start, end = span
        if not (isinstance(start, int) and isinstance(end, int) and at <= start < end):
            continue
        if end > len(text):
            break
        out += [(text[at:start], False), (text[start:end], True)]
        at = end
    out.append((text[at:], False))
    return [(piece, match) for piece, match in out if piece]


@dataclass(frozen=True)
class Hit:
    """One page found: file name, relevance (higher is better), marked name and snippet."""

    filename: str
    score: float
    name: Marked
    snippet: Marked
    # Highlighted words in the page's name and in the first COUNTED_CHUNKS pieces of its text
    # that hold a match (about COUNTED_CHUNKS * CHUNK_CHARS characters): a bounded count, a
    # lower bound for a page with more matches than that.
    matches: int


class SearchIndex:
    """The FTS5 index of one wiki's pages at HEAD, in the SQLite file `path`.

    `repo` is the wiki's `git.Repo`. Pages are the `.md` regular files of HEAD's tree; their
    name column is the file name without `.md`, the body their UTF-8 text (others are skipped).
    """

    def __init__(self, path: Path, repo: git.Repo):
        self.path = Path(path)
        self.repo = repo

    # -- querying -------------------------------------------------------------------------

    def search(self, query: object, limit: int = 20, heavy=contextlib.nullcontext) -> list[Hit]:
        """Return at most `limit` pages matching `query` (syntax: app.pages.query), best first.

        Each Hit's snippet is about SNIPPET_TOKENS words of one piece of the page's text (see
        `_excerpts`), its `matches` a count bounded as Hit says. Brings the index up to date
        with HEAD first. A query whose ranking may read more than HEAVY_INSTANCES word
        instances runs inside `heavy()`, a context manager the caller gives (the host's slots
        for heavy searches: it raises to refuse); any query stops after QUERY_CPU_SECONDS.
        Raises BadRequest for a query with no words (see `query.parse`), Unavailable for one
        past its CPU; rebuilds the file when it is corrupt.
        """
        groups = parse(query)
        rows = self._with_connection(lambda db: self._run(db, groups, limit, heavy))
        return [
            Hit(
                filename=filename,
                score=-rank,
                name=Marked.parse(name),
                snippet=Marked.parse(excerpt.snippet or ""),
                matches=name.count(OPEN) + excerpt.matches,
            )
            for filename, rank, name, excerpt in rows
        ]

    def _run(self, db: sqlite3.Connection, groups, limit: int, heavy) -> list[tuple]:
        """(file name, rank, marked name, _Excerpt) of the best `limit` pages for `groups`."""
        self._follow_head(db)
        with _cpu_bounded(db, QUERY_CPU_SECONDS):
            is_heavy = _instances(db, groups) > HEAVY_INSTANCES
        with heavy() if is_heavy else contextlib.nullcontext():
            with _cpu_bounded(db, QUERY_CPU_SECONDS):
                rows = db.execute(_QUERY, (to_fts(groups), limit)).fetchall()
                excerpts = _excerpts(db, groups, [page for *_, page in rows])
        return [(filename, rank, name, excerpts[page]) for filename, rank, name, page in rows]

    def refresh(self) -> str | None:
        """Bring the index up to date with HEAD; return the commit it now holds (None: empty).
        Raises Unavailable (503) when more text than a query may index is left: a detached
        step (`catch_up`) then indexes it."""
        return self._with_connection(self._follow_head)

    def catch_up(self) -> str | None:
        """Bring the index up to HEAD however much text that takes; return the commit it now
        holds (None: empty). For the detached step only, never inside a request."""
        return self._with_connection(lambda db: self._follow_head(db, bounded=False))

    # -- the file -------------------------------------------------------------------------

    def _with_connection(self, work):
        try:
            return self._once(work)
        except sqlite3.DatabaseError as error:
            if (getattr(error, "sqlite_errorcode", 0) & 0xFF) not in _CORRUPT_CODES:
                raise
        self._remove()  # derived data: build it again from git
        return self._once(work)

    def _once(self, work):
        db = self._connect()
        try:
            return work(db)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = self._open()
        try:
            ready = self._ready(db)
        except BaseException:
            db.close()
            raise
        if ready:
            return db
        db.close()
        # Switching a new file to WAL needs an exclusive lock, and two connections asking at
        # once deadlock: SQLite answers SQLITE_BUSY without calling the busy handler. So one
        # process at a time sets the file up, and the others then find it ready.
        with file_lock(Path(f"{self.path}.lock")):
            if self._schema_of_file() not in (None, SCHEMA_VERSION):
                self._remove()
            db = self._open()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
        return db

    def _open(self) -> sqlite3.Connection:
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)

    def _ready(self, db: sqlite3.Connection) -> bool:
        """Whether the file is in WAL mode with this version's schema (reads only)."""
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        return mode == "wal" and self._meta(db, "schema") == SCHEMA_VERSION

    def _schema_of_file(self) -> str | None:
        db = self._open()
        try:
            return self._meta(db, "schema")
        finally:
            db.close()

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.path) + suffix).unlink()

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return default  # a new file: no tables yet
        return row[0] if row else default

    # -- following HEAD -------------------------------------------------------------------

    def _follow_head(self, db: sqlite3.Connection, bounded: bool = True) -> str | None:
        """Bring the index up to HEAD; return HEAD (None: no commits). When `bounded`, raises
        Unavailable (503, Retry-After) if more than INLINE_BYTES of page text is to be
        indexed: a detached step indexes it, as a first search of a 68 MB wiki spent 30 s,
        its worker was killed, and every search after began again (twenty-third review)."""
        head = head_commit(self.repo)
        indexed = self._meta(db, "commit", "")
        if indexed == (head or ""):
            return head  # the common case: nothing written since the last query
        if bounded:
            if self._refreshing():
                raise _catching_up()
            clear, changes = self._changes(indexed, head)
            if self._text_bytes(changes, INLINE_BYTES) > INLINE_BYTES:
                self._start_refresh()
                raise _catching_up()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = self._meta(db, "commit", "")
            if now != (head or ""):  # another process may have caught up meanwhile
                if not bounded or now != indexed:
                    clear, changes = self._changes(now, head)
                self._apply(db, clear, changes)
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('commit', ?)", (head or "",)
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # not when COMMIT itself was done (a kill just after it)
                db.execute("ROLLBACK")
            raise
        return head

    def _changes(self, indexed: str, head: str | None) -> tuple[bool, list[Change]]:
        """What brings the index from commit `indexed` ("" for none) to `head`: (whether to
        clear it first, the changes): the diff between the two, or all of HEAD's pages when
        `indexed` is gone (a forced push) or none."""
        if head is None:
            return True, []
        if indexed and self._has_commit(indexed):
            return False, self._diff(indexed, head)
        return True, list(page_blobs(self.repo, head))

    def _apply(self, db: sqlite3.Connection, clear: bool, changes: list[Change]) -> None:
        if clear:
            self._clear(db)
        for filename, mode, sha in changes:
            if not clear:
                self._drop(db, filename)
            if sha is not None:
                self._put(db, filename, mode, sha)

    def _text_bytes(self, changes: list[Change], enough: int) -> int:
        """Bytes of page text `changes` put, counted until past `enough`."""
        total = 0
        for _, mode, sha in changes:
            if sha is not None and mode in REGULAR_FILE_MODES:
                total += self.repo.git.get_object_header(sha)[2]
                if total > enough:
                    break
        return total

    # -- a catch-up too long for a request --------------------------------------------------

    def _refresh_lock(self) -> Path:
        return Path(f"{self.path}.refresh.lock")

    def _refreshing(self) -> bool:
        """Whether a detached refresh of this index runs now (it holds its lock)."""
        try:
            fd = os.open(self._refresh_lock(), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _start_refresh(self) -> None:
        repo = Path(self.repo.working_tree_dir)
        lock = os.path.relpath(self._refresh_lock(), repo)
        start_module(
            repo, lock, __name__, str(self.path.resolve()), str(repo.resolve()), env=git_env(repo)
        )

    def _has_commit(self, sha: str) -> bool:
        try:
            self.repo.git.cat_file("-e", f"{sha}^{{commit}}")
        except git.exc.GitCommandError:
            return False
        return True

    def _git_fields(self, *args: str) -> list[bytes]:
        """The NUL-separated fields of a git command's `-z` output, as bytes."""
        return self.repo.git.execute(["git", *args], stdout_as_string=False).split(b"\0")

    def _diff(self, old: str, new: str) -> list[Change]:
        """The page files that differ between commits `old` and `new`: (file name, mode,
        blob sha, or None for a file deleted)."""
        # Raw output: ":oldmode newmode oldsha newsha status\0path\0" per change; renames come
        # as a delete and an add (--no-renames), so no path pairs to parse.
        fields = self._git_fields("diff-tree", "-r", "-z", "--no-renames", old, new)
        changes: list[Change] = []
        for info, name in zip(fields[0::2], fields[1::2], strict=False):
            filename = page_file_name(name)
            if filename is None or not info.startswith(b":"):
                continue
            _, mode, _, sha, status = info[1:].decode("ascii").split()
            changes.append((filename, mode, None if status == "D" else sha))
        return changes

    def _put(self, db: sqlite3.Connection, filename: str, mode: str, sha: str) -> None:
        # a page over the size limit is found by its name only ("" text)
        body = page_text(self.repo, mode, sha)
        if body is None:
            return  # a symlink, or not text: not searchable, as in Otterwiki's own search
        cursor = db.execute("INSERT INTO files (filename) VALUES (?)", (filename,))
        page, body = cursor.lastrowid, body.translate(_MARKS)
        db.execute(
            "INSERT INTO pages (rowid, filename, name, body) VALUES (?, ?, ?, ?)",
            (page, filename, filename[:-3].translate(_MARKS), body),
        )
        pieces = chunks(body)
        db.executemany(
            "INSERT INTO chunks (rowid, body, lead, core, last) VALUES (?, ?, ?, ?, ?)",
            (
                (page * CHUNK_SPAN + number, text, lead, core, int(number == len(pieces) - 1))
                for number, (text, lead, core) in enumerate(pieces)
            ),
        )

    @staticmethod
    def _drop(db: sqlite3.Connection, filename: str) -> None:
        row = db.execute("SELECT id FROM files WHERE filename = ?", (filename,)).fetchone()
        if row:
            db.execute("DELETE FROM pages WHERE rowid = ?", row)
            db.execute(
                "DELETE FROM chunks WHERE rowid BETWEEN ? AND ?",
                (row[0] * CHUNK_SPAN, row[0] * CHUNK_SPAN + CHUNK_SPAN - 1),
            )
            db.execute("DELETE FROM files WHERE id = ?", row)

    @staticmethod
    def _clear(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM pages")
        db.execute("DELETE FROM chunks")
        db.execute("DELETE FROM files")


def chunks(body: str) -> list[tuple[str, int, int]]:
    """Cut a page's text into the pieces snippets are cut from: [(text, lead, core), ...].

    A piece's `text` is its core, the `core` characters from `lead` on, with up to
    OVERLAP_CHARS characters of the text before (`lead` of them) and after it; the cores,
    in order, make `body`. A core ends after the last space among its CHUNK_CHARS // 2 to
    CHUNK_CHARS characters (else after the last character of no word, else at CHUNK_CHARS),
    so no text is longer than CHUNK_CHARS + 2 * OVERLAP_CHARS. Linear in `len(body)`.
    """
    pieces, start, size = [], 0, len(body)
    while start < size:
        cut = size
        if size - start > CHUNK_CHARS:
            cut = _cut(body, start + CHUNK_CHARS // 2, start + CHUNK_CHARS)
        begin = _begin(body, max(0, start - OVERLAP_CHARS), start)
        end = size if size - cut <= OVERLAP_CHARS else _cut(body, cut, cut + OVERLAP_CHARS)
        pieces.append((body[begin:end], start - begin, cut - start))
        start = cut
    return pieces


def _cut(text: str, low: int, high: int) -> int:
    """Where text may end in (low, high]: after its last space there, else after its last
    character of no word, else at `high`."""
    found = _LAST_SPACE.match(text, low, high) or _LAST_BREAK.match(text, low, high)
    return found.end() if found else high


def _begin(text: str, low: int, high: int) -> int:
    """Where text may begin in [low, high]: `low` at its start, else after the first space
    there, else after its first character of no word, else at `high`."""
    if low == 0:
        return 0
    found = _FIRST_SPACE.search(text, low, high) or _FIRST_BREAK.search(text, low, high)
    return found.end() if found else high


@dataclass
class _Excerpt:
    """What `_excerpts` found of one page: its snippet (FTS5's marked text, None: none yet),
    the matches counted, the pieces highlighted to count them, and the ellipses its snippet's
    piece needs (before, after; None: no piece chosen yet)."""

    snippet: str | None = None
    matches: int = 0
    counted: int = 0
    chosen: tuple[bool, bool] | None = None


class _Excerpts:
    """The excerpts of the pages a query found, keyed by page id, while `_CHUNKS` runs."""

    def __init__(self, pages: list[int]):
        self.found = {page: _Excerpt() for page in pages}
        self.counting: set[int] = set()  # the pages whose matches the pass running counts

    def start(self, count: bool) -> list[int]:
        """Begin a pass; return the pages it is for: those with no snippet yet and, when
        `count`, those with no matches counted yet (it counts theirs)."""
        found = self.found.items()
        self.counting = {page for page, excerpt in found if count and not excerpt.counted}
        return sorted(
            page for page, excerpt in found if excerpt.chosen is None or page in self.counting
        )

    def want(self, rowid: int) -> bool:
        """Whether to highlight piece `rowid`: one of the first COUNTED_CHUNKS pieces of a page
        counted, or any piece of a page with no snippet yet."""
        page = rowid // CHUNK_SPAN
        excerpt = self.found.get(page)
        if excerpt is None:
            return False
        return excerpt.chosen is None or (
            page in self.counting and excerpt.counted < COUNTED_CHUNKS
        )

    def marked(self, rowid: int, lead: int, core: int, last: int, marked: str) -> bool:
        """Count the matches in the core of piece `rowid` (FTS5's `marked` text; see `chunks`
        for `lead` and `core`, `last` is 1 for a page's last piece); return whether to snippet
        it: the page has no snippet yet and a match begins in this core (a match in the text
        around it is another piece's, where it has words on both sides)."""
        page = rowid // CHUNK_SPAN
        excerpt = self.found[page]
        inside = _marks_in(marked, lead, lead + core)
        if page in self.counting and excerpt.counted < COUNTED_CHUNKS:
            excerpt.counted += 1
            excerpt.matches += inside
        if excerpt.chosen is None and inside:
            excerpt.chosen = (rowid % CHUNK_SPAN > 0, not last)
            return True
        return False

    def done(self, page: int) -> bool:
        """Whether the pass running has all it wants of `page`."""
        excerpt = self.found[page]
        counting = page in self.counting and excerpt.counted < COUNTED_CHUNKS
        return excerpt.chosen is not None and not counting


def _excerpts(db: sqlite3.Connection, groups, pages: list[int]) -> dict[int, _Excerpt]:
    """Snippets and bounded match counts of `pages` (ids) for the parsed query `groups`.

    In passes over the pieces of those pages (`chunks`): a page's snippet is FTS5's snippet
    of its first piece holding every term (when there are several), else any (marking those
    terms), else any of their words (a phrase cut apart), each time the first piece whose
    core holds a match; else its text's first SNIPPET_TOKENS words, unmarked (a match in the
    name only). Its matches are counted in the cores of its first COUNTED_CHUNKS pieces
    holding any term (or else any word). So a hit highlights at most COUNTED_CHUNKS + 2
    pieces a pass, of at most CHUNK_CHARS + 2 * OVERLAP_CHARS characters, and snippets one,
    whatever its page holds. Returns {page id: _Excerpt}.
    """
    excerpts = _Excerpts(pages)
    db.create_function("robot_want", 1, excerpts.want)
    db.create_function("robot_marked", 5, excerpts.marked)
    terms, words = any_fts(groups), any_fts(groups, words=True)
    if sum(not group[0].exclude for group in groups) > 1:
        _pass(db, to_fts(groups), excerpts, count=False)
    _pass(db, terms, excerpts, count=True)
    if words != terms:
        _pass(db, words, excerpts, count=True)
    for page, excerpt in excerpts.found.items():
        if excerpt.snippet is None:
            row = db.execute(
                "SELECT body, last FROM chunks WHERE rowid = ?", (page * CHUNK_SPAN,)
            ).fetchone()
            excerpt.snippet = _lead(row[0], not row[1]) if row else ""
    return excerpts.found


def _pass(db: sqlite3.Connection, expression: str, excerpts: _Excerpts, count: bool) -> None:
    """Run `_CHUNKS` for `expression` over the pages `excerpts.start(count)` names, until
    each has what it wants (`_Excerpts.done`).

    One statement per page, LIMITed, FTS5 seeking to its pieces; but FTS5 merges the doclists
    of every word a prefix term (`retro*`) stands for at each statement, across the wiki, so
    then one statement steps through the pieces of all the pages' range and stops once
    each has what it wants."""
    pages = excerpts.start(count)
    if not pages:
        return
    if "*" in expression:
        ranges, limit = [(min(pages), max(pages))], -1  # no LIMIT
    else:
        ranges, limit = [(page, page) for page in pages], COUNTED_CHUNKS + 2
    open_pages = set(pages)
    sql = _CHUNKS.format(pages=",".join(str(int(page)) for page in pages))
    for first, last in ranges:
        bounds = (first * CHUNK_SPAN, last * CHUNK_SPAN + CHUNK_SPAN - 1)
        for rowid, snippet in db.execute(sql, (expression, *bounds, limit)):
            page = rowid // CHUNK_SPAN
            excerpt = excerpts.found[page]
            if snippet is not None:
                excerpt.snippet = _edges(snippet, *excerpt.chosen)
            if page in open_pages and excerpts.done(page):
                open_pages.discard(page)
                if not open_pages:
                    return
                if first == last:
                    break


def _marks_in(marked: str, low: int, high: int) -> int:
    """How many matches of FTS5's `marked` text begin in [low, high) of its plain text."""
    found = 0
    for number, mark in enumerate(_OPEN.finditer(marked)):
        at = mark.start() - 2 * number  # the marks before it are not text
        if at >= high:
            break
        found += at >= low
    return found


def _edges(snippet: str, before: bool, after: bool) -> str:
    """FTS5's snippet of one piece, with ELLIPSIS where the page's text goes on beyond it."""
    if before and not snippet.startswith(ELLIPSIS):
        snippet = ELLIPSIS + snippet.lstrip()
    if after and not snippet.endswith(ELLIPSIS):
        snippet = snippet.rstrip() + ELLIPSIS
    return snippet


def _lead(text: str, more: bool) -> str:
    """The first SNIPPET_TOKENS words of a piece of text, ELLIPSIS after them when text
    follows (as FTS5's snippet of a text without matches)."""
    end = 0
    for number, word in enumerate(_WORDS.finditer(text)):
        if number == SNIPPET_TOKENS:
            return text[:end] + ELLIPSIS
        end = word.end()
    return text + ELLIPSIS if more else text


def results(hits: list[Hit], rules: PathRules) -> list[dict]:
    """Shape hits as the page API and MCP return them (see `app.pages.search.search`)."""
    return [
        {
            "path": rules.page_path(hit.filename),
            "score": hit.score,
            "matches": hit.matches,
            "snippets": [hit.snippet.text] if hit.snippet.text else [],
            "highlights": [[list(span) for span in hit.snippet.spans]] if hit.snippet.text else [],
        }
        for hit in hits
    ]


def _instances(db: sqlite3.Connection, groups) -> int:
    """An upper bound of the word instances ranking `groups` (app.pages.query.parse) reads:
    for each word of each term (excluded ones too: NOT reads them), its instances in the whole
    index and PAGE_INSTANCES for each page holding it, by the index's own counts
    (`page_words`, FTS5's fts5vocab); a prefix's, over the words it starts, each instance
    PREFIX_INSTANCES (past PREFIX_WORDS words, more than HEAVY_INSTANCES). Stops counting
    once past HEAVY_INSTANCES. The words are tokenized by FTS5 itself, so `Ḿ` counts as `m`."""
    words = [
        (word, term.prefix and at == len(term.words) - 1)
        for group in groups
        for term in group
        for at, word in enumerate(term.words)
    ]
    db.executescript(_QUERY_WORDS)
    db.executemany(
        "INSERT INTO temp.query_words (rowid, word) VALUES (?, ?)",
        enumerate(word for word, _ in words),
    )
    total = 0
    for number, token in db.execute("SELECT doc, term FROM temp.query_tokens ORDER BY doc"):
        prefix = words[number][1]
        if prefix:
            counted = db.execute(
                "SELECT count(*), sum(? * cnt + ? * doc) FROM (SELECT cnt, doc FROM page_words"
                " WHERE term >= ? AND term < ? LIMIT ?)",
                (PREFIX_INSTANCES, PAGE_INSTANCES, token, token + "\U0010ffff", PREFIX_WORDS + 1),
            ).fetchone()
            total += HEAVY_INSTANCES + 1 if counted[0] > PREFIX_WORDS else counted[1] or 0
        else:
            found = db.execute(
                "SELECT cnt + ? * doc FROM page_words WHERE term = ?", (PAGE_INSTANCES, token)
            ).fetchone()
            total += found[0] if found else 0
        if total > HEAVY_INSTANCES:
            break
    return total


@contextlib.contextmanager
def _cpu_bounded(db: sqlite3.Connection, seconds: float):
    """Stop the statements run on `db` inside the block once this thread has spent `seconds`
    of CPU in it (checked every _PROGRESS_STEPS virtual machine steps, by SQLite's progress
    handler), raising Unavailable (503) with what to do instead."""
    deadline = time.thread_time() + seconds
    db.set_progress_handler(lambda: time.thread_time() > deadline, _PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_INTERRUPT:
            raise
        raise Unavailable(
            f"this search took more than {seconds:g} s: its words are too common in this "
            "wiki's pages; search for fewer or rarer words, or a phrase"
        ) from None
    finally:
        db.set_progress_handler(None, 0)


def _catching_up() -> Unavailable:
    return Unavailable(
        "the search index of this wiki is being brought up to date with many changed pages; "
        "try again in a moment",
        retry_after=CATCH_UP_RETRY,
    )


def refresh_detached(index: Path, repo: Path) -> None:
    """Bring the index file `index` of the work tree `repo` up to its HEAD, however long it
    takes (the detached step _start_refresh starts)."""
    SearchIndex(index, git.Repo(repo)).catch_up()


if __name__ == "__main__":
    refresh_detached(Path(sys.argv[1]), Path(sys.argv[2]))
