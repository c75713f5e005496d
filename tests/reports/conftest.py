"""A small hand-made published DuckDB file with the contract relations (contracts/marts.md).

Numbers are picked so the report's figures can be checked by hand:
- 12 customers, 10 with paid orders; revenue 3000+2000+1000+800+600+500+300+200+150+50 = 8600 over
  8+6+5+3+2+3+1+1+2+1 = 32 orders (average order 268.75); 7 email subscribers.
- Top 20% (value tier high): c01 and c02, 5000 of 8600 = 58.14% of revenue.
- Lifecycle: prospect 2, new 1, active 4, reactivated 0, at_risk 3, churned 2 (active customers 5).
- High-value customers slipping away: c02 only (c04 is "At Risk" but mid tier).
- Bad support experiences (support_health at_risk): c02 (2000), c04 (800), c06 (500).
- Predictions (marts.customer_predictions) for the 10 buyers: expected orders in the next 90 days add up to
  3.81 (shown 4), expected revenue to 1081. High-value customers likely to churn (tier high, churn risk
  high): c02 only (c04 and c09, c10 are high risk but not high tier); its revenue at risk is
  120 x (1 - 0.2) / 0.2 = 480. Likely to buy again (p_order_90d >= 0.5): c01 0.62, c03 0.55, c07 0.50
  (the boundary), expected revenue 450 + 160 + 210 = 820.
- Campaigns: one of each verdict (increased, decreased, no detectable effect, too small to tell twice: one
  with a hostile name), one without a control group (nulls); one name holds dollar signs.
Hostile values (`<script>alert(1)</script>`, `=HYPERLINK(...)`) prove escaping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

AS_OF = date(2025, 6, 30)
SCRIPT_NAME = "<script>alert(1)</script>"
HYPERLINK_NAME = '=HYPERLINK("http://evil.example","click me")'
HOSTILE_CAMPAIGN = '<script>alert(1)</script> & =HYPERLINK("http://x")'

CUSTOMER_COLUMNS = (
    "customer_id varchar, primary_email varchar, primary_phone varchar, full_name varchar, country varchar, "
    "first_seen_at timestamp, order_count bigint, lifetime_revenue_usd decimal(18,2), "
    "avg_order_value_usd decimal(18,2), first_order_at timestamp, last_order_at timestamp, ticket_count bigint, "
    "open_ticket_count bigint, csat_good bigint, csat_bad bigint, avg_resolution_minutes double, "
    "email_status varchar, emails_delivered bigint, unique_human_opens bigint, unique_clicks bigint, "
    "last_engaged_at timestamp"
)
SEGMENT_COLUMNS = (
    "customer_id varchar, as_of_date date, recency_days integer, frequency integer, monetary_usd decimal(18,2), "
    "r_score integer, f_score integer, m_score integer, rfm_segment varchar, lifecycle_stage varchar, "
    "value_tier varchar, engagement_tier varchar, support_health varchar"
)
CAMPAIGN_COLUMNS = (
    "campaign_id varchar, name varchar, send_at timestamp, treatment_size bigint, control_size bigint, "
    "processed bigint, delivered bigint, bounced bigint, dropped bigint, unique_opens bigint, "
    "unique_human_opens bigint, unique_clicks bigint, unsubscribes bigint, spam_reports bigint, open_rate double, "
    "click_rate double, click_to_open_rate double, attributed_orders bigint, attributed_revenue_usd decimal(18,2), "
    "treatment_conversion_rate double, control_conversion_rate double, lift_abs double, lift_rel double, "
    "lift_ci_low double, lift_ci_high double, p_value double, incremental_conversions double, "
    "revenue_per_recipient_treatment_usd double, revenue_per_recipient_control_usd double, "
    "incremental_revenue_usd double, cost_usd double, roi double, treatment_conversions bigint, "
    "control_conversions bigint, mde_abs double, q_value double, verdict varchar, "
    "incremental_revenue_ci_low double, incremental_revenue_ci_high double, roi_ci_low double, roi_ci_high double"
)

# (id, name, email, country, orders, revenue, email_status, tickets, open, csat_bad, avg_res_min,
#  recency, segment, lifecycle, value_tier, support_health)
PEOPLE: list[tuple[Any, ...]] = [
    (
        "c01",
        "Alice Kim",
        "alice.kim@gmail.com",
        "KR",
        8,
        3000,
        "subscribed",
        0,
        0,
        0,
        None,
        5,
        "Champions",
        "active",
        "high",
        "none",
    ),
    (
        "c02",
        SCRIPT_NAME,
        "evil.sender@example.com",
        "US",
        6,
        2000,
        "unsubscribed",
        3,
        1,
        1,
        125.0,
        120,
        "Cannot Lose Them",
        "at_risk",
        "high",
        "at_risk",
    ),
    (
        "c03",
        "김민준",
        "minjun@naver.com",
        "KR",
        5,
        1000,
        "subscribed",
        1,
        0,
        0,
        30.0,
        20,
        "Loyal Customers",
        "active",
        "mid",
        "healthy",
    ),
    (
        "c04",
        HYPERLINK_NAME,
        "hyper@example.org",
        "GB",
        3,
        800,
        "subscribed",
        3,
        0,
        0,
        45.0,
        100,
        "At Risk",
        "at_risk",
        "mid",
        "at_risk",
    ),
    (
        "c05",
        "สมชาย ใจดี",
        "somchai@hotmail.com",
        "TH",
        2,
        600,
        "subscribed",
        0,
        0,
        0,
        None,
        35,
        "Potential Loyalists",
        "active",
        "mid",
        "none",
    ),
    (
        "c06",
        "bob.stone@example.net",
        "bob.stone@example.net",
        "US",
        3,
        500,
        "cleaned",
        2,
        0,
        1,
        3000.0,
        95,
        "Need Attention",
        "at_risk",
        "low",
        "at_risk",
    ),
    (
        "c07",
        "王芳",
        "wangfang@qq.com",
        "CN",
        1,
        300,
        "subscribed",
        0,
        0,
        0,
        None,
        10,
        "New Customers",
        "new",
        "low",
        "none",
    ),
    (
        "c08",
        "Carol White",
        "carol@example.com",
        "US",
        1,
        200,
        "subscribed",
        0,
        0,
        0,
        None,
        40,
        "Promising",
        "active",
        "low",
        "none",
    ),
    (
        "c09",
        "Dan Brown",
        "dan@example.com",
        "US",
        2,
        150,
        "none",
        0,
        0,
        0,
        None,
        200,
        "About to Sleep",
        "churned",
        "low",
        "none",
    ),
    (
        "c10",
        "Eve Black",
        "eve@example.com",
        "DE",
        1,
        50,
        "unsubscribed",
        0,
        0,
        0,
        None,
        400,
        "Hibernating",
        "churned",
        "low",
        "none",
    ),
    (
        "c11",
        "Frank Prospect",
        "frank@example.com",
        "US",
        0,
        0,
        "subscribed",
        0,
        0,
        0,
        None,
        None,
        "No Purchases",
        "prospect",
        "none",
        "none",
    ),
    ("c12", "Grace Lead", None, "FR", 0, 0, "none", 1, 0, 0, 10.0, None, "No Purchases", "prospect", "none", "healthy"),
]

# campaign_id, name, send_at, treatment, control, delivered, human_opens, clicks, attributed_orders,
# attributed_revenue, treatment buyers, control buyers, lift ci_low, ci_high, p, mde_abs, q, verdict,
# incremental_revenue, its ci_low, ci_high, cost. Rates, lift, ROI and its interval follow (builder below).
# The interval, p, MDE and q are statsmodels' for these counts (confint_proportions_2indep newcomb,
# proportions_ztest, the MDE formula, multipletests fdr_bh over the five with a control group); the
# revenue intervals are picked by hand:
# - Spring Sale: increased, but q 0.057 > 0.05 (may be luck); 8 control buyers.
# - hostile name: too small to tell (MDE 9.0 pts), and no holdout of 550 people detects 2 points; only 2
#   control buyers, so its revenue interval is flagged.
# - VIP Newsletter: no control group.
# - Winback: decreased, q 0.012.
# - Summer Newsletter: no detectable effect (MDE 1.4 pts, 4000 against 4000).
# - Flash Sale: too small to tell (MDE 4.4 pts); at both groups' rate 246/5000 a holdout of 24.2%
#   (shown rounded up: 25%) of the 5000 would detect 2 points.
CAMPAIGNS: list[tuple[Any, ...]] = [
    (
        "cmp_spring",
        "Spring Sale",
        datetime(2025, 4, 1, 9),
        1000,
        300,
        980,
        392,
        98,
        30,
        4500.0,
        60,
        8,
        0.005052,
        0.054375,
        0.022947,
        0.041061,
        0.057367,
        "increased",
        2500.0,
        300.0,
        4700.0,
        500.0,
    ),
    (
        "cmp_hostile",
        HOSTILE_CAMPAIGN,
        datetime(2025, 5, 1, 9),
        500,
        50,
        490,
        147,
        25,
        8,
        800.0,
        25,
        2,
        -0.085929,
        0.046839,
        0.755006,
        0.089781,
        0.836654,
        "too small to tell",
        150.0,
        -900.0,
        1200.0,
        None,
    ),
    (
        "cmp_vip",
        "VIP Newsletter",
        datetime(2025, 5, 15, 9),
        300,
        0,
        295,
        177,
        59,
        12,
        1200.0,
        24,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        100.0,
    ),
    (
        "cmp_winback",
        "Winback $5 off, save $$",
        datetime(2025, 6, 1, 9),
        800,
        200,
        760,
        152,
        15,
        3,
        300.0,
        8,
        8,
        -0.067259,
        -0.008177,
        0.002492,
        0.027791,
        0.012461,
        "decreased",
        -300.0,
        -560.0,
        -40.0,
        200.0,
    ),
    (
        "cmp_summer",
        "Summer Newsletter",
        datetime(2025, 6, 10, 9),
        4000,
        4000,
        3900,
        1170,
        156,
        20,
        2100.0,
        200,
        196,
        -0.008539,
        0.010543,
        0.836654,
        0.013588,
        0.836654,
        "no detectable effect",
        400.0,
        -2600.0,
        3400.0,
        300.0,
    ),
    (
        "cmp_flash",
        "Flash Sale",
        datetime(2025, 6, 20, 9),
        4800,
        200,
        4700,
        1410,
        282,
        25,
        2600.0,
        240,
        6,
        -0.014389,
        0.037449,
        0.200086,
        0.04373,
        0.333476,
        "too small to tell",
        1900.0,
        -1500.0,
        5300.0,
        250.0,
    ),
]

# campaign_id, rfm_segment, treatment, control, treat_conv, control_conv, lift, ci_low, ci_high
CAMPAIGN_SEGMENTS: list[tuple[Any, ...]] = [
    ("cmp_spring", "Champions", 200, 20, 0.10, 0.05, 0.05, 0.01, 0.09),
    ("cmp_spring", "At Risk", 300, 30, 0.04, 0.03, 0.01, -0.06, 0.05),
    ("cmp_winback", "Hibernating", 500, 120, 0.01, 0.05, -0.04, -0.08, -0.005),
    ("cmp_vip", "Champions", 300, 0, 0.08, None, None, None, None),
]

# marts.segment_migrations as dbt builds it: one period (from_date, to_date), "(absent)" for customers
# missing on one side. Rows: from_segment, to_segment, customers. Net: Champions +3, Loyal -2,
# Cannot Lose Them +1, Potential Loyalists -2, At Risk -3, Hibernating +3, New Customers +5;
# moved 10, new 5, stayed 10.
MIGRATION_DATES = (date(2025, 5, 31), date(2025, 6, 30))
MIGRATIONS: list[tuple[Any, ...]] = [
    ("Loyal Customers", "Champions", 4),
    ("Champions", "Cannot Lose Them", 1),
    ("Potential Loyalists", "Loyal Customers", 2),
    ("At Risk", "Hibernating", 3),
    ("(absent)", "New Customers", 5),
    ("Champions", "Champions", 10),
]
# marts.segment_history is a change log; these are the segment counts at its dates (the state at a date: each
# customer's latest row on or before it, unless 'left')...
SEGMENT_HISTORY = {
    date(2025, 4, 30): {"Champions": 8, "At Risk": 5},
    date(2025, 5, 31): {"Champions": 9, "At Risk": 7},
    date(2025, 6, 30): {"Champions": 12, "At Risk": 4},
}
# ... from these rows: h0-h7 Champions and h8-h12 At Risk enter on 04-30; h8 becomes a Champion and h13-h15
# enter At Risk on 05-31; h9-h11 become Champions, h7 leaves and h16 enters Champions on 06-30.
SEGMENT_CHANGES: list[tuple[date, str, str, str | None]] = [
    *[(date(2025, 4, 30), f"h{i}", "entered", "Champions") for i in range(8)],
    *[(date(2025, 4, 30), f"h{i}", "entered", "At Risk") for i in range(8, 13)],
    (date(2025, 5, 31), "h8", "changed", "Champions"),
    *[(date(2025, 5, 31), f"h{i}", "entered", "At Risk") for i in range(13, 16)],
    *[(date(2025, 6, 30), f"h{i}", "changed", "Champions") for i in range(9, 12)],
    (date(2025, 6, 30), "h7", "left", None),
    (date(2025, 6, 30), "h16", "entered", "Champions"),
]

# customer_id, p_alive, expected_orders_90d, expected_revenue_90d_usd, predicted_clv_365d_usd, churn_risk,
# p_order_90d, expected_order_value_usd (P(order) <= expected orders, as it must be)
PREDICTIONS: list[tuple[Any, ...]] = [
    ("c01", 0.95, 1.20, 450.0, 1650.0, "low", 0.62, 375.0),
    ("c02", 0.20, 0.10, 33.0, 120.0, "high", 0.08, 330.0),
    ("c03", 0.85, 0.80, 160.0, 600.0, "low", 0.55, 200.0),
    ("c04", 0.25, 0.08, 21.0, 80.0, "high", 0.06, 260.0),
    ("c05", 0.60, 0.30, 90.0, 320.0, "medium", 0.24, 300.0),
    ("c06", 0.40, 0.15, 25.0, 85.0, "medium", 0.12, 165.0),
    ("c07", 0.90, 0.70, 210.0, 700.0, "low", 0.50, 300.0),
    ("c08", 0.80, 0.45, 90.0, 330.0, "low", 0.35, 200.0),
    ("c09", 0.10, 0.02, 1.5, 6.0, "high", 0.02, 75.0),
    ("c10", 0.05, 0.01, 0.5, 2.0, "high", 0.01, 50.0),
]
MODEL = "pareto_nbd+gamma_gamma fitted 2025-06-30"


def unfitted(model: str, people: list[tuple[Any, ...]] | None = None) -> list[tuple[Any, ...]]:
    """Prediction rows of a run whose model did not fit: every buyer, no numbers, the reason in `model`."""
    ids = [p[0] for p in (PEOPLE if people is None else people) if p[4]]
    return [(cid, None, None, None, None, None, None, None, model) for cid in ids]


RUNS: list[tuple[Any, ...]] = [
    ("run_prev", datetime(2025, 5, 31, 1), datetime(2025, 5, 31, 1, 5), "success", date(2025, 5, 31), 1, 0, 2),
    ("run_failed", datetime(2025, 6, 15, 1), datetime(2025, 6, 15, 1, 2), "failed", date(2025, 6, 15), 0, 0, 0),
    ("run_cur", datetime(2025, 6, 30, 1), datetime(2025, 6, 30, 1, 6), "success", date(2025, 6, 30), 2, 1, 4),
]


def _segment_summary(people: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    total = sum(p[5] for p in people)
    out: dict[str, list[float]] = {}
    for p in people:
        agg = out.setdefault(p[12], [0, 0.0, 0])
        agg[0] += 1
        agg[1] += p[5]
        agg[2] += p[4]
    return [
        (s, n, rev, rev / total if total else 0, rev / orders if orders else None)
        for s, (n, rev, orders) in out.items()
    ]


def build_published_db(
    path: Path,
    *,
    people: list[tuple[Any, ...]] | None = None,
    campaigns: list[tuple[Any, ...]] | None = None,
    migrations: list[tuple[Any, ...]] | None = None,
    migration_dates: tuple[date | None, date] = MIGRATION_DATES,
    segment_history: bool = False,
    runs: list[tuple[Any, ...]] | None = None,
    as_of: date = AS_OF,
    predictions: list[tuple[Any, ...]] | None = PREDICTIONS,
) -> Path:
    """Write a published-like DuckDB file; `migrations=None` leaves out the optional relation, and so does
    `predictions=None` (a file published before predictions existed). Prediction rows of 8 values get MODEL."""
    people = PEOPLE if people is None else people
    campaigns = CAMPAIGNS if campaigns is None else campaigns
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts; create schema ops; create schema quarantine")
        con.execute(f"create table marts.customers ({CUSTOMER_COLUMNS})")
        con.execute(f"create table marts.customer_segments ({SEGMENT_COLUMNS})")
        for p in people:
            (
                cid,
                name,
                email,
                country,
                orders,
                revenue,
                status,
                tickets,
                open_t,
                bad,
                res,
                recency,
                segment,
                stage,
                tier,
                support,
            ) = p
            con.execute(
                "insert into marts.customers values (?, ?, null, ?, ?, timestamp '2024-01-01', ?, ?, ?, "
                "null, null, ?, ?, 0, ?, ?, ?, 0, 0, 0, null)",
                [
                    cid,
                    email,
                    name,
                    country,
                    orders,
                    revenue,
                    revenue / orders if orders else None,
                    tickets,
                    open_t,
                    bad,
                    res,
                    status,
                ],
            )
            con.execute(
                "insert into marts.customer_segments values (?, ?, ?, ?, ?, null, null, null, ?, ?, ?, 'dormant', ?)",
                [cid, as_of, recency, orders, revenue, segment, stage, tier, support],
            )
        con.execute(
            "create table marts.segment_summary (rfm_segment varchar, customers bigint, "
            "revenue_usd decimal(18,2), revenue_share double, avg_order_value_usd double)"
        )
        for row in _segment_summary(people):
            con.execute("insert into marts.segment_summary values (?, ?, ?, ?, ?)", row)
        con.execute(
            """
            create table marts.value_concentration as
            select sum(c.lifetime_revenue_usd) filter (where s.value_tier = 'high')
                   / sum(c.lifetime_revenue_usd) as top_20pct_revenue_share
            from marts.customers c join marts.customer_segments s using (customer_id)
            """
        )
        con.execute(f"create table marts.campaign_performance ({CAMPAIGN_COLUMNS})")
        for (
            cid,
            name,
            send_at,
            treat,
            control,
            delivered,
            opens,
            clicks,
            a_orders,
            a_rev,
            t_buyers,
            c_buyers,
            lo,
            hi,
            p,
            mde,
            q,
            verdict,
            inc_rev,
            inc_lo,
            inc_hi,
            cost,
        ) in campaigns:
            t_conv = t_buyers / treat
            c_conv = c_buyers / control if control else None
            lift = t_conv - c_conv if c_conv is not None else None

            def roi_of(amount: float | None, cost: float | None = cost) -> float | None:
                return (amount - cost) / cost if amount is not None and cost else None

            con.execute(
                "insert into marts.campaign_performance values (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, 0, 0, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cid,
                    name,
                    send_at,
                    treat,
                    control,
                    delivered + 5,
                    delivered,
                    opens + 10,
                    opens,
                    clicks,
                    opens / delivered,
                    clicks / delivered,
                    clicks / opens,
                    a_orders,
                    a_rev,
                    t_conv,
                    c_conv,
                    lift,
                    lift / c_conv if lift is not None and c_conv else None,
                    lo,
                    hi,
                    p,
                    lift * treat if lift is not None else None,
                    inc_rev,
                    cost,
                    roi_of(inc_rev),
                    t_buyers,
                    c_buyers,
                    mde,
                    q,
                    verdict,
                    inc_lo,
                    inc_hi,
                    roi_of(inc_lo),
                    roi_of(inc_hi),
                ],
            )
        con.execute(
            "create table marts.campaign_segment_performance (campaign_id varchar, rfm_segment varchar, "
            "treatment_size bigint, control_size bigint, treatment_conversion_rate double, "
            "control_conversion_rate double, lift_abs double, lift_ci_low double, lift_ci_high double, "
            "p_value double)"
        )
        for row in CAMPAIGN_SEGMENTS:
            if any(row[0] == c[0] for c in campaigns):
                con.execute(
                    "insert into marts.campaign_segment_performance values (?, ?, ?, ?, ?, ?, ?, ?, ?, null)", row
                )
        if migrations is not None:
            con.execute(
                "create table marts.segment_migrations (from_date date, to_date date, from_segment varchar, "
                "to_segment varchar, customers bigint, share_of_from_segment double, is_unchanged boolean)"
            )
            for frm, to, n in migrations:
                con.execute(
                    "insert into marts.segment_migrations values (?, ?, ?, ?, ?, null, ?)",
                    [*migration_dates, frm, to, n, frm == to],
                )
        if segment_history:
            con.execute(
                "create table marts.segment_history (as_of_date date, customer_id varchar, change varchar, "
                "rfm_segment varchar, lifecycle_stage varchar, value_tier varchar, run_id varchar)"
            )
            con.executemany(
                "insert into marts.segment_history values (?, ?, ?, ?, ?, ?, 'r')",
                [(d, c, ch, seg, seg and "active", seg and "mid") for d, c, ch, seg in SEGMENT_CHANGES],
            )
            con.execute("create table marts.segment_history_dates (as_of_date date, run_id varchar, customers bigint)")
            con.executemany("insert into marts.segment_history_dates values (?, 'r', ?)",
                            [(d, sum(counts.values())) for d, counts in SEGMENT_HISTORY.items()])  # fmt: skip
        if predictions is not None:
            con.execute(
                "create table marts.customer_predictions (customer_id varchar, as_of_date date, p_alive double, "
                "expected_orders_90d double, expected_revenue_90d_usd double, predicted_clv_365d_usd double, "
                "churn_risk varchar, model varchar, expected_order_value_usd double, p_order_90d double)"
            )
            buyers = {p[0] for p in people}  # predictions only for the customers of this file
            for cid, alive, orders, revenue, clv, risk, p_order, value, *model in predictions:
                if cid not in buyers:
                    continue
                con.execute(
                    "insert into marts.customer_predictions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [cid, as_of, alive, orders, revenue, clv, risk, model[0] if model else MODEL, value, p_order],
                )
        con.execute(
            "create table ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, status varchar, "
            "as_of_date date, orders_quarantined bigint, helpdesk_quarantined bigint, esp_quarantined bigint)"
        )
        con.executemany("insert into ops.runs values (?, ?, ?, ?, ?, ?, ?, ?)", RUNS if runs is None else runs)
        con.execute(
            "create table quarantine.orders_rejects (source varchar, raw varchar, reason varchar, "
            "location varchar, run_id varchar, rejected_at timestamp)"
        )
    finally:
        con.close()
    return path


@pytest.fixture
def make_published_db(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_published_db(name="x.duckdb", **overrides) -> path of a fresh published-like file."""

    def make(name: str = "rapport.duckdb", **kwargs: Any) -> Path:
        return build_published_db(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def published_db(make_published_db: Callable[..., Path]) -> Path:
    """The full fixture, optional relations included (migrations, segment history)."""
    return make_published_db(migrations=MIGRATIONS, segment_history=True)


def write_audience_files(d: Path) -> Path:
    d.mkdir()
    (d / "champions.csv").write_text("email,customer_id\nalice.kim@gmail.com,c01\n", encoding="utf-8")
    (d / "at_risk.csv").write_text(
        'email,customer_id\nhyper@example.org,c04\n"a,b@example.com",c99\n', encoding="utf-8"
    )
    (d / ".at_risk.csv.tmp").write_text("in progress\n", encoding="utf-8")
    return d


@pytest.fixture
def audiences_dir(tmp_path: Path) -> Path:
    return write_audience_files(tmp_path / "audiences")


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The full fixture rendered once (HTML only) for the tests that only read the result."""
    from rapport.reports.render import render_report

    base = tmp_path_factory.mktemp("full_report")
    db = build_published_db(base / "rapport.duckdb", migrations=MIGRATIONS, segment_history=True)
    audiences = write_audience_files(base / "audiences")
    paths = render_report(db, base / "reports", run_id="run_cur", as_of=AS_OF, audiences_dir=audiences, pdf=False)
    return SimpleNamespace(
        paths=paths, html=paths.html.read_text(encoding="utf-8"), audiences_dir=audiences, out_dir=base / "reports"
    )


@pytest.fixture(scope="session")
def facts() -> SimpleNamespace:
    """The hand-picked constants above, for assertions (tests must not import conftest by name)."""
    return SimpleNamespace(
        as_of=AS_OF,
        script_name=SCRIPT_NAME,
        hyperlink_name=HYPERLINK_NAME,
        hostile_campaign=HOSTILE_CAMPAIGN,
        people=PEOPLE,
        campaigns=CAMPAIGNS,
        migrations=MIGRATIONS,
        predictions=PREDICTIONS,
        unfitted=unfitted,
        build=build_published_db,
    )


# The same customers and campaigns, with names in Korean, Thai and Chinese where the report lists them:
# the at-risk list (c02), the support list (c02, c04, c06) and every campaign table and chart.
INTL_NAMES = {"c02": "สมศรี มีสุข", "c04": "박지훈", "c06": "陈静"}
INTL_CAMPAIGNS = {"cmp_spring": "봄맞이 세일", "cmp_hostile": "โปรกลางปี ลดทั้งร้าน", "cmp_vip": "双十一大促"}


def intl_people() -> list[tuple[Any, ...]]:
    return [(p[0], INTL_NAMES.get(p[0], p[1]), *p[2:]) for p in PEOPLE]


def intl_campaigns() -> list[tuple[Any, ...]]:
    return [(c[0], INTL_CAMPAIGNS.get(c[0], c[1]), *c[2:]) for c in CAMPAIGNS]


@pytest.fixture(scope="session")
def intl_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    """The international fixture rendered once per language (HTML only): language -> paths, html."""
    from rapport.reports.render import render_report

    base = tmp_path_factory.mktemp("intl_reports")
    db = build_published_db(
        base / "rapport.duckdb",
        people=intl_people(),
        campaigns=intl_campaigns(),
        migrations=MIGRATIONS,
        segment_history=True,
    )
    audiences = write_audience_files(base / "audiences")
    out = {}
    for code in ("en", "ko", "th"):
        paths = render_report(
            db, base / code, run_id="run_cur", as_of=AS_OF, audiences_dir=audiences, pdf=False, language=code
        )
        out[code] = SimpleNamespace(paths=paths, html=paths.html.read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="session")
def intl() -> SimpleNamespace:
    """The international fixture's data values, for telling data from text in the rendered reports."""
    people = intl_people()
    campaigns = intl_campaigns()
    return SimpleNamespace(
        people=people,
        campaigns=campaigns,
        names=[p[1] for p in people],
        campaign_names=[c[1] for c in campaigns],
        build=lambda path, **kw: build_published_db(path, people=people, campaigns=campaigns, **kw),
        migrations=MIGRATIONS,
        as_of=AS_OF,
    )
