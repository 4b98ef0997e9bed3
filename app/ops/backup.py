"""Copy an instance's data (robot.db, keys, every wiki) to a folder and back, consistently."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.locks import wiki_write_lock
from app.core.settings import Settings
from app.core.slugs import validate_slug
from app.core.store import Store

MANIFEST = "backup.json"
# Inside a backup folder: fixed names, whatever paths the instance was configured with.
DB_NAME = "robot.db"
WIKIS_NAME = "wikis"
# Private files: name in the backup -> the Settings attribute holding their path.
KEY_FILES = {
    "signing_key.pem": "signing_key_path",
    "secret_key": "secret_key_path",
    "client_key.pem": "client_key_path",
}


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the backup API (a consistent snapshot, WAL included)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def _copy_private(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)


def _copy_wiki(source: Path, target: Path) -> None:
    """Copy one wiki folder: the git repo as files, wiki.db through SQLite, not the lock file.

    Nor the full-text index (search.db) or the link map (links.db): they are derived from the
    repo, and the first search or links call after a restore builds them again
    (app.pages.fulltext, app.pages.link_map).
    """
    target.mkdir(parents=True)
    shutil.copytree(source / "repo", target / "repo", symlinks=True)
    if (source / "wiki.db").exists():
        _copy_sqlite(source / "wiki.db", target / "wiki.db")


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def _require_sqlite(settings: Settings, action: str) -> None:
    """Refuse with BadRequest when the platform DB is not the SQLite file robot copies itself."""
    if not settings.database_is_sqlite:
        raise BadRequest(
            f"robot {action} handles the embedded SQLite platform DB; this instance uses "
            "PostgreSQL (ROBOT_DB_URL): use pg_dump and pg_restore for it, and copy the keys "
            f"and {settings.wiki_base} with the instance stopped"
        )


def backup(settings: Settings, dest: Path) -> list[str]:
    """Write a backup of this instance into `dest` (new or empty); return the wikis it holds.

    Raises Conflict when `dest` holds files, BadRequest when there is nothing to back up or the
    platform DB is PostgreSQL.
    """
    _require_sqlite(settings, "backup")
    dest = dest.absolute()
    if not _is_empty(dest):
        raise Conflict(f"backup folder {dest} is not empty")
    if not settings.db_path.exists():
        raise BadRequest(f"nothing to back up: {settings.db_path} does not exist (run robot init)")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    _copy_sqlite(settings.db_path, dest / DB_NAME)
    for name, attr in KEY_FILES.items():
        path = getattr(settings, attr)
        if path is not None and path.exists():
            _copy_private(path, dest / name)
    # The wikis named in the snapshot just taken; each is copied under its write lock, so no
    # edit lands half-way through the copy of its repo.
    snapshot = Store(dest / DB_NAME)
    slugs = [wiki.slug for wiki in snapshot.list_wikis()]
    snapshot.close()
    copied = []
    for slug in slugs:
        folder = settings.wiki_dir(slug)
        if not (folder / "repo").is_dir():
            continue  # deleted since the snapshot
        with wiki_write_lock(folder, timeout=60):
            _copy_wiki(folder, dest / WIKIS_NAME / slug)
        copied.append(slug)
    manifest = {"created_at": int(time.time()), "wikis": copied}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return copied


def has_data(settings: Settings) -> bool:
    """True when the instance already holds a database, a key or any wiki."""
    return (
        settings.db_path.exists()
        or settings.signing_key_path.exists()
        or not _is_empty(settings.wiki_base)
    )


def _read_manifest(source: Path) -> list[str]:
    """The wikis a backup folder holds; refuse anything that is not a backup made by robot."""
    try:
        wikis = json.loads((source / MANIFEST).read_text())["wikis"]
    except (OSError, ValueError, KeyError, TypeError):
        wikis = None
    if not isinstance(wikis, list) or not (source / DB_NAME).is_file():
        raise BadRequest(f"{source} is not a robot backup (no {MANIFEST} or {DB_NAME})")
    for slug in wikis:
        # A slug becomes a path below wikis/: nothing but a valid slug may.
        validate_slug(slug if isinstance(slug, str) else repr(slug))
    return wikis


def _staged(path: Path) -> Path:
    return path.with_name(f".restore-{path.name}-{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def restore(settings: Settings, source: Path, force: bool = False) -> list[str]:
    """Restore a backup folder into this instance; refuse to overwrite data unless `force`.

    Everything is first copied beside its final place, then swapped in by renames, so a failed
    copy leaves the instance as it was.
    """
    _require_sqlite(settings, "restore")
    source = source.absolute()
    wikis = _read_manifest(source)
    if has_data(settings) and not force:
        raise Conflict(f"{settings.data_dir} already holds data; pass --force to replace it")
    swaps: list[tuple[Path, Path]] = []  # (staged copy, final path)
    try:
        db = _staged(settings.db_path)
        settings.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        swaps.append((db, settings.db_path))
        _copy_sqlite(source / DB_NAME, db)
        for name, attr in KEY_FILES.items():
            path = getattr(settings, attr)
            if path is not None and (source / name).exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
                swaps.append((_staged(path), path))
                _copy_private(source / name, swaps[-1][0])
        settings.wiki_base.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        folder = _staged(settings.wiki_base)
        swaps.append((folder, settings.wiki_base))
        folder.mkdir(mode=0o750)
        for slug in wikis:
            _copy_wiki(source / WIKIS_NAME / slug, folder / slug)
    except BaseException:
        for staged, _ in swaps:
            _remove(staged)
        raise
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
    old = _staged(settings.wiki_base)
    if settings.wiki_base.exists():
        settings.wiki_base.rename(old)
    for staged, final in swaps:
        staged.replace(final)
    _remove(old)
    return wikis
