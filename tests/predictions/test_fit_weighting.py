"""The fits maximise the sum of every customer's own log-likelihood.

Pareto/NBD collapses customers with the same (x, t_x, T) into one row weighted by their number
(rapport.predictions.mle.collapse): on a hand-made set with repeated histories, the fit's log-likelihood must
be the sum of each customer's log-likelihood computed on its own, here by adaptive quadrature of the
likelihood's definition (Fader & Hardie 2005), and that sum must be at its maximum where the fit stopped (its
finite-difference gradient there is zero). Gamma-Gamma (analytic gradient) is checked the same way against
the density written out per customer with math.lgamma. The fits' sums avoid BLAS (mle.weighted_total).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from rapport.predictions import gamma_gamma, pareto_nbd, simulate
from rapport.predictions.mle import collapse, weighted_column_totals, weighted_total

# (x, t_x, T) in days and how many customers share it: one-time buyers, regulars, a purchase on the last day
HISTORIES = [
    ((0, 0.0, 30.0), 9),
    ((0, 0.0, 80.0), 12),
    ((0, 0.0, 5.0), 4),
    ((1, 10.0, 30.0), 5),
    ((1, 70.0, 80.0), 3),
    ((2, 25.5, 40.0), 1),
    ((2, 12.0, 80.0), 6),
    ((3, 12.0, 20.0), 2),
    ((4, 60.0, 75.0), 3),
    ((5, 35.0, 40.0), 1),
    ((1, 5.0, 5.0), 2),
    ((7, 78.0, 80.0), 2),
]


def _customers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([h for h, count in HISTORIES for _ in range(count)], dtype="float64")
    return rows[:, 0], rows[:, 1], rows[:, 2]


def _pareto_nbd_log_likelihood_alone(params: np.ndarray, x: float, t_x: float, T: float) -> float:
    """log L of one customer from the definition: alive at T, or died at some tau in (t_x, T]."""
    r, alpha, s, beta = (float(v) for v in params)
    k = r + x
    log_front = math.lgamma(k) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    alive = (alpha + T) ** -k * (beta + T) ** -s
    died = s * quad(lambda tau: (alpha + tau) ** -k * (beta + tau) ** -(s + 1), t_x, T, epsabs=0, epsrel=1e-13)[0]
    return log_front + math.log(alive + died)


def _total_alone(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    return math.fsum(_pareto_nbd_log_likelihood_alone(params, *row) for row in zip(x, t_x, T, strict=True))


def test_collapse_counts_each_distinct_history():
    x, t_x, T = _customers()
    (ux, ut, uT), counts = collapse(x, t_x, T)
    got = {(a, b, c): n for a, b, c, n in zip(ux, ut, uT, counts, strict=True)}
    assert got == {tuple(float(v) for v in h): float(n) for h, n in HISTORIES}


def test_pareto_nbd_fit_is_the_maximum_of_every_customers_own_likelihood():
    x, t_x, T = _customers()
    assert len(x) == 50
    fit = pareto_nbd.fit(x, t_x, T)
    assert fit.converged and fit.n == 50 and not fit.at_bound
    params = np.array([fit.params[k] for k in pareto_nbd.NAMES])
    assert fit.log_likelihood == pytest.approx(_total_alone(params, x, t_x, T), rel=1e-10, abs=1e-8)
    # at the maximum of the customers' summed log-likelihood: central differences in log-parameters vanish
    # (with the repeated customers counted once each instead, they are 0.2 to 2 here)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-4
        up, down = (_total_alone(params * np.exp(sign * step), x, t_x, T) for sign in (1, -1))
        assert (up - down) / 2e-4 == pytest.approx(0, abs=2e-3), pareto_nbd.NAMES[i]


def _gamma_gamma_log_density_alone(params: np.ndarray, x: float, zbar: float) -> float:
    """log density of the mean zbar of x order values, Gamma(p, nu) each, nu ~ Gamma(q, gamma)."""
    p, q, g = (float(v) for v in params)
    return (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(g)
        + p * x * math.log(x)
        + (p * x - 1) * math.log(zbar)
        - (p * x + q) * math.log(g + x * zbar)
    )


def test_gamma_gamma_fit_is_the_maximum_of_every_customers_own_likelihood():
    # 240 customers' mean spends drawn from Gamma-Gamma with CDNOW's parameters (seeded; what is checked is
    # where the fit stops, not the draws)
    x = np.tile(np.array([1, 1, 2, 3, 5, 8], dtype="float64"), 40)
    zbar = simulate.gamma_gamma_means(x, {"p": 6.25, "q": 3.74, "gamma": 15.44}, seed=3)

    def total(params: np.ndarray) -> float:
        return math.fsum(_gamma_gamma_log_density_alone(params, a, b) for a, b in zip(x, zbar, strict=True))

    fit = gamma_gamma.fit(x, zbar)
    assert fit.converged and fit.n == 240 and not fit.at_bound
    params = np.array([fit.params[k] for k in gamma_gamma.NAMES])
    assert fit.log_likelihood == pytest.approx(total(params), rel=1e-12)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-4
        assert (total(params * np.exp(step)) - total(params * np.exp(-step))) / 2e-4 == pytest.approx(0, abs=1e-4)


@pytest.mark.parametrize("params", [(6.25, 3.74, 15.44), (3.1, 29.1, 549.0), (0.5, 1.5, 2.0)])
def test_gamma_gamma_gradient_matches_finite_differences(params):
    x = np.array([1.0, 2.0, 5.0, 13.0])
    zbar = np.array([20.0, 42.5, 7.25, 130.0])
    value_and_gradient = gamma_gamma._value_and_gradient_of(x, zbar)
    v = np.log(params)
    ll, grad = value_and_gradient(v)
    np.testing.assert_allclose(ll, gamma_gamma.log_likelihood(np.array(params), x, zbar), rtol=1e-13)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        numeric = (value_and_gradient(v + step)[0] - value_and_gradient(v - step)[0]) / 2e-6
        np.testing.assert_allclose(grad[:, i], numeric, rtol=1e-6, atol=1e-7)


def test_weighted_totals_without_blas():
    weights = np.array([1.0, 2.0, 3.0])
    assert weighted_total(weights, np.array([0.5, -1.0, 2.0])) == 4.5  # 0.5 - 2 + 6
    columns = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    np.testing.assert_array_equal(weighted_column_totals(weights, columns), [14.0, 140.0])
