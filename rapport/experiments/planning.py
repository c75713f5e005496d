"""Holdout planning: how much of a campaign's audience to keep as the control group (`rapport plan-holdout`).

The same minimum detectable effect as the campaign marts' `mde_abs` (marts.md, "Campaign decisions"):

    mde = (z_(1 - alpha/2) + z_power) * sqrt(p * (1 - p) * (1 / treatment + 1 / control))

With control = s * N and treatment = (1 - s) * N, 1 / treatment + 1 / control = 1 / (N * s * (1 - s)), so a
lift D is detectable when s * (1 - s) >= k^2 * p * (1 - p) / (N * D^2) = c (k the bracket above): the
smallest share is the lower root s = (1 - sqrt(1 - 4c)) / 2, and none up to 50% exists when c > 1/4.
The plan rounds to whole people: the smallest control group whose MDE is at most D.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05  # two-sided level, as the marts' dbt var mde_alpha
POWER = 0.8  # as the dbt var mde_power
DEFAULT_MDE = 0.02  # as the dbt var meaningful_lift_abs: the verdict's "meaningful" lift


class PlanningError(ValueError):
    """A plan that cannot be made; the message says what to change."""


@dataclass(frozen=True)
class HoldoutPlan:
    audience: int
    baseline_rate: float
    target_mde_abs: float
    control_size: int
    treatment_size: int
    mde_abs: float  # what these whole-people group sizes detect (at most target_mde_abs)

    @property
    def control_share(self) -> float:
        return self.control_size / self.audience


def _multiplier(alpha: float, power: float) -> float:
    # the standard library's normal quantile, not scipy.stats: importing that cost the report step ~0.9 s on any
    # day with a campaign too small to tell (issue 16); the two agree to within 1e-15
    z = statistics.NormalDist()
    return z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)


def mde_abs(baseline_rate: float, treatment_size: int, control_size: int, alpha: float = ALPHA,
            power: float = POWER) -> float:  # fmt: skip
    """The smallest absolute lift the two group sizes detect with `power` in a two-sided test at `alpha`."""
    variance = baseline_rate * (1 - baseline_rate) * (1 / treatment_size + 1 / control_size)
    return _multiplier(alpha, power) * math.sqrt(variance)


def _check(audience: int, baseline_rate: float, mde: float) -> None:
    if audience < 2:
        raise PlanningError(f"--audience {audience}: a holdout test needs at least 2 people")
    if not 0 < baseline_rate < 1:
        raise PlanningError(
            f"baseline conversion rate {baseline_rate:g}: it must lie between 0 and 1 (0.03 = 3% of recipients "
            "buy within the holdout window without the email)"
        )
    if not 0 < mde < 1:
        raise PlanningError(f"--mde {mde:g}: the lift to detect must lie between 0 and 1 (0.02 = 2 points)")


def plan_holdout(audience: int, baseline_rate: float, mde: float = DEFAULT_MDE, alpha: float = ALPHA,
                 power: float = POWER) -> HoldoutPlan:  # fmt: skip
    """The smallest control group (at most half the audience) that detects an absolute lift `mde`."""
    _check(audience, baseline_rate, mde)
    k = _multiplier(alpha, power)
    c = k * k * baseline_rate * (1 - baseline_rate) / (audience * mde * mde)
    largest = audience // 2
    best = mde_abs(baseline_rate, audience - largest, largest, alpha, power)
    if c > 0.25 or best > mde:
        needed = math.ceil(4 * c * audience)  # the audience at which a 50/50 split just reaches mde
        raise PlanningError(
            f"even holding out half of {audience:,} people cannot detect a lift of {_points(mde)} at a "
            f"{_percent(baseline_rate)} baseline: a 50/50 split detects {_points(best)} at best. Test with a "
            f"larger audience (about {needed:,} people for {_points(mde)}) or look for a larger lift "
            f"(--mde {math.ceil(best * 10_000) / 10_000:g})"
        )
    share = (1 - math.sqrt(1 - 4 * c)) / 2
    control = min(max(1, math.ceil(share * audience)), largest)
    # whole people: settle on the smallest control group that still reaches mde (rounding may move it by one)
    while control > 1 and mde_abs(baseline_rate, audience - control + 1, control - 1, alpha, power) <= mde:
        control -= 1
    while mde_abs(baseline_rate, audience - control, control, alpha, power) > mde:
        control += 1
    return HoldoutPlan(audience, baseline_rate, mde, control, audience - control,
                       mde_abs(baseline_rate, audience - control, control, alpha, power))  # fmt: skip


def baseline_from_rates(rates: Sequence[float | None], where: str) -> tuple[float, str]:
    """The median of the published campaigns' control conversion rates, and a sentence saying so."""
    known = [float(r) for r in rates if r is not None]
    if not known:
        raise PlanningError(
            f"no published campaign has a control group to take the baseline conversion rate from ({where}): "
            "pass --baseline-rate (e.g. 0.03 if 3% of recipients buy within the holdout window anyway)"
        )
    median = statistics.median(known)
    source = f"the median control-group conversion rate of {len(known)} published campaign(s) in {where}"
    if not 0 < median < 1:  # e.g. control groups so small that most saw no purchase at all
        raise PlanningError(
            f"{source} is {median:g}, which cannot serve as a baseline (too few control-group members bought "
            "anything): pass --baseline-rate (e.g. 0.03 if 3% of recipients buy within the holdout window anyway)"
        )
    return median, source


def _percent(rate: float) -> str:
    return f"{100 * rate:.3g}%"


def _points(lift: float) -> str:
    value = f"{100 * lift:.3g}"
    return f"{value} percentage point{'' if value == '1' else 's'}"


def describe_plan(plan: HoldoutPlan, baseline_source: str) -> list[str]:
    """The plan in a marketer's words, one line each."""
    after = plan.baseline_rate + plan.target_mde_abs
    return [
        f"Baseline: {_percent(plan.baseline_rate)} of recipients buy within the holdout window without the "
        f"email ({baseline_source}).",
        f"To detect a lift of {_points(plan.target_mde_abs)} ({_percent(plan.baseline_rate)} -> "
        f"{_percent(after)}) with {POWER:.0%} power at the {ALPHA:.0%} level, hold out "
        f"{100 * plan.control_share:.1f}% of the audience of {plan.audience:,}:",
        f"  control group (sent nothing): {plan.control_size:>10,}",
        f"  receive the email:            {plan.treatment_size:>10,}",
        f"With these groups the smallest detectable lift is {_points(plan.mde_abs)}. A smaller holdout "
        "cannot tell such a lift from chance; a larger one sends the email to fewer people.",
    ]
