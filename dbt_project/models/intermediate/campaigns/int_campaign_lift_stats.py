"""Holdout lift statistics per campaign and per campaign and pre-send segment.

Intent to treat: the counts (int_campaign_lift_counts) include every audience member. For each row:
- conversion rates, lift_abs = treatment rate - control rate, lift_rel = lift_abs / control rate;
- lift_ci_low / lift_ci_high: the two-sided Newcombe hybrid score interval of the difference, computed by
  statsmodels (confint_proportions_2indep(..., compare='diff', method='newcomb')) at var
  `lift_confidence_level` (default 0.95);
- p_value: two-sided pooled two-proportion z-test (statsmodels proportions_ztest).
Rows without a control group (or without treated members) get nulls. When both groups have the same
degenerate rate (all 0 or all 1) the pooled variance is 0, the z statistic undefined and there is no
evidence of a difference: p_value = 1. A control rate of 0 leaves lift_rel null; the interval is defined.
"""

from __future__ import annotations

import math
import warnings

import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

STAT_COLUMNS = [
    "treatment_conversion_rate",
    "control_conversion_rate",
    "lift_abs",
    "lift_rel",
    "lift_ci_low",
    "lift_ci_high",
    "p_value",
]


def _row_stats(tc: int, tn: int, cc: int, cn: int, alpha: float) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(STAT_COLUMNS)
    if tn > 0:
        out["treatment_conversion_rate"] = tc / tn
    if cn <= 0 or tn <= 0:
        return out
    p_t, p_c = tc / tn, cc / cn
    out["control_conversion_rate"] = p_c
    out["lift_abs"] = p_t - p_c
    out["lift_rel"] = (p_t - p_c) / p_c if p_c > 0 else None
    low, high = confint_proportions_2indep(tc, tn, cc, cn, compare="diff", method="newcomb", alpha=alpha)
    out["lift_ci_low"], out["lift_ci_high"] = float(low), float(high)
    pooled = (tc + cc) / (tn + cn)
    if pooled in (0.0, 1.0):
        out["p_value"] = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _z, p = proportions_ztest([tc, cc], [tn, cn], alternative="two-sided")
        out["p_value"] = float(p) if not math.isnan(p) else None
    return out


def model(dbt, session):
    dbt.config(materialized="table")
    # a plain call: dbt only passes config keys it finds as direct dbt.config.get(...) calls in the code
    configured = dbt.config.get("lift_confidence_level", 0.95)
    confidence = float(configured if configured is not None else 0.95)
    counts = dbt.ref("int_campaign_lift_counts").df()
    stats = [
        _row_stats(
            int(row.treatment_conversions),
            int(row.treatment_size),
            int(row.control_conversions),
            int(row.control_size),
            1.0 - confidence,
        )
        for row in counts.itertuples(index=False)
    ]
    result = pd.concat(
        [counts.reset_index(drop=True), pd.DataFrame(stats, columns=STAT_COLUMNS, dtype="float64")], axis=1
    )
    # Explicit types: an empty frame would otherwise give DuckDB columns of type NULL.
    session.register("int_campaign_lift_stats_frame", result)
    stat_casts = ", ".join(f"cast({name} as double) as {name}" for name in STAT_COLUMNS)
    return session.sql(
        f"""
        select
            cast(grain as varchar) as grain,
            cast(campaign_id as varchar) as campaign_id,
            cast(rfm_segment as varchar) as rfm_segment,
            cast(treatment_size as bigint) as treatment_size,
            cast(control_size as bigint) as control_size,
            cast(treatment_conversions as bigint) as treatment_conversions,
            cast(control_conversions as bigint) as control_conversions,
            cast(treatment_revenue_usd as decimal(38, 4)) as treatment_revenue_usd,
            cast(control_revenue_usd as decimal(38, 4)) as control_revenue_usd,
            {stat_casts},
            cast({confidence} as double) as confidence_level
        from int_campaign_lift_stats_frame
        """
    )
