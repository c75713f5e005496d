"""Holdout lift against the demo generator's ground truth (statistical test).

The demo generator injects a known intent-to-treat uplift into each campaign and writes it to
`ground_truth/campaigns.parquet` (`true_uplift_abs`: the expected treatment-minus-control difference in
7-day valid-order conversion probability). Each seed's demo goes through the real pipeline steps
(extract the three sources, then a dbt build of `marts.campaign_performance` and its parents, models only:
their data tests run elsewhere on small fixtures, and they were most of a whole build's time), and
`marts.campaign_performance` is compared with the truth,
pooled over several seeds to have enough campaigns with a control group:
- the true uplift lies inside the reported 95% interval for at least 85% of them;
- zero-effect campaigns are reported significant (p < 0.05) no more often than chance allows: the count
  must not be improbable (one-sided binomial tail probability below 1%) under a 5% false-positive rate;
- the estimates are unbiased on average (the mean error is within 3.5 standard errors of zero).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from scipy.stats import binom

pytestmark = pytest.mark.slow  # per seed: generate, extract, dbt build (~15 s CPU together)

SEEDS = (7, 11, 23)
PEOPLE = 3000
END = date(2025, 6, 30)


def _run_demo(directory: Path, seed: int) -> pd.DataFrame:
    from rapport.core.config import load_settings
    from rapport.core.run_context import RunContext
    from rapport.demo.generate import generate
    from rapport.pipeline.steps import SOURCES, extract, start_run
    from rapport.transform.runner import dbt_build

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
    generate(settings.demo_dir, people=PEOPLE, seed=seed, end=END)
    ctx = RunContext.create(f"truth-{seed}", interval_end=datetime(END.year, END.month, END.day), as_of=END)
    start_run(settings, ctx)
    for source in SOURCES:
        extract(settings, ctx, source)
    dbt_build(settings, run_id=ctx.run_id, as_of=END, select=["+campaign_performance"],
              extra_args=["--exclude-resource-type", "test", "unit_test"])  # fmt: skip
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        perf = con.execute("select * from marts.campaign_performance").df()
    truth = pd.read_parquet(settings.demo_dir / "ground_truth" / "campaigns.parquet")
    merged = truth.merge(perf, on="campaign_id", how="outer", suffixes=("_truth", ""), indicator=True)
    merged["seed"] = seed
    return merged


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    frames = [_run_demo(tmp_path_factory.mktemp(f"truth-{seed}"), seed) for seed in SEEDS]
    return pd.concat(frames, ignore_index=True)


def test_every_campaign_is_reported_with_the_true_audience(pooled):
    assert (pooled["_merge"] == "both").all(), pooled.loc[pooled["_merge"] != "both", ["seed", "campaign_id"]]
    assert (pooled["treatment_size"] == pooled["treatment_size_truth"]).all()
    assert (pooled["control_size"] == pooled["control_size_truth"]).all()
    assert (pooled["has_control_group"] == pooled["has_control"]).all()
    no_control = pooled[~pooled["has_control"]]
    assert len(no_control) > 0
    assert no_control[["lift_abs", "lift_ci_low", "lift_ci_high", "p_value", "roi"]].isna().all().all()


def test_true_uplift_inside_the_95pct_interval_for_85pct_of_campaigns(pooled):
    controlled = pooled[pooled["has_control"]]
    assert len(controlled) >= 50, f"only {len(controlled)} campaigns with a control group: pool more seeds"
    inside = (controlled["lift_ci_low"] <= controlled["true_uplift_abs"]) & (
        controlled["true_uplift_abs"] <= controlled["lift_ci_high"]
    )
    coverage = inside.mean()
    missed = controlled.loc[~inside, ["seed", "campaign_id", "true_uplift_abs", "lift_ci_low", "lift_ci_high"]]
    assert coverage >= 0.85, f"coverage {coverage:.1%} over {len(controlled)} campaigns; missed:\n{missed}"


def test_zero_effect_campaigns_are_not_significant_more_often_than_chance(pooled):
    null = pooled[pooled["has_control"] & (pooled["true_uplift_abs"] == 0)]
    assert len(null) >= 15, f"only {len(null)} zero-effect campaigns with a control group: pool more seeds"
    significant = int((null["p_value"] < 0.05).sum())
    # probability of at least this many false positives among len(null) if each has a 5% chance
    tail = binom.sf(significant - 1, len(null), 0.05)
    assert tail >= 0.01, f"{significant} of {len(null)} zero-effect campaigns significant (tail p {tail:.4f})"


def test_lift_estimates_are_unbiased_on_average(pooled):
    controlled = pooled[pooled["has_control"]]
    error = controlled["lift_abs"] - controlled["true_uplift_abs"]
    standard_error = error.std(ddof=1) / len(error) ** 0.5
    assert abs(error.mean()) <= 3.5 * standard_error, (error.mean(), standard_error)
