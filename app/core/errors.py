"""Domain errors, each carrying the HTTP status it maps to, and the one JSON error shape."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad configuration: the process stops at startup with this one line."""


class RobotError(Exception):
    """Base of every error a caller can cause; `status` is its HTTP meaning, `retry_after` the
    seconds to send in Retry-After (None: no header); `extra` goes into the JSON body."""

    status = 400
    retry_after: int | None = None

    def __init__(self, message: str, *, retry_after: int | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra
        if retry_after is not None:
            self.retry_after = retry_after


class BadRequest(RobotError):
    status = 400


class Unauthorized(RobotError):
    status = 401


class Forbidden(RobotError):
    status = 403


class NotFound(RobotError):
    status = 404


class MethodNotAllowed(RobotError):
    status = 405


class RequestTimeout(RobotError):
    """The request (its body) did not arrive in the time the server waits for it (RFC 9110
    15.5.9)."""

    status = 408


class Conflict(RobotError):
    status = 409


class PayloadTooLarge(RobotError):
    status = 413


class UriTooLong(RobotError):
    """The request's path has more parts than any page's URL (RFC 9110 15.5.15)."""

    status = 414


class TooManyRequests(RobotError):
    """The caller is asking more than its share: try again after `retry_after` seconds (RFC 6585
    section 4; the answer's Retry-After header)."""

    status = 429
    retry_after = 1


class InternalError(RobotError):
    """A fault of ours, answered without its details (they go to the log)."""

    status = 500


class UpstreamError(RobotError):
    status = 502


class InsufficientStorage(RobotError):
    """A write that would add to a wiki already holding as much as a wiki may (RFC 4918)."""

    status = 507


class Unavailable(RobotError):
    """A service robot depends on (the platform database) is not answering, or the host is
    too busy: try again later (after `retry_after` seconds, if given)."""

    status = 503


def error_body(error: RobotError) -> dict:
    """Return the JSON body every service uses for an error."""
    return {"ok": False, "error": error.message, "status": error.status, **error.extra}


def error_headers(error: RobotError) -> dict[str, str]:
    """Return the headers every service sends with `error`: Retry-After (seconds, RFC 9110
    10.2.3) when it names one. (WWW-Authenticate for a 401 depends on the service.)"""
    return {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
