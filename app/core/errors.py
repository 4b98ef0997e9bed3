"""Domain errors, each carrying the HTTP status it maps to, and the one JSON error shape."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad configuration: the process stops at startup with this one line."""


class RobotError(Exception):
    """Base of every error a caller can cause; `status` is its HTTP meaning."""

    status = 400

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(RobotError):
    status = 400


class Unauthorized(RobotError):
    status = 401


class Forbidden(RobotError):
    status = 403


class NotFound(RobotError):
    status = 404


class Conflict(RobotError):
    status = 409


class PayloadTooLarge(RobotError):
    status = 413


class UpstreamError(RobotError):
    status = 502


class Unavailable(RobotError):
    """A service robot depends on (the platform database) is not answering: try again later."""

    status = 503


def error_body(error: RobotError) -> dict:
    """Return the JSON body every service uses for an error."""
    return {"ok": False, "error": error.message, "status": error.status, **error.extra}
