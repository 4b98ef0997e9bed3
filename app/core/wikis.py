"""Creating and deleting a wiki: its row in robot.db and its folder (git repo) on disk, together."""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

from app.core import starter_pages
from app.core import usage
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import Unavailable
from app.core.git_env import git_env
from app.core.labels import one_line_label
from app.core.locks import BUSY_RETRY
from app.core.locks import wiki_write_lock
from app.core.settings import Settings
from app.core.slugs import validate_slug
from app.core.store import Store
from app.core.store import Wiki

log = logging.getLogger(__name__)

MAX_DISPLAY_NAME = 100
# The branch every wiki's repository has checked out: what Otterwiki shows, what git pushes to.
BRANCH = "main"
# The commit `create_wiki` makes.
CREATION_MESSAGE = "Create wiki"
CREATOR_NAME = "robot"
# Where create_wiki records its commit, for `only_created`: outside refs/heads, which a push can
# neither update (push_rules.py takes only refs/heads/main) nor see (git_http hides refs/robot).
CREATED_REF = "refs/robot/created"
# Seconds an operator's deletion (robot wiki delete) waits for a wiki's write lock (a push,
# an edit). A tenant's deletion through the API waits none: it is refused at once (503,
# Retry-After), as five of them waiting 20 s each once held every API worker and another
# user's /api/account waited as long (twenty-second review).
OPERATOR_LOCK_WAIT = 20.0


def clean_display_name(name: str | None, slug: str) -> str:
    """Return a usable display name, or raise BadRequest saying what is wrong with it."""
    if name is None:
        return slug
    if not isinstance(name, str):
        raise BadRequest("display name must be a string")
    return one_line_label(name, "display name", MAX_DISPLAY_NAME) or slug


def _git(repo: Path, *args: str) -> None:
    env = git_env(repo)
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _init_repo(repo: Path, files: dict[str, str], domain: str) -> None:
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", BRANCH)
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "add", "--", *files)
    _git(
        repo,
        "-c",
        f"user.name={CREATOR_NAME}",
        "-c",
        f"user.email={CREATOR_NAME}@{domain}",
        "commit",
        "-q",
        "-m",
        CREATION_MESSAGE,
    )
    _git(repo, "update-ref", CREATED_REF, "HEAD")


def only_created(repo: Path) -> bool:
    """Tell whether HEAD of `repo` (a work tree) is still the very commit create_wiki made.

    Such a wiki holds nothing anyone wrote, so a push may replace it (an import). Decided by
    the commit recorded in CREATED_REF, never by what a commit says of itself: a pushed commit
    can copy the creation commit's author, committer and message, and would keep the wiki
    importable (open to forced rewrites). A wiki made before the record was kept has none, so
    is not importable; nor is a repository git cannot read.
    """
    done = subprocess.run(
        ["git", "rev-parse", "HEAD^{commit}", f"{CREATED_REF}^{{commit}}"],
        cwd=repo,
        env=git_env(repo),
        capture_output=True,
        check=False,
    )
    shas = done.stdout.split()
    return done.returncode == 0 and len(shas) == 2 and shas[0] == shas[1]


def create_wiki(
    settings: Settings,
    store: Store,
    slug: str,
    owner_did: str,
    display_name: str | None = None,
    public: bool = False,
) -> Wiki:
    """Create a wiki: row, owner membership and a git repo with its starter pages (Home and
    the Agent Guide, app.core.starter_pages) in one commit; all or nothing."""
    validate_slug(slug)
    name = clean_display_name(display_name, slug)
    store.get_user(owner_did)
    final = settings.wiki_dir(slug)
    if store.find_wiki(slug) is not None:
        raise Conflict(f"wiki {slug!r} already exists")
    if final.exists():
        raise Conflict(f"wiki {slug!r} still has data on disk at {final}; remove it first")
    settings.wiki_base.mkdir(parents=True, exist_ok=True)
    # Build the repo aside and move it in with one rename, so no half-made wiki is ever visible.
    staging = settings.wiki_base / f".new-{slug}-{secrets.token_hex(4)}"
    try:
        files = starter_pages.starter_files(name, settings.mcp_url(slug))
        _init_repo(staging / "repo", files, settings.platform_domain)
        store.insert_wiki(slug, owner_did, name, public)
        try:
            staging.rename(final)
        except OSError:
            store.delete_wiki_row(slug)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        usage.record(store, slug, settings.repo_path(slug))
    except usage.UsageError:
        # The wiki exists and works; its figures come with its first write.
        log.exception("could not measure the new wiki %s", slug)
    return store.get_wiki(slug)


def delete_wiki(
    settings: Settings, store: Store, slug: str, lock_wait: float = OPERATOR_LOCK_WAIT
) -> None:
    """Delete a wiki's row (it stops being served at once), then its repo and wiki.db, under
    its write lock, so no edit or push is cut in half.

    `lock_wait`: seconds to wait for the lock. Raises NotFound (no such wiki), Unavailable
    (503, Retry-After) when the lock stays busy that long; then nothing has changed.
    """
    store.get_wiki(slug)
    with ExitStack() as locks:
        _lock_for_deletion(locks, settings, slug, lock_wait)
        store.delete_wiki_row(slug)
        _remove_folder(settings, slug)


def delete_user(
    settings: Settings, store: Store, did: str, lock_wait: float = OPERATOR_LOCK_WAIT
) -> list[str]:
    """Delete user `did` and everything of theirs; return the slugs of the wikis deleted.

    Every wiki they own goes as delete_wiki does it (rows first, then folders), each under its
    write lock (waited for `lock_wait` seconds each), so no edit is cut in half; their
    memberships elsewhere, wiki tokens, OAuth grants and sessions go with their user row
    (Store.delete_user), in one transaction: if it fails (NotFound, Conflict when a wiki of
    theirs came or went meanwhile, Unavailable, also when a wiki's lock stays busy), nothing
    has changed.
    """
    owned = [wiki.slug for wiki in store.list_wikis(owner_did=did)]  # by slug
    with ExitStack() as locks:
        for slug in owned:
            _lock_for_deletion(locks, settings, slug, lock_wait)
        store.delete_user(did, owned)
        for slug in owned:
            _remove_folder(settings, slug)
    return owned


def _lock_for_deletion(locks: ExitStack, settings: Settings, slug: str, wait: float) -> None:
    """Hold wiki `slug`'s write lock in `locks` (if its folder is there), or raise Unavailable
    saying which wiki is busy, once it stays busy `wait` seconds."""
    folder = settings.wiki_dir(slug)
    if not folder.is_dir():
        return
    try:
        locks.enter_context(wiki_write_lock(folder, wait))
    except Unavailable:
        raise Unavailable(
            f"the wiki {slug} is busy with an edit or a push, and nothing was deleted; "
            "try again in a moment",
            retry_after=BUSY_RETRY,
        ) from None


def _remove_folder(settings: Settings, slug: str) -> None:
    """Move a deleted wiki's folder aside at once (a new wiki may take the slug), then remove it."""
    folder = settings.wiki_dir(slug)
    if folder.exists():
        trash = settings.wiki_base / f".deleted-{slug}-{secrets.token_hex(4)}"
        folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
