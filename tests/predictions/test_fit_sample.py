"""The prediction step works on numpy columns, without pandas (its import was a tenth of a day's step, issue 16):
the fit's sample is still pandas' seeded sample, DuckDB's columns (a NULL mean spend masked) fit and score as
a DataFrame of the same histories does, and running the step imports no pandas."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from rapport.core.config import load_settings
from rapport.predictions import simulate
from rapport.predictions.score import HISTORY_COLUMNS, PredictionConfig, fit_models, fit_sample, floats, score

AS_OF = date(2026, 6, 30)


def _history(n: int, seed: int) -> pd.DataFrame:
    """Simulated histories (days), customer ids in no particular order."""
    T = np.random.default_rng(seed).uniform(1, 400, n)
    sim = simulate.pareto_nbd_customers(n, {"r": 1.0, "alpha": 70.0, "s": 2.0, "beta": 600.0}, T, seed=seed + 1)
    zbar = simulate.gamma_gamma_means(sim.x, {"p": 4.0, "q": 5.0, "gamma": 150.0}, seed=seed + 2)
    ids = [f"c{i:05d}" for i in np.random.default_rng(seed + 3).permutation(n)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "repeat_orders": sim.x.astype("int64"),
            "days_first_to_last_order": sim.t_x,
            "days_first_order_to_cutoff": sim.T,
            "avg_repeat_order_value_usd": zbar,  # NaN without repeat orders (NULL in the mart)
            "revenue_usd": 40.0 + np.nan_to_num(zbar) * sim.x,
            "valid_orders": sim.x.astype("int64") + 1,
        }
    )


@pytest.mark.parametrize(("n", "k", "seed"), [(1_000, 100, 0), (5_000, 4_999, 0), (777, 50, 3)])
def test_the_sample_is_pandas_seeded_sample_of_the_rows_in_customer_order(n: int, k: int, seed: int) -> None:
    history = _history(n, seed=11)
    rows = fit_sample(history, PredictionConfig(max_fit_customers=k), seed=seed)
    expected = history.sort_values("customer_id", kind="stable").sample(n=k, random_state=seed).index.to_numpy()
    np.testing.assert_array_equal(rows, expected)
    assert fit_sample(history, PredictionConfig(max_fit_customers=n)) is None  # all of them: no sample


def test_duckdb_columns_fit_and_score_as_the_dataframe_does() -> None:
    frame = _history(3_000, seed=5)
    with duckdb.connect() as con:
        con.register("h", frame)
        columns = con.execute(f"select {', '.join(HISTORY_COLUMNS)} from h").fetchnumpy()
    assert isinstance(columns["avg_repeat_order_value_usd"], np.ma.MaskedArray)  # NULLs come masked
    np.testing.assert_array_equal(
        floats(columns, "avg_repeat_order_value_usd"), frame["avg_repeat_order_value_usd"].to_numpy()
    )
    config = PredictionConfig(max_fit_customers=1_000)  # a sample, as at 1M people
    fits, again = fit_models(columns, config), fit_models(frame, config)
    for ours, theirs in ((fits.purchases, again.purchases), (fits.spend, again.spend)):
        assert replace(ours, seconds=0) == replace(theirs, seconds=0)  # every parameter to the bit
    ours = score(columns, fits, config, as_of=AS_OF, fitted_on=AS_OF)
    theirs = score(frame, fits, config, as_of=AS_OF, fitted_on=AS_OF)
    assert list(ours) == list(theirs)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_the_step_imports_no_pandas(tmp_path: Path) -> None:
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as con:
        con.execute("create schema marts")
        con.register("h", _history(400, seed=1))
        con.execute("create table marts.customer_purchase_history as select * from h")
    code = (
        "import sys; from datetime import date; from rapport.core.config import load_settings; "
        "from rapport.core.run_context import RunContext; from rapport.predictions.step import predict; "
        f"s = predict(load_settings({{'RAPPORT_WAREHOUSE_DIR': {str(tmp_path / 'wh')!r}}}), "
        "RunContext.create('r', as_of=date(2026, 6, 30))); "
        "print(s['status'], s['customers'], 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["fitted", "400", "False"]
