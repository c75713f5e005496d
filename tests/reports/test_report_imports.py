"""The report step imports what it runs: not the prediction models (numpy/scipy fits, pandas), which it only
reads the results of (rapport.predictions.config holds the names and settings it needs); nor scipy.stats, not even
to plan a holdout for a campaign too small to tell (the standard library's normal quantile does: issue 16, 0.9 s)."""

from __future__ import annotations

import subprocess
import sys

from rapport.experiments.planning import mde_abs


def test_the_report_and_audience_modules_do_not_import_the_models() -> None:
    code = (
        "import sys, rapport.reports.render, rapport.publishing.audiences; "
        "print(sorted(m for m in ('pandas', 'rapport.predictions.score', 'rapport.predictions.step', 'scipy', "
        "'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_planning_a_holdout_imports_no_scipy() -> None:
    # what the report does for a campaign too small to tell (reports/decisions.py: better_holdout)
    code = (
        "import sys; from rapport.experiments.planning import plan_holdout; plan_holdout(20000, 0.03, 0.01); "
        "print(sorted(m for m in ('scipy', 'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_holdout_plan_still_gets_the_normal_quantiles() -> None:
    # z(0.975) + z(0.8) = 1.959964 + 0.841621 (normal tables); p = 0.5, 100 + 100 people: sqrt(0.25 * 0.02) = 0.0707107
    assert abs(mde_abs(0.5, 100, 100) - 2.801585 * 0.0707107) < 1e-6
