"""Maximum-likelihood fitting shared by the models: positive parameters optimised on the log scale with
scipy's L-BFGS-B, identical customers collapsed into weighted rows, and the diagnostics kept in `ops`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, minimize

# log-parameter bounds: exp(+-15) spans 3e-7 .. 3e6, far beyond any sensible value in days or weeks; a
# parameter that ends on a bound is reported (the likelihood keeps rising towards a limiting model)
LOG_BOUND = 15.0
_OPTIONS = {"maxiter": 2000, "ftol": 1e-11, "gtol": 1e-7}


@dataclass(frozen=True)
class FitResult:
    """A fitted model: parameters, maximised log-likelihood and how the fit went."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    n: int  # customers (or spend observations) the fit used
    converged: bool
    seconds: float
    message: str = ""
    at_bound: tuple[str, ...] = field(default=())


def collapse(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the given columns and how often each occurs (the log-likelihood is a weighted sum)."""
    stacked = np.column_stack([np.asarray(c, dtype="float64") for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype("float64")


def weighted_total(weights: np.ndarray, values: np.ndarray) -> float:
    """sum(weights * values), by numpy's (pairwise) summation rather than BLAS (np.dot, @): OpenBLAS splits a
    product of more than 10,000 rows over its threads and adds up their parts, so its last digits depended on
    the machine's cores, and the fitted parameters with them (Gamma-Gamma's by 1e-4 at a million people); and
    its threads spin on after each product, which cost ten times the Gamma-Gamma fit's own CPU time on a busy
    2-core machine (docs/predictions.md, "On a day's run")."""
    return float((weights * values).sum())


def weighted_column_totals(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """weighted_total of each column of `values` (rows x columns), without BLAS for the same reasons."""
    return np.ascontiguousarray((values * weights[:, None]).T).sum(axis=1)


def _result(
    model: str,
    names: Sequence[str],
    params: np.ndarray,
    opt: OptimizeResult,
    bounds: list[tuple],
    total: float,
    n: int,
    seconds: float,
) -> FitResult:
    at_bound = tuple(
        name for name, v, (lo, hi) in zip(names, opt.x, bounds, strict=True) if v <= lo + 1e-6 or v >= hi - 1e-6
    )
    ll = -float(opt.fun) * total
    message = str(opt.message)
    if at_bound:
        message += f"; at the bound of the search: {', '.join(at_bound)}"
    # L-BFGS-B can end on a failed line search ("ABNORMAL") right at the optimum, where the objective's
    # rounding noise exceeds the decrease it asks for: a small gradient off the bounds counts as converged
    free = np.array([name not in at_bound for name in names])
    gradient = np.abs(np.asarray(opt.jac, dtype="float64"))[free]
    small_gradient = bool(np.all(gradient < 1e-5)) if gradient.size else True
    converged = (bool(opt.success) or small_gradient) and bool(np.isfinite(ll))
    values = {name: float(v) for name, v in zip(names, params, strict=True)}
    return FitResult(model, values, ll, n, converged, seconds, message, at_bound)


def _minimise(objective: Callable, x0: np.ndarray, bounds: list[tuple], jac: bool) -> OptimizeResult:
    first = minimize(objective, x0, jac=jac, method="L-BFGS-B", bounds=bounds, options=_OPTIONS)
    # a restart from the first optimum: the limited-memory curvature estimate can stop early on flat ridges
    again = minimize(objective, first.x, jac=jac, method="L-BFGS-B", bounds=bounds, options=_OPTIONS)
    return again if again.fun <= first.fun else first


def fit_positive(
    model: str,
    names: Sequence[str],
    log_likelihood: Callable[[np.ndarray], np.ndarray],
    weights: np.ndarray,
    start: Sequence[float],
    n: int,
) -> FitResult:
    """Maximise sum(weights * log_likelihood(params)) over positive params (one value per name), with
    finite-difference gradients (for likelihoods that are cheap to evaluate).

    Non-finite values count as a very poor fit, so the optimiser backs away from regions where a special
    function overflows."""
    total = float(weights.sum())

    def objective(log_params: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -weighted_total(weights, log_likelihood(np.exp(log_params))) / total
        return value if np.isfinite(value) else 1e10

    t0 = time.perf_counter()
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    opt = _minimise(objective, np.log(np.asarray(start, dtype="float64")), bounds, jac=False)
    return _result(model, names, np.exp(opt.x), opt, bounds, total, n, time.perf_counter() - t0)


def fit_with_gradient(
    model: str,
    names: Sequence[str],
    value_and_gradient: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    to_params: Callable[[np.ndarray], np.ndarray],
    weights: np.ndarray,
    start: np.ndarray,
    bounds: list[tuple[float, float]],
    n: int,
) -> FitResult:
    """Maximise sum(weights * log-likelihood) over search variables v (params = to_params(v)), given
    per-row log-likelihoods and their gradients with respect to v."""
    total = float(weights.sum())

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            ll, grad = value_and_gradient(v)
            value = -weighted_total(weights, ll) / total
            g = -weighted_column_totals(weights, grad) / total
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            return 1e10, np.zeros_like(v)
        return value, g

    t0 = time.perf_counter()
    opt = _minimise(objective, np.asarray(start, dtype="float64"), bounds, jac=True)
    return _result(model, names, to_params(opt.x), opt, bounds, total, n, time.perf_counter() - t0)
