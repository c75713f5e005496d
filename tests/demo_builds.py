"""The small demo warehouse the end-to-end tests start from, built once per test session.

tests/e2e/test_demo_run.py, tests/expectations/test_corruptions_e2e.py and the extractor tests that need a
published file to protect (tests/extractors/extract_helpers.py `published_demo`) all start from the same
warehouse: `rapport generate --people 400 --seed 11 --end 2026-10-31`, then one clean `rapport run` for the
interval ending 2026-11-01, both as processes, as a user runs them. Each used to build its own (one or two
minutes each); `demo_warehouse` builds it once per session (tests/shared_builds.py) and `copy_of_demo` gives
a test its private copy. The shared build is read-only: copy it before running anything on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from shared_builds import shared_build

DEMO_PEOPLE = 400
DEMO_SEED = 11
DEMO_END = "2026-10-31"
DEMO_INTERVAL_END = "2026-11-01T00:00:00"
BUILD_NAME = "demo-400-seed11"
# What the build's `rapport run` printed, and the warehouse directory it ran on (the build runs in a
# directory that is renamed when it is done: the printed paths name that directory).
RUN_RECORD = "first-run.json"


def cli_env(wh: Path, **extra: str) -> dict[str, str]:
    """The environment of a `rapport` process on warehouse `wh`, free of the caller's RAPPORT_*/AIRFLOW*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env.update(RAPPORT_WAREHOUSE_DIR=str(wh), DO_NOT_TRACK="1")
    env.update(extra)
    return env


def rapport(args: list[str], env: dict[str, str], timeout: int = 1200) -> subprocess.CompletedProcess:
    """`python -m rapport.cli ARGS` as a process."""
    return subprocess.run(
        [sys.executable, "-m", "rapport.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def python_json(code: str, wh: Path, timeout: int = 600) -> dict:
    """Run `python -c code` on warehouse `wh` (cli_env) and return the JSON object its last line prints: for
    drivers that must start Airflow in a clean process of their own."""
    run = subprocess.run([sys.executable, "-c", code], env=cli_env(wh), capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def log_tail(wh: Path, chars: int = 6000) -> str:
    """The end of the warehouse's latest run log (for assertion messages)."""
    logs = sorted((wh / "logs").glob("run-*.log"))
    return logs[-1].read_text(errors="replace")[-chars:] if logs else ""


def _build(directory: Path) -> None:
    wh = directory / "warehouse"
    env = cli_env(wh)
    gen = rapport(["generate", "--people", str(DEMO_PEOPLE), "--seed", str(DEMO_SEED), "--end", DEMO_END], env)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    run = rapport(["run", "--interval-end", DEMO_INTERVAL_END], env)
    assert run.returncode == 0, run.stdout + run.stderr + log_tail(wh)
    record = {"warehouse": str(wh), "stdout": run.stdout}
    (directory / RUN_RECORD).write_text(json.dumps(record), encoding="utf-8")


@dataclass(frozen=True)
class DemoRun:
    """The build's first run: the warehouse directory it ran on (renamed since) and what it printed."""

    warehouse: Path
    stdout: str


def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's build directory: `warehouse/` (read only) and the first run's record."""
    return shared_build(tmp_path_factory, BUILD_NAME, _build)


def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's demo warehouse after its first clean run. Shared: read it, never write into it."""
    return demo_build(tmp_path_factory) / "warehouse"


def demo_first_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    record = json.loads((demo_build(tmp_path_factory) / RUN_RECORD).read_text(encoding="utf-8"))
    return DemoRun(warehouse=Path(record["warehouse"]), stdout=record["stdout"])


def copy_of_demo(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> Path:
    """A private copy, at `dest`, of the session's demo warehouse: a test may run and corrupt it freely."""
    shutil.copytree(demo_warehouse(tmp_path_factory), dest)
    return dest
