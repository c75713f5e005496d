"""Headline numbers and their change since the previous report.

The marts hold per-customer totals, not order-level history, so "change against the previous period" is
the difference between this report's numbers and the previous report's. The baseline comes from:

1. `previous_db`, when the caller passes a copy of the previously published file: its numbers are
   recomputed with the same query, so a change of definition cannot make a false difference;
2. otherwise `reports/history.json`, a small file beside the reports holding each rendered run's headline
   numbers (one entry per run id, a rerender replaces its entry). The baseline is the latest entry of
   another run whose as-of date is not after this one's.

History is the default because it needs nothing from the caller and survives a failed run (a failed run
renders no report, so it writes no entry and the next report still compares with the last good one).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from rapport.reports.data import num
from rapport.reports.files import write_atomic
from rapport.reports.i18n import N_

log = logging.getLogger("rapport.reports")

HISTORY_FILE = "history.json"
HISTORY_KEEP = 200

HEADLINE_SQL = """
with people as (
    select
        count(*) as customers,
        count(*) filter (where order_count > 0) as buying_customers,
        coalesce(sum(lifetime_revenue_usd), 0) as revenue_usd,
        sum(lifetime_revenue_usd) / nullif(sum(order_count), 0) as avg_order_value_usd,
        count(*) filter (where email_status = 'subscribed') as email_subscribers
    from marts.customers
),
stages as (
    select
        count(*) filter (where lifecycle_stage in ('new', 'active', 'reactivated')) as active_customers,
        count(*) filter (where lifecycle_stage = 'new') as new_customers,
        count(*) filter (where lifecycle_stage = 'at_risk') as at_risk_customers
    from marts.customer_segments
),
campaigns as (
    select coalesce(sum(attributed_revenue_usd), 0) as attributed_revenue_usd
    from marts.campaign_performance
)
select * from people, stages, campaigns
"""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    definition: str
    kind: str  # "money" or "count": how to format it
    up_is_good: bool = True


# Labels and definitions are English messages, translated where the cards are shown.
METRICS = (
    Metric(
        "revenue_usd",
        N_("Revenue to date"),
        N_("Net revenue of every paid order so far, after refunds, in USD."),
        "money",
    ),
    Metric("buying_customers", N_("Customers who bought"), N_("People with at least one paid order."), "count"),
    Metric(
        "avg_order_value_usd", N_("Average order value"), N_("Revenue divided by the number of paid orders."), "money"
    ),
    Metric(
        "active_customers", N_("Active customers"), N_("Customers whose last order was in the last 90 days."), "count"
    ),
    Metric("new_customers", N_("New customers"), N_("Customers whose first order was in the last 30 days."), "count"),
    Metric(
        "at_risk_customers",
        N_("Slipping away"),
        N_("Customers whose last order was 91 to 180 days ago."),
        "count",
        up_is_good=False,
    ),
    Metric("email_subscribers", N_("Email subscribers"), N_("People who can be sent marketing email."), "count"),
    Metric(
        "attributed_revenue_usd",
        N_("Revenue after campaign emails"),
        N_("Revenue from orders placed soon after a customer opened or clicked a campaign email (last email wins)."),
        "money",
    ),
)


@dataclass(frozen=True)
class Baseline:
    values: dict[str, float | None]
    run_id: str | None
    as_of: date | None
    source: str  # "previous_db" or "history"


@dataclass(frozen=True)
class HeadlineCard:
    metric: Metric
    value: float | None
    change: float | None
    change_ratio: float | None
    tone: str  # "good", "bad" or "flat"; "none" without a baseline


def headline_values(con: duckdb.DuckDBPyConnection) -> dict[str, float | None]:
    cur = con.execute(HEADLINE_SQL)
    names = [d[0] for d in cur.description]
    row = cur.fetchall()[0]
    return {k: num(v) for k, v in zip(names, row, strict=True)}


def cards(values: dict[str, float | None], baseline: Baseline | None) -> list[HeadlineCard]:
    out = []
    for m in METRICS:
        value = values.get(m.key)
        prev = baseline.values.get(m.key) if baseline else None
        change = value - prev if value is not None and prev is not None else None
        ratio = change / prev if change is not None and prev else None
        if change is None:
            tone = "none"
        elif abs(change) < 1e-9:
            tone = "flat"
        else:
            tone = "good" if (change > 0) == m.up_is_good else "bad"
        out.append(HeadlineCard(m, value, change, ratio, tone))
    return out


def baseline_from_db(previous_db: Path) -> Baseline | None:
    """Recompute the headline numbers of a previously published file; None (with a warning) if unusable."""
    try:
        con = duckdb.connect(str(previous_db), read_only=True)
    except (duckdb.Error, OSError) as exc:
        log.warning("previous published file %s cannot be opened (%s); using the report history", previous_db, exc)
        return None
    try:
        values = headline_values(con)
        as_of = con.execute("select max(as_of_date) from marts.customer_segments").fetchall()[0][0]
        run_id = None
        try:
            rows = con.execute(
                "select run_id from ops.runs where status = 'success' order by started_at desc limit 1"
            ).fetchall()
            run_id = rows[0][0] if rows else None
        except duckdb.Error:
            pass
        return Baseline(values, run_id, as_of, "previous_db")
    except duckdb.Error as exc:
        log.warning("previous published file %s lacks the marts (%s); using the report history", previous_db, exc)
        return None
    finally:
        con.close()


def load_history(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / HISTORY_FILE
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
        return [e for e in entries if _usable(e)]
    except (ValueError, KeyError, TypeError) as exc:
        # A damaged history costs one report its comparison, never the run.
        log.warning("report history %s is unreadable (%s); starting it afresh", path, exc)
        return []


def _usable(entry: Any) -> bool:
    """An entry this code wrote: run id, ISO as-of date, numbers (or nulls) by metric."""
    try:
        date.fromisoformat(entry["as_of"])
        numbers = entry.get("headline", {}).values()
        return isinstance(entry["run_id"], str) and all(v is None or isinstance(v, int | float) for v in numbers)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def baseline_from_history(entries: list[dict[str, Any]], *, run_id: str, as_of: date) -> Baseline | None:
    candidates = [e for e in entries if e["run_id"] != run_id and date.fromisoformat(e["as_of"]) <= as_of]
    if not candidates:
        return None
    best = max(candidates, key=lambda e: (e["as_of"], e.get("rendered_at", "")))
    values = {k: (None if v is None else float(v)) for k, v in best.get("headline", {}).items()}
    return Baseline(values, best["run_id"], date.fromisoformat(best["as_of"]), "history")


def record_history(
    out_dir: Path, entries: list[dict[str, Any]], *, run_id: str, as_of: date, values: dict[str, float | None]
) -> None:
    entry = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "rendered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "headline": values,
    }
    kept = [e for e in entries if e["run_id"] != run_id] + [entry]
    kept.sort(key=lambda e: (e["as_of"], e.get("rendered_at", "")))
    write_atomic(out_dir / HISTORY_FILE, json.dumps({"entries": kept[-HISTORY_KEEP:]}, indent=1).encode())
