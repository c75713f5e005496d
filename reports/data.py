"""Everything the report shows, read from the published DuckDB file (read-only) into plain objects.

Only the relations and columns named in /work/shared/contracts/marts.md are relied on; extra columns are
used when present (a campaign's `name` and `send_at`). Emails are masked here, before anything reaches a
template, so no code path can print a full address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from rapport.reports.masking import mask_email, mask_emails_in_text

REQUIRED_RELATIONS = (
    "marts.customers",
    "marts.customer_segments",
    "marts.segment_summary",
    "marts.value_concentration",
    "marts.campaign_performance",
    "marts.campaign_segment_performance",
)
ACTION_LIST_LIMIT = 15  # two lists share one printed page
LIFECYCLE_ORDER = ("prospect", "new", "active", "reactivated", "at_risk", "churned")


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def relation_columns(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> dict[str, set[str]]:
    """`schema.table` -> column names, for every table and view in the (given or current) database."""
    rows = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = coalesce(?, current_database())",
        [catalog],
    ).fetchall()
    out: dict[str, set[str]] = {}
    for schema, table, column in rows:
        out.setdefault(f"{schema}.{table}", set()).add(column)
    return out


def num(x: Any) -> float | None:
    """DuckDB DECIMAL arrives as Decimal; NaN is as good as missing for display."""
    if x is None:
        return None
    v = float(x) if isinstance(x, Decimal | int | float) else float(str(x))
    return None if math.isnan(v) else v


def whole(x: Any) -> int | None:
    v = num(x)
    return None if v is None else round(v)


# The published verdicts (contracts/marts.md, "Campaign decisions") and the keys the report uses for them.
MART_VERDICTS = {
    "increased": "increased",
    "decreased": "decreased",
    "no detectable effect": "no_effect",
    "too small to tell": "too_small",
}
MEANINGFUL_LIFT_ABS = 0.02  # the dbt var meaningful_lift_abs's default, for files published without `verdict`


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    send_at: datetime | date | None
    treatment_size: int | None
    control_size: int | None
    open_rate: float | None
    click_rate: float | None
    conversion_rate: float | None
    control_conversion_rate: float | None
    attributed_revenue_usd: float | None
    lift_abs: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    incremental_revenue_usd: float | None
    cost_usd: float | None
    roi: float | None
    # campaign decisions (contracts/marts.md, "Campaign decisions (added 2026-12)")
    treatment_buyers: int | None = None  # members who placed a valid order in the holdout window
    control_buyers: int | None = None
    mde_abs: float | None = None
    q_value: float | None = None
    published_verdict: str | None = None  # the mart's `verdict`
    incremental_revenue_ci_low: float | None = None
    incremental_revenue_ci_high: float | None = None
    roi_ci_low: float | None = None
    roi_ci_high: float | None = None

    @property
    def has_holdout(self) -> bool:
        return bool(self.control_size) and None not in (self.lift_abs, self.lift_ci_low, self.lift_ci_high)

    @property
    def verdict(self) -> str:
        """increased, decreased, no_effect, too_small (the published verdict) or no_holdout. A file
        published before verdicts existed gets the same rule applied here, from its interval and MDE."""
        if not self.has_holdout:
            return "no_holdout"
        if self.published_verdict in MART_VERDICTS:
            return MART_VERDICTS[self.published_verdict]
        assert self.lift_ci_low is not None and self.lift_ci_high is not None
        if self.lift_ci_low > 0:
            return "increased"
        if self.lift_ci_high < 0:
            return "decreased"
        return "too_small" if self.mde_abs is None or self.mde_abs > MEANINGFUL_LIFT_ABS else "no_effect"

    @property
    def roi_known(self) -> bool:
        return self.roi is not None and bool(self.cost_usd)


def _buyers(row: dict[str, Any], group: str) -> int | None:
    """Members who bought in the holdout window; from the rate where a file does not publish the count."""
    if row.get(f"{group}_conversions") is not None:
        return whole(row[f"{group}_conversions"])
    rate, size = num(row.get(f"{group}_conversion_rate")), num(row.get(f"{group}_size"))
    return None if rate is None or size is None else round(rate * size)


# Campaign's float fields read from the campaign_performance column of the same name
_CAMPAIGN_NUMBERS = (
    "open_rate",
    "click_rate",
    "control_conversion_rate",
    "attributed_revenue_usd",
    "lift_abs",
    "lift_ci_low",
    "lift_ci_high",
    "incremental_revenue_usd",
    "cost_usd",
    "roi",
    "mde_abs",
    "q_value",
    "incremental_revenue_ci_low",
    "incremental_revenue_ci_high",
    "roi_ci_low",
    "roi_ci_high",
)


def campaign_from_row(row: dict[str, Any]) -> Campaign:
    name = row.get("name") or row.get("campaign_name") or row.get("subject") or row["campaign_id"]
    return Campaign(
        campaign_id=str(row["campaign_id"]),
        name=str(name),
        send_at=row.get("send_at"),
        treatment_size=whole(row.get("treatment_size")),
        control_size=whole(row.get("control_size")),
        conversion_rate=num(row.get("treatment_conversion_rate")),
        treatment_buyers=_buyers(row, "treatment"),
        control_buyers=_buyers(row, "control"),
        published_verdict=row.get("verdict"),
        **{field: num(row.get(field)) for field in _CAMPAIGN_NUMBERS},
    )


@dataclass(frozen=True)
class SegmentLift:
    campaign_id: str
    rfm_segment: str
    lift_abs: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None

    @property
    def significant(self) -> bool:
        lo, hi = self.lift_ci_low, self.lift_ci_high
        return lo is not None and hi is not None and (lo > 0 or hi < 0)


@dataclass(frozen=True)
class ActionList:
    rows: list[dict[str, Any]]  # the first `limit`, most valuable first
    total: int  # everyone matching
    total_revenue_usd: float  # their lifetime revenue together


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str | None
    finished_at: datetime | None
    quarantined: int | None
    previous_success: dict[str, Any] | None
    warnings: tuple[str, ...] = ()  # the source checks' warnings of this run (ops.runs `<source>_warnings`)


@dataclass
class CustomerBase:
    segments: list[dict[str, Any]]
    top_20pct_revenue_share: float | None
    high_tier_customers: int
    buying_customers: int
    lifecycle: list[tuple[str, int]]


@dataclass
class Campaigns:
    campaigns: list[Campaign]  # most revenue after the email first
    segment_lifts: list[SegmentLift]


def check_required(columns: dict[str, set[str]]) -> None:
    missing = [r for r in REQUIRED_RELATIONS if r not in columns]
    if missing:
        raise ValueError(f"the published file lacks {', '.join(missing)} (see contracts/marts.md)")


def load_customer_base(con: duckdb.DuckDBPyConnection) -> CustomerBase:
    segments = [
        {
            "rfm_segment": str(r["rfm_segment"]),
            "customers": whole(r["customers"]) or 0,
            "revenue_usd": num(r["revenue_usd"]) or 0.0,
            "revenue_share": num(r["revenue_share"]) or 0.0,
            "avg_order_value_usd": num(r["avg_order_value_usd"]),
        }
        for r in fetch_dicts(
            con,
            "select rfm_segment, customers, revenue_usd, revenue_share, avg_order_value_usd "
            "from marts.segment_summary order by revenue_usd desc nulls last, customers desc, rfm_segment",
        )
    ]
    share = con.execute("select max(top_20pct_revenue_share) from marts.value_concentration").fetchall()[0][0]
    high, buying = con.execute(
        "select count(*) filter (where value_tier = 'high'), count(*) filter (where value_tier <> 'none') "
        "from marts.customer_segments"
    ).fetchall()[0]
    stage_counts = dict(
        con.execute("select lifecycle_stage, count(*) from marts.customer_segments group by all").fetchall()
    )
    # Contract stages first in their natural order, then anything unexpected rather than dropping it.
    stages = list(LIFECYCLE_ORDER) + sorted(str(s) for s in stage_counts if s not in LIFECYCLE_ORDER)
    lifecycle = [(s, int(stage_counts.get(s, 0))) for s in stages]
    return CustomerBase(segments, num(share), int(high or 0), int(buying or 0), lifecycle)


def load_campaigns(con: duckdb.DuckDBPyConnection) -> Campaigns:
    rows = fetch_dicts(con, "select * from marts.campaign_performance")
    campaigns = sorted(
        (campaign_from_row(r) for r in rows),
        key=lambda c: (-(c.attributed_revenue_usd or 0.0), c.name, c.campaign_id),
    )
    lifts = [
        SegmentLift(
            campaign_id=str(r["campaign_id"]),
            rfm_segment=str(r["rfm_segment"]),
            lift_abs=num(r.get("lift_abs")),
            lift_ci_low=num(r.get("lift_ci_low")),
            lift_ci_high=num(r.get("lift_ci_high")),
        )
        for r in fetch_dicts(con, "select * from marts.campaign_segment_performance")
    ]
    return Campaigns(campaigns, lifts)


PERSON_COLUMNS = """
    c.customer_id, c.full_name, c.primary_email, c.country, c.order_count, c.lifetime_revenue_usd,
    c.email_status, c.ticket_count, c.open_ticket_count, c.csat_bad, c.avg_resolution_minutes,
    s.recency_days, s.rfm_segment
"""
# Both lists rank by what the customer is worth, so the first rows are the ones to call first.
AT_RISK_HIGH_VALUE = (
    "s.value_tier = 'high' and (s.lifecycle_stage = 'at_risk' or s.rfm_segment in ('At Risk', 'Cannot Lose Them'))"
)
BAD_SUPPORT = "s.support_health = 'at_risk'"


def person_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": str(row["customer_id"]),
        "name": mask_emails_in_text(row["full_name"]),  # "" when unknown: the template says so in words
        "email": mask_email(row["primary_email"]),
        "country": row["country"] or "",
        "orders": whole(row["order_count"]) or 0,
        "revenue_usd": num(row["lifetime_revenue_usd"]) or 0.0,
        "email_status": row["email_status"] or "none",
        "tickets": whole(row["ticket_count"]) or 0,
        "open_tickets": whole(row["open_ticket_count"]) or 0,
        "bad_ratings": whole(row["csat_bad"]) or 0,
        "avg_resolution_minutes": num(row["avg_resolution_minutes"]),
        "recency_days": whole(row["recency_days"]),
        "rfm_segment": row["rfm_segment"],
    }


def load_action_list(con: duckdb.DuckDBPyConnection, condition: str, limit: int = ACTION_LIST_LIMIT) -> ActionList:
    base = "from marts.customer_segments s join marts.customers c using (customer_id) where " + condition
    total, revenue = con.execute("select count(*), sum(c.lifetime_revenue_usd) " + base).fetchall()[0]
    rows = fetch_dicts(
        con,
        f"select {PERSON_COLUMNS} {base} order by c.lifetime_revenue_usd desc nulls last, c.customer_id limit ?",
        [limit],
    )
    return ActionList([person_row(r) for r in rows], int(total), num(revenue) or 0.0)


def load_run_info(con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], run_id: str) -> RunInfo:
    cols = columns.get("ops.runs")
    if not cols:
        return RunInfo(run_id, None, None, None, None)
    runs = fetch_dicts(con, "select * from ops.runs order by started_at")
    this = next((r for r in runs if r["run_id"] == run_id), None)
    earlier = [
        r
        for r in runs
        if r["run_id"] != run_id
        and r.get("status") == "success"
        and (
            this is None
            or r["started_at"] is None
            or this["started_at"] is None
            or r["started_at"] < this["started_at"]
        )
    ]
    # per-source `<source>_quarantined` counts of this run; None when the file records none
    parts = [whole(this[c]) or 0 for c in cols if c.endswith("_quarantined") and this and this[c] is not None]
    warnings = tuple(
        f"{c.removesuffix('_warnings')}: {line}"
        for c in sorted(cols)
        if c.endswith("_warnings") and this
        for line in str(this[c] or "").splitlines()
        if line.strip()
    )
    return RunInfo(
        run_id=run_id,
        status=this.get("status") if this else None,
        finished_at=this.get("finished_at") if this else None,
        quarantined=sum(parts) if parts else None,
        previous_success=earlier[-1] if earlier else None,
        warnings=tuple(mask_emails_in_text(w) for w in warnings),
    )
