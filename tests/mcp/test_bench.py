"""bench/mcp.py runs end to end (a smoke run: the figures themselves are for people to read)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "mcp.py"


def test_bench_quick_run_measures_every_path():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "3", "--runs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in ("page API GET", "MCP, fastmcp Client", "MCP request"):
        assert (
            len(
                re.findall(rf"^  {path} +\d+\.\d+ ms +ratio \d+\.\d+x +\(runs: ", done.stdout, re.M)
            )
            == 4  # two pages, each on SQLite and on PostgreSQL
        )
    for engine in ("SQLite", "PostgreSQL"):
        assert re.search(rf"^headline on {engine} .*: \d+\.\d+x", done.stdout, re.M)
