"""The checks of marts.customer_predictions, on the frame query alone (DuckDB, no GX: fast): each
corruption of the hand-made marts shows up in its derived column, and the clean marts show none.

Hand-made marts (expectation_helpers.build_clean_marts): buyers p1 (p_alive 0.8, low risk) and p2 (0.5,
medium), both as of 2026-03-01; churn thresholds are dbt_project.yml's defaults (0.7, 0.3).
"""

from __future__ import annotations

import duckdb
import pytest
from expectation_helpers import build_clean_marts, land_clean_sources

from rapport.expectations.catalog import suites_for
from rapport.expectations.mart_frames import mart_frame

FLAGS = (
    "buyer_without_prediction",
    "prediction_without_history",
    "orphan_customer_id",
    "as_of_mismatch",
    "scored_without_values",
    "churn_risk_mismatch",
    "clv_below_90d_revenue",
)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    land_clean_sources(c, "r0")
    yield c
    c.close()


def _flags(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    [spec] = [s for s in suites_for("mart") if s.name == "mart_customer_predictions"]
    cur = con.execute(mart_frame(spec).queries[0])
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return {f: {r[f] for r in rows if r[f] is not None} for f in FLAGS}


def test_clean_predictions_raise_no_flag(con):
    build_clean_marts(con)
    assert _flags(con) == {f: set() for f in FLAGS}


@pytest.mark.parametrize(
    ("corruption", "flag", "customer"),
    [
        ("delete from marts.customer_predictions where customer_id = 'p2'", "buyer_without_prediction", "p2"),
        ("delete from marts.customer_purchase_history where customer_id = 'p1'", "prediction_without_history", "p1"),
        # p2's row renamed to an unknown customer: an orphan without history, and p2 left without a row
        (
            "update marts.customer_predictions set customer_id = 'p9' where customer_id = 'p2'",
            "orphan_customer_id",
            "p9",
        ),
        (
            "update marts.customer_predictions set as_of_date = date '2026-02-01' where customer_id = 'p1'",
            "as_of_mismatch",
            "p1",
        ),
        (
            "update marts.customer_predictions set p_alive = null, churn_risk = null where customer_id = 'p2'",
            "scored_without_values",
            "p2",
        ),
        # a NaN score is a missing one (a range check would pass it)
        (
            # (the hand-made mart's columns are decimals; the real one's are doubles, which can hold NaN)
            "alter table marts.customer_predictions alter p_alive type double; "
            "update marts.customer_predictions set p_alive = 'nan'::double where customer_id = 'p1'",
            "scored_without_values",
            "p1",
        ),
        (
            "alter table marts.customer_predictions alter expected_orders_90d type double; "
            "update marts.customer_predictions set expected_orders_90d = 'nan'::double where customer_id = 'p2'",
            "scored_without_values",
            "p2",
        ),
        # 0.7 is not above 0.7: medium, not low
        ("update marts.customer_predictions set p_alive = 0.7 where customer_id = 'p1'", "churn_risk_mismatch", "p1"),
        (
            "update marts.customer_predictions set churn_risk = 'high' where customer_id = 'p2'",
            "churn_risk_mismatch",
            "p2",
        ),
        (
            "update marts.customer_predictions set predicted_clv_365d_usd = 7.0 where customer_id = 'p2'",
            "clv_below_90d_revenue",
            "p2",
        ),
    ],
)
def test_each_corruption_raises_its_flag(con, corruption, flag, customer):
    build_clean_marts(con)
    con.execute(corruption)
    flags = _flags(con)
    expected = {f: set() for f in FLAGS} | {flag: {customer}}
    if customer == "p9":
        expected |= {"prediction_without_history": {"p9"}, "buyer_without_prediction": {"p2"}}
    assert flags == expected


def test_rows_without_predictions_are_fine_when_the_model_says_why(con):
    build_clean_marts(con)
    con.execute(
        "update marts.customer_predictions set p_alive = null, expected_orders_90d = null, "
        "expected_revenue_90d_usd = null, predicted_clv_365d_usd = null, churn_risk = null, "
        "p_order_90d = null, model = 'insufficient data'"
    )
    assert _flags(con) == {f: set() for f in FLAGS}
