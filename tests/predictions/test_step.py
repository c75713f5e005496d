"""The prediction step on a real DuckDB working file: it reads marts.customer_purchase_history, writes
marts.customer_predictions and ops.prediction_fits, and copes with too few buyers.

The histories are simulated from Pareto/NBD and Gamma-Gamma (days; rapport.predictions.simulate), so a
fit is possible and its outcome is not hand-made; what is checked is what the step does with it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from rapport.core.config import load_settings
from rapport.core.run_context import RunContext
from rapport.predictions import simulate
from rapport.predictions.score import Fits, PredictionConfig, churn_risk, expected_order_value
from rapport.predictions.step import load_config, predict

AS_OF = date(2026, 6, 30)


def _history(n: int) -> pd.DataFrame:
    T = np.random.default_rng(7).uniform(1, 400, n)
    sim = simulate.pareto_nbd_customers(n, {"r": 1.0, "alpha": 70.0, "s": 2.0, "beta": 600.0}, T, seed=8)
    zbar = simulate.gamma_gamma_means(sim.x, {"p": 4.0, "q": 5.0, "gamma": 150.0}, seed=9)
    first = np.full(n, 40.0)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "as_of_date": AS_OF,
            "valid_orders": sim.x + 1,
            "repeat_orders": sim.x,
            "days_first_to_last_order": sim.t_x,
            "days_first_order_to_cutoff": sim.T,
            "revenue_usd": first + np.nan_to_num(zbar) * sim.x,
            "first_order_revenue_usd": first,
            "avg_repeat_order_value_usd": zbar,
        }
    )


def _warehouse(tmp_path: Path, history: pd.DataFrame | None):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as con:
        con.execute("create schema marts")
        if history is not None:
            con.register("h", history)
            con.execute("create table marts.customer_purchase_history as select * from h")
    return settings


def _query(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_predictions_and_fits_are_written_once_per_run(tmp_path):
    settings = _warehouse(tmp_path, _history(400))
    ctx = RunContext.create("run-1", as_of=AS_OF)
    summary = predict(settings, ctx)
    assert summary["status"] == "fitted" and summary["customers"] == 400
    rows = _query(
        settings,
        "select customer_id, as_of_date, p_alive, expected_orders_90d, expected_revenue_90d_usd, "
        "predicted_clv_365d_usd, churn_risk, model from marts.customer_predictions",
    )
    assert len(rows) == 400 and len({r[0] for r in rows}) == 400
    today = datetime.now(UTC).date().isoformat()
    assert {r[7] for r in rows} == {f"pareto_nbd+gamma_gamma fitted {today}"}
    assert {r[1] for r in rows} == {AS_OF}
    for _, _, p_alive, orders, revenue, clv, risk, _ in rows:
        assert 0 <= p_alive <= 1 and orders >= 0 and 0 <= revenue <= clv
        assert risk == ("low" if p_alive > 0.7 else "high" if p_alive < 0.3 else "medium")
    fits = _query(
        settings,
        "select run_id, as_of_date, status, model, params, n, converged, customers "
        "from ops.prediction_fits order by model",
    )
    assert [(f[0], f[1], f[2], f[3], f[6], f[7]) for f in fits] == [
        ("run-1", AS_OF, "fitted", "gamma_gamma", True, 400),
        ("run-1", AS_OF, "fitted", "pareto_nbd", True, 400),
    ]
    assert set(json.loads(fits[1][4])) == {"r", "alpha", "s", "beta"} and fits[1][5] == 400
    assert fits[0][5] == int((_history(400)["repeat_orders"] > 0).sum())  # spend: repeat buyers only
    predict(settings, ctx)  # the same run again: replaced, not appended
    predict(settings, RunContext.create("run-2", as_of=AS_OF))
    assert _query(settings, "select run_id, count(*) from ops.prediction_fits group by 1 order by 1") == [
        ("run-1", 2),
        ("run-2", 2),
    ]
    assert _query(settings, "select count(*) from marts.customer_predictions") == [(400,)]


def test_too_few_buyers_lists_them_without_predictions(tmp_path):
    settings = _warehouse(tmp_path, _history(150))  # fewer than predictions_min_buyers (200)
    summary = predict(settings, RunContext.create("small", as_of=AS_OF))
    assert summary["status"] == "insufficient data" and "150 customers" in summary["message"]
    assert _query(
        settings,
        "select count(*), count(p_alive), count(churn_risk), min(model), max(model) from marts.customer_predictions",
    ) == [(150, 0, 0, "insufficient data", "insufficient data")]
    assert _query(settings, "select status, model, customers, converged from ops.prediction_fits") == [
        ("insufficient data", None, 150, None)
    ]


def test_a_missing_purchase_history_names_the_table_and_what_to_do(tmp_path):
    settings = _warehouse(tmp_path, None)
    with pytest.raises(RuntimeError, match="marts.customer_purchase_history is missing.*dbt build"):
        predict(settings, RunContext.create("r", as_of=AS_OF))


def test_churn_risk_thresholds_include_their_ends_in_medium():
    config = PredictionConfig(churn_low_above=0.7, churn_high_below=0.3)
    p = np.array([0.0, 0.29, 0.3, 0.5, 0.7, 0.71, 1.0])
    assert churn_risk(p, config).tolist() == ["high", "high", "medium", "medium", "medium", "low", "low"]


def test_settings_come_from_the_dbt_project_vars(tmp_path):
    project = tmp_path / "dbt_project.yml"
    project.write_text(
        "vars:\n  predictions_min_buyers: 50\n  churn_risk_low_above: 0.8\n"
        "  churn_risk_high_below: 0.2\n  predictions_max_fit_customers: 1000\n"
    )
    assert load_config(project) == PredictionConfig(
        min_buyers=50, churn_low_above=0.8, churn_high_below=0.2, max_fit_customers=1000
    )
    assert load_config() == PredictionConfig()  # the project's vars are the documented defaults


def test_without_a_spend_model_every_customer_gets_the_mean_order_value():
    history = pd.DataFrame(
        {
            "repeat_orders": [0, 2],
            "avg_repeat_order_value_usd": [np.nan, 30.0],
            "valid_orders": [1, 3],
            "revenue_usd": [10.0, 90.0],
        }
    )
    fits = Fits(purchases=None, spend=None)  # type: ignore[arg-type]
    assert expected_order_value(history, fits).tolist() == [25.0, 25.0]  # (10 + 90) / (1 + 3)
