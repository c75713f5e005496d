"""A run killed outright never records its end; the next in-process run (which holds the run lock, so no other
run can be under way) closes such rows, so ops.runs never shows a dead run as running."""

from __future__ import annotations

import duckdb

from rapport.core.config import load_settings
from rapport.orchestration.local_runner import ABANDONED, close_abandoned_runs


def test_running_rows_are_closed_as_failed_and_others_kept(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    assert close_abandoned_runs(settings) == []  # a fresh warehouse: nothing to do, nothing created
    assert not settings.work_db.exists()
    settings.work_db.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.work_db))
    con.execute("create schema ops")
    con.execute("create table ops.runs (run_id varchar, started_at timestamp, status varchar, error varchar)")
    con.execute(
        "insert into ops.runs values ('killed', now(), 'running', null), ('ok', now(), 'success', null), "
        "('broke', now(), 'failed', 'task x failed'), ('killed2', now(), 'running', null)"
    )
    con.close()
    assert close_abandoned_runs(settings) == ["killed", "killed2"]
    con = duckdb.connect(str(settings.work_db), read_only=True)
    rows = {r[0]: r[1:] for r in con.execute("select run_id, status, error from ops.runs").fetchall()}
    con.close()
    assert rows == {
        "killed": ("failed", ABANDONED),
        "killed2": ("failed", ABANDONED),
        "ok": ("success", None),
        "broke": ("failed", "task x failed"),
    }
    assert close_abandoned_runs(settings) == []
