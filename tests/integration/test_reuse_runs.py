"""Runs that land nothing new reuse what was built; `--full-refresh` rebuilds it and leaves extraction alone.

On a small demo:
1. a first run builds everything: the session's shared demo (tests/shared_demo.py, a `rapport demo` process
   running the same in-process DAGs as `run_dag`), copied here, its printed task states and file times read;
then in one child process (Airflow's configuration is per process), the real DAGs in-process:
2. a second run of the same day with nothing new skips the raw checks, dbt, the mart checks, dbt docs and
   the report, and still publishes: the published marts are byte-for-byte those of run 1 and the published
   `ops.runs` records both runs;
3. a full-refresh run of the same day rebuilds every model and output from the same landed rows: the same
   marts as run 1 (apart from the columns naming the run that wrote a row), the same raw rows and
   extractor state.
Slow: two in-process runs here (the first of them is short), on the shared demo's first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from shared_demo import LANGUAGE, clean_env, shared_demo
from test_backfill import _tables, table_differences  # the published-marts comparison of the backfill test

pytestmark = pytest.mark.slow

DRIVER = """
import json, shutil, sys
from datetime import UTC, datetime, timedelta
from rapport.core.config import load_settings
from rapport.orchestration.local_runner import run_dag

settings = load_settings()
log = settings.logs_dir / "runs.log"
end = datetime(2026, 11, 1, tzinfo=UTC)  # the shared demo's run ended its interval there
outputs = [settings.reports_dir / "latest.html", settings.published_dir / "dbt_docs" / "index.html"]
out = []
for i, full_refresh in [(2, False), (3, True)]:
    o = run_dag(settings, interval_end=end + timedelta(hours=i - 1), log_file=log, full_refresh=full_refresh)
    snap = settings.warehouse_dir.parent / f"after-{i}"
    shutil.copytree(settings.published_dir, snap / "published")
    shutil.copy(settings.work_db, snap / "work.duckdb")
    out.append({"run_id": o.run_id, "state": o.state, "states": o.task_states,
                "mtimes": [p.stat().st_mtime_ns for p in outputs],
                "fitted": "rapport.predictions.step" in sys.modules})
print(json.dumps(out))
"""
OUTPUTS = ("reports/latest.html", "published/dbt_docs/index.html")  # the driver's `outputs`, in its order


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("reuse")
    built = shared_demo(tmp_path_factory)
    wh = built.copy_to(base / "warehouse")
    # run 1 is the shared demo's run: its outcome as the driver records the others'
    snap = base / "after-1"
    shutil.copytree(wh / "published", snap / "published")
    shutil.copy(wh / "work" / "rapport_work.duckdb", snap / "work.duckdb")
    with duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True) as con:  # its final status
        [(run_id, status)] = con.execute("select run_id, status from ops.runs").fetchall()
    first = {"run_id": run_id, "state": status, "states": built.task_states(),
             "mtimes": [(wh / p).stat().st_mtime_ns for p in OUTPUTS]}  # fmt: skip
    # the same configuration as run 1 (the report language is one of the inputs a reuse must match)
    env = {**clean_env(wh), "RAPPORT_REPORT_LANGUAGE": LANGUAGE}
    run = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=1800)
    log = wh / "logs" / "runs.log"
    assert run.returncode == 0, run.stderr[-3000:] + (log.read_text()[-4000:] if log.exists() else "")
    return base, [first, *json.loads(run.stdout.strip().splitlines()[-1])]


def _published(base: Path, i: int) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(base / f"after-{i}" / "published" / "rapport.duckdb"), read_only=True)


def _digest(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Every column of every row, order-independent."""
    return con.execute(
        f"select count(*), md5(coalesce(string_agg(cast(r as varchar), chr(10) order by cast(r as varchar)), '')) "
        f"from {table} r"
    ).fetchone()


DBT = ("dbt.staging", "dbt.intermediate", "dbt.marts")


def test_every_run_succeeds_and_only_the_second_skips_dbt(runs):
    _, out = runs
    assert [r["state"] for r in out] == ["success"] * 3
    for i, r in enumerate(out, start=1):
        expected = "skipped" if i == 2 else "success"
        assert {t: r["states"][t] for t in DBT} == dict.fromkeys(DBT, expected), (i, r["states"])
        others = {t: s for t, s in r["states"].items() if t not in DBT}
        assert set(others.values()) == {"success"}, (i, others)


def test_a_run_with_nothing_new_does_not_load_the_prediction_models(runs):
    _, out = runs
    # run 2 is the child process's first: nothing before it imported the models (scipy); run 3 refits
    assert [r.get("fitted") for r in out[1:]] == [False, True]


def test_a_run_with_nothing_new_republishes_the_same_marts_and_records_itself(runs):
    base, out = runs
    first, second = _published(base, 1), _published(base, 2)
    marts = [t for t in _tables(first) if t.startswith("marts.")]
    assert "marts.customers" in marts
    assert {t: _digest(second, t) for t in marts} == {t: _digest(first, t) for t in marts}
    published_runs = second.execute("select run_id, status from ops.runs order by started_at").fetchall()
    assert published_runs == [(out[0]["run_id"], "success"), (out[1]["run_id"], "success")]


def test_a_run_with_nothing_new_keeps_the_report_and_the_dbt_docs(runs):
    _, out = runs
    assert out[1]["mtimes"] == out[0]["mtimes"]


def test_a_full_refresh_rebuilds_the_same_marts_and_every_output(runs):
    base, out = runs
    first, refreshed = _published(base, 1), _published(base, 3)
    tables = _tables(first)
    assert _tables(refreshed) == tables
    assert table_differences(first, refreshed, tables) == {}
    assert all(after > before for before, after in zip(out[1]["mtimes"], out[2]["mtimes"], strict=True))


def test_a_full_refresh_leaves_the_landed_rows_and_extractor_state_alone(runs):
    base, _ = runs
    state = {}
    for i in (2, 3):
        con = duckdb.connect(str(base / f"after-{i}" / "work.duckdb"), read_only=True)
        raw = con.execute("select table_name from information_schema.tables where table_schema = 'raw'").fetchall()
        state[i] = {
            "raw": {t: _digest(con, f"raw.{t}") for (t,) in raw},
            "extract_state": _digest(con, "ops.extract_state"),
            "esp_manifest": _digest(con, "ops.esp_manifest"),
        }
        con.close()
    assert state[3] == state[2]
    assert len(state[2]["raw"]) >= 10
