"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): purchases Poisson(lambda)
while alive, lambda ~ Gamma(r, alpha); after each purchase the customer drops out with probability
p ~ Beta(a, b).

Kept for reference and comparison: by construction it gives every customer without a repeat purchase
p_alive = 1, wrong for a shop where most customers buy once, so the pipeline uses Pareto/NBD.
Inputs per customer: x repeat purchases, t_x time of the last one and T age, both from the first purchase.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln, hyp2f1

from rapport.predictions.mle import FitResult, collapse, fit_positive

NAMES = ("r", "alpha", "a", "b")


def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    beta_ratio = betaln(a, b + x) - betaln(a, b)
    alive_to_T = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # dropped out right after the last purchase (only possible after a repeat purchase)
    dropped = np.where(
        repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf
    )
    return common + beta_ratio + np.logaddexp(alive_to_T, dropped)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> FitResult:
    (ux, ut, uT), weights = collapse(x, t_x, T)
    start = (1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0)
    return fit_positive("bg_nbd", NAMES, lambda p: log_likelihood(p, ux, ut, uT), weights, start, len(x))


def p_alive(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = (params[k] for k in NAMES)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    repeat = x > 0
    odds = np.where(repeat, a / np.where(repeat, b + x - 1, 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t time units."""
    r, alpha, a, b = (params[k] for k in NAMES)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    return head * tail * p_alive(params, x, t_x, T)


def expected_purchases_new(params: dict[str, float], t: np.ndarray) -> np.ndarray:
    """E[X(t)]: expected purchases of a customer observed from time 0 (the unconditional curve)."""
    r, alpha, a, b = (params[k] for k in NAMES)
    t = np.asarray(t, dtype="float64")
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
