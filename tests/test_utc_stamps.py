"""The ops tables' own stamps (a run's start and end, the build ledger, build states) are UTC whatever the
machine's time zone, like the raw loads' `_extracted_at` and dbt's stamps. Each case runs the real steps in a
subprocess whose TZ is far from UTC (a stamp in the machine's zone would be 9 or 8 hours off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

SCRIPT = r"""
import json, sys
from pathlib import Path
from rapport.core.config import load_settings
from rapport.core.run_context import RunContext
from rapport.core.warehouse import open_warehouse
from rapport.pipeline import steps
from rapport.transform import build_state, increments

settings = load_settings({"RAPPORT_WAREHOUSE_DIR": sys.argv[1]})
ctx = RunContext.create("tz-run")
steps.start_run(settings, ctx)
steps.finish_run(settings, ctx)
with open_warehouse(settings) as con:
    increments.plan(con, run_id="tz-run", engine="duckdb")
    pending = con.execute("select recorded_at from ops.transform_increments").fetchall()[0][0]
    increments.commit(con, "tz-run")
    build_state.record(con, "docs", "f", "tz-run")
    stamps = {
        "started_at": con.execute("select started_at from ops.runs").fetchall()[0][0],
        "finished_at": con.execute("select finished_at from ops.runs").fetchall()[0][0],
        "pending recorded_at": pending,
        "committed recorded_at": con.execute("select recorded_at from ops.transform_increments").fetchall()[0][0],
        "build_state": con.execute("select * from ops.build_state").fetchall()[0][-1],
    }
print(json.dumps({k: v.isoformat() for k, v in stamps.items()}))
"""


@pytest.mark.parametrize("zone", ["Asia/Seoul", "America/Los_Angeles"])
def test_ops_stamps_are_utc_in_any_machine_time_zone(tmp_path, zone: str) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "wh")],
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    after = datetime.now(UTC).replace(tzinfo=None)
    stamps = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(stamps) == 5
    for name, text in stamps.items():
        stamp = datetime.fromisoformat(text)
        assert before <= stamp <= after, f"{name} {stamp} is not between {before} and {after} (UTC) under TZ={zone}"
