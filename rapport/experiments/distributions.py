"""Distribution functions the campaign-statistics SQL calls as scalar UDFs.

The closed-form statistics (Newcombe interval, pooled z-test, Welch, CUPED, MDE, BH) are SQL in the dbt
project, so every engine computes them the same way; only the normal and Student t distribution functions
come from here: scipy.special's `ndtr`, `ndtri` and `stdtrit`, the functions scipy.stats' `norm.cdf`,
`norm.ppf` and `t.ppf` evaluate (same values, bit for bit, without importing scipy.stats: ~0.4 s of CPU, ~1 s
wall on a busy machine, in every dbt build that computes a statistic). Each engine registers `UDFS` under the
names given, all arguments and results double: DuckDB in `rapport.transform.udfs.register`, Spark on its
session (`spark.udf.register(name, fn, DoubleType())`; the SQL casts arguments to double, as a Python UDF must
not receive decimals). Invalid arguments (null, NaN, a probability outside (0, 1), degrees of freedom <= 0) give
null rather than an error or NaN, so one odd row nulls a statistic instead of failing the build.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType


def _special() -> ModuleType:
    # imported on first use (~0.2 s): every process that registers the UDFs (each dbt build, the report's
    # audience step) imports this module whether or not a statistic is computed
    from scipy import special

    return special


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def norm_cdf(x: float | None) -> float | None:
    """P(Z <= x) for a standard normal Z."""
    if x is None or math.isnan(x):
        return None
    return float(_special().ndtr(x))


def norm_ppf(p: float | None) -> float | None:
    """The standard normal quantile: x with P(Z <= x) = p, for 0 < p < 1."""
    if not _finite(p) or not 0.0 < p < 1.0:  # type: ignore[operator]
        return None
    return float(_special().ndtri(p))


def t_ppf(p: float | None, df: float | None) -> float | None:
    """The Student t quantile with df (possibly fractional, as Welch-Satterthwaite gives) degrees of freedom."""
    if not _finite(p, df) or not 0.0 < p < 1.0 or df <= 0.0:  # type: ignore[operator]
        return None
    return float(_special().stdtrit(df, p))


# (SQL name, function, argument SQL types, result SQL type): the fields of rapport's UDF registry entries
UDFS: tuple[tuple[str, Callable[..., float | None], tuple[str, ...], str], ...] = (
    ("rapport_norm_cdf", norm_cdf, ("double",), "double"),
    ("rapport_norm_ppf", norm_ppf, ("double",), "double"),
    ("rapport_t_ppf", t_ppf, ("double", "double"), "double"),
)
