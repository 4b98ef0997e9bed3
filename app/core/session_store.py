"""Browser sessions in the platform DB: one row per sign-in, one cookie credential per host.

A browser never holds a session JWT. It holds, on each host it visits, an opaque secret that is
valid on that host only (AUTH_FACTS "Tokens and sessions"): the apex gets one at sign-in, and a
wiki host gets its own by redeeming a short-lived single-use handoff code that the auth service
issued for that host. A cookie copied to another host matches nothing there, and ending the
session ends every host's credential at once. Secrets and codes are stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from app.core import database
from app.core.errors import BadRequest
from app.core.schema import session_credentials
from app.core.schema import session_handoffs
from app.core.schema import sessions
from app.core.schema import users

# A session's last_seen_at is written at most this often (seconds): reads stay reads.
LAST_SEEN_RESOLUTION = 60
HANDOFF_TTL = 60
MAX_USER_AGENT = 300
MAX_HOST = 253
# Ended and expired sessions are kept this long (seconds) for the account's list, then purged.
KEEP_ENDED = 30 * 24 * 3600


@dataclass(frozen=True)
class Session:
    """One sign-in of a user; times in Unix seconds."""

    id: str
    user_did: str
    handle: str
    created_at: int
    expires_at: int
    last_seen_at: int
    user_agent: str

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "did": self.user_did,
            "handle": self.handle,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_seen_at": self.last_seen_at,
            "user_agent": self.user_agent,
        }


_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_did,
    users.c.handle,
    sessions.c.created_at,
    sessions.c.expires_at,
    sessions.c.last_seen_at,
    sessions.c.user_agent,
)
# Every request with a session cookie makes this read: one round trip, compiled once.
_LIVE_CREDENTIAL = (
    select(*_SESSION_COLUMNS)
    .select_from(session_credentials)
    .join(sessions, sessions.c.id == session_credentials.c.session_id)
    .join(users, users.c.did == sessions.c.user_did)
    .where(
        session_credentials.c.secret_hash == bindparam("secret_hash"),
        session_credentials.c.host == bindparam("host"),
        sessions.c.ended_at.is_(None),
        sessions.c.expires_at > bindparam("now"),
    )
)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_host(host: str) -> str:
    host = (host or "").strip().lower()
    if not host or len(host) > MAX_HOST or "/" in host or ":" in host:
        raise BadRequest(f"invalid session host {host!r}")
    return host


class SessionRecords:
    """The session methods of app.core.store.Store (a mixin over its connection helpers)."""

    def _prepare_session_reads(self) -> None:
        self._live_credential = database.PreparedRead(self.engine, _LIVE_CREDENTIAL)

    def create_session(
        self,
        did: str,
        host: str,
        ttl: int,
        user_agent: str = "",
        upstream: dict | None = None,
    ) -> tuple[Session, str]:
        """Start a sign-in of user `did` (who must exist) lasting `ttl` seconds.

        Returns the session and a new cookie secret valid on `host` only (a bare host name,
        no port). `upstream` (the ATProto token set, JSON-serialisable) is kept for logout.
        Raises BadRequest for a bad host or ttl, NotFound for an unknown user.
        """
        host = _check_host(host)
        if ttl <= 0:
            raise BadRequest("a session needs a positive lifetime")
        self.get_user(did)
        now = self._now()
        session_id = "ses_" + secrets.token_hex(12)
        secret = secrets.token_urlsafe(32)
        with self._write() as connection:
            connection.execute(
                sessions.insert().values(
                    id=session_id,
                    user_did=did,
                    created_at=now,
                    expires_at=now + ttl,
                    last_seen_at=now,
                    user_agent=(user_agent or "")[:MAX_USER_AGENT],
                    upstream=None if upstream is None else json.dumps(upstream),
                )
            )
            connection.execute(
                session_credentials.insert().values(
                    secret_hash=_secret_hash(secret),
                    session_id=session_id,
                    host=host,
                    created_at=now,
                )
            )
        return self.get_session(session_id), secret

    def get_session(self, session_id: str) -> Session | None:
        """The session `session_id` whether live or not, or None if there is no such row."""
        rows = self._all(
            select(*_SESSION_COLUMNS)
            .join(users, users.c.did == sessions.c.user_did)
            .where(sessions.c.id == session_id)
        )
        return Session(**rows[0]) if rows else None

    def session_for_secret(self, secret: str | None, host: str) -> Session | None:
        """The live session whose credential for `host` is `secret`.

        None when the secret is unknown, belongs to another host, or its session has ended or
        expired. Records the use at most once per LAST_SEEN_RESOLUTION seconds.
        """
        if not secret or len(secret) > 200:
            return None
        now = self._now()
        row = self._one(
            self._live_credential,
            secret_hash=_secret_hash(secret),
            host=(host or "").lower(),
            now=now,
        )
        if row is None:
            return None
        session = Session(**row)
        if now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
            with self._write() as connection:
                connection.execute(
                    update(sessions).where(sessions.c.id == session.id).values(last_seen_at=now)
                )
        return session

    def create_handoff(self, session_id: str, host: str, ttl: int = HANDOFF_TTL) -> str:
        """A single-use code, valid `ttl` seconds, that `redeem_handoff` turns into a cookie
        secret for live session `session_id` on `host`. Raises BadRequest for a bad host or an
        ended session."""
        host = _check_host(host)
        if not self._is_live(session_id):
            raise BadRequest("that session has ended; sign in again")
        code = secrets.token_urlsafe(32)
        with self._write() as connection:
            connection.execute(
                session_handoffs.insert().values(
                    code_hash=_secret_hash(code),
                    session_id=session_id,
                    host=host,
                    expires_at=self._now() + ttl,
                )
            )
        return code

    def redeem_handoff(self, code: str | None, host: str) -> tuple[Session, str] | None:
        """Consume a handoff code issued for `host`; return its live session and a new cookie
        secret valid on `host`, or None when the code is unknown, used, expired, for another
        host, or its session has ended. A code is deleted by its first redemption attempt."""
        if not code or len(code) > 200:
            return None
        host = (host or "").lower()
        code_hash = _secret_hash(code)
        now = self._now()
        secret = secrets.token_urlsafe(32)
        with self._write() as connection:
            row = (
                connection.execute(
                    select(session_handoffs).where(session_handoffs.c.code_hash == code_hash)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            connection.execute(
                delete(session_handoffs).where(session_handoffs.c.code_hash == code_hash)
            )
            if row["host"] != host or row["expires_at"] <= now:
                return None
            live = connection.execute(
                select(sessions.c.id).where(
                    sessions.c.id == row["session_id"],
                    sessions.c.ended_at.is_(None),
                    sessions.c.expires_at > now,
                )
            ).first()
            if live is None:
                return None
            connection.execute(
                session_credentials.insert().values(
                    secret_hash=_secret_hash(secret),
                    session_id=row["session_id"],
                    host=host,
                    created_at=now,
                )
            )
        return self.get_session(row["session_id"]), secret

    def end_session(self, session_id: str, did: str | None = None) -> bool:
        """End session `session_id` on every host (only if it is `did`'s, when given).

        Returns whether a live session was ended. Its credentials and pending handoff codes are
        deleted; the row stays (ended) until purged.
        """
        condition = [sessions.c.id == session_id, sessions.c.ended_at.is_(None)]
        if did is not None:
            condition.append(sessions.c.user_did == did)
        with self._write() as connection:
            ended = connection.execute(
                update(sessions).where(*condition).values(ended_at=self._now())
            ).rowcount
            if ended:  # never another user's: `did` must own the session to end it
                self._forget_credentials(connection, [session_id])
        return bool(ended)

    def end_sessions_of(self, did: str) -> int:
        """End every live session of user `did`; return how many were live."""
        with self._write() as connection:
            ids = [
                row[0]
                for row in connection.execute(
                    select(sessions.c.id).where(
                        sessions.c.user_did == did, sessions.c.ended_at.is_(None)
                    )
                )
            ]
            if ids:
                connection.execute(
                    update(sessions).where(sessions.c.id.in_(ids)).values(ended_at=self._now())
                )
                self._forget_credentials(connection, ids)
        return len(ids)

    def _end_sessions_in(self, connection, did: str) -> None:
        """Delete every session of user `did` with its credentials and handoff codes, in the
        caller's transaction (their account is going)."""
        ids = list(
            connection.execute(select(sessions.c.id).where(sessions.c.user_did == did)).scalars()
        )
        if ids:
            self._forget_credentials(connection, ids)
            connection.execute(delete(sessions).where(sessions.c.id.in_(ids)))

    def list_sessions(self, did: str) -> list[Session]:
        """User `did`'s live sessions, newest first."""
        rows = self._all(
            select(*_SESSION_COLUMNS)
            .join(users, users.c.did == sessions.c.user_did)
            .where(
                sessions.c.user_did == did,
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > self._now(),
            )
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
        )
        return [Session(**row) for row in rows]

    def session_upstream(self, session_id: str) -> dict | None:
        """The upstream (ATProto) token set stored with a session, or None."""
        rows = self._all(select(sessions.c.upstream).where(sessions.c.id == session_id))
        if not rows or rows[0]["upstream"] is None:
            return None
        return json.loads(rows[0]["upstream"])

    def purge_sessions(self, now: int | None = None) -> int:
        """Delete sessions that ended or expired more than KEEP_ENDED seconds before `now`,
        and expired handoff codes; return how many sessions went."""
        now = self._now() if now is None else now
        cutoff = now - KEEP_ENDED
        with self._write() as connection:
            connection.execute(delete(session_handoffs).where(session_handoffs.c.expires_at <= now))
            return connection.execute(
                delete(sessions).where(
                    or_(
                        and_(sessions.c.ended_at.is_not(None), sessions.c.ended_at < cutoff),
                        sessions.c.expires_at < cutoff,
                    )
                )
            ).rowcount

    def _is_live(self, session_id: str) -> bool:
        rows = self._all(
            select(sessions.c.id).where(
                sessions.c.id == session_id,
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > self._now(),
            )
        )
        return bool(rows)

    @staticmethod
    def _forget_credentials(connection, session_ids: list[str]) -> None:
        # Deleting (not just marking) means a stolen secret is worthless even to a bug that
        # forgot to check ended_at.
        connection.execute(
            delete(session_credentials).where(session_credentials.c.session_id.in_(session_ids))
        )
        connection.execute(
            delete(session_handoffs).where(session_handoffs.c.session_id.in_(session_ids))
        )
