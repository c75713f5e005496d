"""Customer predictions: who will buy again, how much, and the probability each customer is still active.

Owns the buy-till-you-die models fitted by maximum likelihood with scipy (Pareto/NBD for purchases and
p_alive, Gamma-Gamma for spend, BG/NBD for reference), their simulation for parameter-recovery checks,
the scoring of customers (p_alive, expected orders and revenue, CLV, churn risk) and the pipeline step
that fits on `marts.customer_purchase_history` and writes `marts.customer_predictions` and
`ops.prediction_fits` (`step.predict`). docs/predictions.md explains the choices.

May import numpy, scipy, pandas, duckdb, PyYAML (dbt vars) and `rapport.core` only: the rest of rapport
calls in (the pipeline step, the backtest), never the other way round.
"""
