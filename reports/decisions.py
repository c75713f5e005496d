"""What each campaign's holdout test showed, in the order a marketer acts on it (issue #20).

The verdicts, MDE and q-values are published (contracts/marts.md, "Campaign decisions"); this module adds
what the report says around them:

- the order: what was learned first (`VERDICT_ORDER`), then the surest (lowest q-value), then the most
  precise (smallest MDE, narrowest interval); campaigns without a holdout group last;
- for a test too small to tell, the holdout share of the same audience that would have detected a
  meaningful lift (`rapport.experiments.planning.plan_holdout`; nothing when even half would not do);
- whether the revenue interval can be trusted: it is a normal approximation (Welch), and with very few
  buyers in a group it covers the truth far less often than 95% (81% where the control group expects at
  most 2 buyers, docs/segments_and_campaigns.md), so with fewer than `MIN_BUYERS` buyers in either group
  it is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rapport.experiments.planning import DEFAULT_MDE, HoldoutPlan, PlanningError, plan_holdout
from rapport.reports.data import Campaign

VERDICT_ORDER = ("increased", "decreased", "no_effect", "too_small")
Q_LEVEL = 0.05  # the false discovery rate a "clear" result is held to
# Fewer buyers than this in either group: the revenue (and ROI) interval is shown, but flagged unreliable.
MIN_BUYERS = 5


@dataclass(frozen=True)
class FewBuyers:
    group: str  # "control" or "treatment": the group with fewer buyers
    buyers: int


@dataclass(frozen=True)
class Decision:
    campaign: Campaign
    plan: HoldoutPlan | None  # too small to tell: the holdout that would detect DEFAULT_MDE, if one would
    few_buyers: FewBuyers | None  # the revenue interval rests on too few buyers

    @property
    def verdict(self) -> str:
        return self.campaign.verdict

    @property
    def maybe_luck(self) -> bool:
        """A clear result (interval excluding 0) that the correction for many campaigns does not confirm."""
        q = self.campaign.q_value
        return self.verdict in ("increased", "decreased") and q is not None and q > Q_LEVEL

    @property
    def suggested_share(self) -> float | None:
        """The plan's control share rounded up to a whole percent, so the share shown is never too small."""
        if self.plan is None:
            return None
        return math.ceil(round(100 * self.plan.control_share, 9)) / 100


def _key(c: Campaign) -> tuple[float, ...]:
    inf = math.inf
    width = (c.lift_ci_high - c.lift_ci_low) if c.lift_ci_low is not None and c.lift_ci_high is not None else inf
    return (
        VERDICT_ORDER.index(c.verdict),
        c.q_value if c.q_value is not None else inf,
        c.mde_abs if c.mde_abs is not None else inf,
        width,
    )


def learned_order(campaigns: Sequence[Campaign]) -> list[Campaign]:
    """Campaigns with a holdout group by what was learned; then the others in the order given (revenue)."""
    tested = sorted((c for c in campaigns if c.has_holdout), key=lambda c: (*_key(c), c.name, c.campaign_id))
    return tested + [c for c in campaigns if not c.has_holdout]


def baseline_rate(c: Campaign) -> float | None:
    """Both groups' conversion rate together: the rate the published MDE beside the suggestion is computed
    at, so the two statements agree (and a larger holdout is always what they suggest). The control group's
    own rate would be the textbook baseline, but in a test too small to tell it rests on a handful of
    buyers, often none."""
    audience = (c.treatment_size or 0) + (c.control_size or 0)
    if c.treatment_buyers is None or c.control_buyers is None or not audience:
        return None
    pooled = (c.treatment_buyers + c.control_buyers) / audience
    return pooled if 0 < pooled < 1 else None


def better_holdout(c: Campaign, mde: float = DEFAULT_MDE) -> HoldoutPlan | None:
    """The smallest holdout of the same audience that detects `mde`; None when even 50% would not."""
    rate = baseline_rate(c)
    audience = (c.treatment_size or 0) + (c.control_size or 0)
    if rate is None:
        return None
    try:
        return plan_holdout(audience, rate, mde)
    except PlanningError:
        return None


def few_buyers(c: Campaign, minimum: int = MIN_BUYERS) -> FewBuyers | None:
    counts = [("control", c.control_buyers), ("treatment", c.treatment_buyers)]
    known = [(g, n) for g, n in counts if n is not None]
    if not known:
        return None
    group, n = min(known, key=lambda gn: gn[1])  # the control group first on a tie: it is the smaller
    return FewBuyers(group, n) if n < minimum else None


def decide(campaigns: Sequence[Campaign]) -> list[Decision]:
    """One decision per campaign with a holdout group, in `learned_order`."""
    return [
        Decision(c, better_holdout(c) if c.verdict == "too_small" else None, few_buyers(c))
        for c in learned_order(campaigns)
        if c.has_holdout
    ]
