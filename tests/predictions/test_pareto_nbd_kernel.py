"""The Pareto/NBD death integral works in place and with its own row-wise log-sum-exp (issue 16: it is most of
the fit's and the scoring's time): every value must be, to the last bit, what the plain expressions give
(written out here as they stood before) and what scipy's logsumexp gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from rapport.predictions import pareto_nbd


def _plain_death_integral(k, m, alpha, beta, t0, t1, moments):  # type: ignore[no-untyped-def]
    """The integral as plain numpy expressions, scipy's logsumexp included (the code before issue 16)."""
    rate = k / (alpha + t0) + m / (beta + t0)
    width = np.log1p((t1 - t0) * rate) / pareto_nbd._PANELS
    u = width[:, None] * pareto_nbd._POSITIONS[None, :]
    tau = t0[:, None] + np.expm1(u) / rate[:, None]
    log_a = np.log(alpha + tau)
    log_b = np.log1p(tau / beta)
    log_f = -k[:, None] * log_a - m * log_b + u + pareto_nbd._LOG_WEIGHTS[None, :]
    with np.errstate(divide="ignore"):
        log_scale = np.log(width / 2) - np.log(rate)
    total = logsumexp(log_f, axis=1)
    if not moments:
        return (total + log_scale,)
    share = np.exp(log_f - total[:, None])
    share = np.where(np.isfinite(share), share, 0.0)
    return (
        total + log_scale,
        (share * log_a).sum(1),
        (share / (alpha + tau)).sum(1),
        (share * log_b).sum(1),
        (share / (beta + tau)).sum(1),
    )


def _same_bits(ours: tuple[np.ndarray, ...], plain: tuple[np.ndarray, ...]) -> None:
    assert len(ours) == len(plain)
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


# corners of the parameters (many repeat purchases, near-homogeneous dropout, tiny alpha) and customers
# (t_x == T, a first-day customer, long and short gaps)
T0 = np.array([0.0, 0.0, 300.0, 10.0, 38.9, 0.0, 5.5, 100.0, 0.0])
T1 = np.array([450.0, 0.0, 400.0, 10.001, 38.9, 1e-6, 600.0, 100.5, 3000.0])
X = np.array([0.0, 0.0, 5.0, 60.0, 2.0, 1.0, 13.0, 0.0, 200.0])


@pytest.mark.parametrize(
    ("r", "alpha", "s", "beta"),
    list(itertools.product([0.05, 1.1], [0.1, 78.7, 1e4], [0.05, 5.4, 1e4], [0.1, 1705.0, 1e6])),
)
@pytest.mark.parametrize("moments", [False, True])
def test_death_integral_is_the_plain_expressions_to_the_bit(r, alpha, s, beta, moments):
    args = (r + X, s + 1.0, alpha, beta, T0, T1, moments)
    with np.errstate(all="ignore"):
        _same_bits(pareto_nbd._death_integral(*args), _plain_death_integral(*args))


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.01, 10),
    st.floats(0.01, 1e4),
    st.floats(0.01, 1e4),
    st.floats(0.01, 1e6),
    st.lists(st.tuples(st.integers(0, 100), st.floats(0, 500), st.floats(0, 500)), min_size=1, max_size=30),
)
def test_death_integral_to_the_bit_on_drawn_customers(r, alpha, s, beta, customers):
    x = np.array([c[0] for c in customers], dtype="float64")
    t0 = np.array([min(c[1], c[2]) for c in customers])
    t1 = np.array([max(c[1], c[2]) for c in customers])
    with np.errstate(all="ignore"):
        for moments in (False, True):
            args = (r + x, s + 1.0, alpha, beta, t0, t1, moments)
            _same_bits(pareto_nbd._death_integral(*args), _plain_death_integral(*args))


def test_log_sum_exp_rows_is_scipys_to_the_bit():
    rows = np.random.default_rng(5).normal(0, 30, size=(200, 60))
    rows[1, 7] = rows[1].max()  # the largest value twice
    rows[2, :] = -3.25  # every value the largest
    rows[3, :] = -np.inf  # nothing: log 0
    rows[4, 9] = np.inf
    rows[5, 0] = np.nan
    rows[6, :] = np.concatenate([np.full(59, -np.inf), [2.5]])  # one node
    rows[7] = rows[7] - 1e308  # underflow of every exp but the largest
    with np.errstate(all="ignore"):
        ours, theirs = pareto_nbd.log_sum_exp_rows(rows), logsumexp(rows, axis=1)
    np.testing.assert_array_equal(ours.view(np.int64), theirs.view(np.int64))
    assert np.isneginf(ours[3]) and np.isposinf(ours[4]) and np.isnan(ours[5]) and ours[6] == 2.5
