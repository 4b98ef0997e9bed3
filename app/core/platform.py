"""The objects every service shares: settings, the platform database and the signing key."""

from __future__ import annotations

from dataclasses import dataclass

from app.core import detached
from app.core import usage
from app.core.atproto_identity import Network
from app.core.atproto_identity import network_for
from app.core.database import describe
from app.core.settings import Settings
from app.core.signing import SigningKey
from app.core.store import Store


@dataclass(frozen=True)
class Platform:
    """What a service runs on; `network` reaches ATProto (None: the real one, made on use)."""

    settings: Settings
    store: Store
    key: SigningKey
    network: Network | None = None

    def atproto_network(self) -> Network:
        """Return the network to resolve handles and DIDs on (tests pass a fake one)."""
        return self.network or network_for(self.settings)

    @classmethod
    def load(cls, settings: Settings | None = None) -> Platform:
        """Open the platform for a service; raise ConfigError when `robot init` has not run."""
        settings = settings or Settings.from_env()
        detached.use_slots_in(settings.run_dir / "detached")
        return cls(
            settings, Store(settings.database_url), SigningKey.load(settings.signing_key_path)
        )


def _make_folders(settings: Settings) -> list[str]:
    made = []
    for folder in (settings.data_dir, settings.wiki_base, settings.run_dir, settings.log_dir):
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o750)
            made.append(f"created {folder}")
    return made


def init_instance(settings: Settings) -> list[str]:
    """Create what an instance needs (dirs, migrated DB, keys); idempotent. Return what was done."""
    from app.core.signing import ensure_secret
    from app.core.signing import ensure_signing_key

    done = []
    if settings.database_is_sqlite:  # robot.db lives in the data dir
        done += _make_folders(settings)
    # A PostgreSQL server that cannot be reached or used stops init before anything is made.
    store = Store(settings.database_url)
    try:
        before = store.schema_version()
        after = store.migrate()
        measured = usage.record_unmeasured(settings, store)
    finally:
        store.close()
    if after != before:
        done.append(f"migrated {describe(settings.database_url)} to schema {after}")
    if measured:
        done.append(f"measured the usage of {len(measured)} wiki(s): {', '.join(measured)}")
    done += _make_folders(settings)
    if ensure_signing_key(settings.signing_key_path):
        done.append(f"created signing key {settings.signing_key_path}")
    if ensure_secret(settings.secret_key_path):
        done.append(f"created secret {settings.secret_key_path}")
    if ensure_signing_key(settings.client_key_path):
        done.append(f"created ATProto client key {settings.client_key_path}")
    return done
