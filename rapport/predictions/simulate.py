"""Customers drawn from the models themselves, with known parameters and known futures: parameter recovery
and calibration in the tests, and the fit's cost at a million customers in the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Simulated:
    x: np.ndarray  # repeat purchases in (0, T]
    t_x: np.ndarray  # time of the last one (0 without)
    T: np.ndarray  # observed age
    alive: np.ndarray  # still alive at T (the truth p_alive estimates)
    future: np.ndarray  # purchases in (T, T + horizon]


def pareto_nbd_customers(
    n: int, params: dict[str, float], T: np.ndarray | float, seed: int, horizon: float = 0.0
) -> Simulated:
    """n customers of a Pareto/NBD population observed for T time units after their first purchase."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], size=n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], size=n)
    lifetime = rng.exponential(1.0 / mu)
    active = np.minimum(lifetime, T)
    x = rng.poisson(lam * active)
    # the last of x uniform purchase times over the active span
    t_x = np.where(x > 0, active * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    future = rng.poisson(lam * np.clip(lifetime - T, 0.0, horizon))
    return Simulated(x.astype("float64"), t_x, T, lifetime > T, future.astype("float64"))


def gamma_gamma_means(x: np.ndarray, params: dict[str, float], seed: int) -> np.ndarray:
    """Mean order value of x orders per customer (nan where x is 0): the mean of x Gamma(p, nu) values is
    Gamma(p x, nu x), nu ~ Gamma(q, gamma) per customer."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype="float64")
    nu = rng.gamma(params["q"], 1.0 / params["gamma"], size=len(x))
    shape = np.maximum(params["p"] * x, 1e-12)
    zbar = rng.gamma(shape, 1.0 / (nu * np.maximum(x, 1.0)))
    return np.where(x > 0, zbar, np.nan)
