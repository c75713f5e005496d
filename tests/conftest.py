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
