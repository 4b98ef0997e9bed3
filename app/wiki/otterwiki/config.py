"""The config values no wiki admin may change, and keeping them on top of what a wiki saved."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from app.core.settings import Settings
from app.wiki.otterwiki.page_preferences import forget_unusable_preferences

# Values no wiki admin may change: where the data lives, who authenticates, and every feature that
# would act outside the request or on other hosts (remote push/pull, git over http, mail).
LOCKED_OFF = {
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

# What a multipart form adds around its files: boundaries, part headers, a commit message.
FORM_ENVELOPE_BYTES = 64 * 1024


def locked_config(settings: Settings, repo_path: str, db_path: str, secret_key: str) -> dict:
    """Return the config keys a wiki's own preferences never override: `LOCKED_OFF` and its data."""
    return {
        **LOCKED_OFF,
        "REPOSITORY": repo_path,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}",
        "SECRET_KEY": secret_key,
        "SESSION_COOKIE_SECURE": settings.cookie_secure,
        # Otterwiki's upload forms take one attachment of the platform's size, with room for
        # the form around it; the page API sets its own limit per request.
        "MAX_CONTENT_LENGTH": settings.max_attachment_bytes + FORM_ENVELOPE_BYTES,
    }


def keep_locked_on_reload(server: ModuleType, locked: Callable[[], dict | None]) -> None:
    """Make Otterwiki's `update_app_config` apply `locked()` after it reloads the preferences,
    and read the page or path preferences that name no valid page as unset
    (page_preferences.forget_unusable_preferences).

    `locked()` returns the active wiki's locked keys, or None when no wiki is active. Installing
    twice wraps the original function again, never the wrapper.
    """
    # Otterwiki's preference forms reload the config from the DB mid-request; keep the
    # platform's locked values on top of whatever a wiki admin just saved.
    import otterwiki.preferences

    original = getattr(server.update_app_config, "__wrapped__", None)
    original = original or server.update_app_config

    def update_app_config():
        original()
        # A bad home or 404 page stored before the forms were checked must not 500 every view.
        forget_unusable_preferences(server.app.config)
        values = locked()
        if values is not None:
            server.app.config.update(values)

    update_app_config.__wrapped__ = original
    server.update_app_config = update_app_config
    otterwiki.preferences.update_app_config = update_app_config
