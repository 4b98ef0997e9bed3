"""Keep the preferences only the platform decides out of every wiki.db, whatever the route."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from types import ModuleType

from app.wiki.otterwiki.config import LOCKED_OFF
from app.wiki.otterwiki.page_preferences import page_preference_problem

log = logging.getLogger("robot.wiki")

# Names a wiki admin may never store: every locked value, where the data lives, and the whole
# families Otterwiki's admin forms write for remote push/pull, mail and registration.
PLATFORM_ONLY = frozenset(LOCKED_OFF) | {
    "REPOSITORY",
    "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY",
    "SESSION_COOKIE_SECURE",
    "AUTO_APPROVAL",
    "EMAIL_NEEDS_CONFIRMATION",
}
PLATFORM_ONLY_PREFIXES = ("GIT_REMOTE_", "MAIL_")


def is_platform_only(name) -> bool:
    """Tell whether a preference `name` (any case) is the platform's to decide."""
    upper = str(name).strip().upper()
    return upper in PLATFORM_ONLY or upper.startswith(PLATFORM_ONLY_PREFIXES)


def _is_platform_row(row) -> bool:
    # Otterwiki's `Preferences` model is the table "preferences" (otterwiki/models.py).
    return getattr(row, "__tablename__", None) == "preferences" and is_platform_only(row.name)


def _unusable_value(row) -> str | None:
    # A page or path preference naming no valid page (twenty-fifth review): the forms are
    # refused first (page_preferences); this drops what any other write would store.
    if getattr(row, "__tablename__", None) != "preferences":
        return None
    return page_preference_problem(row.name, row.value)


def _drop_platform_rows(session, flush_context, instances) -> None:
    for row in list(session.new):
        if _is_platform_row(row):
            log.warning("refused to store the platform's preference %s", row.name)
            session.expunge(row)
        elif problem := _unusable_value(row):
            log.warning("refused to store the preference %s: %s", row.name, problem)
            session.expunge(row)
    for row in list(session.dirty):
        if _is_platform_row(row):
            log.warning("removed the platform's preference %s", row.name)
            session.delete(row)
        elif problem := _unusable_value(row):
            # Expunged, the row keeps the value it has in wiki.db: the change is not written.
            log.warning("refused to change the preference %s: %s", row.name, problem)
            session.expunge(row)


def refuse_platform_preferences(server: ModuleType) -> None:
    """Make every flush of Otterwiki's db drop the `Preferences` rows that `is_platform_only`,
    and the changes of page or path preferences to values that name no valid page.

    `server` is the booted `otterwiki.server` module. A new row of a platform's name is never
    inserted, and an existing one that a flush would update is deleted instead, so no route,
    form or plugin can store them through the ORM (the locked config stays the second line).
    A page or path preference with a problem (page_preferences.page_preference_problem) is
    not inserted, nor is an existing one changed to it. Installing twice adds the listener once.
    """
    from sqlalchemy import event

    if not event.contains(server.db.session, "before_flush", _drop_platform_rows):
        event.listen(server.db.session, "before_flush", _drop_platform_rows)


def purge_platform_preferences(pool) -> None:
    """Delete the platform's preferences a wiki.db holds already (stored by an older release).

    `pool` is the SQLAlchemy connection pool of the wiki's wiki.db, its tables created.
    """
    connection = pool.connect()
    try:
        names = [row[0] for row in connection.execute("SELECT name FROM preferences")]
        doomed = [(name,) for name in names if is_platform_only(name)]
        if doomed:
            connection.executemany("DELETE FROM preferences WHERE name = ?", doomed)
            connection.commit()
    finally:
        connection.close()


def retains_page_name_case(db_path: Path) -> bool:
    """Tell whether the wiki whose wiki.db is at `db_path` keeps the case of page names in
    their files (Otterwiki's RETAIN_PAGE_NAME_CASE preference, read as its update_app_config
    reads it: "true" or "yes", any case). False, as Otterwiki's default, when it is unset or
    wiki.db cannot be read (its tables not made yet)."""
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT value FROM preferences WHERE upper(name) = 'RETAIN_PAGE_NAME_CASE'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and str(row[0]).lower() in ("true", "yes")
