"""The customer predictions the report shows (issue #22), read from the published file (read-only).

`marts.customer_predictions` (contracts/marts.md, "Customer predictions"; docs/predictions.md) gives each
buyer a chance of still buying (`p_alive`), the chance of an order in the next 90 days (`p_order_90d`),
expected orders and revenue in the next 90 days and a predicted value over the next 365 days. From it:

- the next-90-day outlook: expected orders and revenue summed over every customer who has bought;
- high-value customers likely to churn: value tier `high` (marts.customer_segments) and churn risk `high`,
  with the revenue at risk (`REVENUE_AT_RISK_SQL`);
- likely to buy again: `p_order_90d` of at least `LIKELY_TO_BUY_MIN` (more likely than not), ranked by it.
  `p_order_90d` rather than `p_alive`: "still a buyer" is not "will order soon" (docs/predictions.md,
  "Backtest": p_order_90d ranks who bought again best of every score tried).

The audience files of the same two groups use the same conditions (rapport.publishing.audiences), so the
report's counts and the files agree. When the model did not fit (too few buyers, no convergence) the rows
hold no predictions and `ModelInfo.status` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

# the settings and names only: the models (numpy, scipy, pandas) are the prediction step's, not the report's
from rapport.predictions.config import INSUFFICIENT, NOT_CONVERGED, PREDICTIONS_TABLE, load_config
from rapport.reports.data import PERSON_COLUMNS, fetch_dicts, num, person_row

PREDICTION_LIST_LIMIT = 8  # two lists and the outlook share one printed page (checked on the 1,000-people demo)
LIKELY_TO_BUY_MIN = 0.5  # p_order_90d: more likely than not to order in the next 90 days

# Conditions on `marts.customer_segments s` and `marts.customer_predictions p` (also rapport.publishing.audiences).
HIGH_VALUE_CHURN = "s.value_tier = 'high' and p.churn_risk = 'high'"
LIKELY_TO_BUY = f"p.p_order_90d >= {LIKELY_TO_BUY_MIN}"
# Revenue at risk: what a customer would spend over the next 365 days if still buying, minus what the model
# expects, i.e. the revenue expected to be lost to churn. The model's value is p_alive x the value of a
# customer who is still buying (Pareto/NBD), so that is value x (1 - p_alive) / p_alive. The plain predicted
# value would say little: it is small precisely because these customers have probably stopped buying.
REVENUE_AT_RISK_SQL = "case when p.p_alive > 0 then p.predicted_clv_365d_usd * (1 - p.p_alive) / p.p_alive else 0 end"

# Backtest of docs/predictions.md ("Backtest", demo seed 7, 100,000 people, cut-off 2026-09-01): the 90-day
# totals' errors. tests/reports/test_predictions_section.py checks them against the docs' table.
BACKTEST_PEOPLE = 100_000
BACKTEST_ORDERS_ERROR = -0.057
BACKTEST_REVENUE_ERROR = -0.065


@dataclass(frozen=True)
class ModelInfo:
    status: str  # "fitted", "insufficient data", "fit did not converge", or "absent" (relation not published)
    buyers: int  # customers with a paid order by the as-of date (one prediction row each)
    fitted_on: int  # customers the fit used: all buyers, or the step's seeded sample of at most max_fit_customers
    min_buyers: int  # the step's predictions_min_buyers
    churn_high_below: float  # p_alive below this: churn risk high

    @property
    def fitted(self) -> bool:
        return self.status == "fitted"


@dataclass(frozen=True)
class Outlook:
    orders_90d: float
    revenue_90d_usd: float


@dataclass(frozen=True)
class PredictedList:
    rows: list[dict[str, Any]]  # the first `limit`
    total: int  # everyone matching
    value_usd: float  # churn list: revenue at risk, all together; buy-again list: expected 90-day revenue


@dataclass(frozen=True)
class Predictions:
    model: ModelInfo
    outlook: Outlook | None  # None unless fitted
    churn: PredictedList
    likely: PredictedList


EMPTY = PredictedList([], 0, 0.0)
_FROM = f"""
    from {PREDICTIONS_TABLE} p
    join marts.customer_segments s on s.customer_id = p.customer_id
    join marts.customers c on c.customer_id = p.customer_id
"""


def _model_info(con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]]) -> ModelInfo:
    config = load_config()
    if PREDICTIONS_TABLE not in columns:
        return ModelInfo("absent", 0, 0, config.min_buyers, config.churn_high_below)
    buyers, scored, not_converged = con.execute(
        f"select count(*), count(p_alive), count(*) filter (where model = ?) from {PREDICTIONS_TABLE}",
        [NOT_CONVERGED],
    ).fetchall()[0]
    status = "fitted" if scored else NOT_CONVERGED if not_converged else INSUFFICIENT
    fitted_on = min(int(buyers), config.max_fit_customers) if scored else 0
    return ModelInfo(status, int(buyers), fitted_on, config.min_buyers, config.churn_high_below)


def _predicted_person(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **person_row(row),
        "p_alive": num(row["p_alive"]),
        "p_order_90d": num(row["p_order_90d"]),
        "expected_orders_90d": num(row["expected_orders_90d"]),
        "expected_revenue_90d_usd": num(row["expected_revenue_90d_usd"]),
        "predicted_clv_365d_usd": num(row["predicted_clv_365d_usd"]),
        "revenue_at_risk_usd": num(row["revenue_at_risk_usd"]),
    }


def _list(con: duckdb.DuckDBPyConnection, condition: str, value_sql: str, order: str, limit: int) -> PredictedList:
    total, value = con.execute(f"select count(*), sum({value_sql}) {_FROM} where {condition}").fetchall()[0]
    rows = fetch_dicts(
        con,
        f"""select {PERSON_COLUMNS}, p.p_alive, p.p_order_90d, p.expected_orders_90d, p.expected_revenue_90d_usd,
                   p.predicted_clv_365d_usd, {REVENUE_AT_RISK_SQL} as revenue_at_risk_usd
            {_FROM} where {condition} order by {order}, c.customer_id limit ?""",
        [limit],
    )
    return PredictedList([_predicted_person(r) for r in rows], int(total), num(value) or 0.0)


def load_predictions(
    con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], limit: int = PREDICTION_LIST_LIMIT
) -> Predictions:
    model = _model_info(con, columns)
    if not model.fitted:
        return Predictions(model, None, EMPTY, EMPTY)
    orders, revenue = con.execute(
        f"select sum(expected_orders_90d), sum(expected_revenue_90d_usd) from {PREDICTIONS_TABLE}"
    ).fetchall()[0]
    return Predictions(
        model,
        Outlook(num(orders) or 0.0, num(revenue) or 0.0),
        churn=_list(
            con,
            HIGH_VALUE_CHURN,
            REVENUE_AT_RISK_SQL,
            "revenue_at_risk_usd desc nulls last, c.lifetime_revenue_usd desc nulls last",
            limit,
        ),
        likely=_list(
            con,
            LIKELY_TO_BUY,
            "p.expected_revenue_90d_usd",
            "p.p_order_90d desc, p.expected_revenue_90d_usd desc nulls last",
            limit,
        ),
    )
