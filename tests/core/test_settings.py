import pytest

from app.core.database import describe
from app.core.errors import ConfigError
from app.core.settings import Settings


def test_local_defaults(tmp_path):
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path)})
    assert settings.db_path == tmp_path / "robot.db"
    assert settings.wiki_base == tmp_path / "wikis"
    assert settings.wiki_url("alpha") == "http://alpha.localhost:8000/"
    assert settings.mcp_url("alpha") == "http://alpha.localhost:8001/mcp"
    assert settings.bind_host == "127.0.0.1"
    assert settings.multi_tenant is False


def test_deployed_urls_have_no_ports():
    settings = Settings.from_env({"PLATFORM_DOMAIN": "robot.wtf", "ROBOT_DATA_DIR": "/srv/data"})
    assert settings.wiki_url("alpha") == "https://alpha.robot.wtf/"
    assert settings.mcp_url("alpha") == "https://alpha.robot.wtf/mcp"
    assert settings.auth_origin == "https://robot.wtf"
    assert settings.cookie_secure is True
    assert settings.bind_host == "0.0.0.0"


def test_ports_override():
    settings = Settings.from_env({"WIKI_PORT": "9000", "MCP_PORT": "9001"})
    assert settings.wiki_url("a1b") == "http://a1b.localhost:9000/"
    assert settings.mcp_port == 9001


@pytest.mark.parametrize(
    "environ",
    [
        {"MULTI_TENANT": "maybe"},
        {"WIKI_PORT": "eighty"},
        {"API_PORT": "70000"},
        {"ROBOT_DATA_DIRR": "/tmp"},
        {"PLATFORM_DOMAIN": "http://robot.wtf"},
        {"ROBOT_PUBLIC_SCHEME": "ftp"},
        {"ROBOT_SESSION_TTL": "-5"},
    ],
)
def test_bad_values_are_config_errors(environ):
    with pytest.raises(ConfigError):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    "value,expected", [("true", True), ("ON", True), ("0", False), ("no", False)]
)
def test_booleans(value, expected):
    assert Settings.from_env({"MULTI_TENANT": value}).multi_tenant is expected


def test_the_platform_db_is_sqlite_at_its_path_unless_a_url_is_given(tmp_path):
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path)})
    assert settings.database_url.database == str(tmp_path / "robot.db")
    assert settings.database_is_sqlite
    other = Settings.from_env({"ROBOT_DB_PATH": str(tmp_path / "elsewhere.db")})
    assert other.database_url.database == str(tmp_path / "elsewhere.db")


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://robot:s3cret@db.internal:5432/robot",
        "postgres://robot:s3cret@db.internal:5432/robot",
        "postgresql+psycopg://robot:s3cret@db.internal:5432/robot",
    ],
)
def test_postgresql_urls_use_psycopg_3_and_never_show_the_password(given):
    settings = Settings.from_env({"ROBOT_DB_URL": given})
    url = settings.database_url.render_as_string(hide_password=False)
    assert url == "postgresql+psycopg://robot:s3cret@db.internal:5432/robot"
    assert not settings.database_is_sqlite
    assert "s3cret" not in repr(settings)
    assert (
        describe(settings.database_url) == "postgresql+psycopg://robot:***@db.internal:5432/robot"
    )


def test_a_sqlite_url_names_the_db_path(tmp_path):
    settings = Settings.from_env({"ROBOT_DB_URL": f"sqlite:///{tmp_path}/x.db"})
    assert settings.db_path == tmp_path / "x.db" and settings.database_is_sqlite


@pytest.mark.parametrize(
    "given, problem",
    [
        ("mysql://robot@db/robot", "use postgresql\\+psycopg"),
        ("postgresql+asyncpg://robot@db/robot", "use postgresql\\+psycopg"),
        ("postgresql://robot@db", "names no database"),
        ("sqlite://", "names no database"),
        ("not a url", "is not a database URL"),
        ("://", "is not a database URL"),
        ("postgresql://robot:pa@ss:W0rdSecret@db:5432/robot", "percent-encode"),
        ("postgresql://robot:hunter2@Secret@127.0.0.1/robot", "percent-encode"),
    ],
)
def test_a_db_url_robot_cannot_use_stops_startup_with_a_reason(given, problem):
    with pytest.raises(ConfigError, match=problem) as error:
        Settings.from_env({"ROBOT_DB_URL": given})
    assert "ROBOT_DB_URL" in str(error.value) and "Secret" not in str(error.value)


@pytest.mark.parametrize("folder", ["we?ird", "hash#tag", "per%20cent", "sp ace"])
def test_a_sqlite_path_with_url_characters_stays_in_the_data_dir(tmp_path, folder):
    from app.core.platform import init_instance

    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / folder)})
    init_instance(settings)
    assert (tmp_path / folder / "robot.db").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [folder]


@pytest.mark.parametrize(
    "name, value",
    [("ATPROTO_PLC_URL", "http://127.0.0.1:5000"), ("ATPROTO_ALLOW_INSECURE_LOOPBACK", "1")],
)
def test_atproto_test_switches_are_refused_off_localhost(name, value):
    with pytest.raises(ConfigError, match=f"{name} is for tests only"):
        Settings.from_env({"PLATFORM_DOMAIN": "robot.wtf", name: value})


def test_atproto_test_switches_on_localhost():
    settings = Settings.from_env(
        {"ATPROTO_PLC_URL": "http://127.0.0.1:5000/", "ATPROTO_ALLOW_INSECURE_LOOPBACK": "yes"}
    )
    assert settings.atproto_plc_url == "http://127.0.0.1:5000"
    assert settings.atproto_allow_insecure_loopback is True
    assert Settings.from_env({}).atproto_plc_url == "https://plc.directory"


def test_login_url_carries_return_to():
    settings = Settings.from_env({})
    assert settings.login_url("http://localhost:8002/x") == (
        "http://localhost:8003/auth/login?return_to=http%3A%2F%2Flocalhost%3A8002%2Fx"
    )
