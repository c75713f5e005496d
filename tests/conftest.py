"""Shared pytest fixtures. Keep this small: only fixtures several test packages need."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_order import durations_lines, longest_files_first, read_durations, seconds_per_file

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL server started by scripts/start_postgres.sh for this session.

    If the server cannot be installed or started here, every test using this fixture (the
    `@pytest.mark.postgres` ones) is skipped with the script's own error output, and nothing else is.
    """
    # not under pytest's tmp dir: that is private to root, and the server runs as the `postgres` user
    pg_dir = tempfile.mkdtemp(prefix="rapport-pg-")
    script = ROOT / "scripts" / "start_postgres.sh"
    try:
        proc = subprocess.run(
            ["bash", str(script), pg_dir, str(_free_port())], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(pg_dir, ignore_errors=True)
        pytest.skip(f"PostgreSQL test server did not start within {exc.timeout} s (scripts/start_postgres.sh)")
    if proc.returncode != 0:
        shutil.rmtree(pg_dir, ignore_errors=True)
        reason = (
            f"PostgreSQL test server could not start (scripts/start_postgres.sh exited "
            f"{proc.returncode}); postgres tests SKIPPED. stderr:\n{proc.stderr[-3000:]}"
        )
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(script), "stop", pg_dir], capture_output=True, timeout=120)
        shutil.rmtree(pg_dir, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis' default 200 ms deadline per example is a timing assertion: on a loaded 2-core machine it
    # fails properties that hold. Speed is measured by bench/, not by tests.
    from hypothesis import settings

    settings.register_profile("rapport", deadline=None)
    settings.load_profile("rapport")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest test files first (tests/ci_order.py): with CI's two workers the long ones no longer run last."""
    items[:] = longest_files_first(items, read_durations())


# (nodeid, seconds) of every test phase this process saw: with xdist the controller sees every worker's reports
_PHASES: list[tuple[str, float]] = []
# shorter files are left out of the printed list: where they go hardly matters
PRINT_AT_LEAST_SECONDS = 5.0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _PHASES.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Seconds per test file, in tests/ci_durations.txt's format: a CI log then holds the list's next version."""
    lines = durations_lines(seconds_per_file(_PHASES), PRINT_AT_LEAST_SECONDS)
    if lines and config.getoption("durations") is not None:
        terminalreporter.write_sep(
            "=", f"seconds per test file (>= {PRINT_AT_LEAST_SECONDS:.0f} s; tests/ci_durations.txt)"
        )
        for line in lines:
            terminalreporter.write_line(line)
