"""The platform database: users, wikis, memberships and wiki tokens, on SQLite or PostgreSQL.

Every query lives here, written once in SQLAlchemy Core for both engines (app.core.database
makes the engine; app.core.schema names the tables; Alembic migrations make the schema).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import RowMapping
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.exc import SQLAlchemyError

from app.core import database
from app.core.atproto_identity import INVALID_HANDLE
from app.core.atproto_identity import check_handle_syntax
from app.core.atproto_identity import check_user_did
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.errors import Unavailable
from app.core.labels import one_line_label
from app.core.schema import ROLES
from app.core.schema import memberships
from app.core.schema import oauth_clients
from app.core.schema import oauth_grants
from app.core.schema import oauth_login_states
from app.core.schema import oauth_refresh_tokens
from app.core.schema import tokens
from app.core.schema import users
from app.core.schema import wikis
from app.core.session_store import SessionRecords

log = logging.getLogger(__name__)

# A token's label is a note for the people who manage the wiki: one line, this long at most.
MAX_TOKEN_LABEL = 100
TOKEN_PREFIX = "robot_"
# Writing last_used_at on every request would make every read a write; a minute is precise enough.
LAST_USED_RESOLUTION = 60


def hash_secret(secret: str) -> str:
    """The hex SHA-256 of a token secret: what the tokens table stores instead of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_role(role: str) -> str:
    """Return `role` if it is viewer, editor or admin; else raise BadRequest."""
    if role not in ROLES:
        raise BadRequest(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    return role


def weaker_role(a: str, b: str) -> str:
    """The less powerful of two roles (viewer < editor < admin)."""
    return a if ROLES.index(a) <= ROLES.index(b) else b


@dataclass(frozen=True)
class User:
    """A person, known by their ATProto DID; times in Unix seconds. `last_sign_in_at` is None
    for someone added to a wiki who has not signed in yet."""

    did: str
    handle: str
    created_at: int
    last_sign_in_at: int | None = None

    @property
    def signed_in(self) -> bool:
        """Whether this person has ever signed in."""
        return self.last_sign_in_at is not None


@dataclass(frozen=True)
class Wiki:
    """A wiki's row: `slug` names its host; usage as last recorded (app/core/usage.py):
    `page_count` pages, `size_bytes` bytes of HEAD's files, `last_change_at` HEAD's commit time
    in Unix seconds (None until first recorded)."""

    slug: str
    owner_did: str
    display_name: str
    is_public: bool
    created_at: int
    page_count: int = 0
    size_bytes: int = 0
    last_change_at: int | None = None
    git_access: bool = False  # git clone/pull/push over HTTP at its host's /.git

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "owner": self.owner_did,
            "display_name": self.display_name,
            "public": self.is_public,
            "created_at": self.created_at,
            "page_count": self.page_count,
            "size_bytes": self.size_bytes,
            "last_change_at": self.last_change_at,
            "git_access": self.git_access,
        }


@dataclass(frozen=True)
class Member:
    """A user's role in one wiki; `owner` for the wiki's owner, `signed_in` once the user has
    signed in at least once (someone added by handle may not have yet)."""

    did: str
    handle: str
    role: str
    created_at: int
    owner: bool = False
    signed_in: bool = True

    def as_dict(self) -> dict:
        return {
            "did": self.did,
            "handle": self.handle,
            "role": self.role,
            "owner": self.owner,
            "signed_in": self.signed_in,
        }


@dataclass(frozen=True)
class Token:
    """A wiki token, without its secret; times in Unix seconds, None when not (yet)."""

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


# The reads every request makes, compiled once per store (database.PreparedRead).
_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.wiki_slug,
    tokens.c.user_did,
    tokens.c.role,
    tokens.c.label,
    tokens.c.created_at,
    tokens.c.last_used_at,
    tokens.c.revoked_at,
)
# Everything a request needs to know about a token, in one round trip.
_LIVE_TOKEN = (
    select(*_TOKEN_COLUMNS, memberships.c.role.label("member"), users.c.handle)
    .join(
        memberships,
        and_(
            memberships.c.wiki_slug == tokens.c.wiki_slug,
            memberships.c.user_did == tokens.c.user_did,
        ),
    )
    .join(users, users.c.did == tokens.c.user_did)
    .where(
        tokens.c.secret_hash == bindparam("secret_hash"),
        tokens.c.wiki_slug == bindparam("slug"),
        tokens.c.revoked_at.is_(None),
    )
)
_ROLE_OF = select(memberships.c.role).where(
    memberships.c.wiki_slug == bindparam("slug"), memberships.c.user_did == bindparam("did")
)
_WIKI = select(wikis).where(wikis.c.slug == bindparam("slug"))
_USER = select(users).where(users.c.did == bindparam("did"))
_TOKEN = select(*_TOKEN_COLUMNS).where(tokens.c.id == bindparam("id"))


@dataclass(frozen=True)
class AuthorizationCode:
    """A redeemed OAuth authorization code (RFC 6749 §4.1): who granted what to which client.

    `data` holds the request it answers: redirect_uri, scope, resource, code_challenge and
    code_challenge_method.
    """

    code_hash: str
    client_id: str
    user_did: str
    wiki_slug: str
    data: dict


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token spent by a refresh request; `grant_id` names its family (one consent)."""

    token_hash: str
    grant_id: str
    client_id: str
    user_did: str
    wiki_slug: str
    scope: str
    resource: str


class TokenUse(NamedTuple):
    """A wiki token admitted for one request: the token, the role it grants, its user's handle."""

    token: Token
    role: str
    handle: str


class Store(SessionRecords):
    """The platform database at a SQLAlchemy URL (a Path means a SQLite file).

    Methods take and return plain values and the dataclasses above; they raise BadRequest,
    NotFound or Conflict (app.core.errors) for what the caller asked wrongly, and Unavailable
    (503) when the database does not answer or has no schema yet. One pool of
    connections per process: a forked child drops its parent's connections on first use.
    """

    def __init__(self, url: str | URL | Path):
        self.url = URL.create("sqlite", database=str(url)) if isinstance(url, Path) else url
        self.engine = database.create_engine(self.url)
        self._reader = database.reader(self.engine)
        self._writer = database.writer(self.engine)
        self._pid = os.getpid()
        # A store dropped without close() still closes its connections (PostgreSQL sessions),
        # but only in the process that opened them: a forked child shares their sockets.
        weakref.finalize(self, _release, self.engine, self._pid)
        self._insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert
        self._find_wiki = database.PreparedRead(self.engine, _WIKI)
        self._find_user = database.PreparedRead(self.engine, _USER)
        self._role_of = database.PreparedRead(self.engine, _ROLE_OF)
        self._live_token = database.PreparedRead(self.engine, _LIVE_TOKEN)
        self._token = database.PreparedRead(self.engine, _TOKEN)
        self._prepare_session_reads()

    @staticmethod
    def _now() -> int:
        return _now()

    def close(self) -> None:
        """Close every pooled connection (the store stays usable: it reconnects on demand)."""
        self.engine.dispose()

    def _forked(self) -> None:
        if self._pid != os.getpid():
            # A child must not share the parent's sockets or SQLite handles: start a fresh pool
            # and leave the parent's connections open for the parent.
            self.engine.dispose(close=False)
            self._pid = os.getpid()
            weakref.finalize(self, _release, self.engine, self._pid)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._forked()
        with self._reader.connect() as connection:
            yield connection

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One transaction; SQLite takes its write lock up front (BEGIN IMMEDIATE)."""
        self._forked()
        with _answering(), self._writer.begin() as connection:
            yield connection

    def _one(self, prepared: database.PreparedRead, **params) -> dict | None:
        self._forked()
        with _answering():
            return database.read_again_if_dropped(lambda: prepared.one(**params))

    def _all(self, statement) -> list[RowMapping]:
        def read() -> list[RowMapping]:
            with self._read() as connection:
                return list(connection.execute(statement).mappings())

        with _answering():
            return database.read_again_if_dropped(read)

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> str:
        """Bring the schema to the newest migration; return its revision id."""
        if self.engine.dialect.name == "sqlite":
            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        self._forked()
        return database.upgrade(self.engine)

    def schema_version(self) -> str | None:
        """The migration revision the database is at (None before `robot init`)."""
        self._forked()
        with _answering():
            return database.read_again_if_dropped(lambda: database.current_revision(self.engine))

    def schema_problem(self) -> str | None:
        """None when the schema is the one this code needs, else what to do about it."""
        current, head = self.schema_version(), database.head_revision()
        if current != head:
            return f"schema {current or 'missing'}, this code expects {head}: run 'robot init'"
        return None

    def health_problem(self) -> str | None:
        """None when the platform DB answers with the schema this code needs, else one line.

        The line never holds connection details (hosts, users, SQL): /healthz is public. What
        went wrong beyond "not answering" or "needs robot init" goes to the log.
        """
        try:
            return self.schema_problem()
        except Unavailable as error:
            return error.message
        except SQLAlchemyError:
            log.exception("platform database health check failed")
            return "the platform database failed a query; the operator's log says why"

    # -- users ----------------------------------------------------------------------------

    def upsert_user(self, did: str, handle: str, signed_in: bool = False) -> User:
        """Create the user `did` or update their handle; return the row.

        `signed_in` says this is their sign-in: it records the time in `last_sign_in_at`.
        Otherwise a new user is one who has not signed in yet (and a known one keeps theirs).

        A handle belongs to one account (compared without case; INVALID_HANDLE, which any
        number of accounts may show, aside). ATProto handles move between accounts, so the
        newest verified one wins: a sign-in's handle, verified just now, is taken from any
        other user holding it, whose handle becomes INVALID_HANDLE until they sign in again
        (their row, wikis and memberships stay). A handle not verified here (`robot user add`,
        signed_in False) is refused with Conflict, storing nothing, when another DID holds it;
        the same DID may update its own, and recording the handle a user already has moves
        nothing. Raises BadRequest, storing nothing, for a DID that
        may not key a user (app.core.atproto_identity.check_user_did) or a handle not of the
        Handle spec's syntax (check_handle_syntax).
        """
        with self._write() as connection:
            self._upsert_user(connection, did, handle, signed_in, verified=signed_in)
        return self.get_user(did)

    def _upsert_user(
        self, connection: Connection, did: str, handle: str, signed_in: bool, verified: bool
    ):
        # Every way a user is stored comes here (CLI, sign-in, members): a DID and a handle of
        # the specs' syntax, or nothing (twenty-fifth review: a handle holding '<' was stored;
        # twenty-sixth: did:key and a did:web with a path were, and one handle for two DIDs).
        check_user_did(did)
        check_handle_syntax(handle)
        self._claim_handle(connection, did, handle, verified)
        now = _now()
        statement = self._insert(users).values(
            did=did, handle=handle, created_at=now, last_sign_in_at=now if signed_in else None
        )
        changes = {"handle": statement.excluded.handle}
        if signed_in:
            changes["last_sign_in_at"] = statement.excluded.last_sign_in_at
        connection.execute(
            statement.on_conflict_do_update(index_elements=[users.c.did], set_=changes)
        )

    def _claim_handle(self, connection: Connection, did: str, handle: str, verified: bool):
        """Make `handle` free for `did` in this transaction (see upsert_user): a `verified`
        handle is cleared (set to INVALID_HANDLE) from every other user holding it; else
        Conflict when another user holds it. INVALID_HANDLE is never claimed, nor the handle
        `did` has already: a sign-in whose handle no longer verifies records the known one
        again (app.auth.atproto.login.record_user), which must take it from nobody."""
        if handle == INVALID_HANDLE:
            return
        own = connection.execute(select(users.c.handle).where(users.c.did == did)).scalar()
        if own is not None and own.lower() == handle.lower():
            return
        others = (users.c.did != did) & (func.lower(users.c.handle) == handle.lower())
        if verified:
            connection.execute(update(users).where(others).values(handle=INVALID_HANDLE))
            return
        holder = connection.execute(select(users.c.did).where(others).limit(1)).scalar()
        if holder is not None:
            raise Conflict(
                f"the handle {handle!r} belongs to another user, {holder}: a handle names one "
                "account; give this DID its own handle"
            )

    def find_user(self, did: str) -> User | None:
        """The user with this DID, or None."""
        row = self._one(self._find_user, did=did)
        return User(**row) if row else None

    def list_users(self) -> list[User]:
        """Every user, by handle then DID."""
        rows = self._all(select(users).order_by(users.c.handle, users.c.did))
        return [User(**row) for row in rows]

    def get_user(self, did: str) -> User:
        """The user with this DID; raises NotFound."""
        user = self.find_user(did)
        if user is None:
            raise NotFound(f"unknown user {did!r}")
        return user

    def delete_user(self, did: str, owned: list[str]) -> None:
        """Delete user `did` with everything of theirs, in one transaction: the wikis `owned`
        (their rows; the caller removes the folders), their memberships, wiki tokens, OAuth
        grants and refresh tokens, and their sessions with every host's credential.

        `owned` must be exactly the wikis they own now (the caller holds those wikis' write
        locks); Conflict if it is not, e.g. a wiki was created meanwhile. NotFound for an
        unknown user. Nothing changes unless everything does.
        """
        with self._write() as connection:
            if connection.execute(_USER, {"did": did}).first() is None:
                raise NotFound(f"unknown user {did!r}")
            now_owned = connection.execute(
                select(wikis.c.slug).where(wikis.c.owner_did == did)
            ).scalars()
            if sorted(now_owned) != sorted(owned):
                raise Conflict("your wikis changed while deleting the account; try again")
            connection.execute(delete(wikis).where(wikis.c.owner_did == did))
            # The foreign keys cascade these too; named here so no engine setting decides it.
            self._end_sessions_in(connection, did)
            for table in (oauth_refresh_tokens, oauth_grants, tokens, memberships):
                connection.execute(delete(table).where(table.c.user_did == did))
            connection.execute(delete(users).where(users.c.did == did))

    # -- wikis ----------------------------------------------------------------------------

    def insert_wiki(self, slug: str, owner_did: str, display_name: str, is_public: bool) -> Wiki:
        """Add a wiki row and its owner's admin membership, atomically.

        Raises Conflict when the slug is taken, also when another process takes it meanwhile.
        """
        self.get_user(owner_did)
        now = _now()
        try:
            with self._write() as connection:
                if connection.execute(_WIKI, {"slug": slug}).first():
                    raise Conflict(f"wiki {slug!r} already exists")
                connection.execute(
                    wikis.insert().values(
                        slug=slug,
                        owner_did=owner_did,
                        display_name=display_name,
                        is_public=is_public,
                        created_at=now,
                    )
                )
                connection.execute(
                    memberships.insert().values(
                        wiki_slug=slug, user_did=owner_did, role="admin", created_at=now
                    )
                )
        except IntegrityError:
            # PostgreSQL lets two transactions pass the check; the second INSERT fails here.
            raise Conflict(f"wiki {slug!r} already exists") from None
        return self.get_wiki(slug)

    def find_wiki(self, slug: str) -> Wiki | None:
        """The wiki named `slug`, or None."""
        row = self._one(self._find_wiki, slug=slug)
        return _wiki(row) if row else None

    def get_wiki(self, slug: str) -> Wiki:
        """The wiki named `slug`; raises NotFound."""
        wiki = self.find_wiki(slug)
        if wiki is None:
            raise NotFound(f"no wiki named {slug!r}")
        return wiki

    def list_wikis(self, member_did: str | None = None, owner_did: str | None = None) -> list[Wiki]:
        """Every wiki, or those `member_did` is a member of and/or `owner_did` owns, by slug."""
        statement = select(wikis).order_by(wikis.c.slug)
        if member_did is not None:
            statement = statement.join(memberships).where(memberships.c.user_did == member_did)
        if owner_did is not None:
            statement = statement.where(wikis.c.owner_did == owner_did)
        return [_wiki(row) for row in self._all(statement)]

    def update_wiki(
        self,
        slug: str,
        display_name: str | None = None,
        is_public: bool | None = None,
        git_access: bool | None = None,
    ) -> Wiki:
        """Change a wiki's display name, visibility and/or git access; raises NotFound."""
        self.get_wiki(slug)
        changes = {}
        if display_name is not None:
            changes["display_name"] = display_name
        if is_public is not None:
            changes["is_public"] = is_public
        if git_access is not None:
            changes["git_access"] = git_access
        if changes:
            with self._write() as connection:
                connection.execute(update(wikis).where(wikis.c.slug == slug).values(**changes))
        return self.get_wiki(slug)

    def record_usage(
        self, slug: str, page_count: int, size_bytes: int, last_change_at: int | None = None
    ) -> None:
        """Record a wiki's usage: `page_count` pages, `size_bytes` bytes and, when given, the
        Unix time of its last change. A wiki deleted meanwhile is no error (nothing to record)."""
        values = {"page_count": page_count, "size_bytes": size_bytes}
        if last_change_at is not None:
            values["last_change_at"] = last_change_at
        with self._write() as connection:
            connection.execute(update(wikis).where(wikis.c.slug == slug).values(**values))

    def reserve_bytes(self, slug: str, grows: int, most: int) -> bool:
        """Add `grows` bytes to wiki `slug`'s recorded size if it then stays within `most`, in
        one statement, and tell whether it did. A write that knows what it adds reserves it
        before it runs, so writes at once cannot each fit alone and all go past the cap; the
        measurement after the write (record_usage) puts the real size back."""
        with self._write() as connection:
            done = connection.execute(
                update(wikis)
                .where(wikis.c.slug == slug, wikis.c.size_bytes + grows <= most)
                .values(size_bytes=wikis.c.size_bytes + grows)
            )
            return done.rowcount == 1

    def release_bytes(self, slug: str, grows: int, floor: int) -> None:
        """Take back `grows` bytes that reserve_bytes added to wiki `slug`'s recorded size,
        never below `floor` (its files as just measured): a measurement after another write
        may have replaced the reservation meanwhile, and taking it back again then put the
        recorded size under the real one (a slow upload's, dropped, let the next pass the
        cap)."""
        smaller = case(
            (wikis.c.size_bytes - grows > floor, wikis.c.size_bytes - grows), else_=floor
        )
        with self._write() as connection:
            connection.execute(update(wikis).where(wikis.c.slug == slug).values(size_bytes=smaller))

    def delete_wiki_row(self, slug: str) -> None:
        """Delete a wiki's row; its memberships and tokens go with it. Raises NotFound."""
        with self._write() as connection:
            if connection.execute(delete(wikis).where(wikis.c.slug == slug)).rowcount == 0:
                raise NotFound(f"no wiki named {slug!r}")

    # -- memberships ----------------------------------------------------------------------

    def role_of(self, slug: str, did: str) -> str | None:
        """The role of `did` in wiki `slug` ("viewer", "editor", "admin"), None if no member."""
        row = self._one(self._role_of, slug=slug, did=did)
        return row["role"] if row else None

    def set_member(self, slug: str, did: str, role: str) -> Member:
        """Add `did` to wiki `slug` with `role`, or change their role. Raises Conflict when
        demoting the owner, NotFound for an unknown wiki or user."""
        validate_role(role)
        wiki = self.get_wiki(slug)
        self.get_user(did)
        if did == wiki.owner_did and role != "admin":
            raise Conflict("the owner of a wiki is always its admin")
        with self._write() as connection:
            self._put_membership(connection, slug, did, role)
        return next(m for m in self.list_members(slug) if m.did == did)

    def _put_membership(self, connection: Connection, slug: str, did: str, role: str) -> None:
        statement = self._insert(memberships).values(
            wiki_slug=slug, user_did=did, role=role, created_at=_now()
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[memberships.c.wiki_slug, memberships.c.user_did],
                set_={"role": statement.excluded.role},
            )
        )

    def add_member(self, slug: str, did: str, handle: str, role: str) -> tuple[Member, bool]:
        """Give `did` (whose verified handle is `handle`) `role` in wiki `slug`, making their
        user row if they have never signed in, in one transaction; return the member and
        whether they are new to the wiki. Raises Conflict for the owner (whose role is fixed),
        NotFound for an unknown wiki, BadRequest for a bad role, DID or handle. The handle
        counts as verified: another user holding it loses it, as at a sign-in (upsert_user)."""
        validate_role(role)
        wiki = self.get_wiki(slug)
        if did == wiki.owner_did:
            raise Conflict("the owner of a wiki is always its admin; their role cannot change")
        with self._write() as connection:
            is_new = connection.execute(_ROLE_OF, {"slug": slug, "did": did}).first() is None
            # The handle was verified just now (app.core.atproto_identity.member_account), or is
            # the one the user row has: as a sign-in's, it is taken from another user holding it.
            self._upsert_user(connection, did, handle, signed_in=False, verified=True)
            self._put_membership(connection, slug, did, role)
        return next(m for m in self.list_members(slug) if m.did == did), is_new

    def remove_member(self, slug: str, did: str) -> None:
        """Remove `did` from wiki `slug` and revoke their tokens and OAuth grants there, atomically.

        Raises Conflict for the owner and NotFound for a non-member."""
        wiki = self.get_wiki(slug)
        if did == wiki.owner_did:
            raise Conflict("the owner cannot be removed from their wiki")
        with self._write() as connection:
            removed = connection.execute(
                delete(memberships).where(
                    memberships.c.wiki_slug == slug, memberships.c.user_did == did
                )
            ).rowcount
            if not removed:
                raise NotFound(f"{did!r} is not a member of {slug!r}")
            # A removed member's tokens must stop working at once, and stay dead if re-added.
            connection.execute(
                update(tokens)
                .where(
                    tokens.c.wiki_slug == slug,
                    tokens.c.user_did == did,
                    tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=_now())
            )
            # ...and so must the agents they connected with OAuth: re-adding them later asks
            # for consent again instead of bringing old grants back.
            granted = connection.execute(
                select(oauth_grants.c.code_hash).where(
                    oauth_grants.c.wiki_slug == slug, oauth_grants.c.user_did == did
                )
            )
            for grant_id in granted.scalars().all():
                self._revoke_grant(connection, grant_id, _now())

    def list_members(self, slug: str) -> list[Member]:
        """The members of wiki `slug`, oldest first."""
        wiki = self.get_wiki(slug)
        rows = self._all(
            select(
                memberships.c.user_did.label("did"),
                users.c.handle,
                memberships.c.role,
                memberships.c.created_at,
                users.c.last_sign_in_at,
            )
            .join(users, users.c.did == memberships.c.user_did)
            .where(memberships.c.wiki_slug == slug)
            .order_by(memberships.c.created_at, users.c.handle)
        )
        return [
            Member(
                **{k: v for k, v in row.items() if k != "last_sign_in_at"},
                owner=row["did"] == wiki.owner_did,
                signed_in=row["last_sign_in_at"] is not None,
            )
            for row in rows
        ]

    # -- tokens ---------------------------------------------------------------------------

    def create_token(self, slug: str, did: str, role: str, label: str = "") -> tuple[Token, str]:
        """Create a wiki token; return it with its secret, which is never stored.

        `label` is tidied by one_line_label (at most MAX_TOKEN_LABEL characters). Raises
        BadRequest for a bad role or label, a non-member or a role above the member's own,
        and NotFound for an unknown wiki."""
        validate_role(role)
        label = one_line_label(label, "label", MAX_TOKEN_LABEL)
        self.get_wiki(slug)
        member_role = self.role_of(slug, did)
        if member_role is None:
            raise BadRequest(f"{did!r} is not a member of {slug!r}")
        if ROLES.index(role) > ROLES.index(member_role):
            raise BadRequest(f"a {member_role} cannot create a token with role {role}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(8)
        with self._write() as connection:
            connection.execute(
                tokens.insert().values(
                    id=token_id,
                    secret_hash=hash_secret(secret),
                    wiki_slug=slug,
                    user_did=did,
                    role=role,
                    label=label[:200],
                    created_at=_now(),
                )
            )
        return self.get_token(token_id), secret

    def find_token(self, token_id: str) -> Token | None:
        """The token with this id, or None."""
        row = self._one(self._token, id=token_id)
        return Token(**row) if row else None

    def get_token(self, token_id: str) -> Token:
        """The token with this id; raises NotFound."""
        token = self.find_token(token_id)
        if token is None:
            raise NotFound(f"no token {token_id!r}")
        return token

    def list_tokens(self, slug: str) -> list[Token]:
        """The tokens of wiki `slug` (revoked ones included), oldest first."""
        self.get_wiki(slug)
        rows = self._all(
            select(*_TOKEN_COLUMNS)
            .where(tokens.c.wiki_slug == slug)
            .order_by(tokens.c.created_at, tokens.c.id)
        )
        return [Token(**row) for row in rows]

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token (once; revoking again keeps the first time). Raises NotFound."""
        self.get_token(token_id)
        with self._write() as connection:
            connection.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return self.get_token(token_id)

    def authenticate_token(self, secret: str, slug: str) -> TokenUse | None:
        """Return the live token for `secret` in wiki `slug`, the role it grants now and its
        user's handle; None for an unknown, revoked or foreign token, or a removed member.

        The role is the weaker of the token's and the user's current membership role. One
        query, and a write at most once a minute to record the use.
        """
        row = self._live_token_row(secret, slug)
        if row is None:
            return None
        member, handle = row.pop("member"), row.pop("handle")
        token = Token(**row)
        now = _now()
        if _use_is_due(token.last_used_at, now):
            with self._write() as connection:
                connection.execute(
                    update(tokens).where(tokens.c.id == token.id).values(last_used_at=now)
                )
            token = replace(token, last_used_at=now)
        return TokenUse(token, weaker_role(token.role, member), handle)

    def token_use_would_write(self, secret: str, slug: str) -> bool:
        """Whether authenticate_token(secret, slug) would now record the token's use.

        That write may wait on SQLite's lock; every other part of checking a token only reads.
        """
        row = self._live_token_row(secret, slug)
        return row is not None and _use_is_due(row["last_used_at"], _now())

    def _live_token_row(self, secret: str, slug: str) -> dict | None:
        """The unrevoked token for `secret` in `slug` whose user is still a member, if any."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        return self._one(self._live_token, secret_hash=hash_secret(secret), slug=slug)

    # -- ATProto login requests in flight ---------------------------------------------------

    def save_login_request(self, state: str, data: dict) -> None:
        """Keep one login request (JSON-able `data`) under its random OAuth `state`."""
        row = {"state": state, "data": json.dumps(data), "created_at": _now()}
        with self._write() as connection:
            connection.execute(oauth_login_states.insert().values(**row))

    def take_login_request(self, state: str) -> tuple[dict, int] | None:
        """Delete the login request `state` and return (its data, created_at in Unix seconds);
        None when it is unknown or already taken (a request is used once)."""
        if not state or len(state) > 200:
            return None
        statement = (
            delete(oauth_login_states)
            .where(oauth_login_states.c.state == state)
            .returning(oauth_login_states.c.data, oauth_login_states.c.created_at)
        )
        with self._write() as connection:
            row = connection.execute(statement).first()
        return (json.loads(row.data), row.created_at) if row else None

    def purge_login_requests(self, older_than: int) -> int:
        """Delete login requests created before `older_than` (Unix seconds); return how many."""
        statement = delete(oauth_login_states).where(oauth_login_states.c.created_at < older_than)
        with self._write() as connection:
            return connection.execute(statement).rowcount

    # -- OAuth for MCP clients (app/auth/oauth_server.py) ---------------------------------

    def save_oauth_client(self, client_id: str, client_metadata: dict) -> None:
        """Store a client registered with RFC 7591 and its (validated) metadata."""
        with self._write() as connection:
            connection.execute(
                oauth_clients.insert().values(
                    client_id=client_id, metadata=json.dumps(client_metadata), created_at=_now()
                )
            )

    def find_oauth_client(self, client_id: str) -> dict | None:
        """The registered metadata of client `client_id`, or None for an unknown client."""
        # PostgreSQL refuses NUL in text (DataError); no client id holds one.
        if not client_id or len(client_id) > 200 or "\x00" in client_id:
            return None
        rows = self._all(
            select(oauth_clients.c.metadata).where(oauth_clients.c.client_id == client_id)
        )
        return json.loads(rows[0]["metadata"]) if rows else None

    def save_authorization_code(
        self, code: str, client_id: str, did: str, slug: str, data: dict, ttl: int
    ) -> None:
        """Store an authorization code (by hash) valid for `ttl` seconds; `data` as in
        AuthorizationCode."""
        now = _now()
        with self._write() as connection:
            # Each new code sweeps out the dead ones: no job runs on a timer to do it. A redeemed
            # grant lives as long as its refresh tokens (redeem_authorization_code and
            # save_refresh_token push expires_at on), so only unredeemed codes and grants
            # nobody refreshed within the refresh token lifetime go.
            connection.execute(delete(oauth_grants).where(oauth_grants.c.expires_at < now))
            connection.execute(
                delete(oauth_refresh_tokens).where(oauth_refresh_tokens.c.expires_at < now)
            )
            connection.execute(
                oauth_grants.insert().values(
                    code_hash=hash_secret(code),
                    client_id=client_id,
                    user_did=did,
                    wiki_slug=slug,
                    data=json.dumps(data),
                    created_at=now,
                    expires_at=now + ttl,
                )
            )

    def redeem_authorization_code(
        self, code: str, client_id: str, grant_ttl: int
    ) -> AuthorizationCode | None:
        """Spend the live code `code` of client `client_id`, at most once; None otherwise.

        The redeemed row becomes the grant (its id is `code_hash`, the access tokens' `grant`
        claim) and lives `grant_ttl` seconds more. A code presented a second time is a replay
        (RFC 6749 §4.1.2): the grant is revoked with its refresh tokens (_revoke_grant).
        """
        code_hash, now = hash_secret(code), _now()
        with self._write() as connection:
            row = connection.execute(
                select(oauth_grants).where(oauth_grants.c.code_hash == code_hash)
            ).first()
            if row is None or row.client_id != client_id:
                return None
            if row.used_at is not None:
                self._revoke_grant(connection, code_hash, now)
                return None
            if row.expires_at < now:
                return None
            # On PostgreSQL two redemptions may both get here: only one may mark the code.
            spent = connection.execute(
                update(oauth_grants)
                .where(oauth_grants.c.code_hash == code_hash, oauth_grants.c.used_at.is_(None))
                .values(used_at=now, expires_at=now + grant_ttl)
            ).rowcount
            if not spent:
                return None
        return AuthorizationCode(
            code_hash, row.client_id, row.user_did, row.wiki_slug, json.loads(row.data)
        )

    def save_refresh_token(self, token: str, record: RefreshToken, ttl: int) -> bool:
        """Store refresh token `token` (by hash) for `ttl` seconds; return True.

        `record.token_hash`, if set, names the live token it replaces (rotation): that one is
        revoked in the same transaction, so a token is spent only when its successor is
        stored. If it was spent meanwhile (a concurrent refresh with the same token: one of
        them leaked), its grant is revoked, nothing is stored and the answer is False. The
        grant (`record.grant_id`) is renewed for `ttl` seconds too; if it is gone (revoked, or
        swept before grants outlived their code), nothing is stored and the answer is False.
        """
        now = _now()
        with self._write() as connection:
            renewed = connection.execute(
                update(oauth_grants)
                .where(
                    oauth_grants.c.code_hash == record.grant_id,
                    oauth_grants.c.used_at.is_not(None),
                )
                .values(expires_at=now + ttl)
            ).rowcount
            if not renewed:
                self._revoke_grant(connection, record.grant_id, now)
                return False
            if record.token_hash:
                spent = connection.execute(
                    update(oauth_refresh_tokens)
                    .where(
                        oauth_refresh_tokens.c.token_hash == record.token_hash,
                        oauth_refresh_tokens.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                ).rowcount
                if not spent:
                    self._revoke_grant(connection, record.grant_id, now)
                    return False
            connection.execute(
                oauth_refresh_tokens.insert().values(
                    token_hash=hash_secret(token),
                    grant_id=record.grant_id,
                    client_id=record.client_id,
                    user_did=record.user_did,
                    wiki_slug=record.wiki_slug,
                    scope=record.scope,
                    resource=record.resource,
                    created_at=now,
                    expires_at=now + ttl,
                    rotated_from=record.token_hash or None,
                )
            )
        return True

    def live_refresh_token(self, token: str) -> RefreshToken | None:
        """The live refresh token `token`, left live; None for an unknown or expired one.

        A request presenting it may still be refused (scope, resource, membership): only
        save_refresh_token of its successor spends it. A revoked token presented again means
        it leaked (RFC 9700 §4.14.2): every token of its family is revoked, so neither the
        thief nor the client can go on refreshing.
        """
        if not token or len(token) > 200:
            return None
        token_hash, now = hash_secret(token), _now()
        with self._write() as connection:
            row = connection.execute(
                select(oauth_refresh_tokens).where(oauth_refresh_tokens.c.token_hash == token_hash)
            ).first()
            if row is None:
                return None
            if row.revoked_at is not None:
                self._revoke_grant(connection, row.grant_id, now)
                return None
            if row.expires_at < now:
                return None
        return RefreshToken(
            token_hash,
            row.grant_id,
            row.client_id,
            row.user_did,
            row.wiki_slug,
            row.scope,
            row.resource,
        )

    def refresh_token_grant(self, token: str) -> tuple[str, str] | None:
        """The (grant id, client id) refresh token `token` belongs to, live, spent or revoked;
        None for an unknown one (RFC 7009 revocation looks tokens up with this)."""
        if not token or len(token) > 200:
            return None
        with self._read() as connection:
            row = connection.execute(
                select(oauth_refresh_tokens.c.grant_id, oauth_refresh_tokens.c.client_id).where(
                    oauth_refresh_tokens.c.token_hash == hash_secret(token)
                )
            ).first()
        return (row.grant_id, row.client_id) if row else None

    def revoke_oauth_grant(self, grant_id: str, client_id: str) -> bool:
        """Revoke grant `grant_id` of client `client_id` (RFC 7009): its row is deleted and its
        refresh tokens revoked in one transaction, so its access tokens stop at their next use
        (oauth_grant_live). Another client's grant is left alone; True if one was revoked."""
        with self._write() as connection:
            owner = connection.execute(
                select(oauth_grants.c.client_id).where(oauth_grants.c.code_hash == grant_id)
            ).scalar()
            if owner is not None and owner != client_id:
                return False
            self._revoke_grant(connection, grant_id, _now())
        return owner is not None

    def oauth_grant_live(self, grant_id: str, did: str, slug: str) -> bool:
        """Whether `grant_id` is a redeemed, unrevoked, unexpired grant of user `did` in wiki
        `slug`: one primary-key read, made for every OAuth access token presented."""
        if not isinstance(grant_id, str) or not grant_id or len(grant_id) > 200:
            return False
        with self._read() as connection:
            row = connection.execute(
                select(
                    oauth_grants.c.user_did,
                    oauth_grants.c.wiki_slug,
                    oauth_grants.c.expires_at,
                    oauth_grants.c.used_at,
                ).where(oauth_grants.c.code_hash == grant_id)
            ).first()
        return (
            row is not None
            and row.used_at is not None
            and row.expires_at >= _now()
            and row.user_did == did
            and row.wiki_slug == slug
        )

    def _revoke_grant(self, connection: Connection, grant_id: str, now: int) -> None:
        """Delete grant `grant_id` (its access tokens are refused from now on) and revoke its
        refresh tokens, in the caller's transaction."""
        connection.execute(delete(oauth_grants).where(oauth_grants.c.code_hash == grant_id))
        connection.execute(
            update(oauth_refresh_tokens)
            .where(
                oauth_refresh_tokens.c.grant_id == grant_id,
                oauth_refresh_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )


@contextmanager
def _answering() -> Iterator[None]:
    """Turn "the database is not answering" (down, unreachable, locked past the busy timeout)
    into Unavailable (503) for the caller; the driver's reason goes to the log only, as it may
    name hosts and users."""
    try:
        yield
    except (OperationalError, InterfaceError, ProgrammingError) as error:
        # PostgreSQL says "relation does not exist" with a ProgrammingError, SQLite "no such
        # table" with an OperationalError: the schema is missing, not the server.
        missing = isinstance(error, ProgrammingError) or "no such table" in str(error)
        state = (
            "is not ready: the operator must run 'robot init'"
            if missing
            else ("is not answering; try again shortly")
        )
        raise _unavailable(error, state) from None


def _unavailable(error: Exception, state: str) -> Unavailable:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    log.warning("platform database %s: %s", state, reason)
    unavailable = Unavailable(f"the platform database {state}")
    unavailable.reason = reason  # for the operator's own tools (robot), not for HTTP bodies
    return unavailable


def _release(engine, pid: int) -> None:
    engine.dispose(close=os.getpid() == pid)


def _wiki(row) -> Wiki:
    # SQLite hands booleans back as 0/1 to a PreparedRead.
    return Wiki(
        **{**row, "is_public": bool(row["is_public"]), "git_access": bool(row["git_access"])}
    )


def _now() -> int:
    return int(time.time())


def _use_is_due(last_used_at: int | None, now: int) -> bool:
    """A token's last use is recorded at most once per LAST_USED_RESOLUTION seconds."""
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
