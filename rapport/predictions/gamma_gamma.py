"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013, "The Gamma-Gamma
Model of Monetary Value"): a customer's order values are Gamma(p, nu), nu ~ Gamma(q, gamma) across
customers, independent of how often they buy. Fitted on the customers with repeat purchases: x repeat
orders with mean value zbar (> 0).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from rapport.predictions.mle import FitResult, fit_positive

NAMES = ("p", "q", "gamma")


def log_likelihood(params: np.ndarray, x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
    """Log density of the mean zbar of x order values (the constant Jacobian terms included)."""
    p, q, g = params
    x, zbar = np.asarray(x, dtype="float64"), np.asarray(zbar, dtype="float64")
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + px * np.log(x)
        + (px - 1) * np.log(zbar)
        - (px + q) * np.log(g + x * zbar)
    )


def fit(x: np.ndarray, zbar: np.ndarray) -> FitResult:
    x, zbar = np.asarray(x, dtype="float64"), np.asarray(zbar, dtype="float64")
    keep = (x > 0) & (zbar > 0) & np.isfinite(zbar)
    x, zbar = x[keep], zbar[keep]
    weights = np.ones(len(x))
    start = (1.0, 2.0, max(float(np.mean(zbar)), 1e-3))
    return fit_positive("gamma_gamma", NAMES, lambda par: log_likelihood(par, x, zbar), weights, start, len(x))


def population_mean(params: dict[str, float]) -> float:
    """E[order value] of a customer with no repeat order yet; infinite when q <= 1."""
    p, q, g = (params[k] for k in NAMES)
    return p * g / (q - 1) if q > 1 else float("inf")


def expected_order_value(params: dict[str, float], x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
    """E[order value | x, zbar]: the population mean shrunk towards the customer's own mean as x grows
    (zbar is ignored where x is 0)."""
    p, q, g = (params[k] for k in NAMES)
    x = np.asarray(x, dtype="float64")
    zbar = np.where(x > 0, np.nan_to_num(np.asarray(zbar, dtype="float64")), 0.0)
    return p * (g + x * zbar) / (p * x + q - 1)
