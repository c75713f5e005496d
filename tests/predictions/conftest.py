"""Fixtures of the prediction tests: the CDNOW summaries the literature's published values are about."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

# CI lays the shared data out beside the repository (in a worktree `../shared` is a link to it)
CDNOW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cdnow"


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """ID, x, t_x, T (weeks) and zbar of the 2,357 CDNOW customers (Fader, Hardie & Lee 2005)."""
    path = CDNOW / "cdnow_customers_summary_with_transactions.csv"
    if not path.exists():
        pytest.fail(
            f"the CDNOW known-answer data is missing at {path} (expected beside the repository, "
            "in ../shared/data/cdnow)"
        )
    return pd.read_csv(path)
