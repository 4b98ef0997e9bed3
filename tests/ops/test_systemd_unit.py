"""systemd/robot.service: verifies silently, scores <= 2.5 and keeps the deploy contract."""

import configparser
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "robot.service"
PROGRAMS_CONF = REPO / "supervisor" / "programs.conf"
FILTERS = REPO / "ansible" / "roles" / "deploy" / "filter_plugins" / "robot_deploy.py"
MAX_EXPOSURE = 2.5

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _role_filters():
    """The deploy role's filter module: the unit is rendered with its substitution."""
    spec = importlib.util.spec_from_file_location("robot_deploy", FILTERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def rendered(tmp_path) -> Path:
    """The unit as the role renders it into tmp_path, with real files at its ExecStart paths."""
    prefix = tmp_path / "root"
    bin_dir = prefix / "srv" / "app" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("supervisord", "supervisorctl"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    (prefix / "srv" / "app" / "src" / "supervisor").mkdir(parents=True)
    (prefix / "srv" / "data").mkdir(parents=True)
    mapping = {
        "/srv/app/src": f"{prefix}/srv/app/src",
        "/srv/app/venv": f"{prefix}/srv/app/venv",
        "/srv/data": f"{prefix}/srv/data",
        "/etc/robot/robot.env": f"{prefix}/etc/robot/robot.env",
    }
    unit = tmp_path / "robot.service"
    unit.write_text(_role_filters().substitute(UNIT.read_text(), mapping))
    return unit


def test_verify_prints_nothing(rendered):
    # systemd-analyze verify exits 0 even on unknown keys and bad values: any output is a failure.
    result = subprocess.run(
        ["systemd-analyze", "verify", str(rendered)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_security_exposure_at_most_2_5(rendered):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(rendered)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for robot\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_stop_timeout_exceeds_the_programs_stop_waits():
    # Without a [group] supervisord stops the programs one after another.
    programs = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    programs.read(PROGRAMS_CONF)
    waits = [
        programs.getint(section, "stopwaitsecs", fallback=10)
        for section in programs.sections()
        if section.startswith("program:")
    ]
    assert len(waits) == 4
    (timeout,) = _directives(UNIT.read_text())["TimeoutStopSec"]
    assert int(timeout) > sum(waits)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "exec"),
        ("User", "robot"),
        ("Group", "robot"),
        ("EnvironmentFile", "/etc/robot/robot.env"),
        (
            "ExecStart",
            "/srv/app/venv/bin/supervisord -n -c /srv/app/src/supervisor/supervisord.conf",
        ),
        (
            "ExecReload",
            "/srv/app/venv/bin/supervisorctl -c /srv/app/src/supervisor/supervisord.conf update",
        ),
        ("KillMode", "mixed"),
        ("Restart", "on-failure"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/srv/data"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("WantedBy", "multi-user.target"),
    ],
)
def test_unit_keeps_the_deploy_contract(key, value):
    assert _directives(UNIT.read_text())[key] == [value]


def test_runtime_directory_holds_each_programs_home():
    # programs.conf sets HOME=$ROBOT_RUN_DIR/<program>; systemd must create those dirs.
    (runtime,) = _directives(UNIT.read_text())["RuntimeDirectory"]
    assert runtime.split() == ["robot", "robot/otterwiki", "robot/mcp", "robot/api", "robot/auth"]
