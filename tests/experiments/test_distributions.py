"""The distribution UDFs the campaign statistics call: values from printed tables, invalid input as null,
and their registration on DuckDB (what dbt's connections get through rapport.transform.udfs)."""

from __future__ import annotations

import math

import duckdb
import pytest

from rapport.experiments.distributions import UDFS, norm_cdf, norm_ppf, t_ppf
from rapport.transform.udfs import register


def test_values_from_tables():
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-15)
    assert norm_ppf(0.8) == pytest.approx(0.8416212335729143, abs=1e-15)
    assert norm_cdf(0.0) == 0.5
    assert norm_cdf(-1.959963984540054) == pytest.approx(0.025, abs=1e-15)
    assert t_ppf(0.975, 10) == pytest.approx(2.228138851986274, abs=1e-12)  # t table, 10 df
    assert t_ppf(0.975, 1) == pytest.approx(12.706204736174698, abs=1e-9)
    assert t_ppf(0.975, 1e9) == pytest.approx(1.959963984540054, abs=1e-6)  # tends to the normal


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (norm_cdf, (None,)),
        (norm_cdf, (math.nan,)),
        (norm_ppf, (0.0,)),
        (norm_ppf, (1.0,)),
        (norm_ppf, (None,)),
        (norm_ppf, (math.inf,)),
        (t_ppf, (0.975, 0.0)),
        (t_ppf, (0.975, -3.0)),
        (t_ppf, (0.975, None)),
        (t_ppf, (0.975, math.nan)),
        (t_ppf, (1.5, 10.0)),
    ],
)
def test_invalid_arguments_give_null(call, args):
    assert call(*args) is None


def test_registered_on_duckdb_under_their_plain_names():
    con = duckdb.connect()
    register(con)
    row = con.execute(
        "select rapport_norm_cdf(1.0), rapport_norm_ppf(0.9), rapport_t_ppf(0.95, 4.5), "
        "rapport_t_ppf(0.95, null), rapport_norm_ppf(2.0)"
    ).fetchall()[0]
    assert row[:3] == (norm_cdf(1.0), norm_ppf(0.9), t_ppf(0.95, 4.5))
    assert row[3:] == (None, None)
    assert {name for name, *_ in UDFS} == {"rapport_norm_cdf", "rapport_norm_ppf", "rapport_t_ppf"}
    assert all(set(args) == {"double"} and returns == "double" for _n, _f, args, returns in UDFS)


def test_registering_the_udfs_does_not_import_scipy_stats() -> None:
    """scipy.stats (~0.9 s) loads when a statistic is first computed, not with every process that registers the
    UDFs (each dbt build, the report's audience step)."""
    import subprocess
    import sys

    code = (
        "import sys, duckdb; from rapport.transform.udfs import register; register(duckdb.connect()); "
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_equal_to_scipy_stats_bit_for_bit() -> None:
    """scipy.stats is the reference: its norm.cdf/norm.ppf/t.ppf, on a grid with both tails, fractional and huge
    degrees of freedom, give exactly the UDFs' values."""
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(16)
    xs = [*rng.normal(0, 3, 200), -38.5, -8.0, 0.0, 1e-300, 8.0, 38.5]
    ps = [*rng.uniform(0, 1, 200), 1e-300, 1e-12, 0.5, 1 - 1e-12, 0.975]
    dfs = [*rng.uniform(0.05, 50, 50), 1.0, 2.5, 1e6, 1e12]
    assert [norm_cdf(x) for x in xs] == [float(stats.norm.cdf(x)) for x in xs]
    assert [norm_ppf(p) for p in ps] == [float(stats.norm.ppf(p)) for p in ps]
    assert [t_ppf(p, df) for p in ps[::5] for df in dfs] == [float(stats.t.ppf(p, df)) for p in ps[::5] for df in dfs]


def test_computing_statistics_does_not_import_scipy_stats() -> None:
    """The campaign statistics' dbt model calls the UDFs in every build: they must not pull in scipy.stats
    (~0.4 s of CPU beyond scipy.special)."""
    import subprocess
    import sys

    code = (
        "import sys, duckdb; from rapport.transform.udfs import register; con = duckdb.connect(); register(con); "
        "con.execute('select rapport_norm_cdf(1.0), rapport_norm_ppf(0.9), rapport_t_ppf(0.95, 4.5)').fetchall(); "
        "print('scipy.stats' in sys.modules, 'scipy.special' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
