"""An install of the Ansible role into a temp prefix, as the deploy and Caddy tests run it."""

import getpass
import grp
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.conftest import _term_when_parent_dies
from tests.conftest import descendants
from tests.conftest import free_ports
from tests.conftest import pid_alive

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
PROGRAMS = ("otterwiki", "mcp", "api", "auth")
SOURCE_PARTS = ("app", "supervisor", "static", "systemd", "pyproject.toml", "requirements.txt")
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
START_TIMEOUT = 120


def venv_python() -> str:
    """Debian's python3 as on a real host (the role's default); else the one running the tests."""
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import ensurepip, venv"], capture_output=True
    )
    return "/usr/bin/python3" if probe.returncode == 0 else sys._base_executable


def ansible_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return env


def recap(output: str) -> dict[str, int]:
    match = RECAP.search(output.rsplit("PLAY RECAP", 1)[-1])
    assert match, output[-3000:]
    return dict(
        zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True)
    )


class Deployment:
    """One install of the role into a temp prefix, and the supervisord started from it."""

    def __init__(self, root: Path):
        self.root = root
        self.prefix = root / "prefix"
        self.source = root / "source"
        self.ports = dict(zip(PROGRAMS, free_ports(4), strict=True))
        self.supervisord: subprocess.Popen | None = None
        user = getpass.getuser()
        group = grp.getgrgid(os.getgid()).gr_name
        self.vars = {
            "robot_hosts": "localhost",
            "ansible_become": "false",
            "ansible_python_interpreter": sys.executable,
            "robot_prefix": str(self.prefix),
            "robot_source_dir": str(self.source),
            "robot_domain": "localhost",
            "robot_python": venv_python(),
            "robot_bind_host": "127.0.0.1",
            "robot_manage_systemd": "false",
            "robot_manage_packages": "false",
            "robot_create_user": "false",
            "robot_user": user,
            "robot_group": group,
            "robot_code_owner": user,
            "robot_code_group": group,
            "robot_wiki_port": str(self.ports["otterwiki"]),
            "robot_mcp_port": str(self.ports["mcp"]),
            "robot_api_port": str(self.ports["api"]),
            "robot_auth_port": str(self.ports["auth"]),
        }

    def snapshot_source(self) -> None:
        """Deploy from a copy: other work in the checkout must not change between runs."""
        self.source.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in SOURCE_PARTS:
            origin = REPO / part
            if origin.is_dir():
                shutil.copytree(origin, self.source / part, ignore=ignore)
            elif origin.is_file():
                shutil.copy2(origin, self.source / part)

    def playbook(self, *args: str, **overrides: str) -> subprocess.CompletedProcess:
        """Run ansible/deploy.yml against localhost with this deployment's variables."""
        extra = []
        for name, value in {**self.vars, **overrides}.items():
            extra += ["-e", f"{name}={value}"]
        command = ["ansible-playbook", "-i", "localhost,", "-c", "local", *extra, *args]
        return subprocess.run(
            [*command, str(ANSIBLE / "deploy.yml")],
            capture_output=True,
            text=True,
            env=ansible_env(self.root),
            timeout=600,
        )

    def path(self, default_path: str) -> Path:
        return self.prefix / default_path.lstrip("/")

    def unit(self) -> dict[str, str]:
        lines = self.path("/etc/systemd/system/robot.service").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and line[0].isalpha())

    def env_file(self) -> dict[str, str]:
        text = self.path("/etc/robot/robot.env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")

    def start(self) -> None:
        """Start supervisord the way robot.service does: its ExecStart, EnvironmentFile, cwd."""
        unit = self.unit()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env["HOME"] = str(self.root)
        env.update(self.env_file())
        with (self.root / "supervisord.out").open("wb") as log:
            self.supervisord = subprocess.Popen(
                shlex.split(unit["ExecStart"]),
                cwd=unit["WorkingDirectory"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_term_when_parent_dies,
            )
        self.wait_healthy(START_TIMEOUT)

    def unhealthy(self) -> list[str]:
        problems = []
        for program, port in self.ports.items():
            try:
                status = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
            except httpx2.HTTPError as err:
                status = type(err).__name__
            if status != 200:
                problems.append(f"{program}: {status}")
        return problems

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while problems := self.unhealthy():
            if self.supervisord.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"unhealthy {problems}\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        parts = []
        for log in sorted(self.path("/var/log/robot").glob("*.log")):
            parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-1500:])
        return "\n".join(parts)

    def command(self, name: str, *args: str) -> subprocess.CompletedProcess:
        """Run one of the wrappers the role installed (supervisorctl, robot) as typed."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"}
        return subprocess.run(
            [str(self.path(f"/usr/local/bin/{name}")), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def pids(self) -> dict[str, tuple[int, frozenset[int]]]:
        """Each program's pid and its workers' pids, as supervisorctl reports them."""
        found = {}
        for program in PROGRAMS:
            pid = int(self.command("supervisorctl", "pid", program).stdout.strip())
            found[program] = (pid, frozenset(descendants(pid)))
        return found

    def stop(self) -> None:
        if self.supervisord is None or self.supervisord.poll() is not None:
            return
        tree = descendants(self.supervisord.pid)
        self.supervisord.send_signal(signal.SIGTERM)
        try:
            self.supervisord.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.supervisord.pid, signal.SIGKILL)
            self.supervisord.wait(timeout=10)
        for pid in tree:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
