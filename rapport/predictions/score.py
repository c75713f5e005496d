"""From purchase histories to predictions: fit Pareto/NBD (purchases, p_alive) and Gamma-Gamma (order value)
on the customers' histories up to the as-of date, then score every customer.

Times are in days. The horizons start at the end of the as-of day: expected orders in the next 90 days,
revenue in the next 90 and 365 days (expected orders x expected order value, not discounted: marts.md
defines CLV 365 d as the expected net revenue of the next 365 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import numpy as np

from rapport.predictions import gamma_gamma, pareto_nbd

# re-exported (`as`): callers found them here before rapport.predictions.config held them
from rapport.predictions.config import INSUFFICIENT as INSUFFICIENT
from rapport.predictions.config import NOT_CONVERGED as NOT_CONVERGED
from rapport.predictions.config import PredictionConfig as PredictionConfig
from rapport.predictions.mle import FitResult

# marts.customer_purchase_history columns the models read
HISTORY_COLUMNS = (
    "customer_id",
    "repeat_orders",
    "days_first_to_last_order",
    "days_first_order_to_cutoff",
    "avg_repeat_order_value_usd",
    "revenue_usd",
    "valid_orders",
)
PREDICTION_COLUMNS = (
    "customer_id",
    "as_of_date",
    "p_alive",
    "expected_orders_90d",
    "expected_revenue_90d_usd",
    "predicted_clv_365d_usd",
    "churn_risk",
    "model",
    "expected_order_value_usd",
    "p_order_90d",
)


# The predictions as columns (PREDICTION_COLUMNS), each an array of one value per customer
Columns = dict[str, np.ndarray]


class History(Protocol):
    """The purchase histories by column (HISTORY_COLUMNS): what DuckDB's fetchnumpy() gives (the step reads
    them so, without pandas, whose import was a tenth of a day's step) or a pandas DataFrame."""

    def __getitem__(self, name: str, /) -> Any: ...


def floats(history: History, name: str) -> np.ndarray:
    """A column as float64, missing values NaN (DuckDB's fetchnumpy masks NULLs; pandas has them as NA/NaN)."""
    column = history[name]
    if isinstance(column, np.ma.MaskedArray):
        return column.astype("float64").filled(np.nan)
    if hasattr(column, "to_numpy"):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(column, dtype="float64")


def customers(history: History) -> int:
    return len(history["customer_id"])


@dataclass(frozen=True)
class Fits:
    purchases: FitResult
    spend: FitResult | None  # None: no customer with a repeat order of positive value

    @property
    def spend_usable(self) -> bool:
        # q <= 1 would make the population's mean order value infinite
        return self.spend is not None and self.spend.converged and self.spend.params["q"] > 1

    @property
    def label(self) -> str:
        return "pareto_nbd+" + ("gamma_gamma" if self.spend_usable else "mean_order_value")


def churn_risk(p_alive: np.ndarray, config: PredictionConfig) -> np.ndarray:
    """low above churn_low_above, high below churn_high_below, medium in between (both ends included)."""
    p = np.asarray(p_alive, dtype="float64")
    return np.where(p > config.churn_low_above, "low", np.where(p < config.churn_high_below, "high", "medium"))


def fit_sample(history: History, config: PredictionConfig, seed: int = 0) -> np.ndarray | None:
    """Which rows the fit uses: None for all of them, else the positions of a seeded sample of
    max_fit_customers (same data, same sample: the rows are put in customer_id order first). The sample is
    pandas' `DataFrame.sample(n, random_state=seed)` of the rows in that order, written with numpy so that the
    step need not import pandas (tests/predictions/test_fit_sample.py compares the two)."""
    n = customers(history)
    if n <= config.max_fit_customers:
        return None
    order = np.argsort(np.asarray(history["customer_id"]), kind="stable")
    return order[np.random.RandomState(seed).permutation(n)[: config.max_fit_customers]]


def fit_models(history: History, config: PredictionConfig) -> Fits:
    rows = fit_sample(history, config)
    x, t_x, T, zbar = (
        column if rows is None else column[rows]
        for column in (floats(history, c) for c in (*HISTORY_COLUMNS[1:4], "avg_repeat_order_value_usd"))
    )
    purchases = pareto_nbd.fit(x, t_x, T)
    spenders = (x > 0) & (zbar > 0)
    spend = gamma_gamma.fit(x[spenders], zbar[spenders]) if spenders.sum() >= 2 else None
    return Fits(purchases, spend)


def expected_order_value(history: History, fits: Fits) -> np.ndarray:
    x = floats(history, "repeat_orders")
    zbar = floats(history, "avg_repeat_order_value_usd")
    if fits.spend_usable:
        return np.maximum(gamma_gamma.expected_order_value(fits.spend.params, x, zbar), 0.0)
    # without a usable spend model: the shop's mean order value for everyone
    orders = floats(history, "valid_orders").sum()
    mean = float(floats(history, "revenue_usd").sum() / orders) if orders else 0.0
    return np.full(len(x), mean)


def score(history: History, fits: Fits, config: PredictionConfig, *, as_of: date, fitted_on: date) -> Columns:
    """One prediction per history row (PREDICTION_COLUMNS)."""
    x, t_x, T = (floats(history, c) for c in HISTORY_COLUMNS[1:4])
    n = len(x)
    params = fits.purchases.params
    p_alive, ll_now = pareto_nbd.p_alive_and_log_likelihood(params, x, t_x, T)
    p_alive = np.clip(p_alive, 0.0, 1.0)
    orders_90d = pareto_nbd.expected_purchases(params, config.horizon_days, x, t_x, T, alive=p_alive)
    orders_clv = pareto_nbd.expected_purchases(params, config.clv_days, x, t_x, T, alive=p_alive)
    p_order = pareto_nbd.probability_of_purchase(params, config.horizon_days, x, t_x, T, ll_now=ll_now)
    value = expected_order_value(history, fits)
    return {
        "customer_id": np.asarray(history["customer_id"]),
        "as_of_date": np.full(n, as_of, dtype=object),
        "p_alive": p_alive,
        "expected_orders_90d": orders_90d,
        "expected_revenue_90d_usd": orders_90d * value,
        "predicted_clv_365d_usd": orders_clv * value,
        "churn_risk": churn_risk(p_alive, config),
        "model": np.full(n, f"{fits.label} fitted {fitted_on.isoformat()}", dtype=object),
        "expected_order_value_usd": value,
        "p_order_90d": p_order,
    }


def unscored(history: History, *, as_of: date, reason: str) -> Columns:
    """Every customer, without predictions, the reason in `model` (too few buyers, a failed fit)."""
    n = customers(history)
    empty = np.full(n, np.nan)
    return {
        "customer_id": np.asarray(history["customer_id"]),
        "as_of_date": np.full(n, as_of, dtype=object),
        "p_alive": empty,
        "expected_orders_90d": empty,
        "expected_revenue_90d_usd": empty,
        "predicted_clv_365d_usd": empty,
        "churn_risk": np.full(n, None, dtype=object),
        "model": np.full(n, reason, dtype=object),
        "expected_order_value_usd": empty,
        "p_order_90d": empty,
    }
