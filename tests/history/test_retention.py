"""What a run keeps of past runs (issue 16, rapport.pipeline.retention): the per-run files of all but the
newest RAPPORT_KEEP_RUNS runs are deleted by the run's first step; nothing else is."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.core.run_context import RunContext
from rapport.pipeline import steps
from rapport.pipeline.retention import file_name, prune_run_files


def _touch(path: Path, age_s: int, text: str = "x") -> Path:
    """A file last written `age_s` seconds ago (so the newest-first order is the writing order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = 1_800_000_000 - age_s
    os.utime(path, (when, when))
    return path


def _warehouse(root: Path, runs: int) -> None:
    """`runs` past runs' files, run i written i hours before the newest (i = 0 is the newest)."""
    for i in range(runs):
        stamp = f"202611{30 - i // 24:02d}T{23 - i % 24:02d}0000"
        _touch(root / "logs" / f"run-{stamp}.log", 3600 * i)
        _touch(root / "runs" / f"{file_name(f'manual__run{i:02d}+00:00')}.json", 3600 * i)
    for i in range(3):  # a failed dbt layer's saved results of three runs: 0, 1 and 2 days old
        run_dir = root / "dbt" / "airflow" / file_name(f"manual__run{i * 24:02d}+00:00")
        _touch(run_dir / "dbt.marts" / "run_results.json", 86400 * i)
        os.utime(run_dir, (1_800_000_000 - 86400 * i,) * 2)
    for i in range(2):
        _touch(root / "logs" / f"backfill-2026110{i}T000000.log", 86400 * (40 + i))
        _touch(root / "logs" / f"forget-2026110{i}T000000.log", 86400 * (40 + i))
    _touch(root / "reports" / "rapport_report_2026-10-01.html", 86400 * 60)


def _names(folder: Path, pattern: str = "*") -> set[str]:
    return {p.name for p in folder.glob(pattern)}


def test_the_newest_runs_files_are_kept_and_the_older_ones_deleted(tmp_path):
    _warehouse(tmp_path, 40)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_KEEP_RUNS": "2"})
    pruned = prune_run_files(settings)
    # run logs: the 2 newest of the 40 (hours 0 and 1 of Nov 30); both backfill logs (only 2); forget logs all
    assert _names(tmp_path / "logs", "run-*") == {"run-20261130T230000.log", "run-20261130T220000.log"}
    assert _names(tmp_path / "logs", "backfill-*") == {"backfill-20261100T000000.log", "backfill-20261101T000000.log"}
    assert len(_names(tmp_path / "logs", "forget-*")) == 2
    assert _names(tmp_path / "runs") == {"manual__run00_00_00.json", "manual__run01_00_00.json"}
    assert _names(tmp_path / "dbt" / "airflow") == {"manual__run00_00_00", "manual__run24_00_00"}
    assert (tmp_path / "reports" / "rapport_report_2026-10-01.html").exists()
    assert (len(pruned.logs), len(pruned.markers), len(pruned.dbt_results)) == (38, 38, 1)


def test_the_current_runs_files_are_kept_however_old(tmp_path):
    _warehouse(tmp_path / "a", 5)
    _warehouse(tmp_path / "b", 5)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "a")})
    assert settings.keep_runs == 30  # the documented default
    prune_run_files(settings, current_run_id="manual__run04+00:00", keep=1)
    assert _names(tmp_path / "a" / "runs") == {"manual__run00_00_00.json", "manual__run04_00_00.json"}
    assert _names(tmp_path / "a" / "dbt" / "airflow") == {"manual__run00_00_00"}
    prune_run_files(
        load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "b")}), current_run_id="manual__run48+00:00", keep=1
    )
    assert _names(tmp_path / "b" / "runs") == {"manual__run00_00_00.json"}
    assert _names(tmp_path / "b" / "dbt" / "airflow") == {"manual__run00_00_00", "manual__run48_00_00"}


def test_keep_zero_keeps_everything_and_a_negative_setting_is_refused(tmp_path):
    _warehouse(tmp_path, 35)
    before = sorted(p for p in tmp_path.rglob("*"))
    pruned = prune_run_files(load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_KEEP_RUNS": "0"}))
    assert pruned.count == 0 and sorted(p for p in tmp_path.rglob("*")) == before
    with pytest.raises(ValueError, match="RAPPORT_KEEP_RUNS"):
        load_settings({"RAPPORT_KEEP_RUNS": "-1"})


def test_a_runs_first_step_prunes_the_files_of_older_runs(tmp_path):
    _warehouse(tmp_path, 33)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    ctx = RunContext.create("manual__new+00:00", interval_end=None)
    steps.start_run(settings, ctx)
    # 30 kept of 33 run logs; 30 markers kept of the 33 (this run writes its own marker later, at its end)
    assert len(_names(tmp_path / "logs", "run-*")) == 30
    assert "run-20261130T230000.log" in _names(tmp_path / "logs")
    assert len(_names(tmp_path / "runs")) == 30
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        assert con.execute("select status from ops.runs where run_id = ?", [ctx.run_id]).fetchall() == [("running",)]
