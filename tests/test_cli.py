from __future__ import annotations

import subprocess
import sys

import pytest

from rapport.cli import build_parser


def test_help_explains_the_three_commands():
    text = build_parser().format_help()
    for word in ("demo", "run", "generate", "backfill", "RAPPORT_"):
        assert word in text


def test_console_script_help_runs_fast_without_heavy_imports():
    code = (
        "import sys; from rapport.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('airflow', 'dbt', 'great_expectations', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_unknown_reporting_currency_is_a_clear_error(monkeypatch, capsys):
    from rapport.cli import main

    monkeypatch.setenv("RAPPORT_REPORTING_CURRENCY", "EUR")
    assert main(["run"]) == 2
    assert "only USD" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["generate", "--people", "x"], ["bogus"]])
def test_bad_arguments_exit_with_usage(argv):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_backfill_rejects_an_end_before_the_start(capsys, tmp_path, monkeypatch):
    from rapport.cli import main

    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    assert main(["backfill", "--start", "2026-11-05", "--end", "2026-11-01"]) == 2
    assert "--end is before --start" in capsys.readouterr().err
