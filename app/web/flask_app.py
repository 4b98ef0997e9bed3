"""Flask helpers every robot service shares: the JSON error shape, health answers, JSON bodies."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path

from flask import Flask
from flask import current_app
from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from app.core.csp import page_policy
from app.core.csp import security_headers
from app.core.errors import BadRequest
from app.core.errors import ConfigError
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.core.errors import error_body
from app.core.errors import error_headers
from app.core.platform import Platform
from app.core.settings import Settings
from app.core.settings import gunicorn_workers
from app.web.bodies import ReceivedBodies
from app.web.bodies import SlowPlaces

# Management bodies are a few fields; anything bigger is a mistake or an attack.
MAX_BODY_BYTES = 64 * 1024
# gunicorn's exit status for "worker failed to boot": the master stops instead of respawning.
BOOT_ERROR_STATUS = 3


def _json_error(status: int, message: str, headers=None):
    body = {"ok": False, "error": message, "status": status}
    response = jsonify(body)
    response.status_code = status
    for name, value in headers or ():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _robot_error(error: RobotError):
    response = jsonify(error_body(error))
    response.status_code = error.status
    response.headers.update(error_headers(error))
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def http_error_response(error: HTTPException):
    """Answer a werkzeug HTTPException (404, 405, 413 ...) in the one JSON error shape."""
    if error.code is None:
        return error
    message = error.description or error.name
    if error.code == 404:
        message = f"nothing at {request.path}"
    elif error.code == 405:
        message = f"{request.method} is not allowed on {request.path}"
    return _json_error(error.code, message, error.get_headers())


def _unexpected_error(error: Exception):
    if isinstance(error, HTTPException):
        return http_error_response(error)
    current_app.logger.error(
        "unhandled error on %s %s", request.method, request.path, exc_info=error
    )
    return _json_error(500, "internal error; the operator can find details in the log")


def register_error_handlers(app) -> None:
    """Answer every error of `app` (a Flask app or blueprint) in the one JSON error shape.

    RobotError -> its status and error_body; werkzeug HTTPException (404, 405, 413 ...) -> the
    same shape; anything else -> logged with its traceback, 500 JSON without it.
    """
    app.register_error_handler(RobotError, _robot_error)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, _unexpected_error)


def health_response(checks: Mapping[str, Callable[[], str | None]]):
    """Run named checks (None = fine, a string or an exception = the problem); answer /healthz.

    200 `{"ok": true, "checks": {...}}` when all pass, else 503 in the error shape with one line
    per failed check in `error`.
    """
    results = {}
    for name, check in checks.items():
        try:
            problem = check()
        except Exception:  # a health check must report, never crash, nor show internals
            current_app.logger.exception("health check %s failed", name)
            problem = "failed; the operator's log says why"
        results[name] = problem or "ok"
    failed = [f"{name}: {result}" for name, result in results.items() if result != "ok"]
    if not failed:
        response = jsonify({"ok": True, "checks": results})
    else:
        body = {"ok": False, "error": "\n".join(failed), "status": 503, "checks": results}
        response = jsonify(body)
        response.status_code = 503
    response.headers["Cache-Control"] = "no-store"
    return response


def capped_body(limit: int | None, too_large: RobotError | None = None) -> bytes:
    """Return the whole request body, or raise `too_large` (413) if it holds more than `limit`.

    Werkzeug's max_content_length refuses a Content-Length over it, but a body without one
    (Transfer-Encoding: chunked, which gunicorn ends itself) it only stops reading at the
    limit, without a word: read whole, such a body came back cut to exactly the limit and was
    stored as if complete. So the stream is opened one byte past the limit and a body that
    fills that byte too is refused, whatever its framing. (A body already read, by a view
    that looked at it first, is taken as read and held to the same limit.)
    """
    if limit is None:
        return request.get_data(cache=True)
    if too_large is None:
        too_large = PayloadTooLarge(f"the body may hold at most {limit} bytes", max_bytes=limit)
    if (request.content_length or 0) > limit:  # Content-Length says so: nothing is read
        raise too_large
    if "stream" not in request.__dict__:  # not opened yet: it takes the limit set now
        request.max_content_length = limit + 1
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(data) > limit:
        raise too_large
    return data


def json_body() -> dict:
    """Return the request's JSON object, or raise BadRequest saying what is wrong with it.

    The body is held to `request.max_content_length` (the app's, or the route's own), and one
    past it is refused with 413 rather than cut: a cut body could still parse (trailing
    spaces) and be written.
    """
    if request.mimetype != "application/json":
        raise BadRequest("send a JSON object with 'Content-Type: application/json'")
    raw = capped_body(request.max_content_length)
    if not raw.strip():
        raise BadRequest("the body is empty; send a JSON object")
    try:
        # RFC 8259 8.1: JSON between systems is UTF-8. json.loads also reads UTF-16 and -32,
        # where the check for surrogate escapes below would find none.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8; send JSON encoded in UTF-8") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(data):
        raise BadRequest(
            "the body holds a lone surrogate (a \\ud800-\\udfff escape without its pair): "
            "it is not Unicode text"
        )
    return data


# JSON can only spell a surrogate as an escape (RFC 8259 7; raw bytes must be UTF-8, which
# has none): a body without one needs no further look.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(data) -> bool:
    """Whether any string in `data` (parsed JSON), key or value, holds a surrogate that is not
    half of a pair: no UTF-8 can carry it, and git failed part-way writing one as a commit
    message."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def load_or_exit(service: str, loader: Callable, *args):
    """Return `loader(*args)`; on bad configuration print one line and stop the process."""
    try:
        return loader(*args)
    except ConfigError as error:
        print(f"{service}: {error}", file=sys.stderr)
        raise SystemExit(BOOT_ERROR_STATUS) from None


def load_platform(settings: Settings | None, service: str) -> Platform:
    """Open the platform (settings, store, signing key) for `service`, or stop the process."""
    return load_or_exit(service, Platform.load, settings)


# No form-action: sign-in and OAuth consent forms redirect to wiki hosts and client apps.
_SECURITY_HEADERS = {**security_headers(page_policy()), "X-Frame-Options": "DENY"}


def _security_headers(response):
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def make_flask_app(import_name: str, platform: Platform, static_dir: Path | None = None) -> Flask:
    """Create a Flask app that never redirects, caps bodies, and answers errors as JSON."""
    app = Flask(import_name, static_folder=None)
    # Caddy's on-demand TLS ask and API clients must never see a redirect: no slash or
    # double-slash normalisation. Set before any rule is added (rules copy it when added).
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    if static_dir is not None:
        app.static_folder = str(static_dir)
        app.add_url_rule("/static/<path:filename>", "static", app.send_static_file)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Bodies arrive whole before Flask reads them; slow ones may hold all workers but one.
    places = platform.settings.run_dir / f"bodies-{import_name.rsplit('.', 1)[-1]}"
    app.wsgi_app = ReceivedBodies(
        app.wsgi_app, MAX_BODY_BYTES, SlowPlaces(places, gunicorn_workers() - 1)
    )
    app.json.sort_keys = False
    app.extensions["robot"] = platform
    register_error_handlers(app)
    app.after_request(_security_headers)
    return app


def current_platform() -> Platform:
    """Return the Platform of the app handling this request."""
    return current_app.extensions["robot"]
