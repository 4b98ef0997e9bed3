"""The folder tree is the architecture (§10): imports only go down, and the core stays plain.

Entry modules -> service packages (wiki, mcp, manage, auth, ops) -> web (the Flask glue the
Flask services share) -> pages -> core. No service package imports another, and neither the
page domain nor the core imports a web framework. Imports are read with `ast`: lazy ones inside
functions, relative ones, `from app import wiki`, and module names in strings (importlib) all
count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
SERVICES = ("wiki", "mcp", "manage", "auth", "ops")
ENTRY_MODULES = {
    "__init__",
    "__main__",
    "wsgi",
    "mcp_entry",
    "api_server",
    "auth_server",
    "gunicorn.conf",
}
WEB_FRAMEWORKS = {
    "flask",
    "werkzeug",
    "starlette",
    "fastmcp",
    "mcp",
    "uvicorn",
    "gunicorn",
}
PACKAGES = (*SERVICES, "web", "pages", "core")
# Otterwiki's git storage and helpers import no Flask; the rest of it is its Flask app.
OTTERWIKI_PLAIN = {"otterwiki", "otterwiki.gitstorage", "otterwiki.util", "otterwiki.plugins"}
OTTERWIKI_PATCHERS = ("app.wiki.otterwiki", "app.wsgi")


def module_name(path: Path) -> str:
    """`app/wiki/gateway.py` -> `app.wiki.gateway`; a package's `__init__.py` -> the package."""
    parts = path.relative_to(APP.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, anywhere in it (relative ones resolved)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imported_by(path.read_text(), package)


def imported_by(source: str, package: str) -> set[str]:
    """Absolute names of the modules Python `source`, living in `package`, imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            # `from app.pages import text` and `from app import wiki` import app.pages.text and
            # the package app.wiki.
            names.update(
                f"{base}.{alias.name}" for alias in node.names if is_ours(f"{base}.{alias.name}")
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("app.wiki.gateway"), __import__, a factory string.
            if is_ours(node.value.partition(":")[0]):
                names.add(node.value.partition(":")[0])
    return names


def is_ours(name: str) -> bool:
    """Whether `name` is a module or package of app/ (app.x.y -> app/x/y.py or app/x/y/)."""
    if not name.startswith("app.") or not all(part.isidentifier() for part in name.split(".")):
        return False
    path = APP.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(module: str) -> str:
    """The room of a module of ours: 'entry', a service name, 'web', 'pages' or 'core'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "entry"


def allowed(source: str, target: str) -> bool:
    """Whether a module in layer `source` may import one in layer `target`."""
    if source == "entry":
        return True
    if source in SERVICES:
        return target in (source, "web", "pages", "core")
    if source == "web":
        return target in ("web", "pages", "core")
    if source == "pages":
        return target in ("pages", "core")
    return target == "core"


PYTHON_FILES = sorted(APP.rglob("*.py"))


def test_every_module_lives_in_a_package_or_is_an_entry_module():
    top = {path.name.removesuffix(".py") for path in APP.glob("*.py")}
    assert top <= ENTRY_MODULES, f"move {sorted(top - ENTRY_MODULES)} into a package"
    packages = {path.name for path in APP.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(PACKAGES)


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: str(path.relative_to(APP)))
def test_imports_only_go_down(path):
    source = layer(module_name(path))
    wrong = sorted(
        target
        for target in imported_modules(path)
        # `import app` runs app/__init__.py, the entry layer's package.
        if (target == "app" or target.startswith("app.")) and not allowed(source, layer(target))
    )
    assert not wrong, f"{source} module {module_name(path)} may not import {wrong}"


@pytest.mark.parametrize(
    "path",
    [path for path in PYTHON_FILES if layer(module_name(path)) in ("pages", "core")],
    ids=lambda path: str(path.relative_to(APP)),
)
def test_domain_and_core_import_no_web_framework(path):
    frameworks = {name.split(".")[0] for name in imported_modules(path)} & WEB_FRAMEWORKS
    assert not frameworks, f"{module_name(path)} imports {sorted(frameworks)}"


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: str(path.relative_to(APP)))
def test_only_one_package_touches_otterwikis_flask_app(path):
    """Architecture §10: all patching of Otterwiki lives in app/wiki/otterwiki/ (and wsgi.py)."""
    module = module_name(path)
    if module.startswith(OTTERWIKI_PATCHERS):
        return
    flask_parts = sorted(
        name
        for name in imported_modules(path)
        if name.split(".")[0] == "otterwiki" and name not in OTTERWIKI_PLAIN
    )
    assert not flask_parts, f"{module} imports {flask_parts}; only app/wiki/otterwiki/ may"


def test_the_rules_catch_what_they_forbid():
    """The checker itself: each forbidden direction is seen as forbidden."""
    assert not allowed("core", "pages")
    assert not allowed("pages", "wiki")
    assert not allowed("mcp", "auth")
    assert not allowed("wiki", "entry")
    assert allowed("wiki", "core") and allowed("entry", "ops")
    assert layer("app.wsgi") == "entry" and layer("app.wiki.gateway") == "wiki"
    assert not allowed("web", "wiki") and not allowed("core", "web") and allowed("auth", "web")
    assert "app.pages.text" in imported_modules(APP / "mcp" / "tools.py")


@pytest.mark.parametrize(
    "source",
    [
        "from app import wiki",
        "from app import mcp as m",
        "from .. import wiki",
        "from ..wiki import gateway",
        "import app",
        "import app.wiki.gateway",
        "from app.wiki.otterwiki import boot",
        "import importlib; importlib.import_module('app.wiki.gateway')",
        "__import__('app.manage.service')",
    ],
)
def test_every_spelling_of_an_upward_import_is_caught(source):
    """A core module importing a service, however spelled, is seen as importing it."""
    ours = {name for name in imported_by(source, "app.core") if name.split(".")[0] == "app"}
    assert any(not allowed("core", layer(name)) for name in ours), ours
