"""Issue #18: `rapport demo` on three consecutive days, on one warehouse, as a user runs it (real CLI, real
pipeline). Each later day continues the same shop's history, every run succeeds and the published marts
grow like a real shop's; asking for an earlier day afterwards stops before touching anything.

About 7-8 minutes on 2 cores (three pipeline runs at 1,000 people).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

RAPPORT = [sys.executable, "-m", "rapport.cli"]
DAY = date(2026, 11, 1)
PEOPLE = "1000"  # enough for a few new people and orders a day (a 300-person shop has days without any)
VALID = ("paid", "fulfilled", "partially_refunded")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _demo(env: dict[str, str], day: date) -> subprocess.CompletedProcess:
    # the data interval ends on the demo's last day, as a run on that day would see it
    return subprocess.run(
        [
            *RAPPORT,
            "demo",
            "--people",
            PEOPLE,
            "--end",
            day.isoformat(),
            "--interval-end",
            f"{day.isoformat()}T00:00:00",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _log_tail(wh: Path) -> str:
    logs = sorted((wh / "logs").glob("run-*.log"))
    return logs[-1].read_text(errors="replace")[-6000:] if logs else ""


def _marts(wh: Path) -> dict[str, object]:
    with duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True) as con:
        customers, orders, revenue, engaged = con.execute(
            "select count(*), sum(order_count), sum(lifetime_revenue_usd), max(last_engaged_at) from marts.customers"
        ).fetchone()
        counts = dict(con.execute("select customer_id, order_count from marts.customers").fetchall())
        ident = con.execute(
            "select source, source_id, customer_id from marts.customer_identities "
            "where source in ('orders.customer', 'orders.guest_order')"
        ).fetchall()
    return {
        "customers": customers,
        "orders": orders,
        "revenue": revenue,
        "engaged": engaged,
        "order_count": counts,
        "identities": ident,
    }


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo3")
    wh = root / "warehouse"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env["RAPPORT_WAREHOUSE_DIR"] = str(wh)
    runs, marts = [], []
    for k in range(3):
        run = _demo(env, DAY + timedelta(days=k))
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:] + _log_tail(wh)
        runs.append(run)
        marts.append(_marts(wh))
        if k == 0:
            shutil.copyfile(wh / "demo" / "shop.db", root / "shop_day1.db")
    return wh, env, runs, marts, root / "shop_day1.db"


def test_later_days_continue_the_same_shop(three_days) -> None:
    _wh, _env, runs, _marts_, _ = three_days
    assert "generating demo sources for 1000 people" in runs[0].stdout
    for k in (1, 2):
        start, end = DAY + timedelta(days=k - 1), DAY + timedelta(days=k)
        assert f"continuing the demo shop's history from {start} to {end}" in runs[k].stdout
        assert "generating demo sources" not in runs[k].stdout


def test_the_published_marts_grow_like_a_shop(three_days) -> None:
    _wh, _env, _runs, marts, _ = three_days
    first, *_, last = marts
    for before, after in zip(marts, marts[1:], strict=False):
        assert after["customers"] >= before["customers"]
    assert last["customers"] > first["customers"]  # new people signed up
    assert last["orders"] > first["orders"] and last["revenue"] > first["revenue"]
    # engagement with earlier campaigns on the continued days reached the marts
    assert first["engaged"] is not None and first["engaged"].date() < DAY
    assert last["engaged"].date() >= DAY


def test_order_status_changes_reach_the_marts(three_days) -> None:
    """Orders that existed on the first day and changed status since: each owner's published order_count is
    the number of valid orders the orders database now holds for them (the latest status of each order)."""
    wh, _env, _runs, marts, day1_db = three_days
    q = "select id, customer_id, status from orders"
    before = {r[0]: r for r in sqlite3.connect(day1_db).execute(q)}
    now = {r[0]: r for r in sqlite3.connect(wh / "demo" / "shop.db").execute(q)}
    changed = [oid for oid in before if now[oid][2] != before[oid][2]]
    assert changed, "no order of the first day settled further on the next two"
    owner: dict[tuple[str, int], str] = {(s, int(i)): c for s, i, c in marts[-1]["identities"]}

    def customer_of(row: tuple) -> str:
        oid, cust, _ = row
        return owner[("orders.customer", cust)] if cust is not None else owner[("orders.guest_order", oid)]

    valid: dict[str, int] = {}
    for row in now.values():
        if row[2] in VALID:
            valid[customer_of(row)] = valid.get(customer_of(row), 0) + 1
    for oid in changed:
        cid = customer_of(now[oid])
        assert marts[-1]["order_count"][cid] == valid.get(cid, 0), (oid, before[oid][2], now[oid][2])


def test_an_earlier_day_stops_with_what_to_do_and_changes_nothing(three_days) -> None:
    wh, env, _runs, _marts, _ = three_days
    published, shop = wh / "published" / "rapport.duckdb", wh / "demo" / "shop.db"
    before = (_sha(published), _sha(shop), sorted(p.name for p in (wh / "logs").glob("*")))
    run = _demo(env, DAY + timedelta(days=1))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "RAPPORT_WAREHOUSE_DIR" in run.stderr and "erasure.key" in run.stderr
    assert f"--end on or after {DAY + timedelta(days=2)}" in run.stderr
    assert (_sha(published), _sha(shop), sorted(p.name for p in (wh / "logs").glob("*"))) == before
