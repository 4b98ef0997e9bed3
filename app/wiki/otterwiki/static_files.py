"""Otterwiki's static view serves the platform's files as the gateway does (app.wiki.static).

The platform adds, changes and withholds a few files under /static/ (`generated_static_files`):
MathJax's component with its safe configuration, the platform's handlers.js, and MathJax's
other whole components, never served. The gateway answers /static/ itself; a request that
reaches Otterwiki's own `static` view (the app run directly, or a spelling the gateway passes
on) is answered by the same WSGI app, so no route serves a package file the platform changed
or withheld (before, the view knew only the MathJax component).
"""

from __future__ import annotations

from types import ModuleType

from app.core.errors import NotFound
from app.wiki.otterwiki.csp import HANDLERS_JS
from app.wiki.otterwiki.csp import HANDLERS_URL
from app.wiki.otterwiki.mathjax import COMPONENT as _SAFE_MATHJAX
from app.wiki.otterwiki.mathjax import safe_component
from app.wiki.otterwiki.mathjax import unconfigured_components
from app.wiki.static import STATIC_PREFIX
from app.wiki.static import static_files


def generated_static_files(static_folder: str) -> dict[str, bytes | None]:
    """The files under /static/ that the platform adds, changes or withholds: {path under
    /static/: bytes to serve, or None for 404}. `static_folder` is Otterwiki's
    `app.static_folder`.

    Raises OSError when a package file it changes is missing (a broken Otterwiki install)."""
    withheld: dict[str, bytes | None] = dict.fromkeys(unconfigured_components(static_folder))
    return {
        **withheld,
        _SAFE_MATHJAX: safe_component(static_folder),
        HANDLERS_URL.removeprefix(STATIC_PREFIX + "/"): HANDLERS_JS.read_bytes(),
    }


def install_static_files(server: ModuleType) -> None:
    """Answer Otterwiki's `static` view (of `server.app`, the booted `otterwiki.server`) with
    app.wiki.static's WSGI app over its static folder and `generated_static_files`, run
    inside the view; the app's after-request hooks add the security headers. A file it does
    not have is NotFound. Installing again changes nothing."""
    app = server.app
    if getattr(app.view_functions["static"], "robot_static_files", False):
        return
    folder = app.static_folder

    def missing(environ, _start_response):
        raise NotFound(f"there is no {environ.get('PATH_INFO')} on this wiki")

    files = static_files(
        folder, missing, security_headers=False, generated=generated_static_files(folder)
    )

    def static(filename):
        from flask import request

        # Run here, inside the view, so a NotFound is answered by the app's error handlers.
        return app.response_class.from_app(files, request.environ, buffered=True)

    static.robot_static_files = True
    app.view_functions["static"] = static
