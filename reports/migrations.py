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

log = logging.getLogger("rapport.reports")

NEW = "(new)"  # a customer who had no segment before
GONE = "(gone)"  # a customer no longer in the data (merged identities, erased)
HISTORY_POINTS = 12


@dataclass(frozen=True)
class Migrations:
    flows: list[dict[str, Any]]  # from_segment, to_segment, customers: moves only, largest first
    net: list[tuple[str, int]]  # per segment: customers gained minus customers lost
    moved: int
    stayed: int
    arrived: int
    left: int
    source: str


@dataclass(frozen=True)
class SegmentHistory:
    dates: list[date]
    series: dict[str, list[int]]  # segment -> customers at each date


def summarise(rows: list[tuple[str | None, str | None, int]], source: str) -> Migrations:
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
    return Migrations(flows, net_sorted, moved, stayed, arrived, left, source)


def _from_mart(con: duckdb.DuckDBPyConnection, cols: set[str]) -> list[tuple[str | None, str | None, int]]:
    # If the mart keeps several periods, the latest one is "since the previous run".
    where = (
        "where as_of_date = (select max(as_of_date) from marts.segment_migrations)" if "as_of_date" in cols else ""
    )
    rows = con.execute(
        f"select from_segment, to_segment, sum(customers) from marts.segment_migrations {where} group by all"
    ).fetchall()
    return [(f, t, whole(n) or 0) for f, t, n in rows]


def _from_previous_db(con: duckdb.DuckDBPyConnection, previous_db: Path) -> list[tuple[str | None, str | None, int]]:
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
    finally:
        con.execute("detach prev_pub")
    return [(f, t, int(n)) for f, t, n in rows]


def load_migrations(
    con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], previous_db: Path | None
) -> Migrations | None:
    cols = columns.get("marts.segment_migrations")
    if cols is not None and {"from_segment", "to_segment", "customers"} <= cols:
        return summarise(_from_mart(con, cols), "marts.segment_migrations")
    if previous_db is not None and previous_db.exists():
        try:
            return summarise(_from_previous_db(con, previous_db), "the previous published file")
        except duckdb.Error as exc:
            log.warning("cannot compare segments with %s: %s", previous_db, exc)
    return None


def load_segment_history(con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]]) -> SegmentHistory | None:
    """Accepts either one row per (date, segment) with `customers`, or one row per customer and date."""
    cols = columns.get("marts.segment_history")
    if cols is None or not {"as_of_date", "rfm_segment"} <= cols:
        return None
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

