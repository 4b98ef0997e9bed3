"""Point Otterwiki's one app, db and storage at one wiki per request; keep the open wikis.

`Tenancy.activate(wiki)` repoints the storage's repo, the db engine's connection pool and the
app's config (reset to a pristine snapshot first, so nothing one wiki set leaks into the next);
`OpenWiki` holds one wiki's handles in a bounded LRU, so a warm wiki switches in microseconds.
"""

from __future__ import annotations

import fcntl
import gc
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from app.core.errors import NotFound
from app.core.settings import Settings
from app.core.signing import derive_secret
from app.core.store import Wiki
from app.wiki.otterwiki.caches import PreferenceRows
from app.wiki.otterwiki.config import keep_locked_on_reload
from app.wiki.otterwiki.config import locked_config
from app.wiki.otterwiki.preferences import purge_platform_preferences
from app.wiki.otterwiki.provenance import SigningRepo
from app.wiki.otterwiki.storage import LastCommits
from app.wiki.otterwiki.storage import remember_last_commits
from app.wiki.otterwiki.storage import resolve_from_known_roots
from app.wiki.otterwiki.storage import stage_with_git
from app.wiki.otterwiki.storage import undo_failed_writes

# Evicted wikis stay frozen (uncollectable cycles, ~0.35 MB each) until a full collection; one
# every this many evictions bounds that to a few MB without a full collection per cold open.
EVICTIONS_PER_FULL_COLLECTION = 16


def _freeze_long_lived(full: bool) -> None:
    """Move what lives as long as the process (Otterwiki, open wikis) out of the collector's way.

    A page view allocates enough to trigger full collections, whose cost grows with everything
    tracked: with 100 open wikis a 20 KB page spent a third of its time there (measured).
    """
    if full:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)  # the young garbage; older cycles wait for the next full collection
    gc.freeze()


@dataclass
class OpenWiki:
    """One wiki's open handles in this process: git repo, SQLite connection pool, cached config."""

    slug: str
    created_at: int
    wiki_dir: Path
    dir_fd: int  # holds the folder's inode, so a re-created wiki can never look like this one
    repo_path: str
    real_repo_path: str  # repo_path with every symlink resolved, once
    repo: object
    db_path: str
    pool: object  # SQLAlchemy connection pool of the wiki's wiki.db
    locked: dict  # config keys the wiki's preferences never override (config.locked_config)
    preferences: PreferenceRows
    last_commits: LastCommits
    config_key: tuple | None = None
    config: dict | None = None

    def is_current(self, wiki: Wiki) -> bool:
        """Tell whether these handles still belong to `wiki` (not a deleted, re-created slug)."""
        if wiki.created_at != self.created_at:
            return False
        held = os.fstat(self.dir_fd)
        try:
            return held.st_nlink > 0 and os.stat(self.wiki_dir).st_ino == held.st_ino
        except FileNotFoundError:
            return False

    def close(self) -> None:
        """Dispose of the wiki's connection pool, close its repo and let go of its folder."""
        self.pool.dispose()
        self.repo.close()
        os.close(self.dir_fd)


class Tenancy:
    """Points Otterwiki's one app, db and storage at a wiki; keeps a bounded LRU of open wikis.

    `server` is the booted `otterwiki.server` module (see `boot.boot_otterwiki`). Creating a
    Tenancy installs the config and storage patches on it; one Tenancy per process.
    """

    def __init__(self, server: ModuleType, settings: Settings):
        self.server = server
        self.app = server.app
        self.settings = settings
        self.pristine = dict(server.app.config)
        self.open_wikis: OrderedDict[str, OpenWiki] = OrderedDict()
        self.active: OpenWiki | None = None
        self.engine, self.idle_pool = self._one_engine_for_every_wiki()
        keep_locked_on_reload(server, lambda: None if self.active is None else self.active.locked)
        remember_last_commits(server.storage, lambda: self.active)
        resolve_from_known_roots(server.storage, lambda: self.active)
        undo_failed_writes(server.storage)
        stage_with_git(server.storage)
        self._evictions = 0
        _freeze_long_lived(full=True)

    def _one_engine_for_every_wiki(self):
        """Give Otterwiki's db one engine whose pool activate() swaps for the wiki's own.

        One engine means one dialect and one compiled-statement cache for every wiki: with an
        engine per wiki each compiled every statement again and kept its own copy, 100 copies in
        a worker holding 100 wikis. The pool is what holds a wiki's SQLite connection; it stays
        per wiki.
        """
        import sqlalchemy

        engine = sqlalchemy.create_engine("sqlite://")
        engine.connect().close()  # the first connection fits the dialect to this SQLite
        self.server.db._app_engines[self.app][None] = engine
        return engine, engine.pool

    def _open(self, wiki: Wiki) -> OpenWiki:
        import sqlalchemy

        wiki_dir = self.settings.wiki_dir(wiki.slug)
        try:
            dir_fd = os.open(wiki_dir, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            # The row is written a moment before the folder is moved into place (or after a
            # half-finished restore): there is nothing to serve yet.
            raise NotFound(f"wiki {wiki.slug!r} has no data on disk yet") from None
        pool = None
        try:
            repo_path = str(self.settings.repo_path(wiki.slug))
            db_path = str(self.settings.wiki_db_path(wiki.slug))
            pool = sqlalchemy.create_engine(f"sqlite:///{db_path}").pool
            self.engine.pool = pool
            # Workers may open a new wiki at the same moment: one creates the tables at a time.
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            try:
                with self.app.app_context():
                    self.server.db.create_all()
                purge_platform_preferences(pool)
            finally:
                fcntl.flock(dir_fd, fcntl.LOCK_UN)
            repo = SigningRepo(repo_path)  # commits say who and through what
            secret_key = derive_secret(self.settings.secret_key_path, "wiki:" + wiki.slug)
            opened = OpenWiki(
                slug=wiki.slug,
                created_at=wiki.created_at,
                wiki_dir=wiki_dir,
                dir_fd=dir_fd,
                repo_path=repo_path,
                real_repo_path=os.path.realpath(repo_path),
                repo=repo,
                db_path=db_path,
                pool=pool,
                locked=locked_config(self.settings, repo_path, db_path, secret_key),
                preferences=PreferenceRows(pool, db_path),
                last_commits=LastCommits(repo),
            )
        except BaseException:
            if pool is not None:
                self.engine.pool = self.idle_pool
                pool.dispose()
            os.close(dir_fd)
            raise
        return opened

    def _get(self, wiki: Wiki) -> OpenWiki:
        opened = self.open_wikis.get(wiki.slug)
        if opened is not None and not opened.is_current(wiki):
            self._evict(wiki.slug)
            opened = None
        if opened is None:
            opened = self._open(wiki)
            self.open_wikis[wiki.slug] = opened
            while len(self.open_wikis) > self.settings.tenant_cache_size:
                self._evict(next(iter(self.open_wikis)))
            full = self._evictions >= EVICTIONS_PER_FULL_COLLECTION
            self._evictions = 0 if full else self._evictions
            _freeze_long_lived(full)
        self.open_wikis.move_to_end(wiki.slug)
        return opened

    def _evict(self, slug: str) -> None:
        opened = self.open_wikis.pop(slug)
        if self.active is opened:
            self.active = None
        if self.engine.pool is opened.pool:
            self.engine.pool = self.idle_pool
        opened.close()
        self._evictions += 1

    def close(self) -> None:
        """Close every open wiki (tests and worker shutdown)."""
        for slug in list(self.open_wikis):
            self._evict(slug)
        gc.unfreeze()

    def activate(self, wiki: Wiki) -> OpenWiki:
        """Point Otterwiki's storage, db and config at `wiki` for the request about to run.

        Returns the wiki's `OpenWiki`. Raises `NotFound` if the wiki has no folder on disk yet;
        anything else that fails to open it (a broken wiki.db, say) propagates as it is.
        """
        opened = self._get(wiki)
        previous, self.active = self.active, opened
        storage = self.server.storage
        storage.path = opened.repo_path
        storage.repo = opened.repo
        self.engine.pool = opened.pool
        config = self.app.config
        # The renderer holds a reference to app.config: change it in place, never replace it.
        key = (wiki.display_name, opened.preferences.read())
        if key != opened.config_key:
            config.clear()
            config.update(self.pristine)
            config["SITE_NAME"] = wiki.display_name
            self.server.update_app_config()
            config.update(opened.locked)
            opened.config_key, opened.config = key, dict(config)
        elif previous is not opened:
            # Only Otterwiki's update_app_config writes the config, and only after a preference
            # was saved, which changes the key: the same wiki's config is still in place.
            config.clear()
            config.update(opened.config)
        return opened

    def deactivate(self) -> None:
        """Leave no wiki's settings in the shared config (requests that need no wiki)."""
        if self.active is not None:
            self.active = None
            self.app.config.clear()
            self.app.config.update(self.pristine)
