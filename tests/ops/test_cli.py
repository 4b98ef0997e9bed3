import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.platform import Platform
from app.core.settings import Settings
from app.ops.cli import main
from tests.conftest import ROBOT_BIN
from tests.conftest import free_ports

ALICE = "did:plc:alice"
BOB = "did:plc:bob"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def one_error_line(self) -> bool:
        lines = self.err.strip().splitlines()
        return (
            len(lines) == 1
            and lines[0].startswith("robot: error: ")
            and "Traceback" not in self.err
        )


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ROBOT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def robot(data_dir, capsys):
    """Run `robot ARGS` in this process against a fresh data dir; return code and output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code or 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def ready(robot):
    """An initialised instance with Alice and Bob, and Alice's wiki `alpha`."""
    assert robot("init").code == 0
    assert robot("user", "add", "--did", ALICE, "--handle", "alice.test").code == 0
    assert robot("user", "add", "--did", BOB, "--handle", "bob.test").code == 0
    assert robot("wiki", "create", "alpha", "--owner", ALICE).code == 0
    return robot


def test_init_is_idempotent(robot, data_dir):
    first, second = robot("init"), robot("init")
    assert first.code == second.code == 0
    assert "created" in first.out and "already initialised" in second.out
    assert (data_dir / "robot.db").exists() and (data_dir / "signing_key.pem").exists()


def test_commands_need_init(robot):
    result = robot("wiki", "list")
    assert result.code == 1 and result.one_error_line and "robot init" in result.err


def test_unknown_setting_is_one_line(robot, monkeypatch):
    monkeypatch.setenv("ROBOT_DATA_DIRR", "/tmp/x")
    result = robot("init")
    assert result.code == 1 and result.one_error_line and "ROBOT_DATA_DIRR" in result.err


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql://robot:s3cret@127.0.0.1:{port}/robot", "Connection refused"),
        ("postgresql://robot:s3cret@nohost.invalid/robot", "nohost.invalid"),
        ("mysql://robot:s3cret@db/robot", "use postgresql+psycopg"),
        ("postgresql://robot:s3cret@db", "names no database"),
    ],
)
def test_a_platform_db_robot_cannot_use_is_one_line_without_the_password(
    robot, monkeypatch, data_dir, url, reason
):
    monkeypatch.setenv("ROBOT_DB_URL", url.format(port=free_ports(1)[0]))
    for command in (("init",), ("wiki", "list")):
        result = robot(*command)
        assert result.code == 1 and result.one_error_line, result.err
        assert "s3cret" not in result.err + result.out
        if command == ("init",):
            assert reason in result.err
    # Nothing was made: no data dir, no keys, no wikis.
    assert not data_dir.exists()


def test_user_add(robot):
    robot("init")
    result = robot("user", "add", "--did", ALICE, "--handle", "alice.test")
    assert result.code == 0 and ALICE in result.out


def test_user_add_bad_did(robot):
    robot("init")
    result = robot("user", "add", "--did", "alice", "--handle", "alice.test")
    assert result.code == 1 and result.one_error_line and "DID" in result.err


# Twenty-fifth review: this handle was stored, and every page write of its user was a 500.
@pytest.mark.parametrize(
    ("did", "handle", "why"),
    [
        ("did:plc:xss", "<img src=x onerror=alert(1)>.example", "not a valid handle"),
        ("did:plc:xss", "alice", "not a valid handle"),
        ("did:plc:xss", "alice.test\nX: y", "not a valid handle"),
        ("did:plc:xss", "al ice.test", "not a valid handle"),
        ("did:plc:xss", "alice.example", "top-level domain is reserved"),
        ("did:plc:xss", "alice.localhost", "top-level domain is reserved"),
        ("did:plc:x<ss>", "alice.test", "not a valid DID"),
        ("did:plc:", "alice.test", "not a valid DID"),
        ("did:plc:a b", "alice.test", "not a valid DID"),
    ],
)
def test_user_add_refuses_what_is_no_atproto_identity(robot, did, handle, why):
    robot("init")
    result = robot("user", "add", "--did", did, "--handle", handle)
    assert result.code == 1 and result.one_error_line and why in result.err, result.err
    assert robot("user", "list").out.strip() == ""


# Twenty-sixth review: these DIDs were stored; a user's DID is a did:plc or a did:web host.
@pytest.mark.parametrize(
    ("did", "why"),
    [
        ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "only did:plc and did:web"),
        ("did:example:123", "only did:plc and did:web"),
        ("did:pkh:eip155:1:0xb9c5714089478a327f09197", "only did:plc and did:web"),
        ("did:web:evil.com:..:x", "not a valid did:web"),
        ("did:web:evil.com:user:alice", "not a valid did:web"),
        ("did:web:a.b%2Fpath", "not a valid did:web"),
        ("did:plc:AAA", "not a valid did:plc"),
        ("did:plc:a.b", "not a valid did:plc"),
        ("did:plc:a:b", "not a valid did:plc"),
    ],
)
def test_user_add_refuses_a_did_no_account_can_have(robot, did, why):
    robot("init")
    result = robot("user", "add", "--did", did, "--handle", "alice.test")
    assert result.code == 1 and result.one_error_line and why in result.err, result.err
    assert robot("user", "list").out.strip() == ""


@pytest.mark.parametrize(
    "did", ["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:web:localhost%3A8080"]
)
def test_user_add_takes_a_did_plc_or_web(robot, did):
    robot("init")
    assert robot("user", "add", "--did", did, "--handle", "alice.test").code == 0
    assert did in robot("user", "list").out


# Twenty-sixth review: a second DID was given Alice's handle. A handle names one account.
@pytest.mark.parametrize("handle", ["alice.test", " ALICE.Test ", "Alice.test"])
def test_user_add_refuses_a_handle_another_did_holds(robot, handle):
    robot("init")
    assert robot("user", "add", "--did", ALICE, "--handle", "alice.test").code == 0
    assert robot("user", "add", "--did", BOB, "--handle", "bob.test").code == 0
    for did in ("did:plc:mallory", BOB):
        result = robot("user", "add", "--did", did, "--handle", handle)
        assert result.code == 1 and result.one_error_line, result.err
        assert "belongs to another user, did:plc:alice" in result.err
        assert "robot user list" in result.err
    listed = robot("user", "list").out
    assert "mallory" not in listed and listed.count("alice.test") == 1
    assert "bob.test" in listed


def test_user_add_again_for_the_same_did_updates_it(robot):
    robot("init")
    assert robot("user", "add", "--did", ALICE, "--handle", "alice.test").code == 0
    assert robot("user", "add", "--did", ALICE, "--handle", "Alice.Test").code == 0
    assert robot("user", "add", "--did", ALICE, "--handle", "alice.new.test").code == 0
    # The handle Alice left is free again.
    assert robot("user", "add", "--did", BOB, "--handle", "alice.test").code == 0
    listed = robot("user", "list").out.splitlines()
    assert [line.split()[:2] for line in listed] == [
        [ALICE, "alice.new.test"],
        [BOB, "alice.test"],
    ]


def test_user_add_stores_the_handle_lower_case(robot):
    robot("init")
    assert robot("user", "add", "--did", ALICE, "--handle", " Alice.Test ").code == 0
    assert "alice.test" in robot("user", "list").out


def test_wiki_create_prints_url(ready):
    result = ready("wiki", "create", "beta", "--owner", BOB, "--name", "Bob's", "--public")
    assert result.code == 0
    assert result.out.strip().splitlines()[-1] == "http://beta.localhost:8000/"


@pytest.mark.parametrize(
    ("slug", "owner", "message"),
    [
        ("Bad_Slug", ALICE, "Bad_Slug"),
        ("www", ALICE, "www"),
        ("mta-sts", ALICE, "reserved"),
        ("autoconfig", ALICE, "reserved"),
        ("dev2", ALICE, "reserved"),
        ("api-v2", ALICE, "reserved"),
        ("true", ALICE, "reserved"),
        ("dav", ALICE, "reserved"),
        ("gamma", "did:plc:nobody", "unknown user"),
        ("alpha", BOB, "already exists"),
    ],
)
def test_wiki_create_errors(ready, data_dir, slug, owner, message):
    result = ready("wiki", "create", slug, "--owner", owner)
    assert result.code == 1 and result.one_error_line and message in result.err
    assert sorted(p.name for p in (data_dir / "wikis").iterdir()) == ["alpha"]


@pytest.mark.parametrize(
    "slug", ["true1", "yes2024", "calendar-2026", "timezone-v2", "no-ne", "dav2"]
)
def test_wiki_create_takes_a_spelling_of_a_whole_name(ready, data_dir, slug):
    # Well-known names and literals are reserved only whole (app/core/slugs.py).
    result = ready("wiki", "create", slug, "--owner", ALICE)
    assert result.code == 0 and (data_dir / "wikis" / slug).is_dir(), result.err


def test_wiki_list(ready):
    ready("wiki", "create", "beta", "--owner", BOB, "--public")
    lines = ready("wiki", "list").out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["alpha", "private", ALICE],
        ["beta", "public", BOB],
    ]


def test_wiki_list_names_a_wiki_whose_slug_was_reserved_since(ready, data_dir):
    """A slug reserved after its wiki was made (`calendar`, reserved in session 15) stops
    resolving: the operator's list says so and why, rather than leave it to be found."""
    from app.core.settings import Settings
    from app.core.store import Store

    store = Store(Settings.from_env().database_url)
    try:
        store.insert_wiki("calendar", ALICE, "Old calendar", True)
    finally:
        store.close()
    lines = {line.split()[0]: line for line in ready("wiki", "list").out.splitlines()}
    assert "NOT SERVED" in lines["calendar"] and "reserved" in lines["calendar"]
    assert "NOT SERVED" not in lines["alpha"]


def test_wiki_list_shows_usage_of_a_new_wiki(ready, data_dir):
    """A new wiki is measured when made: its starter pages, their bytes, the time of its commit."""
    starter = sum(p.stat().st_size for p in (data_dir / "wikis" / "alpha" / "repo").glob("*.md"))
    fields = ready("wiki", "list").out.split()
    assert fields[3:7] == ["2", "pages", f"{starter / 1024:.1f}", "KB"]
    assert fields[7] == "changed" and fields[8] != "-"


def test_user_list(ready):
    lines = ready("user", "list").out.splitlines()
    assert [line.split()[:2] for line in lines] == [[ALICE, "alice.test"], [BOB, "bob.test"]]


def test_member_list(ready):
    ready("member", "add", "alpha", "--user", BOB, "--role", "viewer")
    result = ready("member", "list", "alpha")
    assert result.code == 0
    assert [line.split()[:3] for line in result.out.splitlines()] == [
        [ALICE, "alice.test", "admin"],
        [BOB, "bob.test", "viewer"],
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("member", "add", "alpha", "--user", "did:plc:nobody", "--role", "viewer"),
        ("token", "create", "alpha", "--user", "did:plc:nobody", "--role", "viewer"),
        ("wiki", "create", "gamma", "--owner", "did:plc:nobody"),
        ("session", "did:plc:nobody"),
    ],
)
def test_unknown_user_points_to_user_add(ready, args):
    result = ready(*args)
    assert result.code == 1 and result.one_error_line
    assert "robot user add --did did:plc:nobody" in result.err


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("member", "list", "nosuch"), "robot wiki list"),
        (("member", "add", "nosuch", "--user", BOB, "--role", "viewer"), "robot wiki list"),
        (("token", "list", "nosuch"), "robot wiki list"),
        (("member", "add", "alpha", "--user", "bob", "--role", "viewer"), "starts with 'did:'"),
        (("session", "alice.test"), "starts with 'did:'"),
        (("member", "remove", "alpha", "--user", BOB), "robot member list alpha"),
        (("token", "create", "alpha", "--user", BOB, "--role", "viewer"), "robot member add"),
        (("token", "revoke", "tok_nope"), "robot token list"),
    ],
)
def test_bad_input_says_what_to_do_next(ready, args, hint):
    result = ready(*args)
    assert result.code == 1 and result.one_error_line and hint in result.err


def test_missing_did_is_a_usage_error(ready):
    for args in (("session",), ("member", "add", "alpha", "--role", "viewer")):
        result = ready(*args)
        assert result.code == 2 and result.one_error_line


def test_wiki_delete_needs_yes(ready, data_dir):
    result = ready("wiki", "delete", "alpha")
    assert result.code == 2 and result.one_error_line and "--yes" in result.err
    assert (data_dir / "wikis" / "alpha" / "repo").is_dir()


def test_wiki_delete(ready, data_dir):
    assert ready("wiki", "delete", "alpha", "--yes").code == 0
    assert ready("wiki", "list").out == ""
    assert not (data_dir / "wikis" / "alpha").exists()


def test_wiki_delete_unknown(ready):
    result = ready("wiki", "delete", "nosuch", "--yes")
    assert result.code == 1 and result.one_error_line and "nosuch" in result.err


def test_member_add_and_remove(ready, data_dir):
    assert (
        "is editor of alpha"
        in ready("member", "add", "alpha", "--user", BOB, "--role", "editor").out
    )
    assert ready("member", "remove", "alpha", "--user", BOB).code == 0
    store = Platform.load(Settings.from_env({"ROBOT_DATA_DIR": str(data_dir)})).store
    assert store.role_of("alpha", BOB) is None
    store.close()


def test_member_add_by_handle_verifies_it_through_atproto(ready, network, fake_net, monkeypatch):
    carol = fake_net.add_account("carol.test")
    monkeypatch.setattr(Platform, "atproto_network", lambda platform: network)
    result = ready("member", "add", "alpha", "--user", "carol.test", "--role", "viewer")
    assert result.code == 0 and f"{carol} (carol.test) is viewer of alpha" in result.out
    listed = ready("member", "list", "alpha").out.splitlines()
    assert listed[-1].startswith(carol) and listed[-1].endswith("(not signed in yet)")
    unknown = ready("member", "add", "alpha", "--user", "nobody.test", "--role", "viewer")
    assert unknown.code == 1 and "no Bluesky/ATProto account found" in unknown.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("member", "add", "alpha", "--user", BOB, "--role", "owner"), 2, "'owner'"),
        (("member", "add", "alpha", "--user", "did:plc:nobody", "--role", "viewer"), 1, "unknown"),
        (("member", "add", "nosuch", "--user", BOB, "--role", "viewer"), 1, "nosuch"),
        (("member", "remove", "alpha", "--user", BOB), 1, "not a member"),
        (("member", "remove", "alpha", "--user", ALICE), 1, "owner"),
    ],
)
def test_member_errors(ready, args, code, message):
    result = ready(*args)
    assert result.code == code and result.one_error_line and message in result.err


def test_token_secret_on_last_line_only_hash_stored(ready, data_dir):
    result = ready("token", "create", "alpha", "--user", ALICE, "--role", "editor", "--label", "ci")
    secret = result.out.strip().splitlines()[-1]
    assert result.code == 0 and " " not in secret and len(secret) > 30
    stored = b"".join(p.read_bytes() for p in data_dir.glob("robot.db*"))
    assert secret.encode() not in stored
    store = Platform.load(Settings.from_env({"ROBOT_DATA_DIR": str(data_dir)})).store
    assert store.authenticate_token(secret, "alpha")[1] == "editor"
    store.close()


def test_token_list_and_revoke(ready):
    created = ready("token", "create", "alpha", "--user", ALICE, "--role", "viewer", "--label", "x")
    token_id = created.out.split()[1]
    assert token_id.startswith("tok_")
    assert ready("token", "revoke", token_id).code == 0
    listed = ready("token", "list", "alpha").out
    assert token_id in listed and "revoked" in listed
    assert created.out.strip().splitlines()[-1] not in listed
    again = ready("token", "revoke", token_id)
    assert again.code == 1 and again.one_error_line and "already revoked" in again.err
    assert ready("token", "list", "alpha").out == listed  # the first revocation time is kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "alpha", "--user", BOB, "--role", "viewer"), "not a member"),
        (("token", "create", "nosuch", "--user", ALICE, "--role", "viewer"), "nosuch"),
        (("token", "revoke", "tok_nope"), "tok_nope"),
        (("token", "list", "nosuch"), "nosuch"),
    ],
)
def test_token_errors(ready, args, message):
    result = ready(*args)
    assert result.code == 1 and result.one_error_line and message in result.err


def test_session_is_a_valid_jwt(ready, data_dir):
    jwt = ready("session", ALICE).out.strip()
    platform = Platform.load(Settings.from_env({"ROBOT_DATA_DIR": str(data_dir)}))
    claims = platform.key.verify_session(jwt, platform.settings.auth_origin)
    platform.store.close()
    assert claims["sub"] == ALICE and claims["handle"] == "alice.test"


def test_session_unknown_user(ready):
    result = ready("session", "did:plc:nobody")
    assert result.code == 1 and result.one_error_line


def test_check_fails_when_nothing_runs(robot, monkeypatch):
    names = ("WIKI_PORT", "MCP_PORT", "API_PORT", "AUTH_PORT")
    for name, port in zip(names, free_ports(4), strict=True):
        monkeypatch.setenv(name, str(port))
    result = robot("check")
    assert result.code == 1 and result.out.count("FAIL") == 4


def test_backup_and_restore(ready, data_dir, tmp_path):
    ready("token", "create", "alpha", "--user", ALICE, "--role", "admin")
    assert ready("backup", str(tmp_path / "bk")).code == 0
    ready("wiki", "delete", "alpha", "--yes")
    assert ready("restore", str(tmp_path / "bk"), "--force").code == 0
    assert ready("wiki", "list").out.split()[0] == "alpha"
    assert len(ready("token", "list", "alpha").out.splitlines()) == 1
    log = subprocess.run(
        ["git", "log", "--oneline"], cwd=data_dir / "wikis" / "alpha" / "repo", capture_output=True
    )
    assert log.returncode == 0 and log.stdout


def test_restore_into_fresh_dir(ready, tmp_path, monkeypatch):
    ready("backup", str(tmp_path / "bk"))
    monkeypatch.setenv("ROBOT_DATA_DIR", str(tmp_path / "other"))
    assert ready("restore", str(tmp_path / "bk")).code == 0
    assert ready("wiki", "list").out.split()[0] == "alpha"
    assert oct((tmp_path / "other" / "signing_key.pem").stat().st_mode & 0o777) == "0o600"


def test_restore_refuses_existing_data(ready, tmp_path):
    ready("backup", str(tmp_path / "bk"))
    result = ready("restore", str(tmp_path / "bk"))
    assert result.code == 1 and result.one_error_line and "--force" in result.err


def test_backup_refuses_non_empty_dir(ready, tmp_path):
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "x").write_text("x")
    result = ready("backup", str(tmp_path / "bk"))
    assert result.code == 1 and result.one_error_line and "not empty" in result.err


def test_restore_refuses_non_backup(ready, tmp_path):
    (tmp_path / "junk").mkdir()
    result = ready("restore", str(tmp_path / "junk"), "--force")
    assert result.code == 1 and result.one_error_line and "not a robot backup" in result.err


def test_run_without_venv(robot, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBOT_VENV", str(tmp_path / "novenv"))
    result = robot("run")
    assert result.code == 1 and result.one_error_line and "make venv" in result.err


def test_run_refuses_second_instance(robot, data_dir):
    robot("init")
    (data_dir / "run" / "supervisord.pid").write_text(str(os.getpid()))
    result = robot("run")
    assert result.code == 1 and result.one_error_line and "already runs" in result.err


@pytest.mark.parametrize(
    ("args", "code"),
    [(("--help",), 0), (("nope",), 2), (("wiki", "create", "x"), 2)],
)
def test_usage(robot, args, code):
    result = robot(*args)
    assert result.code == code
    assert code == 0 or result.one_error_line


def test_ctl_without_running_instance(tmp_path):
    env = {"PATH": os.environ["PATH"], "ROBOT_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([ROBOT_BIN, "ctl", "status"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "supervisor.sock" in result.stdout + result.stderr


def sqlite_only(stack) -> None:
    """robot backup and restore copy the SQLite platform DB; PostgreSQL has pg_dump."""
    if not stack.settings.database_is_sqlite:
        pytest.skip("the stack's platform DB is PostgreSQL: robot backup refuses it (below)")


@pytest.mark.stack
def test_backup_refuses_a_running_postgresql_instance_with_a_reason(stack, tmp_path):
    if stack.settings.database_is_sqlite:
        pytest.skip("the stack's platform DB is SQLite, which robot backup copies (below)")
    result = stack.robot("backup", str(tmp_path / "bk"))
    assert result.returncode == 1
    assert "PostgreSQL (ROBOT_DB_URL): use pg_dump" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bk").exists()


def test_backup_and_restore_refuse_a_postgresql_instance(ready, monkeypatch, tmp_path, data_dir):
    ready("backup", str(tmp_path / "bk"))  # a real backup, made while on SQLite
    before = sorted(path.name for path in data_dir.iterdir())
    monkeypatch.setenv("ROBOT_DB_URL", f"postgresql://robot@127.0.0.1:{free_ports(1)[0]}/robot")
    for command in (
        ("backup", str(tmp_path / "bk2")),
        ("restore", str(tmp_path / "bk"), "--force"),
    ):
        result = ready(*command)
        assert result.code == 1 and result.one_error_line
        assert "PostgreSQL (ROBOT_DB_URL): use pg_dump" in result.err
    assert not (tmp_path / "bk2").exists()
    assert sorted(path.name for path in data_dir.iterdir()) == before


@pytest.mark.stack
def test_backup_of_running_instance_restores_elsewhere(stack, tmp_path):
    sqlite_only(stack)
    stack.robot("user", "add", "--did", "did:plc:backup", "--handle", "backup.test")
    stack.robot("wiki", "create", "cli-backup", "--owner", "did:plc:backup")
    created = stack.robot(
        "token", "create", "cli-backup", "--user", "did:plc:backup", "--role", "editor"
    )
    secret = created.stdout.strip().splitlines()[-1]
    with stack.client("otterwiki", host="cli-backup.localhost") as client:
        put = client.put(
            "/api/v1/pages/Saved",
            json={"content": "kept\n"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert put.status_code == 201
    assert stack.robot("backup", str(tmp_path / "bk")).returncode == 0
    env = {"PATH": os.environ["PATH"], "ROBOT_DATA_DIR": str(tmp_path / "restored")}
    restored = subprocess.run(
        [ROBOT_BIN, "restore", str(tmp_path / "bk")], env=env, capture_output=True, text=True
    )
    assert restored.returncode == 0, restored.stderr
    repo = tmp_path / "restored" / "wikis" / "cli-backup" / "repo"
    shown = subprocess.run(["git", "show", "HEAD:saved.md"], cwd=repo, capture_output=True)
    assert shown.stdout == b"kept\n"


@pytest.mark.stack
def test_restore_refuses_while_running(stack, tmp_path):
    sqlite_only(stack)
    assert stack.robot("backup", str(tmp_path / "bk")).returncode == 0
    result = stack.robot("restore", str(tmp_path / "bk"), "--force")
    assert result.returncode == 1 and "stop it first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_restore_refuses_a_manifest_that_escapes(ready, tmp_path):
    ready("backup", str(tmp_path / "bk"))
    (tmp_path / "bk" / "backup.json").write_text('{"wikis": ["../../outside"]}')
    result = ready("restore", str(tmp_path / "bk"), "--force")
    assert result.code == 1 and result.one_error_line and "outside" in result.err


def test_failed_restore_changes_nothing(ready, data_dir, tmp_path):
    ready("backup", str(tmp_path / "bk"))
    ready("wiki", "create", "beta", "--owner", BOB)
    (tmp_path / "bk" / "backup.json").write_text('{"wikis": ["alpha", "gone"]}')
    result = ready("restore", str(tmp_path / "bk"), "--force")
    assert result.code == 1 and result.one_error_line
    assert [line.split()[0] for line in ready("wiki", "list").out.splitlines()] == ["alpha", "beta"]
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in (data_dir / "wikis").iterdir()) == ["alpha", "beta"]


def test_run_refuses_busy_port(robot, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = free_ports(3)
        busy = taken.getsockname()[1]
        monkeypatch.setenv("MCP_PORT", str(busy))
        for name, port in zip(("WIKI_PORT", "API_PORT", "AUTH_PORT"), ports, strict=True):
            monkeypatch.setenv(name, str(port))
        result = robot("run")
    assert result.code == 1 and result.one_error_line
    assert f"{busy} (mcp, MCP_PORT)" in result.err and "`MCP_PORT=9000 make run`" in result.err
    assert "Ctrl-C" not in result.out  # no banner of URLs that would not answer


def test_robot_run_refuses_a_busy_port_before_the_banner(tmp_path):
    """The real command, as `make run` runs it, with the wiki port really taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = dict(
            zip(("MCP_PORT", "API_PORT", "AUTH_PORT"), map(str, free_ports(3)), strict=True)
        )
        env = {
            "PATH": os.environ["PATH"],
            "ROBOT_DATA_DIR": str(tmp_path / "data"),
            "ROBOT_BIND_HOST": "127.0.0.1",
            "WIKI_PORT": str(busy),
            **ports,
        }
        result = subprocess.run(
            [ROBOT_BIN, "run"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"robot: error: port already in use on 127.0.0.1: {busy} (otterwiki, WIKI_PORT); "
        "stop what listens there or pick another port, e.g. `WIKI_PORT=9000 make run`"
    ]
    assert "otterwiki  http" not in result.stdout and "Ctrl-C" not in result.stdout


def test_run_refuses_a_run_dir_too_deep_for_a_socket(robot, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBOT_RUN_DIR", str(tmp_path / ("x" * 110)))
    result = robot("run")
    assert result.code == 1 and result.one_error_line and "ROBOT_RUN_DIR" in result.err
