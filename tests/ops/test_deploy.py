"""The Ansible role for real: install into a temp prefix, run it, upgrade it, keep the data.

The tests below share one installation (module fixture `deployed`) and run in file order: the
first run installs, supervisord starts from the installed unit's ExecStart and robot.env (as
systemd would), then reruns must change nothing, and a code change must restart only the
programs whose code changed.
"""

import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from tests.ops.deployment import ANSIBLE
from tests.ops.deployment import PROGRAMS
from tests.ops.deployment import REPO
from tests.ops.deployment import START_TIMEOUT
from tests.ops.deployment import VENV_BIN
from tests.ops.deployment import Deployment
from tests.ops.deployment import ansible_env
from tests.ops.deployment import recap

OWNER = ("did:plc:deploytest", "deploytest.test")
SLUG = "deployed-wiki"

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The role's first run into a temp prefix (smoke test off: nothing runs yet), then start."""
    deployment = Deployment(tmp_path_factory.mktemp("deploy"))
    deployment.snapshot_source()
    first = deployment.playbook(robot_smoke_test="false")
    assert recap(first.stdout)["failed"] == 0, first.stdout[-4000:] + first.stderr
    deployment.first_run = first
    deployment.key_hash = _sha256(deployment.path("/srv/data/signing_key.pem"))
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_syntax_check():
    result = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", str(ANSIBLE / "deploy.yml")],
        capture_output=True,
        text=True,
        env=ansible_env(Path("/tmp")),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile_is_clean():
    result = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "-c", str(ANSIBLE / ".ansible-lint"), str(ANSIBLE)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ansible_env(Path("/tmp")),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("robot_domain", ""),
        ("robot_domain", "https://wiki.example.org"),
        ("robot_data_dir", "srv/data"),
        ("robot_api_port", "99999"),
        ("robot_static_dir", "{prefix}/srv/data/static"),
        ("robot_run_dir", "/run/" + "r" * 100),
        # Each Caddy setting is one Caddyfile token: nothing may open or close a block.
        ("robot_caddy_upstream", "127.0.0.1}}"),
        ("robot_caddy_buffer_directives", "newest"),
        ("robot_caddy_admin", "2019"),
    ],
)
def test_bad_variable_fails_early_naming_it(tmp_path, name, value):
    deployment = Deployment(tmp_path)
    deployment.source = REPO
    deployment.vars["robot_source_dir"] = str(REPO)
    result = deployment.playbook(**{name: value.format(prefix=deployment.prefix)})
    assert recap(result.stdout)["failed"] == 1
    assert f"{name}=" in result.stdout
    assert not deployment.prefix.exists()


def test_first_run_installs_the_layout(deployed):
    assert recap(deployed.first_run.stdout)["changed"] > 0
    for path in ("/srv/app/src/app/wsgi.py", "/srv/app/venv/bin/supervisord", "/srv/static"):
        assert deployed.path(path).exists(), path
    assert oct(deployed.path("/srv/data").stat().st_mode & 0o777) == "0o750"
    assert oct(deployed.path("/etc/robot/robot.env").stat().st_mode & 0o777) == "0o640"


def test_the_caddyfile_is_written_for_this_install(deployed):
    """Caddy (Debian's) reads it; tests/ops/test_caddy.py runs it in front of a stack."""
    caddyfile = deployed.path("/etc/robot/Caddyfile")
    adapted = subprocess.run(
        ["caddy", "adapt", "--adapter", "caddyfile", "--config", str(caddyfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert adapted.returncode == 0, adapted.stderr
    text = caddyfile.read_text()
    assert f"127.0.0.1:{deployed.ports['api']}/api/internal/check-slug" in text
    assert f"127.0.0.1:{deployed.ports['otterwiki']} {{" in text


def test_robot_env_provides_what_supervisor_and_settings_need(deployed):
    from app.core.settings import VARIABLES

    env = deployed.env_file()
    conf = "".join(p.read_text() for p in (REPO / "supervisor").glob("*.conf"))
    assert set(re.findall(r"%\(ENV_([A-Z_]+)\)s", conf)) <= set(env)
    assert set(env) <= set(VARIABLES)


def test_secrets_stay_in_the_data_dir(deployed):
    text = deployed.path("/etc/robot/robot.env").read_text()
    for name in ("secret_key", "signing_key.pem"):
        secret = deployed.path(f"/srv/data/{name}")
        assert oct(secret.stat().st_mode & 0o777) == "0o600"
        assert secret.read_text().strip() not in text


def test_installed_unit_is_the_repo_unit_with_the_prefix(deployed):
    unit = deployed.path("/etc/systemd/system/robot.service")
    expected = (REPO / "systemd" / "robot.service").read_text()
    for default in ("/srv/app/src", "/srv/app/venv", "/srv/data", "/etc/robot/robot.env"):
        expected = expected.replace(default, str(deployed.path(default)))
    expected = expected.replace("User=robot", f"User={deployed.vars['robot_user']}")
    expected = expected.replace("Group=robot", f"Group={deployed.vars['robot_group']}")
    assert unit.read_text().split("\n", 3)[-1].strip() == expected.strip()
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True)
        assert verify.stdout + verify.stderr == b""


def test_supervisorctl_works_as_typed(deployed):
    # Health can answer before startsecs has passed, while supervisor still says STARTING.
    deadline = time.monotonic() + 30
    while True:
        status = deployed.command("supervisorctl", "status")
        lines = status.stdout.splitlines()
        if all(" RUNNING " in line for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status.returncode == 0, status.stdout + status.stderr
    assert sorted(line.split()[0] for line in lines) == sorted(PROGRAMS)
    assert all(" RUNNING " in line for line in lines), status.stdout


def test_wiki_created_with_the_installed_cli_serves_pages(deployed):
    added = deployed.command("robot", "user", "add", "--did", OWNER[0], "--handle", OWNER[1])
    assert added.returncode == 0, added.stdout + added.stderr
    created = deployed.command("robot", "wiki", "create", SLUG, "--owner", OWNER[0])
    assert created.returncode == 0, created.stdout + created.stderr
    token = deployed.command(
        "robot", "token", "create", SLUG, "--user", OWNER[0], "--role", "admin"
    )
    secret = token.stdout.strip().splitlines()[-1]
    response = httpx2.get(
        f"http://127.0.0.1:{deployed.ports['otterwiki']}/api/v1/pages",
        headers={"Host": f"{SLUG}.localhost", "Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["pages"]


def test_second_run_changes_nothing_and_smoke_test_passes(deployed):
    result = deployed.playbook(robot_smoke_slug=SLUG)
    assert recap(result.stdout) | {"ok": 0} == {
        "ok": 0,
        "changed": 0,
        "unreachable": 0,
        "failed": 0,
    }, result.stdout[-4000:]
    assert "all four services are healthy" in result.stdout


def test_code_change_restarts_only_the_programs_that_run_it(deployed):
    before = deployed.pids()
    for module in ("app/mcp_entry.py", "app/api_server.py"):
        with (deployed.source / module).open("a") as handle:
            handle.write("\n# changed by test_deploy\n")
    result = deployed.playbook(robot_smoke_slug=SLUG)
    assert recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    deadline = time.monotonic() + 60
    while (after := deployed.pids())["api"][1] & before["api"][1] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert after["mcp"][0] != before["mcp"][0]
    assert after["api"][0] == before["api"][0]
    assert not after["api"][1] & before["api"][1]
    assert (after["otterwiki"], after["auth"]) == (before["otterwiki"], before["auth"])


def test_supervisor_config_change_updates_only_that_program(deployed):
    before = deployed.pids()
    conf = deployed.source / "supervisor" / "programs.conf"
    conf.write_text(
        re.sub(r"(\[program:auth\][^\[]*?stopwaitsecs=)15", r"\g<1>14", conf.read_text())
    )
    result = deployed.playbook(robot_smoke_slug=SLUG)
    assert recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    after = deployed.pids()
    assert after["auth"][0] != before["auth"][0]
    assert {p: after[p] for p in ("otterwiki", "mcp", "api")} == {
        p: before[p] for p in ("otterwiki", "mcp", "api")
    }


def test_smoke_test_fails_the_play_when_a_service_is_down(deployed):
    assert deployed.command("supervisorctl", "stop", "auth").returncode == 0
    try:
        result = deployed.playbook("--tags", "robot_smoke", robot_smoke_timeout="2")
    finally:
        deployed.command("supervisorctl", "start", "auth")
    assert recap(result.stdout)["failed"] == 1
    assert "auth /healthz answered" in result.stdout
    deployed.wait_healthy(START_TIMEOUT)


def test_data_survives_every_run(deployed):
    listed = deployed.command("robot", "wiki", "list")
    assert SLUG in listed.stdout, listed.stdout + listed.stderr
    log = subprocess.run(
        ["git", "-C", str(deployed.path(f"/srv/data/wikis/{SLUG}/repo")), "log", "--oneline"],
        capture_output=True,
        text=True,
    )
    assert log.returncode == 0 and log.stdout.strip(), log.stderr
    assert _sha256(deployed.path("/srv/data/signing_key.pem")) == deployed.key_hash
