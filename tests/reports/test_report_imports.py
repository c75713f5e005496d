"""The report step imports what it runs: not the prediction models (numpy/scipy fits, pandas), which it only
reads the results of (rapport.predictions.config holds the names and settings it needs)."""

from __future__ import annotations

import subprocess
import sys


def test_the_report_and_audience_modules_do_not_import_the_models() -> None:
    code = (
        "import sys, rapport.reports.render, rapport.publishing.audiences; "
        "print(sorted(m for m in ('pandas', 'rapport.predictions.score', 'rapport.predictions.step') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
