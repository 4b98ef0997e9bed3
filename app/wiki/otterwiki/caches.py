"""What Otterwiki reads from and writes to a wiki's wiki.db on every request, made cheap.

`PreferenceRows` reads a wiki's preferences again only after wiki.db was written; the
table-of-contents cache fix stops every page view from writing a row that did not change.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType

from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import uninterrupted
from app.wiki.otterwiki.render import last_render_stalled

# The table-of-contents rows this process wrote or found current: (wiki slug, its creation,
# file name) -> (mtime, toc). A view that finds its row here reads wiki.db not at all: the
# SELECT and COMMIT were a seventh of a small page view's CPU (review 54's bench).
_TOC_ROWS_KNOWN: OrderedDict = OrderedDict()
TOC_ROWS_KNOWN_MAX = 10_000


@dataclass
class PreferenceRows:
    """One wiki's saved preferences (`preferences` table of its wiki.db), read only on change."""

    pool: object  # SQLAlchemy connection pool of the wiki's wiki.db
    db_path: str
    counter: bytes | None = None
    rows: tuple = ()

    def read(self) -> tuple:
        """Return the (name, value) rows ordered by name, read again only after wiki.db changed."""
        counter = self._change_counter()  # read before the rows: a write in between reads again
        if counter is not None and counter == self.counter:
            return self.rows
        # Otterwiki's own pooled connection: no second SQLite connection (and cache) per wiki.
        connection = self.pool.connect()
        try:
            rows = tuple(connection.execute("SELECT name, value FROM preferences ORDER BY name"))
        finally:
            connection.close()
        self.counter, self.rows = counter, rows
        return rows

    def _change_counter(self) -> bytes | None:
        """Return wiki.db's file change counter, or None where it does not track every write.

        SQLite bumps it (header bytes 24-27) on every committed write in rollback-journal mode,
        the mode of wiki.db, and checks it itself to know its cache is still good. In WAL mode
        (header byte 18 is 2) it does not, so there is no shortcut.
        """
        try:
            fd = os.open(self.db_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            header = os.pread(fd, 28, 0)
        finally:
            os.close(fd)
        return header[24:28] if len(header) == 28 and header[18] == 1 else None


def write_toc_rows_only_when_changed(server: ModuleType) -> None:
    """Fix two faults of Otterwiki's table-of-contents cache write, which runs on every view.

    It compares the file's naive mtime with the stored, UTC-aware one, which never match, so
    every page view flushed an UPDATE of the row and committed it (SQLite then found the bytes
    unchanged and wrote nothing to disk). Passing the same instant time-zone aware lets an
    unchanged row stay untouched: one SELECT per view.

    Two workers rendering a page for the first time both find no row and both insert one; the
    second insert breaks the primary key. The row the other worker wrote is just as good.

    A row this process wrote or found for the same file, time and contents is not asked for
    again (_TOC_ROWS_KNOWN): rows change only with their file's commit time.
    """
    import otterwiki.helper
    import otterwiki.wiki
    from sqlalchemy.exc import IntegrityError

    original = otterwiki.helper.update_ftoc_cache

    def update_ftoc_cache(filename, ftoc, mtime=None):
        if last_render_stalled():
            return  # a busy host's empty table, not the page's (review 59)
        if mtime is None:
            try:
                mtime = server.storage.mtime(filename)
            except FileNotFoundError:
                pass  # Otterwiki's own call logs it and writes nothing
        if mtime is not None and mtime.tzinfo is None:
            mtime = mtime.astimezone()  # naive means local time, to Otterwiki's TimeStamp too
        tenant = current_tenant()
        key = (tenant.slug, tenant.wiki.created_at, filename) if tenant else None
        if key is not None and mtime is not None and _TOC_ROWS_KNOWN.get(key) == (mtime, ftoc):
            return
        try:
            with uninterrupted():  # a commit stopped half-way breaks the request's session
                original(filename, ftoc, mtime)
        except IntegrityError:
            server.db.session.rollback()
        if key is not None and mtime is not None:
            _TOC_ROWS_KNOWN[key] = (mtime, ftoc)
            _TOC_ROWS_KNOWN.move_to_end(key)
            if len(_TOC_ROWS_KNOWN) > TOC_ROWS_KNOWN_MAX:
                _TOC_ROWS_KNOWN.popitem(last=False)

    otterwiki.helper.update_ftoc_cache = update_ftoc_cache
    otterwiki.wiki.update_ftoc_cache = update_ftoc_cache
