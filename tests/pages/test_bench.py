"""bench/search.py runs end to end at a tiny size (a smoke run: the figures are for people)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search.py"


def test_bench_quick_run_prints_every_ratio_and_the_build_time():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--pages", "40", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^index build: \d+\.\d+ s", done.stdout, re.M)
    assert len(re.findall(r" ms +\d+\.\d+x ", done.stdout)) == 5
    assert re.search(r"^headline: median ratio \d+\.\d+x", done.stdout, re.M)
