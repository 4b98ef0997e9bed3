"""When PostgreSQL drops the platform's connections (a restart, a failover), every service goes
on serving reads: each read that finds its pooled connection dead runs again on a fresh one."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

pytestmark = pytest.mark.stack

OWNER = ("did:plc:outage", "outage.test")
SLUG = "outage"
# A few requests per service reach every worker (four gunicorn workers, one uvicorn).
ATTEMPTS = 12


def drop_every_connection(url: str) -> int:
    """Terminate every session of the stack's database but our own; return how many."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def test_services_answer_503_then_recover_when_postgresql_drops_them(stack):
    if stack.settings.database_is_sqlite:
        pytest.skip("SQLite has no server that could drop connections")
    stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1])
    stack.robot("wiki", "create", SLUG, "--owner", OWNER[0])
    secret = stack.robot("token", "create", SLUG, "--user", OWNER[0], "--role", "viewer")
    bearer = {"Authorization": f"Bearer {secret.stdout.strip().splitlines()[-1]}"}
    session = stack.robot("session", OWNER[0]).stdout.strip()
    requests = {
        "otterwiki": (f"{SLUG}.localhost", "/api/v1/pages/Home", bearer),
        "mcp": (f"{SLUG}.localhost", "/.well-known/oauth-protected-resource/mcp", {}),
        "api": (None, "/api/wikis", {"Authorization": f"Bearer {session}"}),
        "auth": (None, "/healthz", {}),
    }
    clients = {name: stack.client(name, host=host) for name, (host, _, _) in requests.items()}
    for name, (_, path, headers) in requests.items():
        assert clients[name].get(path, headers=headers).status_code == 200, name
    assert drop_every_connection(stack.settings.database_url) > 0
    for name, (_, path, headers) in requests.items():
        statuses = [clients[name].get(path, headers=headers).status_code for _ in range(ATTEMPTS)]
        assert statuses == [200] * ATTEMPTS, (name, statuses)
    assert stack.unhealthy() == []
