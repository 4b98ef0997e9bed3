import os
import re
import runpy
import signal
import time
from pathlib import Path

import httpx2
import pytest
from supervisor.options import ServerOptions

from app.core.settings import Settings
from app.ops.launcher import prepare_dirs
from app.ops.launcher import supervisor_env
from tests.conftest import STACK_PROGRAMS
from tests.conftest import descendants
from tests.conftest import pid_alive

CONF = Path(__file__).resolve().parents[2] / "supervisor" / "supervisord.conf"
GUNICORN_CONF = CONF.parent.parent / "app" / "gunicorn.conf.py"


def _parse(tmp_path, monkeypatch, **env) -> ServerOptions:
    """Parse the real supervisor files the way supervisord does, with the launcher's env."""
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path), **env})
    prepare_dirs(settings)
    for name, value in supervisor_env(settings, {}).items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.realize(args=["-c", str(CONF)])
    return options


def _programs(options: ServerOptions) -> dict:
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


def _wait_for(predicate, timeout: float) -> float:
    """Poll `predicate` until true; return the seconds it took, or fail."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true after {timeout} s: {predicate.__doc__ or predicate}")
        time.sleep(0.2)
    return time.monotonic() - start


def test_four_programs_without_group(tmp_path, monkeypatch):
    options = _parse(tmp_path, monkeypatch)
    assert sorted(_programs(options)) == sorted(STACK_PROGRAMS)
    assert [g.name for g in options.process_group_configs] == sorted(STACK_PROGRAMS)


@pytest.mark.parametrize("value", ["true", "false"])
def test_syslog_switch_reaches_every_program(tmp_path, monkeypatch, value):
    options = _parse(tmp_path, monkeypatch, ROBOT_LOG_SYSLOG=value)
    assert {p.stdout_syslog for p in _programs(options).values()} == {value == "true"}
    assert all(str(p.stdout_logfile).startswith(str(tmp_path)) for p in _programs(options).values())


def test_stop_timeouts_are_ordered(tmp_path, monkeypatch):
    programs = _programs(_parse(tmp_path, monkeypatch))
    graceful = runpy.run_path(str(GUNICORN_CONF))["graceful_timeout"]
    uvicorn = int(re.search(r"--timeout-graceful-shutdown (\d+)", programs["mcp"].command)[1])
    assert uvicorn < programs["mcp"].stopwaitsecs
    for name in ("otterwiki", "api", "auth"):
        assert graceful < programs[name].stopwaitsecs
    assert all(p.stopsignal == signal.SIGTERM and p.stopasgroup for p in programs.values())


def test_each_gunicorn_has_its_own_control_socket_and_home(tmp_path, monkeypatch):
    programs = _programs(_parse(tmp_path, monkeypatch))
    sockets = {
        re.search(r"--control-socket (\S+)", programs[n].command)[1]
        for n in ("otterwiki", "api", "auth")
    }
    homes = {p.environment["HOME"] for p in programs.values()}
    assert len(sockets) == 3 and len(homes) == 4
    assert all(path.startswith(str(tmp_path / "run")) for path in sockets | homes)


@pytest.mark.stack
def test_status_shows_four_running(stack):
    result = stack.robot("ctl", "status")
    assert result.returncode == 0
    assert stack.states() == dict.fromkeys(STACK_PROGRAMS, "RUNNING")


@pytest.mark.stack
def test_check_passes(stack):
    result = stack.robot("check")
    assert result.returncode == 0 and result.stdout.count(" ok") == 4


@pytest.mark.stack
def test_logs_and_control_sockets_in_instance_dirs(stack):
    with stack.client("api") as client:
        client.get("/healthz")
    logs = stack.settings.log_dir
    assert all((logs / f"{p}.log").stat().st_size > 0 for p in STACK_PROGRAMS)
    assert all((stack.settings.run_dir / f"{p}.ctl").exists() for p in ("otterwiki", "api", "auth"))


@pytest.mark.stack
def test_wiki_service_answers_on_its_unix_socket(stack):
    transport = httpx2.HTTPTransport(uds=str(stack.settings.internal_wiki_socket))
    with httpx2.Client(transport=transport, base_url="http://wiki") as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.stack
def test_restart_api_changes_only_its_pid(stack):
    before = {p: stack.pid(p) for p in STACK_PROGRAMS}
    assert stack.robot("ctl", "restart", "api").returncode == 0
    after = {p: stack.pid(p) for p in STACK_PROGRAMS}
    assert after["api"] != before["api"]
    assert {p: after[p] for p in after if p != "api"} == {
        p: before[p] for p in before if p != "api"
    }
    stack.wait_healthy(60)


@pytest.mark.stack
@pytest.mark.parametrize("program", ["otterwiki", "mcp"])
def test_killed_program_comes_back_healthy(stack, program):
    old = stack.pid(program)
    old_tree = descendants(old) | {old}
    os.kill(old, signal.SIGKILL)

    def back():
        """a new pid, every /healthz answering and all programs RUNNING"""
        return stack.pid(program) not in (0, old) and not stack.unhealthy()

    assert _wait_for(back, 60) < 30
    stack.wait_healthy(30)
    assert _wait_for(lambda: not any(pid_alive(p) for p in old_tree), 30) < 15


@pytest.mark.stack
def test_term_leaves_no_process_behind(make_stack):
    instance = make_stack()
    tree = descendants(instance.process.pid)
    assert len(tree) >= 4
    instance.process.send_signal(signal.SIGTERM)
    instance.process.wait(timeout=90)
    assert [pid for pid in tree if pid_alive(pid)] == []
    assert instance.unhealthy() == list(STACK_PROGRAMS)


@pytest.mark.stack
def test_two_instances_side_by_side_then_ctrl_c(stack, make_stack):
    other = make_stack()
    assert (
        other.robot("user", "add", "--did", "did:plc:side", "--handle", "side.test").returncode == 0
    )
    assert other.robot("wiki", "create", "side-wiki", "--owner", "did:plc:side").returncode == 0
    assert "side-wiki" not in stack.robot("wiki", "list").stdout
    assert stack.unhealthy() == other.unhealthy() == []
    tree = descendants(other.process.pid)
    os.killpg(other.process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
    other.process.wait(timeout=90)
    assert [pid for pid in tree if pid_alive(pid)] == []
    assert stack.unhealthy() == []


@pytest.mark.stack
def test_check_fails_while_a_program_is_stopped(stack):
    assert stack.robot("ctl", "stop", "auth").returncode == 0
    try:
        result = stack.robot("check")
        assert result.returncode == 1 and "auth       FAIL" in result.stdout
    finally:
        stack.robot("ctl", "start", "auth")
        stack.wait_healthy(60)
