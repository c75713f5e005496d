"""Campaign decisions against the demo generator's known truth (statistical test).

One dedicated demo, generated once: 20,000 people over 8 years, 147 campaigns (145 with a control group,
every control group 30-50% of its audience: `generate(large_holdout_share=1.0)`), about a third of them
without any effect. Its sources go through the real extractors and a dbt build of
`marts.campaign_performance` and its parents. The ground truth (`ground_truth/campaigns.parquet`, see
demo/truth.py) gives each campaign's expected intent-to-treat effects: `true_uplift_abs` on the 7-day
conversion rate and `true_incremental_revenue_per_recipient_usd` on revenue per recipient. Checked:
- the Welch revenue interval (`incremental_revenue_ci_low/high` per treated recipient) and the CUPED
  conversion interval (`lift_cuped_ci_low/high`) each hold the true effect for at least 90% of the
  campaigns (the CUPED revenue interval too); nominal 95%;
- the CUPED intervals are on average no wider than the unadjusted ones (conversion: the Newcombe
  interval; revenue: the Welch interval);
- zero-effect campaigns flagged `increased` with q_value < 0.05: BH flags only p-values <= 0.05, so under
  no effect each is flagged with probability at most 5% and their count is at most Binomial(n, 0.05)
  (campaigns treated as independent); the test fails when the count exceeds that distribution's 99th
  percentile (for 40-45 zero-effect campaigns: more than 6);
- incremental revenue is unbiased on average (mean error within 3.5 standard errors).
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm

pytestmark = pytest.mark.slow  # generate ~1 min, extract ~1 min, dbt build ~1 min (2 shared cores)

SEED, PEOPLE, MONTHS = 2026, 20_000, 96
END = date(2025, 6, 30)


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from rapport.core.config import load_settings
    from rapport.core.run_context import RunContext
    from rapport.demo.generate import generate
    from rapport.pipeline.steps import SOURCES, extract, start_run
    from rapport.transform.runner import dbt_build

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path_factory.mktemp("decisions-truth"))})
    generate(settings.demo_dir, people=PEOPLE, seed=SEED, end=END, months=MONTHS, large_holdout_share=1.0)
    ctx = RunContext.create("decisions-truth", interval_end=datetime(END.year, END.month, END.day), as_of=END)
    start_run(settings, ctx)
    for source in SOURCES:
        extract(settings, ctx, source)
    # only the models the campaign mart needs; their tests run elsewhere on small fixtures
    dbt_build(settings, run_id=ctx.run_id, as_of=END, select=["+campaign_performance"],
              extra_args=["--exclude-resource-type", "test", "unit_test"])  # fmt: skip
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        perf = con.execute("select * from marts.campaign_performance").df()
    truth = pd.read_parquet(settings.demo_dir / "ground_truth" / "campaigns.parquet")
    merged = truth.merge(perf, on="campaign_id", suffixes=("_truth", ""), validate="one_to_one")
    assert len(merged) == len(truth) == len(perf)
    controlled = merged[merged["has_control"]].copy()
    n = controlled["treatment_size"]
    for bound in ("low", "high"):  # per treated recipient, the unit of the truth
        controlled[f"revenue_{bound}"] = controlled[f"incremental_revenue_ci_{bound}"] / n
        controlled[f"revenue_cuped_{bound}"] = controlled[f"incremental_revenue_cuped_ci_{bound}"] / n
    return controlled


def _coverage(df: pd.DataFrame, low: str, high: str, truth: str) -> tuple[float, pd.DataFrame]:
    inside = (df[low] <= df[truth]) & (df[truth] <= df[high])
    missed = df.loc[~inside, ["campaign_id", "treatment_size", "control_size", low, high, truth]]
    return float(inside.mean()), missed


def test_enough_campaigns_with_large_control_groups(campaigns):
    assert len(campaigns) >= 120, len(campaigns)
    assert (campaigns["control_size"] >= 0.29 * (campaigns["control_size"] + campaigns["treatment_size"])).all()
    assert (campaigns["uplift_if_delivered"] == 0).sum() >= 30


@pytest.mark.parametrize(
    ("low", "high", "truth"),
    [
        ("revenue_low", "revenue_high", "true_incremental_revenue_per_recipient_usd"),
        ("lift_cuped_ci_low", "lift_cuped_ci_high", "true_uplift_abs"),
        ("revenue_cuped_low", "revenue_cuped_high", "true_incremental_revenue_per_recipient_usd"),
    ],
)
def test_intervals_hold_the_true_effect_for_90pct_of_campaigns(campaigns, low, high, truth):
    coverage, missed = _coverage(campaigns, low, high, truth)
    assert coverage >= 0.90, f"{low}: coverage {coverage:.1%} of {len(campaigns)}; missed:\n{missed}"


def test_cuped_intervals_are_not_wider_on_average(campaigns):
    cuped = (campaigns["lift_cuped_ci_high"] - campaigns["lift_cuped_ci_low"]).mean()
    newcombe = (campaigns["lift_ci_high"] - campaigns["lift_ci_low"]).mean()
    # the unadjusted normal interval CUPED reduces to with theta = 0 (the groups' sample variances)
    t, c = campaigns["treatment_conversion_rate"], campaigns["control_conversion_rate"]
    nt, nc = campaigns["treatment_size"], campaigns["control_size"]
    wald = (2 * norm.ppf(0.975) * np.sqrt(t * (1 - t) / (nt - 1) + c * (1 - c) / (nc - 1))).mean()
    assert cuped <= newcombe and cuped <= wald, (cuped, newcombe, wald)
    cuped_revenue = (campaigns["revenue_cuped_high"] - campaigns["revenue_cuped_low"]).mean()
    welch = (campaigns["revenue_high"] - campaigns["revenue_low"]).mean()
    assert cuped_revenue <= welch, (cuped_revenue, welch)


def test_zero_effect_campaigns_are_rarely_flagged_after_the_q_value_correction(campaigns):
    null = campaigns[campaigns["uplift_if_delivered"] == 0]
    assert (null["true_uplift_abs"] == 0).all() and len(null) >= 30
    flagged = int(((null["verdict"] == "increased") & (null["q_value"] < 0.05)).sum())
    bound = int(binom.ppf(0.99, len(null), 0.05))
    raw = int((null["verdict"] == "increased").sum())
    assert flagged <= bound, (
        f"{flagged} of {len(null)} zero-effect campaigns flagged (bound {bound}; uncorrected {raw})"
    )


def test_incremental_revenue_is_unbiased_on_average(campaigns):
    error = (
        campaigns["incremental_revenue_usd"] / campaigns["treatment_size"]
        - campaigns["true_incremental_revenue_per_recipient_usd"]
    )
    standard_error = error.std(ddof=1) / len(error) ** 0.5
    assert abs(error.mean()) <= 3.5 * standard_error, (error.mean(), standard_error)


def test_true_revenue_matches_what_the_caused_orders_came_to(campaigns):
    # the truth is an expectation (Monte Carlo over the money model, send-date FX); the ~3,900 caused
    # orders actually drawn must add up to it: an order's value varies by ~70%, so the total's standard
    # error is ~sqrt(1 + 0.7^2) / sqrt(3900) = 2%, and 6% is 3 of them
    expected = (campaigns["true_incremental_revenue_per_recipient_usd"] * campaigns["treatment_size"]).sum()
    assert campaigns["caused_orders"].sum() >= 2000
    assert campaigns["caused_revenue_usd"].sum() == pytest.approx(expected, rel=0.06)


def test_verdicts_agree_with_the_truth(campaigns):
    # a campaign called increased (decreased) had a positive (no negative) true effect, allowing for the
    # few false calls the 95% interval permits
    increased = campaigns[campaigns["verdict"] == "increased"]
    assert (increased["true_uplift_abs"] > 0).mean() >= 0.9
    assert (campaigns["verdict"] == "decreased").sum() <= 0.05 * len(campaigns)
    assert set(campaigns["verdict"]) <= {"increased", "decreased", "too small to tell", "no detectable effect"}
