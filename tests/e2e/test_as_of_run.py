"""A run told to stand in the past, as a user runs it: `rapport generate`, then `RAPPORT_AS_OF=<90 days
before the sources' last day> rapport run` against the full sources, as processes; then the backtest of
its predictions (bench/backtest.py) on the 90 days that followed.

The run succeeds and publishes; segments and predictions use only the orders created on or before the
as-of day while `marts.customers` keeps lifetime figures (marts.md, "Point in time"). 1,200 people give
about 300 buyers by the as-of day, above predictions_min_buyers (200), so the models are really fitted.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow  # one generate + one run (~1-2 min), then the backtest (seconds)

ROOT = Path(__file__).resolve().parents[2]
RAPPORT = [sys.executable, "-m", "rapport.cli"]
END = "2026-10-31"  # the demo's --end: its sources' last day is 10-30
AS_OF = date(2026, 8, 1)  # 90 days before that: the next 90 days (08-02 .. 10-30) are all in the sources
PEOPLE = "1200"


def _run(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(RAPPORT + args, env=env, capture_output=True, text=True, timeout=timeout)


def _log_tail(wh: Path) -> str:
    logs = sorted((wh / "logs").glob("run-*.log"))
    return logs[-1].read_text(errors="replace")[-6000:] if logs else ""


@pytest.fixture(scope="module")
def as_of_run(tmp_path_factory):
    wh = tmp_path_factory.mktemp("as_of") / "warehouse"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env["RAPPORT_WAREHOUSE_DIR"] = str(wh)
    gen = _run(["generate", "--people", PEOPLE, "--seed", "5", "--end", END], env)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    run = _run(["run", "--interval-end", "2026-11-01T00:00:00"], {**env, "RAPPORT_AS_OF": AS_OF.isoformat()})
    assert run.returncode == 0, run.stdout + run.stderr + _log_tail(wh)
    return wh, run.stdout


def test_as_of_run_succeeds_and_publishes(as_of_run):
    wh, stdout = as_of_run
    published = wh / "published" / "rapport.duckdb"
    assert str(published) in stdout
    checker = ROOT.parent / "shared" / "tools" / "check_published.py"
    out = subprocess.run([sys.executable, str(checker), "--all", str(published)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select distinct as_of_date from marts.customer_segments").fetchall() == [(AS_OF,)]
        assert con.execute("select status from ops.runs").fetchall() == [("success",)]


def test_segments_count_orders_up_to_the_as_of_day_customers_count_all(as_of_run):
    wh, _ = as_of_run
    with duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True) as con:
        seg_orders, seg_revenue, min_recency, buyers = con.execute(
            "select sum(frequency), sum(monetary_usd), min(recency_days), count(*) filter (where frequency > 0) "
            "from marts.customer_segments"
        ).fetchone()
        all_orders, all_revenue = con.execute(
            "select sum(order_count), sum(lifetime_revenue_usd) from marts.customers"
        ).fetchone()
    # the same counts from the orders database itself, split at the end of the as-of day
    with sqlite3.connect(wh / "demo" / "shop.db") as shop:  # timestamps are UTC ISO text
        before, total = shop.execute(
            "select sum(substr(created_at, 1, 10) <= ?), count(*) from orders "
            "where status in ('paid', 'fulfilled', 'partially_refunded')",
            [AS_OF.isoformat()],
        ).fetchone()
    assert (seg_orders, all_orders) == (before, total)
    assert before < total  # the demo has orders after the as-of day, so the test can tell the two apart
    assert seg_revenue < all_revenue
    assert min_recency >= 0 and buyers > 0


def test_predictions_are_published_for_every_buyer_up_to_the_as_of_day(as_of_run):
    wh, stdout = as_of_run
    assert "customers scored (pareto_nbd+gamma_gamma" in stdout
    with duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True) as con:
        buyers = con.execute("select count(*) from marts.customer_segments where frequency > 0").fetchone()[0]
        rows = con.execute(
            "select count(*), count(distinct customer_id), min(as_of_date), max(as_of_date), "
            "count(*) filter (where model like 'pareto_nbd+gamma_gamma fitted %') "
            "from marts.customer_predictions"
        ).fetchone()
    assert buyers >= 200
    assert rows == (buyers, buyers, AS_OF, AS_OF, buyers)
    with duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True) as con:
        fits = con.execute("select model, as_of_date, n, converged from ops.prediction_fits order by model").fetchall()
    assert [(m, d, c) for m, d, _, c in fits] == [("gamma_gamma", AS_OF, True), ("pareto_nbd", AS_OF, True)]
    assert fits[1][2] == buyers


def _backtest_module():
    spec = importlib.util.spec_from_file_location("bench_backtest", ROOT / "bench" / "backtest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_backtest_compares_the_predictions_with_the_next_90_days(as_of_run):
    wh, _ = as_of_run
    backtest = _backtest_module()
    with duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True) as con:
        frame, as_of, last_order = backtest.load(con)
        truth = backtest.demo_truth(con, wh, as_of)
        in_window = con.execute(
            "select count(*) from intermediate.int_orders_enriched as o "
            "join marts.customer_purchase_history as h using (customer_id) "
            "where o.is_valid and cast(o.created_at as date) between ? and ?",
            [date(2026, 8, 2), date(2026, 10, 30)],
        ).fetchone()[0]
    result = backtest.evaluate(frame.merge(truth, on="customer_id", how="left"), as_of, last_order)
    assert as_of == AS_OF and result["window_complete"] and result["customers"] == len(frame)
    assert result["actual_orders"] == in_window > 0
    names = [m["method"] for m in result["methods"]]
    assert names[0].startswith("Pareto/NBD") and sum(n.startswith("baseline") for n in names) == 3
    model = result["methods"][0]
    assert model["predicted_orders"] == pytest.approx(frame["expected_orders_90d"].sum())
    # mechanics that cannot rot silently: misaligned rows or scores would rank at chance
    assert model["auc_bought_again"] > 0.6 and model["rank_correlation_orders"] > 0.2
    assert result["auc_p_alive_truly_alive"] > 0.6 and 0 < result["share_truly_alive"] < 1
    text = backtest.markdown(result)
    assert "| baseline: recency (days since last order) |" in text and "Demo ground truth" in text
    assert set(backtest.bars(result)) >= {"orders_within_15pct", "p_alive_auc_beats_baselines"}
