"""The code stays lint-clean: ruff (lint and format) on the Python, sqlfluff on the dbt models and tests
(dbt_project/.sqlfluff: lowercase, explicit aliases, dbt layout; macros are linted where models render them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_python_is_ruff_clean():
    out = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_python_is_ruff_formatted():
    # one layout for everyone's diffs: `ruff format .` fixes what this reports
    out = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_sql_is_sqlfluff_clean():
    out = subprocess.run(
        [str(BIN / "sqlfluff"), "lint", "models", "tests", "analyses", "--processes", "2", "--disable-progress-bar"],
        cwd=ROOT / "dbt_project",
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
