"""The pipeline step: fit on `marts.customer_purchase_history` (built by dbt), write
`marts.customer_predictions` and append the fits to `ops.prediction_fits`, in one transaction.

Runs in the `rapport_transform` DAG after the dbt build and before the mart checks. The caller holds the
warehouse's writer lock (rapport.pipeline.predict); this module opens the file itself, like dbt does.
Settings are dbt vars (dbt_project.yml, `predictions_*`, `churn_risk_*`), documented there.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime
from typing import Any, Protocol

import duckdb

from rapport.core.config import Settings

# DBT_PROJECT_FILE, PREDICTIONS_TABLE and load_config re-exported (`as`): callers found them here first
from rapport.predictions.config import DBT_PROJECT_FILE as DBT_PROJECT_FILE
from rapport.predictions.config import INSUFFICIENT, NOT_CONVERGED, PredictionConfig
from rapport.predictions.config import PREDICTIONS_TABLE as PREDICTIONS_TABLE
from rapport.predictions.config import load_config as load_config
from rapport.predictions.score import (
    HISTORY_COLUMNS,
    PREDICTION_COLUMNS,
    Columns,
    Fits,
    History,
    customers,
    fit_models,
    score,
    unscored,
)

log = logging.getLogger("rapport.predictions")

HISTORY_TABLE = "marts.customer_purchase_history"

FITS_DDL = """
create table if not exists ops.prediction_fits (
    run_id varchar, as_of_date date, fitted_at timestamp, status varchar, model varchar, params varchar,
    log_likelihood double, n bigint, converged boolean, fit_seconds double, customers bigint, message varchar
)"""
PREDICTIONS_DDL = f"""
create or replace table {PREDICTIONS_TABLE} (
    customer_id varchar, as_of_date date, p_alive double, expected_orders_90d double,
    expected_revenue_90d_usd double, predicted_clv_365d_usd double, churn_risk varchar, model varchar,
    expected_order_value_usd double, p_order_90d double
)"""


class RunInfo(Protocol):
    """What the step needs of a run (rapport.pipeline.RunContext has it)."""

    run_id: str
    as_of: date


def read_history(con: duckdb.DuckDBPyConnection) -> Columns:
    """The histories as numpy columns (a NULL mean spend masked), in customer_id order."""
    try:
        query = f"select {', '.join(HISTORY_COLUMNS)} from {HISTORY_TABLE} order by customer_id"
        return con.execute(query).fetchnumpy()
    except duckdb.CatalogException as exc:
        raise RuntimeError(
            f"{HISTORY_TABLE} is missing from {con}: the dbt build (marts layer) must run before the "
            "prediction step; rerun the run, or `dbt build --select customer_purchase_history`"
        ) from exc


def predict_customers(
    history: History, config: PredictionConfig, *, as_of: date, today: date
) -> tuple[Columns, Fits | None, str]:
    """(predictions, fits or None, status) for the histories as of `as_of`."""
    if customers(history) < config.min_buyers:
        return unscored(history, as_of=as_of, reason=INSUFFICIENT), None, INSUFFICIENT
    fits = fit_models(history, config)
    if not fits.purchases.converged:
        return unscored(history, as_of=as_of, reason=NOT_CONVERGED), fits, NOT_CONVERGED
    return score(history, fits, config, as_of=as_of, fitted_on=today), fits, "fitted"


def _fit_rows(
    run_id: str, as_of: date, status: str, fits: Fits | None, customers: int, config: PredictionConfig
) -> list[list[object]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    if fits is None:
        message = f"{customers} customers with a valid order, fewer than predictions_min_buyers ({config.min_buyers})"
        return [[run_id, as_of, now, status, None, None, None, customers, None, 0.0, customers, message]]
    return [
        [
            run_id,
            as_of,
            now,
            status,
            f.model,
            json.dumps(f.params),
            f.log_likelihood,
            f.n,
            f.converged,
            f.seconds,
            customers,
            f.message,
        ]
        for f in (fits.purchases, fits.spend)
        if f is not None
    ]


def write(con: duckdb.DuckDBPyConnection, predictions: Columns, fit_rows: list[list[object]], run_id: str) -> None:
    """Replace the predictions and this run's fit rows together (a rerun of the run replaces them)."""
    con.execute("begin")
    try:
        con.execute("create schema if not exists ops")
        con.execute(FITS_DDL)
        con.execute(PREDICTIONS_DDL)
        # DuckDB scans numpy columns as a table (no pandas needed)
        con.register("_predictions", {name: predictions[name] for name in PREDICTION_COLUMNS})
        con.execute(f"insert into {PREDICTIONS_TABLE} select * from _predictions")
        con.unregister("_predictions")
        con.execute("delete from ops.prediction_fits where run_id = ?", [run_id])
        con.executemany("insert into ops.prediction_fits values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", fit_rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def predict(settings: Settings, ctx: RunInfo) -> dict[str, Any]:
    """Fit, score and write for the run; returns a summary (status, customers, parameters, a message)."""
    t0 = time.perf_counter()
    config = load_config()
    con = duckdb.connect(str(settings.work_db), config=settings.duckdb_config())
    try:
        history = read_history(con)
        predictions, fits, status = predict_customers(history, config, as_of=ctx.as_of, today=datetime.now(UTC).date())
        n = customers(history)
        write(con, predictions, _fit_rows(ctx.run_id, ctx.as_of, status, fits, n, config), ctx.run_id)
    finally:
        con.close()
    summary: dict[str, Any] = {"status": status, "customers": n, "seconds": time.perf_counter() - t0}
    if fits is None:
        summary["message"] = (
            f"no predictions: {n} customers with a valid order up to {ctx.as_of}, "
            f"fewer than predictions_min_buyers ({config.min_buyers}); "
            f"{PREDICTIONS_TABLE} lists them with model '{INSUFFICIENT}'"
        )
    elif status != "fitted":
        summary["message"] = (
            f"no predictions: the Pareto/NBD fit did not converge ({fits.purchases.message}); see ops.prediction_fits"
        )
    else:
        summary["params"] = {**fits.purchases.params, **(fits.spend.params if fits.spend else {})}
        summary["message"] = (
            f"{n} customers scored ({fits.label}, fitted on {fits.purchases.n}, "
            f"log-likelihood {fits.purchases.log_likelihood:.1f})"
        )
    log.info(summary["message"])
    return summary
