"""Import `otterwiki.server` once per process, against an internal bootstrap repo.

Importing it builds Otterwiki's app, db and storage from a settings file and the environment; we
give it a throwaway repo and an in-memory database, then point it at a real wiki per request.
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from app.core.errors import ConfigError
from app.core.git_env import apply_to_process
from app.core.settings import Settings
from app.core.signing import derive_secret

BOOT_DIR = "otterwiki-boot"


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
    """Import `otterwiki.server` against an internal bootstrap repo, once per process.

    Returns the `otterwiki.server` module (its `app`, `db`, `storage`, `csrf` ...). Raises
    `ConfigError` if Otterwiki was already imported with another auth method than PROXY_HEADER.
    """
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

    # Otterwiki's git runs (GitPython) inherit this process's environment.
    apply_to_process()
    if not isinstance(otterwiki.auth.auth_manager, otterwiki.auth.ProxyHeaderAuth):
        raise ConfigError("otterwiki was already imported without AUTH_METHOD=PROXY_HEADER")
    return server
