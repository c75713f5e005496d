"""The Pareto/NBD likelihood's integral, its gradient and its invariants, against independent computations:
scipy's adaptive quadrature (quad) for the integral, central finite differences for the gradient, and
properties any Pareto/NBD must have (hypothesis draws the parameters and customers)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from rapport.predictions import pareto_nbd
from rapport.predictions.mle import collapse


def _log_integral_by_quad(k: float, m: float, alpha: float, beta: float, t0: float, t1: float) -> float:
    """log of integral_{t0}^{t1} (alpha+tau)^-k (1+tau/beta)^-m, scaled at t0 and split into pieces
    that get finer near t0, where a steep integrand puts its mass."""
    at_t0 = -k * np.log(alpha + t0) - m * np.log1p(t0 / beta)

    def f(tau: float) -> float:
        return float(np.exp(-k * np.log(alpha + tau) - m * np.log1p(tau / beta) - at_t0))

    edges = np.concatenate([[t0], t0 + (t1 - t0) * np.logspace(-8, 0, 40)])
    total = sum(quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in itertools.pairwise(edges))
    return float(np.log(total) + at_t0)


# extreme corners included: many repeat purchases, near-homogeneous dropout (huge s and beta), tiny alpha
GRID = list(
    itertools.product(
        [0.05, 1.0, 5.0],  # r
        [0.1, 10.0, 1e4],  # alpha
        [0.05, 1.0, 1e4],  # s
        [0.1, 100.0, 1e6],  # beta
        [0, 5, 60],  # x
        [(0.0, 450.0), (300.0, 400.0), (10.0, 10.001)],  # (t_x, T)
    )
)


# quad warns about the steepest integrands; it still agrees with ours to 1e-7 in log there
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_death_integral_matches_adaptive_quadrature():
    rows = np.array([(r + x, s + 1, a, b, t0, t1) for r, a, s, b, x, (t0, t1) in GRID])
    ours = np.array(
        [
            pareto_nbd._death_integral(np.array([k]), m, a, b, np.array([t0]), np.array([t1]), False)[0][0]
            for k, m, a, b, t0, t1 in rows
        ]
    )
    theirs = np.array([_log_integral_by_quad(*row) for row in rows])
    assert np.max(np.abs(ours - theirs)) < 1e-7


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.61, 11.7), (1.1, 77.0, 8.0, 2900.0), (0.3, 2.0, 5e3, 1e6)])
def test_gradient_matches_finite_differences(params):
    rng = np.random.default_rng(3)
    T = rng.uniform(1, 100, 200)
    x = rng.poisson(3, 200).astype(float)
    t_x = np.where(x > 0, T * rng.random(200), 0.0)
    p = np.array(params)
    _, _, grad = pareto_nbd._parts(p, x, t_x, T, gradient=True)
    for i in range(4):
        step = np.zeros(4)
        step[i] = p[i] * 1e-5
        numeric = (
            pareto_nbd.log_likelihood(p + step, x, t_x, T).sum() - pareto_nbd.log_likelihood(p - step, x, t_x, T).sum()
        ) / (2 * step[i])
        assert grad[:, i].sum() == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_collapsed_rows_give_the_same_likelihood_as_every_customer():
    x = np.array([0, 0, 2, 2, 2, 5.0])
    t_x = np.array([0, 0, 3, 3, 4, 9.0])
    T = np.array([10, 10, 10, 10, 10, 12.0])
    (ux, ut, uT), weights = collapse(x, t_x, T)
    assert len(ux) == 4 and weights.tolist() == [2, 2, 1, 1]
    p = np.array([0.5, 10.0, 0.6, 11.0])
    assert np.dot(weights, pareto_nbd.log_likelihood(p, ux, ut, uT)) == pytest.approx(
        pareto_nbd.log_likelihood(p, x, t_x, T).sum(), rel=1e-12
    )


positive = st.floats(min_value=0.05, max_value=50.0)


@settings(max_examples=60, deadline=None)
@given(
    r=positive,
    alpha=positive,
    s=positive,
    beta=positive,
    x=st.integers(0, 40),
    t_x=st.floats(0.0, 100.0),
    gap=st.floats(0.0, 100.0),
    later=st.floats(0.1, 100.0),
)
def test_p_alive_is_a_probability_falling_with_silence(r, alpha, s, beta, x, t_x, gap, later):
    params = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    t_x = t_x if x > 0 else 0.0
    xs, txs = np.array([x, x], float), np.array([t_x, t_x])
    alive = pareto_nbd.p_alive(params, xs, txs, np.array([t_x + gap, t_x + gap + later]))
    assert 0.0 <= alive[1] <= alive[0] <= 1.0 + 1e-12
    # a purchase at the very end of the observation: nobody can have died unseen
    assert pareto_nbd.p_alive(params, xs[:1], txs[:1], txs[:1])[0] == pytest.approx(1.0)
    expected = pareto_nbd.expected_purchases(params, 90.0, xs[:1], txs[:1], np.array([t_x + gap]))[0]
    longer = pareto_nbd.expected_purchases(params, 365.0, xs[:1], txs[:1], np.array([t_x + gap]))[0]
    assert 0.0 <= expected <= longer
    # buying in the next 90 days needs being alive now
    buys = pareto_nbd.probability_of_purchase(params, 90.0, xs[:1], txs[:1], np.array([t_x + gap]))[0]
    assert 0.0 <= buys <= alive[0] + 1e-9
