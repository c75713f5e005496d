"""Known answers on CDNOW: the models fitted here reproduce the published parameters, log-likelihoods and
worked examples (the data's README lists them).

- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way": r 0.2426, alpha 4.4137,
  a 0.7928, b 2.4256, LL -9582.4; E[Y(39) | x 2, t_x 30.43, T 38.86] = 1.226; the unconditional curve
  E[X(t)] of Hardie's spreadsheet.
- Pareto/NBD: Fader, Hardie & Lee (2005), "RFM and CLV": r 0.553, alpha 10.578, s 0.606, beta 11.669,
  LL -9595.0; the BTYD package's walkthrough: E[Y(52) | x 26, t_x 30.86, T 31] = 25.46.
- Gamma-Gamma on the 946 customers with repeat purchases, same paper: p 6.25, q 3.74, gamma 15.44.
"""

from __future__ import annotations

import numpy as np
import pytest

from rapport.predictions import bgnbd, gamma_gamma, pareto_nbd


def _cols(cdnow):
    return (cdnow[c].to_numpy(dtype="float64") for c in ("x", "t_x", "T"))


def test_bgnbd_reproduces_the_published_fit_and_example(cdnow):
    fit = bgnbd.fit(*_cols(cdnow))
    assert fit.converged and fit.n == 2357
    p = fit.params
    assert (p["r"], p["alpha"], p["a"], p["b"]) == pytest.approx((0.2426, 4.4137, 0.7928, 2.4256), abs=2e-4)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    one = np.array([1.0])
    assert bgnbd.expected_purchases(p, 39, 2 * one, 30.43 * one, 38.86 * one)[0] == pytest.approx(1.226, abs=5e-4)
    curve = bgnbd.expected_purchases_new(p, np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0]))
    assert curve == pytest.approx([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], abs=1e-3)
    # BG/NBD's flaw for a shop: a customer without repeat purchases is alive for sure, however long ago
    assert bgnbd.p_alive(p, np.zeros(2), np.zeros(2), np.array([1.0, 500.0])).tolist() == [1.0, 1.0]


def test_pareto_nbd_reproduces_the_published_fit_and_example(cdnow):
    fit = pareto_nbd.fit(*_cols(cdnow))
    assert fit.converged and not fit.at_bound
    p = fit.params
    assert (p["r"], p["s"]) == pytest.approx((0.553, 0.606), abs=1e-3)
    assert (p["alpha"], p["beta"]) == pytest.approx((10.578, 11.669), abs=0.01)
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.05)
    one = np.array([1.0])
    assert pareto_nbd.expected_purchases(p, 52, 26 * one, 30.86 * one, 31 * one)[0] == pytest.approx(25.46, abs=0.01)
    # unlike BG/NBD, a one-time buyer's p_alive falls with the time since the first purchase
    alive = pareto_nbd.p_alive(p, np.zeros(3), np.zeros(3), np.array([1.0, 20.0, 39.0]))
    assert 1 > alive[0] > alive[1] > alive[2] > 0


def test_gamma_gamma_reproduces_the_published_fit(cdnow):
    x, zbar = cdnow["x"].to_numpy(dtype="float64"), cdnow["zbar"].to_numpy(dtype="float64")
    fit = gamma_gamma.fit(x, zbar)
    assert fit.converged and fit.n == 946  # customers with repeat purchases
    assert (fit.params["p"], fit.params["q"], fit.params["gamma"]) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)
    # the population mean spend p gamma / (q - 1), and shrinkage towards a customer's own mean
    assert gamma_gamma.population_mean(fit.params) == pytest.approx(6.25 * 15.44 / 2.74, rel=2e-3)
    many, few = gamma_gamma.expected_order_value(fit.params, np.array([50.0, 1.0]), np.array([100.0, 100.0]))
    assert gamma_gamma.population_mean(fit.params) < few < many < 100
