"""A run told to stand in the past, as a user runs it: `rapport generate`, then `RAPPORT_AS_OF=<90 days
before the sources' last day> rapport run` against the full sources, as processes.

The run succeeds and publishes; segments use only the orders created on or before the as-of day while
`marts.customers` keeps lifetime figures (marts.md, "Point in time").
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow  # one generate + one run (~1 min)

ROOT = Path(__file__).resolve().parents[2]
RAPPORT = [sys.executable, "-m", "rapport.cli"]
END = "2026-10-31"  # the sources' last day
AS_OF = date(2026, 8, 2)  # 90 days before it: the next 90 days (08-03 .. 10-31) are all in the sources
PEOPLE = "300"


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
    out = subprocess.run([sys.executable, str(checker), str(published)], capture_output=True, text=True)
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
