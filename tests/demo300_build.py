"""The small demo warehouse several slow files start from: `rapport demo --people 300 --months 2` up to DAY.

tests/integration/test_first_day_relations.py, tests/integration/test_incremental_equals_full.py and
tests/dbt/test_dbt_threads.py each ran this very command (same people, months, end and interval end, default
dbt threads) in a fixture of their own: ~25 CPU seconds each. It is now built once per test session
(tests/shared_builds.py, also across xdist workers) and each file works on its own copy (`demo300_copy`): the
demo writes nothing outside its warehouse directory, and a copied warehouse continues like the original
(the next `rapport demo --end` or dbt build reads the copy's sources, files and logs).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from demo_builds import cli_env as demo_env
from shared_builds import copy_of

DAY = date(2026, 11, 1)
NAME = "demo300-2026-11-01"


def run_demo(wh: Path, day: date) -> None:
    """`rapport demo --people 300 --months 2 --end day` on `wh`: a full run on an empty warehouse, else the
    demo continues to `day`."""
    proc = subprocess.run([sys.executable, "-m", "rapport.cli", "demo", "--people", "300", "--months", "2",
                           "--end", day.isoformat(), "--interval-end", f"{day.isoformat()}T00:00:00"],
                          env=demo_env(wh), capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _build(wh: Path) -> None:
    run_demo(wh, DAY)


def demo300_copy(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> Path:
    """A private copy at `dest` of the session's demo warehouse (300 people, 2 months, full run up to DAY)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return copy_of(tmp_path_factory, NAME, _build, dest)
