"""A platform instance with the wiki service's app booted in this process, for wiki tests."""

from types import SimpleNamespace

from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings


def in_process(data, users=(), **env) -> SimpleNamespace:
    """Initialise an instance in folder `data` (more settings in `env`), add `users` ((did,
    handle) pairs) and boot the wiki service: a namespace of `app`, `settings`, `platform`.
    The caller closes `app.tenancy` and `platform.store`."""
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(data), "MULTI_TENANT": "true", **env})
    init_instance(settings)
    platform = Platform.load(settings)
    for user in users:
        platform.store.upsert_user(*user)
    from app.wsgi import create_app

    return SimpleNamespace(app=create_app(settings), settings=settings, platform=platform)
