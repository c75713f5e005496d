"""What a day's run reads of marts.segment_history, a log that grows every day (issue 16): segment_migrations
reads the log's state table for its default dates, and the uniqueness test of the log's key groups, on a day
build, only the dates with rows written since the last passing build.

Hand-made warehouse (tests/segment_history_logs.py's four people: ann orders on 01-10 and 03-05, ben on 01-20
and 02-15, dan as a guest on 01-05, cat never), built for F1, F2, F3, F4 in order, then a backfill B between
F1 and F2. segment_migrations is compared after each build with the migrations between the two dates' snapshots
(customer_segments after each build: the state the log records at a date is that date's snapshot), counted
here in Python; the vars choose other dates, which are read from the whole log.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dbt_nodes import dbt_nodes, execute_sql
from segment_history_logs import MODELS_ONLY, SELECT, read_snapshot, seed

from rapport.core.config import load_settings

pytestmark = pytest.mark.slow  # 10 dbt builds of models (~4 s CPU each) and 4 dbt tests

F1, F2, F3, F4 = date(2025, 2, 1), date(2025, 3, 1), date(2025, 3, 10), date(2025, 3, 20)
B = date(2025, 2, 15)
UNIQUE = "assert_segment_history_keys_unique"
STATE_TABLE = '"intermediate"."segment_history__state"'


def _expected(snapshots: dict[date, pd.DataFrame], from_date: date | None, to_date: date) -> dict[tuple, int]:
    """(from_date, to_date, from_segment, to_segment) -> customers, from the two snapshots."""
    before = {} if from_date is None else dict(zip(snapshots[from_date]["customer_id"],
                                                   snapshots[from_date]["rfm_segment"], strict=True))  # fmt: skip
    after = dict(zip(snapshots[to_date]["customer_id"], snapshots[to_date]["rfm_segment"], strict=True))
    moves: dict[tuple, int] = {}
    for customer in before.keys() | after.keys():
        key = (from_date, to_date, before.get(customer, "(absent)"), after.get(customer, "(absent)"))
        moves[key] = moves.get(key, 0) + 1
    return moves


def _migrations(wh: Any) -> tuple[dict[tuple, int], bool]:
    """The mart's rows, and whether its last build read the state table (its compiled SQL names it)."""
    rows = wh.query("select from_date, to_date, from_segment, to_segment, customers from marts.segment_migrations")
    compiled = (wh.settings.warehouse_dir / "dbt" / "target" / "compiled" / "rapport" / "models" / "marts"
                / "segments" / "segment_migrations.sql").read_text()  # fmt: skip
    return {tuple(r[:4]): r[4] for r in rows}, STATE_TABLE in compiled


@pytest.fixture(scope="module")
def year(make_warehouse: Any, rows: Any) -> dict[str, Any]:
    wh = make_warehouse("segment_history_year")
    seed(wh, rows, ann_orders_again=True)
    snapshots: dict[date, pd.DataFrame] = {}
    out: dict[str, tuple[dict[tuple, int], bool]] = {}

    def build(as_of: date, run_id: str) -> None:
        wh.build(as_of=as_of, run_id=run_id, select=SELECT, extra_args=MODELS_ONLY)
        snapshots[as_of] = read_snapshot(wh)
        out[run_id] = _migrations(wh)

    def migrations_only(name: str, dbt_vars: dict[str, str]) -> None:
        wh.build(as_of=F4, run_id=name, select=["segment_migrations"],
                 extra_args=[*MODELS_ONLY, "--vars", json.dumps(dbt_vars)])  # fmt: skip
        out[name] = _migrations(wh)

    for as_of, run_id in ((F1, "f1"), (F2, "f2"), (F3, "f3"), (F4, "f4"), (B, "b")):
        build(as_of, run_id)
    migrations_only("to-f2", {"segment_migration_to_date": str(F2)})
    migrations_only("from-f1", {"segment_migration_from_date": str(F1)})
    migrations_only("to-after-f4", {"segment_migration_to_date": "2025-03-25"})  # the latest on or before: F4
    # the registry alone (a build stopped before the log): F4 registered again by another run, so the kept
    # registry is not the registry any more
    wh.build(as_of=F4, run_id="registry-only", select=["segment_history_dates"], extra_args=MODELS_ONLY)
    migrations_only("registry-moved", {})
    return {"wh": wh, "snapshots": snapshots, "out": out}


def test_default_dates_are_read_from_the_state_table_with_the_same_rows(year: dict[str, Any]) -> None:
    snapshots, out = year["snapshots"], year["out"]
    want = {
        "f1": (None, F1),  # one recorded date: everyone from (absent)
        "f2": (F1, F2),
        "f3": (F2, F3),
        "f4": (F3, F4),
        "b": (F3, F4),  # a backfill: the state rebuilt from the whole log, the latest two dates still F3, F4
        "to-after-f4": (F3, F4),
    }
    for name, (from_date, to_date) in want.items():
        migrations, read_state = out[name]
        assert migrations == _expected(snapshots, from_date, to_date), name
        assert read_state, name


def test_other_dates_and_a_state_that_is_not_the_logs_read_the_whole_log(year: dict[str, Any]) -> None:
    snapshots, out = year["snapshots"], year["out"]
    want = {
        "to-f2": (B, F2),  # the recorded date before F2 is now the backfilled B
        "from-f1": (F1, F4),
        "registry-moved": (F3, F4),
    }
    for name, (from_date, to_date) in want.items():
        migrations, read_state = out[name]
        assert migrations == _expected(snapshots, from_date, to_date), name
        assert not read_state, name
    # the dates' changes this relies on: a customer whose latest row before F4 is after F2 (the state table
    # alone could not tell their segment on F2)
    assert year["wh"].query("select count(*) from marts.segment_history where as_of_date in (?, ?)", [F3, F4])[0][0]


# ---- the uniqueness of (as_of_date, customer_id) on a day build ---------------------------------------------


def _copy(year: dict[str, Any], directory: Path) -> Any:
    wh = year["wh"]
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    return type(wh)(settings)


def _unique(wh: Any, since: str | None) -> tuple[str, int, str]:
    node = dbt_nodes(wh, "test", [UNIQUE], since, F4)[UNIQUE]
    return node["status"], node["failures"], node["compiled_code"]


def _duplicate(wh: Any, as_of: date | None, recorded_at: str, copies: int = 1) -> None:
    """Copies of one of the log's rows at `as_of` (or of any row, given the null date), stamped `recorded_at`."""
    where = "true" if as_of is None else f"as_of_date = date '{as_of}'"
    new_date = "null" if as_of is None else "as_of_date"
    [(before,)] = wh.query("select count(*) from marts.segment_history")
    for _ in range(copies):
        execute_sql(wh, f"insert into marts.segment_history select * replace (cast({new_date} as date) as as_of_date, "
                        f"timestamp '{recorded_at}' as recorded_at) "
                        f"from marts.segment_history where {where} order by customer_id limit 1")  # fmt: skip
    assert wh.query("select count(*) from marts.segment_history") == [(before + copies,)]


def _latest_logged(wh: Any) -> date:
    """The latest date with rows in the log (a date where nobody changed has none)."""
    return wh.query("select max(as_of_date) from marts.segment_history")[0][0]


def _since() -> tuple[str, str]:
    """A `since` after every build so far (the last passing build's), and a stamp after it (a build since)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return str(now), str(now + timedelta(seconds=1))


def test_a_duplicate_the_day_wrote_fails_the_day(year: dict[str, Any], tmp_path: Path) -> None:
    wh = _copy(year, tmp_path)
    since, later = _since()
    day = _latest_logged(wh)
    _duplicate(wh, day, later)
    status, failures, sql = _unique(wh, since)
    assert (status, failures) == ("fail", 1)
    assert re.search(rf"where\s+as_of_date in \(\s*cast\('{day}' as date\)\s*\)\s*group by", sql)  # its date only


def test_old_duplicates_are_left_to_a_build_without_since(year: dict[str, Any], tmp_path: Path) -> None:
    wh = _copy(year, tmp_path)
    since, _ = _since()
    _duplicate(wh, _latest_logged(wh), "2025-03-01 06:00:00")  # stamped before `since`: as an earlier build's
    status, failures, sql = _unique(wh, since)
    assert (status, failures) == ("pass", 0)
    assert re.search(r"where\s+false\s+group by", sql)  # no row written since: no date
    assert _unique(wh, None)[:2] == ("fail", 1)


def test_rows_without_a_date_written_since_are_grouped(year: dict[str, Any], tmp_path: Path) -> None:
    wh = _copy(year, tmp_path)
    since, later = _since()
    _duplicate(wh, None, later, copies=2)
    status, failures, sql = _unique(wh, since)
    assert (status, failures) == ("fail", 1)
    assert "or as_of_date is null" in sql
