"""The segment history's log read back and the log computed independently from snapshots, for the tests of
marts.segment_history (tests/dbt/test_segment_history*.py): the expected log diffs each recorded date's
snapshot (customer_segments after its build) against the previous date's, in pandas."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pandas as pd

SELECT = ["+segment_history", "+segment_migrations", "+segment_history_dates"]
STATE = ["rfm_segment", "lifecycle_stage", "value_tier", "engagement_tier", "support_health", "r_score",
         "f_score", "m_score", "frequency", "monetary_usd", "last_order_date"]  # fmt: skip
LOG = ["as_of_date", "customer_id", "change", *STATE]
# the models only: these tests compare every build's log with the one computed here from the snapshots, which
# checks more than the data tests on these models do (those run on small fixtures elsewhere); the data tests
# of the ~25 models were ~60% of each build's CPU time
MODELS_ONLY = ["--indirect-selection", "cautious", "--exclude-resource-type", "test"]


def build(wh: Any, *, as_of: date, run_id: str, select: list[str] = SELECT) -> None:
    """A dbt build of `select` (the log, the registry and their parents by default), models only."""
    wh.build(as_of=as_of, run_id=run_id, select=select, extra_args=MODELS_ONLY)


def read_snapshot(wh: Any) -> pd.DataFrame:
    """The state the build just computed (its as-of date's snapshot), read from customer_segments."""
    with duckdb.connect(str(wh.path), read_only=True) as con:
        return con.execute(
            f"select customer_id, {', '.join(STATE[:-1])}, cast(last_order_at as date) as last_order_date "
            "from marts.customer_segments"
        ).df()


def read_log(wh: Any) -> pd.DataFrame:
    with duckdb.connect(str(wh.path), read_only=True) as con:
        log = con.execute(f"select {', '.join(LOG)}, run_id from marts.segment_history").df()
    log["as_of_date"] = pd.to_datetime(log["as_of_date"]).dt.date
    return log


def expected_log(snapshots: dict[date, pd.DataFrame]) -> pd.DataFrame:
    """Each date diffed against the previous date's snapshot, in date order (independent of the model)."""
    rows: list[dict[str, Any]] = []
    before: dict[str, dict[str, Any]] = {}
    for as_of in sorted(snapshots):
        after = {r["customer_id"]: r for r in snapshots[as_of].to_dict("records")}
        for cid in sorted(before.keys() | after.keys()):
            if cid not in before:
                rows.append({"as_of_date": as_of, "customer_id": cid, "change": "entered",
                             **{c: after[cid][c] for c in STATE}})  # fmt: skip
            elif cid not in after:
                rows.append({"as_of_date": as_of, "customer_id": cid, "change": "left", **dict.fromkeys(STATE)})
            elif any(not same(before[cid][c], after[cid][c]) for c in STATE):
                rows.append({"as_of_date": as_of, "customer_id": cid, "change": "changed",
                             **{c: after[cid][c] for c in STATE}})  # fmt: skip
        before = after
    return normalised(pd.DataFrame(rows, columns=LOG))


def same(a: Any, b: Any) -> bool:
    return (pd.isna(a) and pd.isna(b)) if (pd.isna(a) or pd.isna(b)) else a == b


def normalised(df: pd.DataFrame) -> pd.DataFrame:
    out = df[LOG].copy()
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    out["last_order_date"] = pd.to_datetime(out["last_order_date"]).dt.date
    for c in ("r_score", "f_score", "m_score", "frequency"):
        out[c] = out[c].astype("Int64")
    out["monetary_usd"] = out["monetary_usd"].astype(float)
    out = out.astype({c: object for c in LOG}).where(out.notna(), None)
    return out.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)


def seed(wh: Any, rows: Any, *, ann_orders_again: bool) -> None:
    """ann, ben and cat in the shop; ann orders on 01-10 (and on 03-05 when `ann_orders_again`), ben on 01-20
    and 02-15, dan (a guest) on 01-05."""
    wh.insert("shop_customers", [rows.shop_customer(1, email="ann@x.com"), rows.shop_customer(2, email="ben@x.com"),
                                 rows.shop_customer(3, email="cat@x.com")])  # fmt: skip
    o = rows.shop_order
    orders = [
        o(10, customer_id=1, total=100, created_at="2025-01-10 12:00:00", updated_at="2025-01-10 12:00:00"),
        o(20, customer_id=2, total=20, created_at="2025-01-20 12:00:00", updated_at="2025-01-20 12:00:00"),
        o(21, customer_id=2, total=30, created_at="2025-02-15 12:00:00", updated_at="2025-02-15 12:00:00"),
        o(30, email="dan@x.com", total=50, created_at="2025-01-05 12:00:00", updated_at="2025-01-05 12:00:00"),
    ]  # fmt: skip
    if ann_orders_again:
        orders.append(
            o(11, customer_id=1, total=40, created_at="2025-03-05 12:00:00", updated_at="2025-03-05 12:00:00")
        )
    wh.insert("shop_orders", orders)
