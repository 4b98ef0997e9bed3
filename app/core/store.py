"""The platform database (SQLite): users, wikis, memberships and wiki tokens.

All SQL lives here, so moving to PostgreSQL later is a change to this one module.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound

ROLES = ("viewer", "editor", "admin")  # ascending power

# Forward-only migrations; PRAGMA user_version records how many have run.
MIGRATIONS = [
    """
    CREATE TABLE users (
        did TEXT PRIMARY KEY,
        handle TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE wikis (
        slug TEXT PRIMARY KEY,
        owner_did TEXT NOT NULL REFERENCES users(did),
        display_name TEXT NOT NULL,
        is_public INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        page_count INTEGER NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE memberships (
        wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
        user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (wiki_slug, user_did)
    );
    CREATE INDEX memberships_by_user ON memberships(user_did);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
        user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
        label TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    );
    CREATE INDEX tokens_by_wiki ON tokens(wiki_slug);
    CREATE TABLE oauth_login_states (
        state TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY,
        metadata TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE oauth_grants (
        code_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
        user_did TEXT NOT NULL REFERENCES users(did) ON DELETE CASCADE,
        wiki_slug TEXT NOT NULL REFERENCES wikis(slug) ON DELETE CASCADE,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    """,
]

TOKEN_PREFIX = "robot_"
# Writing last_used_at on every request would make every read a write; a minute is precise enough.
LAST_USED_RESOLUTION = 60


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    return role


def weaker_role(a: str, b: str) -> str:
    return a if ROLES.index(a) <= ROLES.index(b) else b


@dataclass(frozen=True)
class User:
    did: str
    handle: str
    created_at: int


@dataclass(frozen=True)
class Wiki:
    slug: str
    owner_did: str
    display_name: str
    is_public: bool
    created_at: int
    page_count: int = 0
    size_bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "owner": self.owner_did,
            "display_name": self.display_name,
            "public": self.is_public,
            "created_at": self.created_at,
            "page_count": self.page_count,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class Member:
    did: str
    handle: str
    role: str
    created_at: int

    def as_dict(self) -> dict:
        return {"did": self.did, "handle": self.handle, "role": self.role}


@dataclass(frozen=True)
class Token:
    id: str
    wiki_slug: str
    user_did: str
    role: str
    label: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "wiki": self.wiki_slug,
            "user": self.user_did,
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
        }


class Store:
    """The platform database. One connection per thread and process (forks get their own)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _write(self):
        """A write transaction: BEGIN IMMEDIATE takes the lock up front, so no upgrade deadlock."""
        return _Transaction(self.db)

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema forward; return the version now in place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db.execute("PRAGMA journal_mode = WAL")
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
        return len(MIGRATIONS)

    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # -- users ----------------------------------------------------------------------------

    def upsert_user(self, did: str, handle: str) -> User:
        if not did.startswith("did:") or len(did) > 2048:
            raise BadRequest(f"invalid DID {did!r}: it must start with 'did:'")
        if not handle or len(handle) > 253:
            raise BadRequest("handle is required")
        with self._write() as db:
            db.execute(
                "INSERT INTO users (did, handle, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(did) DO UPDATE SET handle = excluded.handle",
                (did, handle, int(time.time())),
            )
        return self.get_user(did)

    def find_user(self, did: str) -> User | None:
        row = self.db.execute("SELECT * FROM users WHERE did = ?", (did,)).fetchone()
        return User(**dict(row)) if row else None

    def get_user(self, did: str) -> User:
        user = self.find_user(did)
        if user is None:
            raise NotFound(f"unknown user {did!r}")
        return user

    # -- wikis ----------------------------------------------------------------------------

    def insert_wiki(self, slug: str, owner_did: str, display_name: str, is_public: bool) -> Wiki:
        """Add a wiki row and its owner's admin membership, atomically."""
        self.get_user(owner_did)
        now = int(time.time())
        with self._write() as db:
            if db.execute("SELECT 1 FROM wikis WHERE slug = ?", (slug,)).fetchone():
                raise Conflict(f"wiki {slug!r} already exists")
            db.execute(
                "INSERT INTO wikis (slug, owner_did, display_name, is_public, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (slug, owner_did, display_name, int(is_public), now),
            )
            db.execute(
                "INSERT INTO memberships (wiki_slug, user_did, role, created_at) "
                "VALUES (?, ?, 'admin', ?)",
                (slug, owner_did, now),
            )
        return self.get_wiki(slug)

    def find_wiki(self, slug: str) -> Wiki | None:
        row = self.db.execute("SELECT * FROM wikis WHERE slug = ?", (slug,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["is_public"] = bool(data["is_public"])
        return Wiki(**data)

    def get_wiki(self, slug: str) -> Wiki:
        wiki = self.find_wiki(slug)
        if wiki is None:
            raise NotFound(f"no wiki named {slug!r}")
        return wiki

    def list_wikis(self, member_did: str | None = None) -> list[Wiki]:
        if member_did is None:
            rows = self.db.execute("SELECT slug FROM wikis ORDER BY slug").fetchall()
        else:
            rows = self.db.execute(
                "SELECT wiki_slug AS slug FROM memberships WHERE user_did = ? ORDER BY wiki_slug",
                (member_did,),
            ).fetchall()
        return [self.get_wiki(row["slug"]) for row in rows]

    def update_wiki(
        self, slug: str, display_name: str | None = None, is_public: bool | None = None
    ) -> Wiki:
        self.get_wiki(slug)
        with self._write() as db:
            if display_name is not None:
                db.execute("UPDATE wikis SET display_name = ? WHERE slug = ?", (display_name, slug))
            if is_public is not None:
                db.execute("UPDATE wikis SET is_public = ? WHERE slug = ?", (int(is_public), slug))
        return self.get_wiki(slug)

    def record_usage(self, slug: str, page_count: int, size_bytes: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE wikis SET page_count = ?, size_bytes = ? WHERE slug = ?",
                (page_count, size_bytes, slug),
            )

    def delete_wiki_row(self, slug: str) -> None:
        with self._write() as db:
            if db.execute("DELETE FROM wikis WHERE slug = ?", (slug,)).rowcount == 0:
                raise NotFound(f"no wiki named {slug!r}")

    # -- memberships ----------------------------------------------------------------------

    def role_of(self, slug: str, did: str) -> str | None:
        row = self.db.execute(
            "SELECT role FROM memberships WHERE wiki_slug = ? AND user_did = ?", (slug, did)
        ).fetchone()
        return row["role"] if row else None

    def set_member(self, slug: str, did: str, role: str) -> Member:
        validate_role(role)
        wiki = self.get_wiki(slug)
        self.get_user(did)
        if did == wiki.owner_did and role != "admin":
            raise Conflict("the owner of a wiki is always its admin")
        with self._write() as db:
            db.execute(
                "INSERT INTO memberships (wiki_slug, user_did, role, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(wiki_slug, user_did) DO UPDATE SET role = "
                "excluded.role",
                (slug, did, role, int(time.time())),
            )
        return next(m for m in self.list_members(slug) if m.did == did)

    def remove_member(self, slug: str, did: str) -> None:
        wiki = self.get_wiki(slug)
        if did == wiki.owner_did:
            raise Conflict("the owner cannot be removed from their wiki")
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM memberships WHERE wiki_slug = ? AND user_did = ?", (slug, did)
            ).rowcount
            if not removed:
                raise NotFound(f"{did!r} is not a member of {slug!r}")
            # A removed member's tokens must stop working at once, and stay dead if re-added.
            db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE wiki_slug = ? AND user_did = ? "
                "AND revoked_at IS NULL",
                (int(time.time()), slug, did),
            )

    def list_members(self, slug: str) -> list[Member]:
        self.get_wiki(slug)
        rows = self.db.execute(
            "SELECT m.user_did AS did, u.handle, m.role, m.created_at FROM memberships m "
            "JOIN users u ON u.did = m.user_did WHERE m.wiki_slug = ? ORDER BY m.created_at, "
            "u.handle",
            (slug,),
        ).fetchall()
        return [Member(**dict(row)) for row in rows]

    # -- tokens ---------------------------------------------------------------------------

    def create_token(self, slug: str, did: str, role: str, label: str = "") -> tuple[Token, str]:
        """Create a wiki token; return it with its secret, which is never stored."""
        validate_role(role)
        self.get_wiki(slug)
        member_role = self.role_of(slug, did)
        if member_role is None:
            raise BadRequest(f"{did!r} is not a member of {slug!r}")
        if ROLES.index(role) > ROLES.index(member_role):
            raise BadRequest(f"a {member_role} cannot create a token with role {role}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(8)
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (id, secret_hash, wiki_slug, user_did, role, label, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, hash_secret(secret), slug, did, role, label[:200], int(time.time())),
            )
        return self.get_token(token_id), secret

    def get_token(self, token_id: str) -> Token:
        row = self.db.execute(
            "SELECT id, wiki_slug, user_did, role, label, created_at, last_used_at, revoked_at "
            "FROM tokens WHERE id = ?",
            (token_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no token {token_id!r}")
        return Token(**dict(row))

    def list_tokens(self, slug: str) -> list[Token]:
        self.get_wiki(slug)
        rows = self.db.execute(
            "SELECT id FROM tokens WHERE wiki_slug = ? ORDER BY created_at, id", (slug,)
        ).fetchall()
        return [self.get_token(row["id"]) for row in rows]

    def revoke_token(self, token_id: str) -> Token:
        self.get_token(token_id)
        with self._write() as db:
            db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (int(time.time()), token_id),
            )
        return self.get_token(token_id)

    def authenticate_token(self, secret: str, slug: str) -> tuple[Token, str] | None:
        """Return the live token for `secret` in wiki `slug` and the role it grants now, or None.

        The role is the weaker of the token's and the user's current membership role.
        """
        row = self._live_token_row(secret, slug)
        if row is None:
            return None
        now = int(time.time())
        if _use_is_due(row["last_used_at"], now):
            with self._write() as db:
                db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, row["id"]))
        return self.get_token(row["id"]), weaker_role(row["role"], row["member_role"])

    def token_use_would_write(self, secret: str, slug: str) -> bool:
        """Whether authenticate_token(secret, slug) would now record the token's use.

        That write may wait on SQLite's lock; every other part of checking a token only reads.
        """
        row = self._live_token_row(secret, slug)
        return row is not None and _use_is_due(row["last_used_at"], int(time.time()))

    def _live_token_row(self, secret: str, slug: str) -> sqlite3.Row | None:
        """The unrevoked token for `secret` in `slug` whose user is still a member, if any."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        return self.db.execute(
            "SELECT t.id, t.role, t.last_used_at, m.role AS member_role FROM tokens t "
            "JOIN memberships m ON m.wiki_slug = t.wiki_slug AND m.user_did = t.user_did "
            "WHERE t.secret_hash = ? AND t.wiki_slug = ? AND t.revoked_at IS NULL",
            (hash_secret(secret), slug),
        ).fetchone()


def _use_is_due(last_used_at: int | None, now: int) -> bool:
    """A token's last use is recorded at most once per LAST_USED_RESOLUTION seconds."""
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
