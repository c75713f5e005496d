"""The holdout planner against a hand computation and statsmodels' power calculations."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power

from rapport.experiments.planning import PlanningError, baseline_from_rates, mde_abs, plan_holdout

Z975, Z80 = 1.959963984540054, 0.8416212335729143  # normal quantiles (tables)


def test_plan_by_hand():
    # N = 20000, p = 0.03, D = 0.01: c = (Z975 + Z80)^2 * 0.03 * 0.97 / (20000 * 0.01^2) = 0.1142013,
    # s = (1 - sqrt(1 - 4c)) / 2 = 0.1314907 -> 2629.8 people: 2630 held out, 17370 sent
    plan = plan_holdout(20000, 0.03, 0.01)
    c = (Z975 + Z80) ** 2 * 0.03 * 0.97 / (20000 * 0.01**2)
    assert c == pytest.approx(0.1142013, abs=1e-7)
    assert (plan.control_size, plan.treatment_size) == (2630, 17370)
    assert plan.control_share == pytest.approx(0.1315)
    assert plan.mde_abs <= 0.01 < mde_abs(0.03, 17371, 2629)


@pytest.mark.parametrize(
    ("audience", "rate", "mde"), [(20000, 0.03, 0.01), (5000, 0.1, 0.03), (300000, 0.02, 0.002), (800, 0.25, 0.1)]
)
def test_plan_matches_statsmodels_power(audience, rate, mde):
    plan = plan_holdout(audience, rate, mde)
    effect = mde / math.sqrt(rate * (1 - rate))  # statsmodels' effect size: the lift in standard deviations
    power = NormalIndPower()
    # the plan's groups reach 80% power for the lift; one control member fewer does not (one-sided 2.5%
    # test: the two-sided power adds only the far tail, below 1e-6)
    assert power.power(effect, plan.treatment_size, 0.05, ratio=plan.control_size / plan.treatment_size) >= 0.8
    treated, control = plan.treatment_size + 1, plan.control_size - 1
    fewer = power.power(effect, treated, 0.025, ratio=control / treated, alternative="larger")
    assert fewer < 0.8
    # statsmodels' sample-size solver: at the plan's group ratio the audience is enough, at the ratio of one
    # control member fewer it is not
    for t, c, enough in ((plan.treatment_size, plan.control_size, True), (treated, control, False)):
        needed = zt_ind_solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=c / t) * (1 + c / t)
        assert (needed <= audience * (1 + 1e-9)) is enough, (needed, audience)


@settings(max_examples=200, deadline=None)
@given(
    audience=st.integers(2, 2_000_000),
    rate=st.floats(0.001, 0.999),
    mde=st.floats(0.0005, 0.5),
)
def test_plan_is_the_smallest_sufficient_control_group(audience, rate, mde):
    try:
        plan = plan_holdout(audience, rate, mde)
    except PlanningError:
        # infeasible exactly when the half-and-half split cannot reach the lift
        assert mde_abs(rate, audience - audience // 2, audience // 2) > mde
        return
    assert plan.control_size + plan.treatment_size == audience
    assert 1 <= plan.control_size <= audience // 2
    assert plan.mde_abs <= mde
    if plan.control_size > 1:
        assert mde_abs(rate, plan.treatment_size + 1, plan.control_size - 1) > mde


def test_no_split_reaches_the_lift():
    with pytest.raises(PlanningError) as exc:
        plan_holdout(2000, 0.03, 0.01)
    text = str(exc.value)
    # a 50/50 split of 2000: (Z975 + Z80) * sqrt(0.0291 * (1/1000 + 1/1000)) = 0.02137
    assert "2.14 percentage points" in text
    # 4 * (Z975 + Z80)^2 * 0.0291 / 0.01^2 = 9136.4 -> about 9,137 people
    assert "9,137 people" in text and "--mde 0.0214" in text


@pytest.mark.parametrize(("audience", "rate", "mde"), [(1, 0.03, 0.01), (100, 0.0, 0.01), (100, 1.2, 0.01),
                                                       (100, 0.03, 0.0), (100, 0.03, -0.1)])  # fmt: skip
def test_invalid_inputs(audience, rate, mde):
    with pytest.raises(PlanningError):
        plan_holdout(audience, rate, mde)


def test_baseline_is_the_median_published_control_rate():
    rate, source = baseline_from_rates([0.02, None, 0.05, 0.03], "published.duckdb")
    assert rate == 0.03 and "3 published campaign(s) in published.duckdb" in source
    assert baseline_from_rates([0.02, 0.04], "x")[0] == pytest.approx(0.03)
    with pytest.raises(PlanningError, match="--baseline-rate"):
        baseline_from_rates([None], "x")
    with pytest.raises(PlanningError, match="median control-group conversion rate of 3 .* is 0, .*--baseline-rate"):
        baseline_from_rates([0.0, 0.0, 0.1], "x")  # small control groups in which nobody bought
