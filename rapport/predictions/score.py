"""From purchase histories to predictions: fit Pareto/NBD (purchases, p_alive) and Gamma-Gamma (order value)
on the customers' histories up to the as-of date, then score every customer.

Times are in days. The horizons start at the end of the as-of day: expected orders in the next 90 days,
revenue in the next 90 and 365 days (expected orders x expected order value, not discounted: marts.md
defines CLV 365 d as the expected net revenue of the next 365 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

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


def fit_sample(history: pd.DataFrame, config: PredictionConfig, seed: int = 0) -> pd.DataFrame:
    """The customers the fit uses: all of them, or a seeded sample of max_fit_customers (same data, same
    sample: rows are sorted by customer_id first)."""
    if len(history) <= config.max_fit_customers:
        return history
    ordered = history.sort_values("customer_id", kind="stable")
    return ordered.sample(n=config.max_fit_customers, random_state=seed)


def fit_models(history: pd.DataFrame, config: PredictionConfig) -> Fits:
    sample = fit_sample(history, config)
    x, t_x, T = (sample[c].to_numpy(dtype="float64") for c in HISTORY_COLUMNS[1:4])
    purchases = pareto_nbd.fit(x, t_x, T)
    zbar = sample["avg_repeat_order_value_usd"].to_numpy(dtype="float64", na_value=np.nan)
    spenders = (x > 0) & (zbar > 0)
    spend = gamma_gamma.fit(x[spenders], zbar[spenders]) if spenders.sum() >= 2 else None
    return Fits(purchases, spend)


def expected_order_value(history: pd.DataFrame, fits: Fits) -> np.ndarray:
    x = history["repeat_orders"].to_numpy(dtype="float64")
    zbar = history["avg_repeat_order_value_usd"].to_numpy(dtype="float64", na_value=np.nan)
    if fits.spend_usable:
        return np.maximum(gamma_gamma.expected_order_value(fits.spend.params, x, zbar), 0.0)
    # without a usable spend model: the shop's mean order value for everyone
    orders = history["valid_orders"].to_numpy(dtype="float64").sum()
    mean = float(history["revenue_usd"].to_numpy(dtype="float64").sum() / orders) if orders else 0.0
    return np.full(len(history), mean)


def score(history: pd.DataFrame, fits: Fits, config: PredictionConfig, *, as_of: date, fitted_on: date) -> pd.DataFrame:
    """One prediction row per history row (PREDICTION_COLUMNS)."""
    x, t_x, T = (history[c].to_numpy(dtype="float64") for c in HISTORY_COLUMNS[1:4])
    params = fits.purchases.params
    p_alive, ll_now = pareto_nbd.p_alive_and_log_likelihood(params, x, t_x, T)
    p_alive = np.clip(p_alive, 0.0, 1.0)
    orders_90d = pareto_nbd.expected_purchases(params, config.horizon_days, x, t_x, T, alive=p_alive)
    orders_clv = pareto_nbd.expected_purchases(params, config.clv_days, x, t_x, T, alive=p_alive)
    p_order = pareto_nbd.probability_of_purchase(params, config.horizon_days, x, t_x, T, ll_now=ll_now)
    value = expected_order_value(history, fits)
    return pd.DataFrame(
        {
            "customer_id": history["customer_id"].to_numpy(),
            "as_of_date": as_of,
            "p_alive": p_alive,
            "expected_orders_90d": orders_90d,
            "expected_revenue_90d_usd": orders_90d * value,
            "predicted_clv_365d_usd": orders_clv * value,
            "churn_risk": churn_risk(p_alive, config),
            "model": f"{fits.label} fitted {fitted_on.isoformat()}",
            "expected_order_value_usd": value,
            "p_order_90d": p_order,
        }
    )


def unscored(history: pd.DataFrame, *, as_of: date, reason: str) -> pd.DataFrame:
    """Every customer, without predictions, the reason in `model` (too few buyers, a failed fit)."""
    n = len(history)
    empty = np.full(n, np.nan)
    return pd.DataFrame(
        {
            "customer_id": history["customer_id"].to_numpy(),
            "as_of_date": as_of,
            "p_alive": empty,
            "expected_orders_90d": empty,
            "expected_revenue_90d_usd": empty,
            "predicted_clv_365d_usd": empty,
            "churn_risk": pd.Series([None] * n, dtype="object"),
            "model": reason,
            "expected_order_value_usd": empty,
            "p_order_90d": empty,
        }
    )
