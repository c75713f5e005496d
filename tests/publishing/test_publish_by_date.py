"""Publishing segment_history by date (rapport.publishing.publish_diff, `DATED`): a publish replaces in the copy
only the dates whose rows changed since the previous publish (found by each date's row count and first and last
`recorded_at`), and the published log is the working one after new days, a re-run of a date with as many rows,
a backfill that empties the next date, a date removed, and a null date.

The working log is written as a build writes it: a date's rows deleted and inserted together, stamped with one
time per write. Hand-made rows (40 customers entering on D0, then c1..c4 on three dates: a day's change is
under the quarter of the rows above which the table is written afresh); every expectation is the working table
itself, compared row for row (`except all` both ways) with the published file and its Parquet copy, plus the
dates each publish replaced in the copy (rows deleted or inserted), listed by hand.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.publishing import publish_diff
from rapport.publishing.publish import publish

D0, D1, D2, D3 = date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3)
COLUMNS = "as_of_date, customer_id, change, rfm_segment, run_id, recorded_at"


@pytest.fixture()
def settings(tmp_path: Path):
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})


def _write(con: duckdb.DuckDBPyConnection, as_of: date | None, rows: list[tuple[str, str, str]], stamp: str) -> None:
    """A build's write of one date: its rows deleted, the new ones inserted with the build's run and time."""
    con.execute("delete from marts.segment_history where as_of_date is not distinct from ?", [as_of])
    for customer, change, segment in rows:
        con.execute(
            "insert into marts.segment_history values (?, ?, ?, ?, ?, ?)",
            [as_of, customer, change, segment, f"run-{stamp}", datetime.fromisoformat(f"2026-12-08 {stamp}")],
        )


def _working(settings) -> duckdb.DuckDBPyConnection:
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.work_db))
    for schema in ("marts", "quarantine", "ops"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table marts.segment_history (as_of_date date, customer_id varchar, change varchar, "
        "rfm_segment varchar, run_id varchar, recorded_at timestamp)"
    )
    con.execute("create table marts.customers as select 'c' || range as customer_id from range(1, 5)")
    con.execute("create table ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, status varchar)")
    _write(con, D0, [(f"b{i}", "entered", "No Purchases") for i in range(40)], "00:30:00")
    _write(con, D1, [("c1", "entered", "Champions"), ("c2", "entered", "At Risk"), ("c3", "entered", "Promising")],
           "01:00:00")  # fmt: skip
    _write(con, D2, [("c2", "changed", "Hibernating")], "02:00:00")
    return con


def _publish(con: duckdb.DuckDBPyConnection, settings, run_id: str) -> dict[str, str]:
    con.execute("insert into ops.runs values (?, now(), null, 'running')", [run_id])
    return publish(con, settings, run_id=run_id).how


def _published_equals_working(con: duckdb.DuckDBPyConnection, settings) -> None:
    con.execute(f"attach '{settings.published_db}' as published (read_only)")
    try:
        for a, b in (("marts", "published.marts"), ("published.marts", "marts")):
            extra = con.execute(
                f"select {COLUMNS} from {a}.segment_history except all select {COLUMNS} from {b}.segment_history"
            ).fetchall()
            assert extra == [], f"rows of {a} not in {b}"
        parquet = settings.published_dir / "parquet" / "marts.segment_history.parquet"
        assert con.execute(
            f"select count(*) from (select {COLUMNS} from read_parquet('{parquet}') "
            f"except all select {COLUMNS} from marts.segment_history)"
        ).fetchone() == (0,)
    finally:
        con.execute("detach published")


@pytest.fixture()
def replaced(monkeypatch: pytest.MonkeyPatch) -> list[list[date | None]]:
    """The dates each dated difference replaced in the copy: those with a row deleted or inserted (rowids)."""
    found: list[list[date | None]] = []
    real = publish_diff._dated_difference

    def spy(con, built, table, dated, cols, previous_unique):  # type: ignore[no-untyped-def]
        rows = f"select rowid, as_of_date from pub.{publish_diff.rel(table)}"
        before = set(con.execute(rows).fetchall())
        real(con, built, table, dated, cols, previous_unique)
        changed = {d for _, d in before ^ set(con.execute(rows).fetchall())}
        found.append(sorted(changed, key=lambda d: (d is None, d or D0)))

    monkeypatch.setattr(publish_diff, "_dated_difference", spy)
    return found


def test_each_publish_replaces_the_dates_written_since(settings, replaced):
    con = _working(settings)
    assert _publish(con, settings, "p0")["marts.segment_history"] == "written"  # the first: afresh
    _published_equals_working(con, settings)

    _write(con, D3, [("c1", "changed", "Loyal Customers"), ("c4", "entered", "New Customers")], "03:00:00")
    assert _publish(con, settings, "p1")["marts.segment_history"] == "difference by date"
    _published_equals_working(con, settings)

    # a re-run of D2 with as many rows (another segment), then a backfill of D1 that leaves D2 with no change
    _write(con, D2, [("c2", "changed", "Need Attention")], "04:00:00")
    _write(con, D1, [("c1", "entered", "Champions"), ("c2", "entered", "Need Attention"),
                     ("c3", "entered", "Promising")], "05:00:00")  # fmt: skip
    _write(con, D2, [], "05:00:00")
    assert _publish(con, settings, "p2")["marts.segment_history"] == "difference by date"
    _published_equals_working(con, settings)

    # the same rows rewritten by a later build (same count, a new stamp), and a row with no date
    _write(con, D3, [("c1", "changed", "Loyal Customers"), ("c4", "entered", "New Customers")], "06:00:00")
    _write(con, None, [("c9", "entered", "Promising")], "06:00:00")
    assert _publish(con, settings, "p3")["marts.segment_history"] == "difference by date"
    _published_equals_working(con, settings)

    # nothing written since: kept; then the null date's row removed
    assert _publish(con, settings, "p4")["marts.segment_history"] == "kept"
    _write(con, None, [], "07:00:00")
    assert _publish(con, settings, "p5")["marts.segment_history"] == "difference by date"
    _published_equals_working(con, settings)
    con.close()
    assert replaced == [[D3], [D1, D2], [D3, None], [], [None]]


def test_a_publish_that_would_replace_most_rows_writes_the_table_afresh(settings):
    con = _working(settings)
    _publish(con, settings, "p0")
    _write(con, D0, [(f"b{i}", "entered", "Hibernating") for i in range(40)], "03:00:00")
    # 80 rows deleted or inserted for 44: over a quarter
    assert _publish(con, settings, "p1")["marts.segment_history"] == "rewritten"
    _published_equals_working(con, settings)
    con.close()
