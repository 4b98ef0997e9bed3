"""robot's own version, from the installed package's metadata (pyproject.toml is its source)."""

from __future__ import annotations

from importlib.metadata import version

# Read once: the metadata of an installed package does not change while a process runs.
VERSION = version("robot")
