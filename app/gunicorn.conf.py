"""gunicorn settings shared by the otterwiki, api and auth programs (supervisor/programs.conf)."""

import multiprocessing
import os

# Each program sets its own address in its supervisor environment.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: the tenancy layer points the one Otterwiki app at one wiki per request, so each
# worker process must serve one request at a time. Four workers at most keep memory bounded.
worker_class = "sync"
workers = min(2 * multiprocessing.cpu_count() + 1, 4)

timeout = 30
# Below supervisor's stopwaitsecs (15 s) so TERM drains in-flight requests before any KILL.
graceful_timeout = 10

accesslog = "-"
errorlog = "-"
