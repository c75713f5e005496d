"""Cost of the prediction step at scale: fit and score N simulated customers (a purchase-history table like
marts.customer_purchase_history, drawn from Pareto/NBD and Gamma-Gamma in days), as the step does it,
with wall time and peak memory (RSS of this process).

    .venv/bin/python bench/predictions_cost.py --customers 1000000            # the step's defaults
    .venv/bin/python bench/predictions_cost.py --customers 1000000 --fit-all  # fit on every customer

Run each size in its own process: peak RSS is the process's whole-life maximum.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from rapport.predictions import simulate
from rapport.predictions.score import PredictionConfig, fit_models, score

# roughly what the demo's histories fit to (days)
PURCHASES = {"r": 1.1, "alpha": 77.0, "s": 2.0, "beta": 700.0}
SPEND = {"p": 2.8, "q": 50.0, "gamma": 1060.0}


def histories(n: int, seed: int = 1) -> pd.DataFrame:
    T = np.random.default_rng(seed).uniform(0, 450, n)
    sim = simulate.pareto_nbd_customers(n, PURCHASES, T, seed=seed + 1)
    zbar = simulate.gamma_gamma_means(sim.x, SPEND, seed=seed + 2)
    first = np.full(n, 60.0)
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(n).astype(str)),
            "repeat_orders": sim.x,
            "days_first_to_last_order": sim.t_x,
            "days_first_order_to_cutoff": sim.T,
            "avg_repeat_order_value_usd": zbar,
            "revenue_usd": first + np.nan_to_num(zbar) * sim.x,
            "valid_orders": sim.x + 1,
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--fit-all", action="store_true", help="fit on every customer, not a 50k sample")
    args = parser.parse_args(argv)
    config = PredictionConfig()
    if args.fit_all:
        config = replace(config, max_fit_customers=args.customers)
    t0 = time.perf_counter()
    history = histories(args.customers)
    t_sim, rss_sim = time.perf_counter() - t0, peak_rss_mb()
    t0 = time.perf_counter()
    fits = fit_models(history, config)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictions = score(history, fits, config, as_of=date(2026, 6, 30), fitted_on=date(2026, 7, 1))
    t_score = time.perf_counter() - t0
    out = {
        "customers": args.customers,
        "fitted_on": fits.purchases.n,
        "simulate_seconds": round(t_sim, 1),
        "fit_seconds": round(t_fit, 1),
        "score_seconds": round(t_score, 1),
        "converged": fits.purchases.converged,
        "peak_rss_mb_after_simulation": round(rss_sim),
        "peak_rss_mb": round(peak_rss_mb()),
        "params": fits.purchases.params,
        "true_params": PURCHASES,
        "mean_p_alive": float(predictions["p_alive"].mean()),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
