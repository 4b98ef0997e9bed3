"""Read the platform's configuration from the environment, once, into one frozen object."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from app.core.errors import ConfigError

# The repository root: local defaults (./var, ./static) are relative to it, not to the cwd.
REPO_ROOT = Path(__file__).resolve().parents[2]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

# Every variable we read, with its help line. ROBOT_* names not listed here fail startup (typos).
VARIABLES = {
    "MULTI_TENANT": "serve every wiki by Host (unset: one plain Otterwiki, the benchmark baseline)",
    "ROBOT_DATA_DIR": "data directory: robot.db, signing key, wikis/",
    "ROBOT_DB_PATH": "platform SQLite database (used when ROBOT_DB_URL is unset)",
    "ROBOT_DB_URL": "platform database as a URL, postgresql+psycopg://user:password@host/db "
    "(unset: SQLite at ROBOT_DB_PATH)",
    "SIGNING_KEY_PATH": "EC P-256 private key that signs sessions and MCP tokens",
    "ROBOT_CLIENT_KEY_PATH": "EC P-256 key of the ATProto OAuth client, apart from the signing key",
    "PLATFORM_DOMAIN": "wikis live at {slug}.{PLATFORM_DOMAIN}",
    "WIKI_BASE": "directory holding one folder per wiki (repo/ and wiki.db)",
    "ROBOT_STATIC_DIR": "files served by api under /static/",
    "ROBOT_BIND_HOST": "address the four services listen on",
    "WIKI_PORT": "otterwiki port",
    "MCP_PORT": "mcp port",
    "API_PORT": "api port",
    "AUTH_PORT": "auth port",
    "ROBOT_RUN_DIR": "supervisor socket, pid file and gunicorn control sockets",
    "ROBOT_LOG_DIR": "program log files (local runs)",
    "ROBOT_PUBLIC_SCHEME": "scheme of public URLs: http locally, https behind Caddy",
    "ROBOT_SESSION_TTL": "lifetime of a browser session (and of a session JWT), seconds",
    "ROBOT_ACCESS_TOKEN_TTL": "lifetime of an OAuth access token issued to MCP clients, seconds",
    "ROBOT_MAX_WIKIS_PER_USER": "wikis one person may own via the API and UI (not the CLI)",
    "ROBOT_TENANT_CACHE_SIZE": "open wikis kept per wiki worker (LRU)",
    "ROBOT_SECRET_KEY_PATH": "random secret from which each wiki's Flask SECRET_KEY is derived",
    "ROBOT_APP_DIR": "directory holding app/ (supervisor runs the programs from there)",
    "ROBOT_VENV": "virtualenv whose bin/ has gunicorn, uvicorn and supervisord",
    "ROBOT_LOG_SYSLOG": "also send program output to syslog (the journal under systemd)",
    "ROBOT_RENDER_BUDGET": "CPU seconds a page render may take; past it the page shows its source",
    "ROBOT_RENDER_CACHE_MB": "size bound of the on-disk cache of rendered pages, shared by workers",
    "ROBOT_WIKI_CONCURRENCY": "requests the wikis of one owner may run at once across the wiki "
    "service's workers (default: half the cores, at least 1); the rest wait their turn "
    "(app/wiki/turns.py)",
    "ROBOT_MAX_ATTACHMENT_BYTES": "largest attachment one upload may carry, bytes (page API, "
    "MCP and Otterwiki's upload form)",
    "ROBOT_GIT_PUSH_MAX_BYTES": "largest git push (request body) and largest file in one, bytes",
    "ROBOT_WIKI_MAX_BYTES": "most a wiki's files may add up to after a git push, bytes "
    "(default 1 GiB)",
    "ROBOT_WORKER_TIMEOUT": "seconds a gunicorn worker may go silent on one request before it is "
    "killed (default 30; a git transfer checks in while it moves 32 KiB/s or more, up to 15 "
    "minutes)",
    "ATPROTO_PLC_URL": "the did:plc directory; tests only: refused unless "
    "PLATFORM_DOMAIN=localhost",
    "ATPROTO_ALLOW_INSECURE_LOOPBACK": "let sign-in reach http:// and loopback addresses, for the "
    "fake ATProto network of the tests (refused unless PLATFORM_DOMAIN=localhost)",
}
# The public did:plc directory (https://web.plc.directory/spec/v0.1/did-plc).
DEFAULT_PLC_URL = "https://plc.directory"


def _is_local(domain: str) -> bool:
    return domain == "localhost" or domain.endswith(".localhost")


def parse_bool(name: str, value: str) -> bool:
    """Cast an environment value to bool, refusing anything but the usual spellings."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true/false, yes/no, on/off, 1/0)")


def _parse_port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={value!r} is out of range 1-65535")
    return port


# The engines the platform store is written and tested for, by SQLAlchemy driver name.
DB_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


# A host name, IPv4 or bracketless IPv6 address; anything else came from a mis-split URL.
_HOST = re.compile(r"[A-Za-z0-9._:-]+")
_ENCODE = "; percent-encode '@', ':', '/', '?' and '#' in the user name and password (%40 ...)"


def parse_db_url(name: str, value: str) -> tuple[str, Path | None]:
    """Parse a platform DB URL into (PostgreSQL URL or "", SQLite file or None).

    PostgreSQL's driver is made psycopg 3; a sqlite:///path URL becomes the file path, so the
    SQLite database always lives at Settings.db_path. Raises ConfigError naming the variable
    (never the password) when the URL cannot be parsed or names an engine the store does not
    support.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value.strip())
    except (ArgumentError, ValueError):  # ValueError: a bare ':' in the password, read as a port
        raise ConfigError(
            f"{name} is not a database URL (postgresql+psycopg://...){_ENCODE}"
        ) from None
    driver = DB_DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            f"{name} names {url.drivername!r}; use postgresql+psycopg://user:password@host/db "
            "or leave it unset for SQLite"
        )
    if not url.database or url.database == ":memory:":
        raise ConfigError(
            f"{name} names no database (postgresql+psycopg://host/DATABASE, sqlite:///FILE)"
        )
    if driver == "sqlite":
        return "", Path(url.database).absolute()
    if url.host and not _HOST.fullmatch(url.host):
        # Most likely part of a password with a bare '@': never echo it.
        raise ConfigError(f"{name} has no valid host name{_ENCODE}")
    return url.set(drivername=driver).render_as_string(hide_password=False), None


def _parse_positive_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not 0 < number < float("inf"):
        raise ConfigError(f"{name}={value!r} must be positive")
    return number


def gunicorn_workers() -> int:
    """Sync workers each gunicorn program runs (app/gunicorn.conf.py): 2 x cores + 1, at most
    four, which keeps memory bounded (architecture §2)."""
    return min(2 * (os.cpu_count() or 1) + 1, 4)


def default_wiki_concurrency() -> int:
    """Requests one owner's wikis may run at once by default: half this host's cores, at least
    one."""
    return max(1, (os.cpu_count() or 1) // 2)


def _parse_positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if number <= 0:
        raise ConfigError(f"{name}={value!r} must be positive")
    return number


def _atproto_test_settings(env: Mapping[str, str], domain: str) -> tuple[str, bool]:
    """Read ATPROTO_PLC_URL and ATPROTO_ALLOW_INSECURE_LOOPBACK: test switches, local runs only."""
    plc_url = env.get("ATPROTO_PLC_URL", "").strip()
    loopback_value = env.get("ATPROTO_ALLOW_INSECURE_LOOPBACK", "").strip()
    loopback = parse_bool("ATPROTO_ALLOW_INSECURE_LOOPBACK", loopback_value or "false")
    for name, used in (("ATPROTO_PLC_URL", plc_url), ("ATPROTO_ALLOW_INSECURE_LOOPBACK", loopback)):
        if used and domain != "localhost":
            raise ConfigError(f"{name} is for tests only: refused unless PLATFORM_DOMAIN=localhost")
    if plc_url and not re.fullmatch(r"https?://[^/?#\s]+", plc_url.rstrip("/")):
        raise ConfigError(f"ATPROTO_PLC_URL={plc_url!r} is not an http(s) origin")
    return (plc_url.rstrip("/") or DEFAULT_PLC_URL), loopback


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one robot instance."""

    data_dir: Path
    db_path: Path
    signing_key_path: Path
    wiki_base: Path
    static_dir: Path
    run_dir: Path
    log_dir: Path
    platform_domain: str = "localhost"
    bind_host: str = "127.0.0.1"
    wiki_port: int = 8000
    mcp_port: int = 8001
    api_port: int = 8002
    auth_port: int = 8003
    multi_tenant: bool = False
    public_scheme: str = "http"
    session_ttl: int = 7 * 24 * 3600
    access_token_ttl: int = 3600
    max_wikis_per_user: int = 20
    tenant_cache_size: int = 64
    secret_key_path: Path | None = None
    app_dir: Path = REPO_ROOT
    venv_dir: Path = REPO_ROOT / ".venv"
    log_syslog: bool = False
    client_key_path: Path | None = None
    render_budget: float = 2.0
    render_cache_mb: int = 256
    wiki_concurrency: int = field(default_factory=lambda: default_wiki_concurrency())
    max_attachment_bytes: int = 10 * 1024 * 1024
    git_push_max_bytes: int = 100 * 1024 * 1024
    wiki_max_bytes: int = 1024**3
    atproto_plc_url: str = DEFAULT_PLC_URL
    atproto_allow_insecure_loopback: bool = False
    # From ROBOT_DB_URL; empty means SQLite at db_path (see database_url).
    db_url: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from a mapping (default: the process environment)."""
        env = dict(os.environ if environ is None else environ)
        unknown = sorted(k for k in env if k.startswith("ROBOT_") and k not in VARIABLES)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]} (known: see app/core/settings.py)")

        def get(name: str, default: str) -> str:
            value = env.get(name, "")
            return value if value.strip() else default

        domain = get("PLATFORM_DOMAIN", "localhost").strip().lower().rstrip(".")
        if not domain or "/" in domain or ":" in domain or " " in domain:
            raise ConfigError(f"PLATFORM_DOMAIN={domain!r} is not a domain name")
        local = _is_local(domain)
        data_dir = Path(get("ROBOT_DATA_DIR", str(REPO_ROOT / "var"))).absolute()
        scheme = get("ROBOT_PUBLIC_SCHEME", "http" if local else "https")
        if scheme not in ("http", "https"):
            raise ConfigError(f"ROBOT_PUBLIC_SCHEME={scheme!r} must be http or https")
        db_url, sqlite_path = "", None
        if env.get("ROBOT_DB_URL", "").strip():
            db_url, sqlite_path = parse_db_url("ROBOT_DB_URL", env["ROBOT_DB_URL"])
        plc_url, insecure_loopback = _atproto_test_settings(env, domain)
        return cls(
            data_dir=data_dir,
            db_path=sqlite_path
            or Path(get("ROBOT_DB_PATH", str(data_dir / "robot.db"))).absolute(),
            signing_key_path=Path(
                get("SIGNING_KEY_PATH", str(data_dir / "signing_key.pem"))
            ).absolute(),
            wiki_base=Path(get("WIKI_BASE", str(data_dir / "wikis"))).absolute(),
            static_dir=Path(get("ROBOT_STATIC_DIR", str(REPO_ROOT / "static"))).absolute(),
            run_dir=Path(get("ROBOT_RUN_DIR", str(data_dir / "run"))).absolute(),
            log_dir=Path(get("ROBOT_LOG_DIR", str(data_dir / "log"))).absolute(),
            platform_domain=domain,
            bind_host=get("ROBOT_BIND_HOST", "127.0.0.1" if local else "0.0.0.0"),
            wiki_port=_parse_port("WIKI_PORT", get("WIKI_PORT", "8000")),
            mcp_port=_parse_port("MCP_PORT", get("MCP_PORT", "8001")),
            api_port=_parse_port("API_PORT", get("API_PORT", "8002")),
            auth_port=_parse_port("AUTH_PORT", get("AUTH_PORT", "8003")),
            multi_tenant=parse_bool("MULTI_TENANT", env["MULTI_TENANT"])
            if env.get("MULTI_TENANT", "").strip()
            else False,
            public_scheme=scheme,
            session_ttl=_parse_positive_int(
                "ROBOT_SESSION_TTL", get("ROBOT_SESSION_TTL", str(7 * 24 * 3600))
            ),
            access_token_ttl=_parse_positive_int(
                "ROBOT_ACCESS_TOKEN_TTL", get("ROBOT_ACCESS_TOKEN_TTL", "3600")
            ),
            max_wikis_per_user=_parse_positive_int(
                "ROBOT_MAX_WIKIS_PER_USER", get("ROBOT_MAX_WIKIS_PER_USER", "20")
            ),
            tenant_cache_size=_parse_positive_int(
                "ROBOT_TENANT_CACHE_SIZE", get("ROBOT_TENANT_CACHE_SIZE", "64")
            ),
            secret_key_path=Path(
                get("ROBOT_SECRET_KEY_PATH", str(data_dir / "secret_key"))
            ).absolute(),
            app_dir=Path(get("ROBOT_APP_DIR", str(REPO_ROOT))).absolute(),
            venv_dir=Path(get("ROBOT_VENV", str(REPO_ROOT / ".venv"))).absolute(),
            log_syslog=parse_bool("ROBOT_LOG_SYSLOG", get("ROBOT_LOG_SYSLOG", "false")),
            client_key_path=Path(
                get("ROBOT_CLIENT_KEY_PATH", str(data_dir / "client_key.pem"))
            ).absolute(),
            db_url=db_url,
            render_budget=_parse_positive_float(
                "ROBOT_RENDER_BUDGET", get("ROBOT_RENDER_BUDGET", "2")
            ),
            render_cache_mb=_parse_positive_int(
                "ROBOT_RENDER_CACHE_MB", get("ROBOT_RENDER_CACHE_MB", "256")
            ),
            wiki_concurrency=_parse_positive_int(
                "ROBOT_WIKI_CONCURRENCY",
                get("ROBOT_WIKI_CONCURRENCY", str(default_wiki_concurrency())),
            ),
            max_attachment_bytes=_parse_positive_int(
                "ROBOT_MAX_ATTACHMENT_BYTES", get("ROBOT_MAX_ATTACHMENT_BYTES", str(10 * 1024**2))
            ),
            git_push_max_bytes=_parse_positive_int(
                "ROBOT_GIT_PUSH_MAX_BYTES", get("ROBOT_GIT_PUSH_MAX_BYTES", str(100 * 1024 * 1024))
            ),
            wiki_max_bytes=_parse_positive_int(
                "ROBOT_WIKI_MAX_BYTES", get("ROBOT_WIKI_MAX_BYTES", str(1024**3))
            ),
            atproto_plc_url=plc_url,
            atproto_allow_insecure_loopback=insecure_loopback,
        )

    @property
    def database_url(self):
        """The platform DB's sqlalchemy.engine.URL: ROBOT_DB_URL, or SQLite at ROBOT_DB_PATH.

        A URL object, not a string: a SQLite path may hold characters ('?', '#') that a URL
        string would split off.
        """
        from sqlalchemy.engine import URL
        from sqlalchemy.engine import make_url

        if self.db_url:
            return make_url(self.db_url)
        return URL.create("sqlite", database=str(self.db_path))

    @property
    def database_is_sqlite(self) -> bool:
        """Whether the platform DB is the embedded SQLite file at db_path."""
        return not self.db_url

    # Public URLs. Locally (plain http) each service is reached on its own port; behind Caddy
    # (https) every service shares port 443 and Caddy routes by host and path.

    @property
    def behind_proxy(self) -> bool:
        return self.public_scheme == "https"

    def _origin(self, host: str, port: int) -> str:
        if self.behind_proxy:
            return f"https://{host}"
        return f"{self.public_scheme}://{host}:{port}"

    def wiki_host(self, slug: str) -> str:
        return f"{slug}.{self.platform_domain}"

    def wiki_url(self, slug: str) -> str:
        return self._origin(self.wiki_host(slug), self.wiki_port) + "/"

    def mcp_origin(self, slug: str) -> str:
        return self._origin(self.wiki_host(slug), self.mcp_port)

    def mcp_url(self, slug: str) -> str:
        return self.mcp_origin(slug) + "/mcp"

    @property
    def auth_origin(self) -> str:
        """The auth service's issuer URL (the apex behind Caddy)."""
        return self._origin(self.platform_domain, self.auth_port)

    @property
    def api_origin(self) -> str:
        return self._origin(self.platform_domain, self.api_port)

    @property
    def dashboard_url(self) -> str:
        """The management dashboard: the signed-in person's wikis (the api service's)."""
        return f"{self.api_origin}/app/"

    @property
    def account_url(self) -> str:
        """The account page: who is signed in, their sessions, sign-out (the api service's)."""
        return f"{self.api_origin}/app/account"

    def login_url(self, return_to: str | None = None) -> str:
        """The sign-in page's URL; `return_to` is where the browser goes once signed in."""
        from urllib.parse import urlencode

        query = "?" + urlencode({"return_to": return_to}) if return_to else ""
        return f"{self.auth_origin}/auth/login{query}"

    @property
    def internal_wiki_socket(self) -> Path:
        """The wiki service's unix socket (supervisor/programs.conf), for calls from this host."""
        return self.run_dir / "otterwiki.sock"

    def internal_wiki_origin(self) -> str:
        """Where other services on this host reach the wiki service directly."""
        return f"http://{self._internal_host}:{self.wiki_port}"

    def internal_auth_origin(self) -> str:
        """Where other services on this host reach the auth service directly."""
        return f"http://{self._internal_host}:{self.auth_port}"

    @property
    def _internal_host(self) -> str:
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host

    @property
    def cookie_secure(self) -> bool:
        return self.public_scheme == "https"

    @property
    def render_cache_dir(self) -> Path:
        """The on-disk cache of rendered page bodies, shared by the wiki service's workers."""
        return self.data_dir / "render-cache"

    def wiki_dir(self, slug: str) -> Path:
        return self.wiki_base / slug

    def owner_turns_dir(self, owner_did: str) -> Path:
        """The folder of one owner's turn and debt files (app.wiki.turns), shared by the wiki
        service's workers; named by a digest, as a DID may hold any character."""
        return self.run_dir / "turns" / hashlib.sha256(owner_did.encode()).hexdigest()[:32]

    def repo_path(self, slug: str) -> Path:
        return self.wiki_dir(slug) / "repo"

    def wiki_db_path(self, slug: str) -> Path:
        return self.wiki_dir(slug) / "wiki.db"

    def search_index_path(self, slug: str) -> Path:
        """The wiki's full-text index (app.pages.fulltext): derived from git, never backed up."""
        return self.wiki_dir(slug) / "search.db"

    def link_map_path(self, slug: str) -> Path:
        """The wiki's map of links (app.pages.link_map): derived from git, never backed up."""
        return self.wiki_dir(slug) / "links.db"
