"""Campaign-experiment statistics and the holdout planner.

Owns what the campaign marts need beyond SQL arithmetic (the distribution functions the dbt models call
as scalar UDFs: `distributions`) and the sample-size planning behind `rapport plan-holdout` (`planning`).
May import numpy, scipy, statsmodels and `rapport.core` only, so that any engine (DuckDB, Spark) can
load it into its Python workers.
"""
