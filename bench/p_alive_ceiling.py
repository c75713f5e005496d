"""How well can p_alive rank "bought again in the next 90 days" at best? Customers simulated from the
Pareto/NBD model itself (rapport.predictions.simulate), scored with the TRUE parameters and with fitted ones,
against recency (days since the last order) on the same customers.

    .venv/bin/python bench/p_alive_ceiling.py [--repeats 5]

If even the true model's p_alive does not beat recency on "bought again", the backtest's shortfall on that
bar (bench/RESULTS.md, docs/predictions.md) is the metric's, not the fit's: p_alive estimates "still active",
and "bought again" also needs the active customer to order soon, which P(order in 90 days) scores.
Scales as in the demo (days): r 1, alpha 75 (a purchase every ~75 days while active), mean lifetime 300 days,
customers acquired uniformly over the 450 days before the cut-off.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.stats import mannwhitneyu

from rapport.predictions import pareto_nbd, simulate

HORIZON_DAYS = 90.0


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = score[positive], score[~positive]
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def one_world(s_true: float, n: int, repeats: int) -> dict[str, float]:
    true = {"r": 1.0, "alpha": 75.0, "s": s_true, "beta": 300.0 * s_true}  # mean dropout rate s / beta = 1/300 a day
    rows = []
    for rep in range(repeats):
        T = np.random.default_rng(100 + rep).uniform(1.0, 450.0, n)
        sim = simulate.pareto_nbd_customers(n, true, T, seed=rep, horizon=HORIZON_DAYS)
        fitted = pareto_nbd.fit(sim.x, sim.t_x, sim.T).params
        bought = sim.future > 0
        recency = -(sim.T - sim.t_x)
        p_alive_true = pareto_nbd.p_alive(true, sim.x, sim.t_x, sim.T)
        rows.append([
            auc(p_alive_true, bought),
            auc(pareto_nbd.p_alive(fitted, sim.x, sim.t_x, sim.T), bought),
            auc(pareto_nbd.probability_of_purchase(true, HORIZON_DAYS, sim.x, sim.t_x, sim.T), bought),
            auc(recency, bought),
            auc(p_alive_true, sim.alive),
            auc(recency, sim.alive),
        ])  # fmt: skip
    mean = np.mean(rows, axis=0)
    keys = ("p_alive_true", "p_alive_fitted", "p_order_true", "recency", "alive_p_alive_true", "alive_recency")
    return dict(zip(keys, mean.tolist(), strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # quadrature warnings of fits at the bound
    print("| dropout | customers | AUC bought again: p_alive (true) | p_alive (fitted) | P(order 90d) (true) "
          "| recency | AUC truly active: p_alive (true) | recency |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, s_true in (("one rate for all (s = 1e4)", 1e4), ("heterogeneous (s = 0.61, CDNOW)", 0.61)):
        for n in (750, 4_300, 20_000):
            m = one_world(s_true, n, args.repeats)
            print(f"| {label} | {n:,} | {m['p_alive_true']:.3f} | {m['p_alive_fitted']:.3f} | "
                  f"{m['p_order_true']:.3f} | {m['recency']:.3f} | {m['alive_p_alive_true']:.3f} | "
                  f"{m['alive_recency']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
