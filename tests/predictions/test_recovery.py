"""Parameter recovery and calibration on customers simulated from the models with known parameters
(rapport.predictions.simulate, seeded).

10,000 Pareto/NBD customers with CDNOW-like parameters (weeks), observed 52 to 156 weeks, then 39 more.
Tolerances are about four standard deviations of each estimate over 12 simulated samples of this design
(measured when the test was written: r 3.4%, alpha 3.0%, s 4.5%, beta 11.6%; Gamma-Gamma p 8.5%, q 2.5%,
gamma 11%), and the true parameters must lie in the 99.9% likelihood-ratio region of the fit.
"""

from __future__ import annotations

import numpy as np
import pytest

from rapport.predictions import gamma_gamma, pareto_nbd, simulate

pytestmark = pytest.mark.slow  # two fits on 10,000 customers, ~5 s

TRUE = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
TRUE_SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CHI2_999 = {3: 16.27, 4: 18.47}  # 99.9% quantiles of chi-square with 3 and 4 degrees of freedom


@pytest.fixture(scope="module")
def sample() -> simulate.Simulated:
    T = np.random.default_rng(1000).uniform(52, 156, 10_000)
    return simulate.pareto_nbd_customers(10_000, TRUE, T, seed=0, horizon=39)


def test_pareto_nbd_recovers_its_parameters(sample):
    fit = pareto_nbd.fit(sample.x, sample.t_x, sample.T)
    assert fit.converged
    tolerance = {"r": 0.15, "alpha": 0.12, "s": 0.20, "beta": 0.45}
    for name, true in TRUE.items():
        assert fit.params[name] == pytest.approx(true, rel=tolerance[name]), name
    at_truth = pareto_nbd.log_likelihood(np.array(list(TRUE.values())), sample.x, sample.t_x, sample.T).sum()
    assert 0 <= 2 * (fit.log_likelihood - at_truth) < CHI2_999[4]


def test_p_alive_and_expected_purchases_match_the_simulated_truth(sample):
    # with the true parameters: the mean p_alive is the share of customers truly alive at T (binomial
    # sd 0.003 here), the expected purchases of the next 39 weeks add up to the simulated ones (sd 1.9%)
    alive = pareto_nbd.p_alive(TRUE, sample.x, sample.t_x, sample.T)
    assert alive.mean() == pytest.approx(sample.alive.mean(), abs=0.015)
    expected = pareto_nbd.expected_purchases(TRUE, 39, sample.x, sample.t_x, sample.T, alive=alive)
    assert expected.sum() == pytest.approx(sample.future.sum(), rel=0.08)
    # P(at least one purchase in the next 39 weeks) is the share of customers who then bought (sd 0.003)
    buys = pareto_nbd.probability_of_purchase(TRUE, 39, sample.x, sample.t_x, sample.T)
    assert buys.mean() == pytest.approx((sample.future > 0).mean(), abs=0.015)
    # and it ranks: the customers truly alive have the higher p_alive
    assert alive[sample.alive].mean() > alive[~sample.alive].mean() + 0.3


def test_gamma_gamma_recovers_its_parameters(sample):
    zbar = simulate.gamma_gamma_means(sample.x, TRUE_SPEND, seed=0)
    fit = gamma_gamma.fit(sample.x, zbar)
    assert fit.converged and fit.n == int((sample.x > 0).sum())
    tolerance = {"p": 0.35, "q": 0.10, "gamma": 0.45}
    for name, true in TRUE_SPEND.items():
        assert fit.params[name] == pytest.approx(true, rel=tolerance[name]), name
    keep = sample.x > 0
    at_truth = gamma_gamma.log_likelihood(np.array(list(TRUE_SPEND.values())), sample.x[keep], zbar[keep]).sum()
    assert 0 <= 2 * (fit.log_likelihood - at_truth) < CHI2_999[3]
