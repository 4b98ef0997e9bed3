"""gunicorn settings shared by the otterwiki, api and auth programs (supervisor/programs.conf)."""

import os

from app.core.settings import gunicorn_workers
from app.web import server_errors

# Each program sets its own address in its supervisor environment. The wiki service also listens
# on a unix socket in the run dir: the MCP service's calls to the page API skip TCP that way.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
if os.environ.get("GUNICORN_UNIX_BIND"):
    bind.append("unix:" + os.environ["GUNICORN_UNIX_BIND"])

# Sync workers: the tenancy layer points the one Otterwiki app at one wiki per request, so each
# worker process must serve one request at a time. Four workers at most keep memory bounded.
worker_class = "sync"
workers = gunicorn_workers()

# A worker silent this long is killed (a stuck request); long git transfers check in meanwhile
# (app/web/heartbeat.py). ROBOT_WORKER_TIMEOUT (seconds) is there for tests of just that.
timeout = int(os.environ.get("ROBOT_WORKER_TIMEOUT") or 30)
# Below supervisor's stopwaitsecs (15 s) so TERM drains in-flight requests before any KILL.
graceful_timeout = 10

# What gunicorn refuses itself (a request line past its limit ...) carries the CSP too.
server_errors.install()

accesslog = "-"
errorlog = "-"
# One-time codes (session handoff, OAuth) in URLs are redacted from the access log.
logger_class = "app.web.access_log.RedactingLogger"


def post_fork(server, worker):
    """Give the app this worker's check-in call, for transfers that outlast `timeout`."""
    from app.web import heartbeat

    # cfg.timeout: the arbiter's (a sync worker's own `timeout` is half of it, its poll).
    heartbeat.install(worker.notify, worker.cfg.timeout)


def worker_abort(worker):
    """The arbiter aborts a worker past `timeout` (SIGABRT, then SIGKILL): kill what it started
    first. A `git blame` its stuck view waited for ran on for a minute, orphaned (review 41)."""
    from app.web import heartbeat

    heartbeat.kill_children()


def post_request(worker, req, environ, resp):
    """Close the connection after a short linger (app.web.heartbeat.close_connection), once
    the response went out: an answer not sent yet is gunicorn's to send (its error page)."""
    from app.web import heartbeat

    if resp is not None and getattr(resp, "headers_sent", False):
        heartbeat.close_connection(environ.get("gunicorn.socket"))
