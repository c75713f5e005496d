"""Segment migrations since the previous run, and segment sizes over time, when the data allows.

Both relations are optional in the published file (`marts.segment_migrations`, `marts.segment_history`).
Migrations come from the mart when published, else from comparing with `previous_db` when given; when
neither is there, the report says so in a sentence instead of showing a chart.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from rapport.reports.data import fetch_dicts, whole
from rapport.reports.segment_sizes import sizes_at_dates

log = logging.getLogger("rapport.reports")

NEW = "(new)"  # shown for a customer who had no segment before
GONE = "(gone)"  # shown for a customer no longer in the data (merged identities, erased)
ABSENT = "(absent)"  # how marts.segment_migrations names "not in the data on that date"
HISTORY_POINTS = 12

Move = tuple[str | None, str | None, int]  # from segment, to segment (None: absent), customers


@dataclass(frozen=True)
class Migrations:
    flows: list[dict[str, Any]]  # from_segment, to_segment, customers: moves only, largest first
    net: list[tuple[str, int]]  # per segment: customers gained minus customers lost
    moved: int
    stayed: int
    arrived: int
    left: int
    source: str
    from_date: date | None = None  # the two snapshots compared, when the source says
    to_date: date | None = None

    @property
    def first_snapshot(self) -> bool:
        """Nobody was in an earlier snapshot: there was none to compare with (the first run)."""
        return self.moved == self.stayed == self.left == 0


@dataclass(frozen=True)
class SegmentHistory:
    dates: list[date]
    series: dict[str, list[int]]  # segment -> customers at each date


def summarise(rows: list[Move], source: str, from_date: date | None = None, to_date: date | None = None) -> Migrations:
    flows: list[dict[str, Any]] = []
    net: dict[str, int] = defaultdict(int)
    moved = stayed = arrived = left = 0
    for frm, to, n in rows:
        if not n:
            continue
        if frm is not None and frm == to:
            stayed += n
            continue
        if frm is None:
            arrived += n
        elif to is None:
            left += n
        else:
            moved += n
        if to is not None:
            net[to] += n
        if frm is not None:
            net[frm] -= n
        flows.append({"from_segment": frm or NEW, "to_segment": to or GONE, "customers": n})
    flows.sort(key=lambda f: (-f["customers"], f["from_segment"], f["to_segment"]))
    net_sorted = sorted(((s, v) for s, v in net.items() if v), key=lambda sv: (-sv[1], sv[0]))
    return Migrations(flows, net_sorted, moved, stayed, arrived, left, source, from_date, to_date)


def _segment(name: Any) -> str | None:
    return None if name is None or name == ABSENT else str(name)


def _from_mart(con: duckdb.DuckDBPyConnection, cols: set[str]) -> Migrations:
    """The mart compares two snapshots (`from_date`, `to_date`); should it ever keep several periods,
    the latest one is "since the previous run"."""
    period = next((c for c in ("to_date", "as_of_date") if c in cols), None)
    where = f"where {period} = (select max({period}) from marts.segment_migrations)" if period else ""
    rows = con.execute(
        f"select from_segment, to_segment, sum(customers) from marts.segment_migrations {where} group by all"
    ).fetchall()
    dates: tuple[Any, Any] = (None, None)
    if {"from_date", "to_date"} <= cols:
        dates = con.execute(f"select max(from_date), max(to_date) from marts.segment_migrations {where}").fetchall()[0]
    moves = [(_segment(f), _segment(t), whole(n) or 0) for f, t, n in rows]
    return summarise(moves, "marts.segment_migrations", *dates)


def _from_previous_db(con: duckdb.DuckDBPyConnection, previous_db: Path) -> Migrations:
    path = str(previous_db).replace("'", "''")
    con.execute(f"attach '{path}' as prev_pub (read_only)")
    try:
        rows = con.execute(
            """
            select prev.rfm_segment, cur.rfm_segment, count(*)
            from marts.customer_segments as cur
            full outer join prev_pub.marts.customer_segments as prev using (customer_id)
            group by all
            """
        ).fetchall()
        from_date = con.execute("select max(as_of_date) from prev_pub.marts.customer_segments").fetchall()[0][0]
    finally:
        con.execute("detach prev_pub")
    moves = [(_segment(f), _segment(t), int(n)) for f, t, n in rows]
    return summarise(moves, "the previous published file", from_date)


def load_migrations(
    con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], previous_db: Path | None
) -> Migrations | None:
    cols = columns.get("marts.segment_migrations")
    if cols is not None and {"from_segment", "to_segment", "customers"} <= cols:
        return _from_mart(con, cols)
    if previous_db is not None and previous_db.exists():
        try:
            return _from_previous_db(con, previous_db)
        except duckdb.Error as exc:
            log.warning("cannot compare segments with %s: %s", previous_db, exc)
    return None


def load_segment_history(
    con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], cache: Path | None = None
) -> SegmentHistory | None:
    """Segment sizes at the latest recorded as-of dates. marts.segment_history is a change log (a row where a
    customer's state changed, `change` 'left' when the id went); a file published before that holds one row
    per customer and date, or per date and segment with a `customers` count. `cache`: where the sizes are kept
    from one report to the next (rapport.reports.segment_sizes; None: computed from the whole log)."""
    cols = columns.get("marts.segment_history")
    if cols is None or not {"as_of_date", "rfm_segment"} <= cols:
        return None
    if "change" in cols:
        has_dates = "marts.segment_history_dates" in columns

        def whole_log() -> list[dict]:
            return fetch_dicts(con, _sizes_from_changes(has_dates), [HISTORY_POINTS])

        keyed = cache if {"recorded_at", "customer_id"} <= cols else None
        recent = _recent_dates(con, has_dates) if keyed is not None else []
        if keyed is None or any(d is None for d in recent) or len(set(recent)) < len(recent):
            rows = whole_log()  # the keyed path covers dated, distinct dates only
        else:
            rows = sizes_at_dates(con, sorted(recent), whole_log, keyed)
    else:
        measure = "sum(customers)" if "customers" in cols else "count(*)"
        rows = fetch_dicts(
            con,
            f"""
            with recent_dates as (
                select distinct as_of_date from marts.segment_history order by as_of_date desc limit ?
            )
            select as_of_date, rfm_segment, {measure} as n
            from marts.segment_history
            where as_of_date in (select as_of_date from recent_dates)
            group by all
            """,
            [HISTORY_POINTS],
        )
    if not rows:
        return None
    dates = sorted({r["as_of_date"] for r in rows})
    if len(dates) < 2:  # one point is no trend
        return None
    index = {d: i for i, d in enumerate(dates)}
    series: dict[str, list[int]] = {}
    for r in rows:
        series.setdefault(str(r["rfm_segment"]), [0] * len(dates))[index[r["as_of_date"]]] = whole(r["n"]) or 0
    return SegmentHistory(dates, series)


def _recent_dates(con: duckdb.DuckDBPyConnection, has_dates: bool) -> list[Any]:
    """The dates `_sizes_from_changes` shows (its `recent_dates`), latest first."""
    dates = "marts.segment_history_dates" if has_dates else "(select distinct as_of_date from marts.segment_history)"
    return [
        d
        for (d,) in con.execute(
            f"select as_of_date from {dates} order by as_of_date desc limit ?", [HISTORY_POINTS]
        ).fetchall()
    ]


def _sizes_from_changes(has_dates: bool) -> str:
    """Customers per segment at each of the latest recorded dates, from the change log: each customer's
    state on the first of those dates (their latest row on or before it), then each later row adds its
    customer to their new segment and takes them out of the one their previous row put them in; a date's
    sizes are the sums of those moves up to it. The log grows by a day's changes every day (issue 16):
    the rows before the first date are read once by one grouping per customer, and only the rows after it
    are ordered per customer (a window over the whole log was 23 s of CPU at 1M people with a year)."""
    dates = "marts.segment_history_dates" if has_dates else "(select distinct as_of_date from marts.segment_history)"
    return f"""
        with recent_dates as (
            select as_of_date from {dates} order by as_of_date desc limit ?
        ),
        first_date as (
            select min(as_of_date) as as_of_date from recent_dates
        ),
        state_on_first_date as (
            -- one row per customer and date in the log (its key), so the latest row is unambiguous
            select
                first_date.as_of_date,
                history.customer_id,
                arg_max_null(history.change, history.as_of_date) as change,
                arg_max_null(history.rfm_segment, history.as_of_date) as rfm_segment
            from marts.segment_history as history
            inner join first_date on history.as_of_date <= first_date.as_of_date
            group by all
        ),
        rows_after_first_date as (
            select history.as_of_date, history.customer_id, history.change, history.rfm_segment
            from marts.segment_history as history
            inner join first_date on history.as_of_date > first_date.as_of_date
        ),
        rows_with_previous as (
            select
                as_of_date,
                change,
                rfm_segment,
                lag(change) over (partition by customer_id order by as_of_date) as previous_change,
                lag(rfm_segment) over (partition by customer_id order by as_of_date) as previous_segment
            from (select * from state_on_first_date union all by name select * from rows_after_first_date)
        ),
        moves as (
            select as_of_date, rfm_segment, 1 as n from rows_with_previous where change <> 'left'
            union all
            select as_of_date, previous_segment, -1 from rows_with_previous
            where previous_change is not null and previous_change <> 'left'
        ),
        moves_per_date as (
            select as_of_date, rfm_segment, sum(n) as n from moves group by all
        )
        select recent_dates.as_of_date, moves_per_date.rfm_segment, sum(moves_per_date.n) as n
        from recent_dates
        inner join moves_per_date on moves_per_date.as_of_date <= recent_dates.as_of_date
        group by all
        having sum(moves_per_date.n) <> 0
    """
