"""The code stays lint-clean: ruff (lint and format) on the Python, sqlfluff on the dbt models and tests
(dbt_project/.sqlfluff: lowercase, explicit aliases, dbt layout; macros are linted where models render them).

sqlfluff runs through tests/architecture/sqlfluff_lint.py: its own command line, with jinja's compiled code of
the macro files shared between the files it lints instead of compiled again (twice) for each of them, which
was most of what linting a model cost. Every file, rule and rendered variant is linted as before; the last
test checks that the shared compilation reports what the bare `sqlfluff` command reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SQLFLUFF_LINT = [sys.executable, str(Path(__file__).with_name("sqlfluff_lint.py")), "lint"]


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
        [*SQLFLUFF_LINT, "models", "tests", "analyses", "--processes", "2", "--disable-progress-bar"],
        cwd=ROOT / "dbt_project",
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


# A scratch project with the real project's jinja settings in small: two models render the same macros (one
# calling another from a second file, one with a branch: a second rendered variant), one model clean and one
# with violations in its own text.
SCRATCH_SQLFLUFF = """[sqlfluff]
dialect = duckdb
templater = jinja
rules = CP01, AL01

[sqlfluff:templater:jinja]
apply_dbt_builtins = True
load_macros_from_path = macros

[sqlfluff:rules:capitalisation.keywords]
capitalisation_policy = lower
"""
MACROS = {
    "cols.sql": "{% macro col(name) %}{{ name }}{% endmacro %}\n"
    "{% macro pick(name, total=false) %}{% if total %}sum({{ col(name) }}){% else %}{{ col(name) }}{% endif %}"
    "{% endmacro %}\n",
    "tables.sql": "{% macro source_table() %}{{ col('orders') }}{% endmacro %}\n",
}
MODELS = {
    "clean.sql": "select {{ pick('amount', total=true) }} as amount_total\nfrom {{ source_table() }} as o\n",
    "dirty.sql": "SELECT {{ pick('amount') }} AS amount\nfrom {{ source_table() }} o\n",
}


def _violations(command: list[str], project: Path) -> dict[str, list[tuple]]:
    out = subprocess.run(
        [*command, "models", "--format", "json", "--processes", "1", "--disable-progress-bar"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    return {
        Path(f["filepath"]).name: sorted((v["code"], v["start_line_no"], v["start_line_pos"]) for v in f["violations"])
        for f in json.loads(out.stdout)
    }


@pytest.mark.slow
def test_sharing_compiled_macros_reports_what_bare_sqlfluff_reports(tmp_path):
    (tmp_path / ".sqlfluff").write_text(SCRATCH_SQLFLUFF)
    for folder, files in (("macros", MACROS), ("models", MODELS)):
        (tmp_path / folder).mkdir()
        for name, text in files.items():
            (tmp_path / folder / name).write_text(text)
    shared = _violations(SQLFLUFF_LINT, tmp_path)
    assert shared == _violations([str(BIN / "sqlfluff"), "lint"], tmp_path)
    # hand-read: dirty.sql's upper-case SELECT (1:1) and AS (1:29: after `SELECT ` and the 20-character macro
    # call) and its implicit alias `o` of line 2; clean.sql has none
    assert shared["clean.sql"] == []
    codes = [(code, line) for code, line, _ in shared["dirty.sql"]]
    assert codes == [("AL01", 2), ("CP01", 1), ("CP01", 1)]
    assert [pos for code, _, pos in shared["dirty.sql"] if code == "CP01"] == [1, 29]
