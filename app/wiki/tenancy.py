"""The one module that patches Otterwiki's globals: boot once, then point them at one wiki a time.

Otterwiki has no app factory: importing `otterwiki.server` builds one Flask `app`, one
Flask-SQLAlchemy `db` and one `GitStorage` that every other Otterwiki module imported by value.
So we keep those objects and repoint them per request: the storage's repo, the db engine's
connection pool and the app's config (reset to a pristine snapshot first, so nothing one wiki
set leaks into the next).
"""

from __future__ import annotations

import fcntl
import gc
import os
import re
import stat
import sys
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import ModuleType

from app.core.errors import ConfigError
from app.core.errors import NotFound
from app.core.settings import Settings
from app.core.signing import derive_secret
from app.core.store import Wiki

BOOT_DIR = "otterwiki-boot"
# WSGI environ keys through which the gateway hands the request's wiki and caller to Flask's `g`.
TENANT_KEY = "robot.tenant"
CALLER_KEY = "robot.caller"

# Values no wiki admin may change: where the data lives, who authenticates, and every feature that
# would act outside the request or on other hosts (remote push/pull, git over http, mail).
_LOCKED_OFF = {
    "AUTH_METHOD": "PROXY_HEADER",
    "SERVER_NAME": None,
    "DEBUG": False,
    "TESTING": False,
    "GIT_WEB_SERVER": False,
    "GIT_REMOTE_PUSH_ENABLED": False,
    "GIT_REMOTE_PUSH_URL": "",
    "GIT_REMOTE_PUSH_PRIVATE_KEY": "",
    "GIT_REMOTE_PUSH_PRIVATE_KEY_FILE": "",
    "GIT_REMOTE_PULL_ENABLED": False,
    "GIT_REMOTE_PULL_URL": "",
    "GIT_REMOTE_PULL_PRIVATE_KEY": "",
    "GIT_REMOTE_PULL_PRIVATE_KEY_FILE": "",
    "MAIL_SERVER": "",
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",
    "MAIL_SUPPRESS_SEND": True,
    "DISABLE_REGISTRATION": True,
    "NOTIFY_ADMINS_ON_REGISTER": False,
    "NOTIFY_USER_ON_APPROVAL": False,
}


@contextmanager
def _pinned_environ(values: dict[str, str]):
    """Set `values` in the environment for Otterwiki's import, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _write_boot_files(settings: Settings, boot: Path) -> dict[str, str]:
    """Create the internal bootstrap repo and settings file Otterwiki needs to import."""
    import git

    repo = boot / "repo"
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git.Repo.init(str(repo)).close()
    values = {
        "REPOSITORY": str(repo),
        "SECRET_KEY": derive_secret(settings.secret_key_path, "otterwiki-boot"),
        "SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:",
        "AUTH_METHOD": "PROXY_HEADER",
    }
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    (boot / "settings.cfg").write_text("\n".join([*lines, "GIT_WEB_SERVER = False", ""]))
    return values


def boot_otterwiki(settings: Settings) -> ModuleType:
    """Import `otterwiki.server` against an internal bootstrap repo, once per process."""
    server = sys.modules.get("otterwiki.server")
    if server is None:
        boot = settings.run_dir / BOOT_DIR
        boot.mkdir(parents=True, exist_ok=True)
        # Workers boot side by side: the first one creates the repo, Otterwiki commits a Home
        # page into it while importing; the others wait for that.
        with open(boot / "boot.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            values = _write_boot_files(settings, boot)
            env = {**values, "OTTERWIKI_SETTINGS": str(boot / "settings.cfg")}
            with _pinned_environ(env):
                import otterwiki.server as server
    import otterwiki.auth

    if not isinstance(otterwiki.auth.auth_manager, otterwiki.auth.ProxyHeaderAuth):
        raise ConfigError("otterwiki was already imported without AUTH_METHOD=PROXY_HEADER")
    return server


_COMMIT_ID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
# Per open wiki, the last commits remembered for one HEAD (about 2 KB each); past this many
# files, start over.
LAST_COMMITS_PER_WIKI = 256


def head_commit(repo_path: str) -> str | None:
    """Return the commit HEAD points to, read from the ref files; None if that is not plain.

    Two small file reads: GitPython's own resolution costs several times more, which would eat
    much of what remembering last commits saves. None (no commit yet, a `.git` file instead of a
    folder, anything unexpected) leaves the question to git.
    """
    git_dir = os.path.join(repo_path, ".git")
    try:
        with open(os.path.join(git_dir, "HEAD"), "rb") as file:
            sha = file.read().strip()  # a detached HEAD names its commit
        if sha.startswith(b"ref: "):
            ref = sha[5:]
            try:
                with open(os.path.join(git_dir, os.fsdecode(ref)), "rb") as file:
                    sha = file.read().strip()
            except FileNotFoundError:
                with open(os.path.join(git_dir, "packed-refs"), "rb") as file:
                    packed = (line.rstrip(b"\n").partition(b" ") for line in file)
                    sha = next((sha for sha, _, name in packed if name == ref), b"")
    except OSError:
        return None
    return sha.decode("ascii") if _COMMIT_ID.fullmatch(sha) else None


def resolve_under(root: str, filename: str) -> str:
    """Return `os.path.realpath(os.path.join(root, filename))` for a `root` already resolved.

    Walks only the components of `filename`, not the root's again: Otterwiki resolves a path for
    every file it touches, a few dozen times per page view. Anything unusual (an absolute name,
    `..`, a symlink on the way) is left to `os.path.realpath` itself.
    """
    if os.path.isabs(filename):
        return os.path.realpath(filename)
    path = root
    for part in filename.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return os.path.realpath(os.path.join(root, filename))
        path = f"{path}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return os.path.realpath(os.path.join(root, filename))
        except OSError:
            pass  # a missing name stays as written, as realpath keeps it
    return path


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
    secret_key: str
    config_key: tuple | None = None
    config: dict | None = None
    rows_counter: bytes | None = None
    rows: tuple = ()
    commits_head: str | None = None
    commits: dict = field(default_factory=dict)  # filename -> its last commit as of commits_head

    def last_commit(self, filename: str, head: str):
        """Return the last commit that changed `filename` as of `head`, remembered per HEAD.

        Otterwiki asks this on every page view and runs `git rev-list` for it. The answer depends
        only on the commit HEAD points to, so it holds until any process commits to this wiki.
        """
        from git.exc import GitCommandError
        from otterwiki.gitstorage import StorageNotFound

        if head != self.commits_head or len(self.commits) >= LAST_COMMITS_PER_WIKI:
            self.commits_head, self.commits = head, {}
        if filename not in self.commits:
            # Walk from `head`, not from HEAD again: it may have moved since it was read.
            found = self.repo.iter_commits(head, paths=filename, max_count=1)
            try:
                self.commits[filename] = next(iter(found), None)
            except (ValueError, GitCommandError):
                raise StorageNotFound from None
        commit = self.commits[filename]
        if commit is None:
            raise StorageNotFound
        return commit

    def is_current(self, wiki: Wiki) -> bool:
        """Tell whether these handles still belong to `wiki` (not a deleted, re-created slug)."""
        if wiki.created_at != self.created_at:
            return False
        held = os.fstat(self.dir_fd)
        try:
            return held.st_nlink > 0 and os.stat(self.wiki_dir).st_ino == held.st_ino
        except FileNotFoundError:
            return False

    def preference_rows(self) -> tuple:
        """Return the wiki's saved preferences, read again only after wiki.db was written."""
        counter = self._change_counter()  # read before the rows: a write in between reads again
        if counter is not None and counter == self.rows_counter:
            return self.rows
        # Otterwiki's own pooled connection: no second SQLite connection (and cache) per wiki.
        connection = self.pool.connect()
        try:
            rows = tuple(connection.execute("SELECT name, value FROM preferences ORDER BY name"))
        finally:
            connection.close()
        self.rows_counter, self.rows = counter, rows
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

    def close(self) -> None:
        self.pool.dispose()
        self.repo.close()
        os.close(self.dir_fd)


class Tenancy:
    """Points Otterwiki's one app, db and storage at a wiki; keeps a bounded LRU of open wikis."""

    def __init__(self, server: ModuleType, settings: Settings):
        self.server = server
        self.app = server.app
        self.settings = settings
        self.pristine = dict(server.app.config)
        self.open_wikis: OrderedDict[str, OpenWiki] = OrderedDict()
        self.active: OpenWiki | None = None
        self.engine, self.idle_pool = self._one_engine_for_every_wiki()
        self._patch_update_app_config()
        self._remember_last_commits()
        self._resolve_from_known_roots()
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

    def _patch_update_app_config(self) -> None:
        # Otterwiki's preference forms reload the config from the DB mid-request; keep the
        # platform's locked values on top of whatever a wiki admin just saved.
        import otterwiki.preferences

        original = getattr(self.server.update_app_config, "__wrapped__", None)
        original = original or self.server.update_app_config

        def update_app_config():
            original()
            if self.active is not None:
                self.app.config.update(self._locked(self.active))

        update_app_config.__wrapped__ = original
        self.server.update_app_config = update_app_config
        otterwiki.preferences.update_app_config = update_app_config

    def _remember_last_commits(self) -> None:
        # Page views and the sitemap ask the storage for a file's last commit at HEAD; answer
        # from the open wiki's memory (revisions other than HEAD still go to git every time).
        storage = self.server.storage
        original = type(storage)._get_commit

        def _get_commit(filename, revision):
            opened = self.active
            if revision is not None or opened is None or storage.repo is not opened.repo:
                return original(storage, filename, revision)
            head = head_commit(opened.repo_path)
            if head is None:
                return original(storage, filename, revision)
            return opened.last_commit(filename, head)

        storage._get_commit = _get_commit

    def _resolve_from_known_roots(self) -> None:
        # Otterwiki checks every path it touches against symlinks leading out of the repository
        # or into .git, resolving the repository's own path again each time. The same check,
        # from the open wiki's repository path resolved once.
        from otterwiki.gitstorage import StorageUnsafePath

        storage = self.server.storage
        original = type(storage)._abspath

        def _abspath(filename):
            opened = self.active
            if opened is None or storage.path != opened.repo_path:
                return original(storage, filename)
            root = opened.real_repo_path
            resolved = resolve_under(root, filename)
            gitdir = os.path.join(root, ".git")
            if os.path.commonpath([gitdir, resolved]) == gitdir or (
                not storage.allow_external_symlinks and os.path.commonpath([root, resolved]) != root
            ):
                raise StorageUnsafePath(f"{filename} resolves to a path outside the repository.")
            return os.path.join(storage.path, filename)

        storage._abspath = _abspath

    def _open(self, wiki: Wiki) -> OpenWiki:
        import git
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
            db_path = self.settings.wiki_db_path(wiki.slug)
            pool = sqlalchemy.create_engine(f"sqlite:///{db_path}").pool
            self.engine.pool = pool
            # Workers may open a new wiki at the same moment: one creates the tables at a time.
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            try:
                with self.app.app_context():
                    self.server.db.create_all()
            finally:
                fcntl.flock(dir_fd, fcntl.LOCK_UN)
            opened = OpenWiki(
                slug=wiki.slug,
                created_at=wiki.created_at,
                wiki_dir=wiki_dir,
                dir_fd=dir_fd,
                repo_path=repo_path,
                real_repo_path=os.path.realpath(repo_path),
                repo=git.Repo(repo_path),
                db_path=str(db_path),
                pool=pool,
                secret_key=derive_secret(self.settings.secret_key_path, "wiki:" + wiki.slug),
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

    def _locked(self, opened: OpenWiki) -> dict:
        return {
            **_LOCKED_OFF,
            "REPOSITORY": opened.repo_path,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{opened.db_path}",
            "SECRET_KEY": opened.secret_key,
            "SESSION_COOKIE_SECURE": self.settings.cookie_secure,
        }

    def activate(self, wiki: Wiki) -> OpenWiki:
        """Point Otterwiki's storage, db and config at `wiki` for the request about to run."""
        opened = self._get(wiki)
        previous, self.active = self.active, opened
        storage = self.server.storage
        storage.path = opened.repo_path
        storage.repo = opened.repo
        self.engine.pool = opened.pool
        config = self.app.config
        # The renderer holds a reference to app.config: change it in place, never replace it.
        key = (wiki.display_name, opened.preference_rows())
        if key != opened.config_key:
            config.clear()
            config.update(self.pristine)
            config["SITE_NAME"] = wiki.display_name
            self.server.update_app_config()
            config.update(self._locked(opened))
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


def _expose_request_context() -> None:
    from flask import g
    from flask import request

    g.tenant = request.environ.get(TENANT_KEY)
    g.caller = request.environ.get(CALLER_KEY)


def _robot_error(error):
    from flask import request

    from app.wiki.responses import error_response

    return error_response(error, request.path)


def _write_cache_rows_only_when_changed(server: ModuleType) -> None:
    """Fix two faults of Otterwiki's table-of-contents cache write, which runs on every view.

    It compares the file's naive mtime with the stored, UTC-aware one, which never match, so
    every page view flushed an UPDATE of the row and committed it (SQLite then found the bytes
    unchanged and wrote nothing to disk). Passing the same instant time-zone aware lets an
    unchanged row stay untouched: one SELECT per view.

    Two workers rendering a page for the first time both find no row and both insert one; the
    second insert breaks the primary key. The row the other worker wrote is just as good.
    """
    import otterwiki.helper
    import otterwiki.wiki
    from sqlalchemy.exc import IntegrityError

    original = otterwiki.helper.update_ftoc_cache

    def update_ftoc_cache(filename, ftoc, mtime=None):
        if mtime is None:
            try:
                mtime = server.storage.mtime(filename)
            except FileNotFoundError:
                pass  # Otterwiki's own call logs it and writes nothing
        if mtime is not None and mtime.tzinfo is None:
            mtime = mtime.astimezone()  # naive means local time, to Otterwiki's TimeStamp too
        try:
            original(filename, ftoc, mtime)
        except IntegrityError:
            server.db.session.rollback()

    otterwiki.helper.update_ftoc_cache = update_ftoc_cache
    otterwiki.wiki.update_ftoc_cache = update_ftoc_cache


def install(server: ModuleType, blueprint) -> None:
    """Add the platform to Otterwiki's app: `g.tenant`/`g.caller`, our errors, the page API."""
    from app.core.errors import RobotError

    app = server.app
    if blueprint.name in app.blueprints:
        return  # a second create_app in the same process (tests): already installed
    app.before_request_funcs.setdefault(None, []).insert(0, _expose_request_context)
    app.register_error_handler(RobotError, _robot_error)
    app.register_blueprint(blueprint)
    _write_cache_rows_only_when_changed(server)
    # The page API authenticates by Bearer token or cookie and takes JSON: no form CSRF token.
    server.csrf.exempt(blueprint)
