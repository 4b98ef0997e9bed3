"""Start supervisord for one instance and talk to it: the plumbing of `robot run` and `ctl`."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from app.core.errors import ConfigError
from app.core.settings import Settings

PROGRAMS = ("otterwiki", "mcp", "api", "auth")
# Linux sun_path is 108 bytes including the final NUL.
UNIX_PATH_MAX = 108


def conf_path(settings: Settings) -> Path:
    """The supervisord.conf of this instance's code."""
    return settings.app_dir / "supervisor" / "supervisord.conf"


def supervisor_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment supervisord and supervisorctl need: `base` plus the conf's %(ENV_...)s."""
    env = dict(os.environ if base is None else base)
    env.update(
        ROBOT_APP_DIR=str(settings.app_dir),
        ROBOT_VENV=str(settings.venv_dir),
        ROBOT_DATA_DIR=str(settings.data_dir),
        ROBOT_RUN_DIR=str(settings.run_dir),
        ROBOT_LOG_DIR=str(settings.log_dir),
        ROBOT_BIND_HOST=settings.bind_host,
        WIKI_PORT=str(settings.wiki_port),
        MCP_PORT=str(settings.mcp_port),
        API_PORT=str(settings.api_port),
        AUTH_PORT=str(settings.auth_port),
        ROBOT_LOG_SYSLOG="true" if settings.log_syslog else "false",
        PLATFORM_DOMAIN=settings.platform_domain,
    )
    return env


def service_ports(settings: Settings) -> dict[str, int]:
    """Each program's port."""
    return {
        "otterwiki": settings.wiki_port,
        "mcp": settings.mcp_port,
        "api": settings.api_port,
        "auth": settings.auth_port,
    }


def local_origin(settings: Settings, program: str) -> str:
    """Where a program answers on this host (a wildcard bind is reached on loopback)."""
    host = "127.0.0.1" if settings.bind_host in ("0.0.0.0", "", "::") else settings.bind_host
    return f"http://{host}:{service_ports(settings)[program]}"


def _binary(settings: Settings, name: str) -> str:
    path = settings.venv_dir / "bin" / name
    if not os.access(path, os.X_OK):
        raise ConfigError(f"{path} not found: run `make venv` (or set ROBOT_VENV)")
    return str(path)


def prepare_dirs(settings: Settings) -> None:
    """Create the run and log dirs, and each program's HOME inside the run dir."""
    settings.log_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    for program in PROGRAMS:
        (settings.run_dir / program).mkdir(exist_ok=True, mode=0o700)


def running_pid(settings: Settings) -> int | None:
    """The pid of this instance's supervisord if it is alive, else None."""
    try:
        pid = int((settings.run_dir / "supervisord.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def supervisord_argv(settings: Settings) -> list[str]:
    return [
        _binary(settings, "supervisord"),
        "--nodaemon",
        "--configuration",
        str(conf_path(settings)),
    ]


def supervisorctl_argv(settings: Settings, args: tuple[str, ...]) -> list[str]:
    return [_binary(settings, "supervisorctl"), "--configuration", str(conf_path(settings)), *args]


def banner(settings: Settings) -> str:
    """The URLs a newcomer needs, printed by `robot run`."""
    origin = {program: local_origin(settings, program) for program in PROGRAMS}
    return "\n".join(
        [
            f"robot: data in {settings.data_dir}, logs in {settings.log_dir}",
            f"  otterwiki  {origin['otterwiki']}  wikis at {settings.wiki_url('{slug}')}",
            f"  mcp        {origin['mcp']}  per wiki at {settings.mcp_url('{slug}')}",
            f"  api        {origin['api']}  {settings.api_origin}/api/wikis",
            f"  auth       {origin['auth']}  {settings.auth_origin}/auth/login",
            f"  example    {settings.wiki_url('alpha')}  (after `robot wiki create alpha ...`)",
            "Ctrl-C stops everything.",
        ]
    )


PORT_VARIABLES = {
    "otterwiki": "WIKI_PORT",
    "mcp": "MCP_PORT",
    "api": "API_PORT",
    "auth": "AUTH_PORT",
}


def busy_ports(settings: Settings) -> list[tuple[str, int]]:
    """The (program, port) pairs something else already listens on (robot run would crash-loop);
    empty when every port is free."""
    host = "0.0.0.0" if settings.bind_host in ("", "0.0.0.0") else settings.bind_host
    busy = []
    for program, port in service_ports(settings).items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append((program, port))
    return busy


def preflight(settings: Settings) -> None:
    """Check that supervisord can start this instance; raise ConfigError saying what to do if not.

    Checked: the supervisord.conf exists, no supervisord already runs for this run dir, the
    socket path fits, the venv has supervisord, and every service port is free on
    ROBOT_BIND_HOST.
    """
    if not conf_path(settings).is_file():
        raise ConfigError(f"{conf_path(settings)} not found (ROBOT_APP_DIR={settings.app_dir})")
    pid = running_pid(settings)
    if pid is not None:
        raise ConfigError(
            f"robot already runs for {settings.run_dir} (supervisord pid {pid}); "
            "stop it with `robot ctl shutdown` or use another ROBOT_DATA_DIR"
        )
    socket_path = settings.run_dir / "supervisor.sock"
    if len(os.fsencode(socket_path)) >= UNIX_PATH_MAX:
        raise ConfigError(f"{socket_path} is too long for a unix socket: set a short ROBOT_RUN_DIR")
    _binary(settings, "supervisord")
    busy = busy_ports(settings)
    if busy:
        named = "; ".join(
            f"{port} ({program}, {PORT_VARIABLES[program]})" for program, port in busy
        )
        raise ConfigError(
            f"port already in use on {settings.bind_host}: {named}; stop what listens there "
            f"or pick another port, e.g. `{PORT_VARIABLES[busy[0][0]]}=9000 make run`"
        )


def exec_supervisord(settings: Settings) -> None:
    """Replace this process with supervisord in the foreground; signals then reach it directly.

    Raises ConfigError (see preflight) when it cannot start.
    """
    preflight(settings)
    prepare_dirs(settings)
    argv = supervisord_argv(settings)
    os.execve(argv[0], argv, supervisor_env(settings))


def exec_supervisorctl(settings: Settings, args: tuple[str, ...]) -> None:
    """Replace this process with supervisorctl for this instance; its exit status is ours."""
    argv = supervisorctl_argv(settings, args)
    os.execve(argv[0], argv, supervisor_env(settings))


def check_health(settings: Settings, timeout: float = 5.0) -> dict[str, str | None]:
    """GET each program's /healthz; map program -> None when it answered 200, else the problem."""
    import httpx2

    problems: dict[str, str | None] = {}
    with httpx2.Client(timeout=timeout) as client:
        for program in PROGRAMS:
            url = local_origin(settings, program) + "/healthz"
            try:
                status = client.get(url).status_code
            except httpx2.HTTPError as err:
                problems[program] = f"{url}: {type(err).__name__}: {err}"
                continue
            problems[program] = None if status == 200 else f"{url}: HTTP {status}"
    return problems
