"""Filters for the deploy role: where each code file goes, and which programs a change touches."""

from __future__ import annotations

import ast
import os
import re

# Files every gunicorn program reads besides the modules its entry imports.
GUNICORN_FILES = ("app/gunicorn.conf.py",)


def _destination(rel, app_dir, static_dir):
    top = rel.split(os.sep, 1)[0]
    if top == "static":
        return os.path.join(static_dir, os.path.relpath(rel, "static")), "static"
    return os.path.join(app_dir, rel), top if top == "supervisor" else "code"


def code_plan(found, deployed, source_dir, app_dir, static_dir, owner, mode):
    """Decide from find results what to copy (new, different or wrong mode/owner) and remove."""
    current = {entry["path"]: entry for entry in deployed}
    plan = {"to_copy": [], "to_remove": [], "dirs": set()}
    wanted = set()
    for entry in sorted(found, key=lambda item: item["path"]):
        rel = os.path.relpath(entry["path"], source_dir)
        dest, kind = _destination(rel, app_dir, static_dir)
        wanted.add(dest)
        there = current.get(dest)
        if (
            there is None
            or there.get("checksum") != entry.get("checksum")
            or there.get("mode") != mode
            or there.get("pw_name") != owner
        ):
            plan["to_copy"].append({"src": entry["path"], "dest": dest, "rel": rel, "kind": kind})
            plan["dirs"].add(os.path.dirname(dest))
    plan["to_remove"] = sorted(set(current) - wanted)
    plan["dirs"] = sorted(plan["dirs"])
    return plan


def _module_file(source_dir, module):
    base = os.path.join(source_dir, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _imports(path, module):
    """Names of the modules a file imports (anywhere in it, lazy imports included)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _closure(source_dir, entry):
    """Repository-relative paths of the files a program imports from the checkout."""
    seen, todo, files = set(), [entry], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = _module_file(source_dir, module)
        if path is None:
            continue
        files.add(os.path.relpath(path, source_dir))
        todo.extend(_imports(path, module) - seen)
    return files


def affected_programs(changed, source_dir, programs):
    """Names of the programs that run a changed file; non-Python files under app/ touch all."""
    changed = [path for path in changed if path.startswith("app" + os.sep)]
    names = []
    for program in programs:
        files = _closure(source_dir, program["module"])
        if program.get("server") == "gunicorn":
            files.update(GUNICORN_FILES)
        if any(path in files or not path.endswith(".py") for path in changed):
            names.append(program["name"])
    return names


def substitute(text, mapping):
    """Replace every key of mapping in text in one pass (longest key first)."""
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(key) for key in keys))
    return pattern.sub(lambda match: str(mapping[match.group(0)]), text)


class FilterModule:
    """The role's filters."""

    def filters(self):
        return {
            "robot_code_plan": code_plan,
            "robot_affected_programs": affected_programs,
            "robot_substitute": substitute,
        }
