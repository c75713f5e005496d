"""marts.segment_history as a change log, built by dbt from hand-made raw rows over several as-of dates run
out of order, re-run, and across an identity merge; and the one-time conversion of the earlier form.

Four people: ann (shop customer 1) paid 100 on 2025-01-10; ben (shop customer 2) paid 20 on 01-20 and 30
on 02-15; cat (shop customer 3) never ordered; dan (guest orders, dan@x.com) paid 50 on 01-05. As-of dates:
D1 2025-02-01, D2 02-20, E 02-21, D3 03-01. Between D2 and E nothing changes for anyone (no order, no
threshold crossed: recency ranks stay, ann's and ben's first orders are past 30 days on both). Before D3 a
helpdesk user with dan's address and ben's shop id (external_id 2) lands: ben's and dan's records become
one customer, whose other id leaves.

The expected log is computed with pandas (tests/segment_history_logs.py) from the snapshots each build
computed (customer_segments after the build), running the dates once each in date order; it is compared with
the model's table.

The state table (intermediate.segment_history__state, what a run for the latest recorded date reads instead
of the whole log) is checked on another warehouse: in-order days, a re-run, a backfill, a merge and a forget,
after each of which the log equals the in-order one and the state table the log's latest rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pytest
from segment_history_logs import LOG, STATE, expected_log, normalised, read_log, read_snapshot, seed
from segment_history_logs import build as dbt_build

pytestmark = pytest.mark.slow  # 17 dbt builds of models only (~4 s CPU each)

D1, D2, E, D3 = date(2025, 2, 1), date(2025, 2, 20), date(2025, 2, 21), date(2025, 3, 1)


def _state_at(log: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The documented reader's query: each customer's latest row on or before the date, unless 'left'."""
    upto = log[log["as_of_date"] <= as_of].sort_values("as_of_date")
    latest = upto.groupby("customer_id").tail(1)
    return latest[latest["change"] != "left"].drop(columns=["as_of_date", "change"])


@pytest.fixture(scope="module")
def history(make_warehouse, rows) -> dict[str, Any]:
    wh = make_warehouse("segment_history")
    seed(wh, rows, ann_orders_again=False)
    snapshots: dict[date, pd.DataFrame] = {}
    logs: dict[str, pd.DataFrame] = {}
    expected: dict[str, pd.DataFrame] = {}

    def build(as_of: date, run_id: str) -> None:
        dbt_build(wh, as_of=as_of, run_id=run_id)
        snapshots[as_of] = read_snapshot(wh)
        logs[run_id] = read_log(wh)
        expected[run_id] = expected_log(snapshots)

    build(E, "r-e")
    build(D1, "r-d1")  # before a recorded date: E is re-diffed against D1
    build(D2, "r-d2")  # between D1 and E: E's changes move to D2 and E is left with none
    build(D1, "r-d1b")  # the same date again, the same data
    ids = {
        name: wh.customer_of(source, key)
        for name, source, key in (
            ("ben", "orders.customer", 2),
            ("cat", "orders.customer", 3),
            ("dan", "orders.guest_order", 30),
        )
    }
    wh.insert("helpdesk_users", [rows.helpdesk_user(500, email="dan@x.com", external_id="2")],
              run_id="r2", extracted_at="2025-06-30 01:00:00")  # fmt: skip
    build(D3, "r-d3")
    ids["merged"] = wh.customer_of("orders.customer", 2)
    return {"wh": wh, "snapshots": snapshots, "logs": logs, "expected": expected, "ids": ids}


def test_the_log_equals_the_in_order_log_after_every_build(history):
    """Out of order (E, then D1 before it, then D2 between), a re-run, and a merge: after each build the
    table equals the log of running the dates once each in date order with their last snapshots."""
    for run_id, log in history["logs"].items():
        pd.testing.assert_frame_equal(normalised(log), history["expected"][run_id], obj=f"after {run_id}")


def test_a_date_whose_changes_vanish_loses_its_rows(history):
    logs = history["logs"]
    assert {r for r in logs["r-e"]["as_of_date"]} == {E}  # the first build: everyone entered on E
    assert len(logs["r-e"]) == 4
    assert sorted(set(logs["r-d1"]["as_of_date"])) == [D1, E]  # ben's second order shows on E
    # D2 takes E's changes; from D2 to E nothing changed, so E has no row left, though it is recorded
    assert E not in set(logs["r-d2"]["as_of_date"])
    wh = history["wh"]
    assert [d for (d,) in wh.query("select as_of_date from marts.segment_history_dates order by 1")] == [D1, D2, E, D3]


def test_unchanged_customer_has_one_row_and_a_change_one_more(history):
    log = normalised(history["logs"]["r-d1b"])
    cat = log[log["customer_id"] == history["ids"]["cat"]]
    assert cat[["as_of_date", "change", "rfm_segment", "frequency"]].values.tolist() == [
        [D1, "entered", "No Purchases", 0]
    ]
    ben = log[log["customer_id"] == history["ids"]["ben"]]
    # D1: one order (20, 01-20); D2: the second (30, 02-15) -> changed, frequency 2, 50 USD
    assert ben[["as_of_date", "change", "frequency", "monetary_usd", "last_order_date"]].values.tolist() == [
        [D1, "entered", 1, 20.0, date(2025, 1, 20)],
        [D2, "changed", 2, 50.0, date(2025, 2, 15)],
    ]


def test_the_re_run_of_a_date_rewrites_only_its_rows_and_the_next_dates(history):
    before, after = history["logs"]["r-d2"], history["logs"]["r-d1b"]
    pd.testing.assert_frame_equal(normalised(before), normalised(after))
    assert set(after[after["as_of_date"] == D1]["run_id"]) == {"r-d1b"}
    assert set(after[after["as_of_date"] == D2]["run_id"]) == {"r-d1b"}  # re-diffed: the run that wrote them


def test_a_merged_id_leaves_with_a_null_state(history):
    log = normalised(history["logs"]["r-d3"])
    left = log[(log["as_of_date"] == D3) & (log["change"] == "left")]
    assert len(left) == 1
    assert left[STATE].isna().all(axis=None)
    ids = history["ids"]
    survivor = ids["merged"]
    assert survivor in (ids["ben"], ids["dan"])
    assert left["customer_id"].tolist() == [({ids["ben"], ids["dan"]} - {survivor}).pop()]
    # the survivor: 3 orders, 20 + 30 + 50 USD
    row = log[(log["as_of_date"] == D3) & (log["customer_id"] == survivor)]
    assert row[["change", "frequency", "monetary_usd"]].values.tolist() == [["changed", 3, 100.0]]


def test_the_state_at_each_recorded_date_is_that_dates_snapshot(history):
    log = normalised(history["logs"]["r-d3"])
    for as_of, snapshot in history["snapshots"].items():
        got = _state_at(log, as_of).sort_values("customer_id").reset_index(drop=True)
        want = normalised(snapshot.assign(as_of_date=as_of, change="x")).drop(columns=["as_of_date", "change"])
        pd.testing.assert_frame_equal(got, want.sort_values("customer_id").reset_index(drop=True), obj=str(as_of))


def test_dates_and_migrations_read_the_log(history):
    wh, snapshots = history["wh"], history["snapshots"]
    dates = wh.query("select as_of_date, run_id, customers from marts.segment_history_dates order by 1")
    assert dates == [(D1, "r-d1b", 4), (D2, "r-d2", 4), (E, "r-e", 4), (D3, "r-d3", 3)]
    # the latest two dates, E and D3, compared from the snapshots themselves
    before = dict(zip(snapshots[E]["customer_id"], snapshots[E]["rfm_segment"], strict=True))
    after = dict(zip(snapshots[D3]["customer_id"], snapshots[D3]["rfm_segment"], strict=True))
    want: dict[tuple[str, str], int] = {}
    for cid in before.keys() | after.keys():
        key = (before.get(cid, "(absent)"), after.get(cid, "(absent)"))
        want[key] = want.get(key, 0) + 1
    got = wh.query("select from_date, to_date, from_segment, to_segment, customers from marts.segment_migrations")
    assert {(f, t): n for _, _, f, t, n in got} == want
    assert {(a, b) for a, b, *_ in got} == {(E, D3)}


def test_the_earlier_form_is_converted_once(make_warehouse, rows):
    """A warehouse of the earlier form (a full snapshot per date, recency_days, no registry of dates): the
    first build converts it, each old date diffed against the one before, then adds its own date.
    x1, x2 on 2024-12-01; x2 moves to Champions on 12-15 (x1 unchanged: its recency grew by the days
    passed, the same last order); x1 is gone on 2025-01-01; the build as of D1 has none of them."""
    wh = make_warehouse("segment_history_old")
    wh.insert("shop_customers", [rows.shop_customer(1, email="ann@x.com")])
    wh.insert("shop_orders", [rows.shop_order(10, customer_id=1, total=100)])
    dbt_build(wh, as_of=D1, run_id="new")
    old = [  # as_of_date, customer_id, rfm_segment, recency_days, run_id
        ("2024-12-01", "x1", "Hibernating", 100, "old-1"),
        ("2024-12-01", "x2", "Promising", 10, "old-1"),
        ("2024-12-15", "x1", "Hibernating", 114, "old-2"),
        ("2024-12-15", "x2", "Champions", 24, "old-2"),
        ("2025-01-01", "x2", "Champions", 41, "old-3"),
    ]
    with duckdb.connect(str(wh.path)) as con:
        # the types the real table has (the earlier form had the same ones)
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'segment_history'"
            ).fetchall()
        )
        con.execute("drop table marts.segment_history_dates")
        con.execute("drop table marts.segment_history")
        values = ", ".join(f"('{d}', '{c}', '{s}', {r}, '{run}')" for d, c, s, r, run in old)
        con.execute(
            f"create table marts.segment_history as select cast(d as date) as as_of_date, c as customer_id, "
            f"s as rfm_segment, 'active' as lifecycle_stage, 'mid' as value_tier, 'dormant' as engagement_tier, "
            f"'none' as support_health, cast(3 as {types['r_score']}) as r_score, "
            f"cast(1 as {types['f_score']}) as f_score, cast(2 as {types['m_score']}) as m_score, "
            f"cast(r as integer) as recency_days, cast(1 as {types['frequency']}) as frequency, "
            f"cast(10 as {types['monetary_usd']}) as monetary_usd, run as run_id, "
            f"cast(d as timestamp) as recorded_at from (values {values}) as t(d, c, s, r, run)"
        )
    dbt_build(wh, as_of=D1, run_id="upgrade")
    ann = wh.query("select customer_id from marts.customers")[0][0]
    got = wh.query("select as_of_date, customer_id, change, rfm_segment, last_order_date, run_id "
                   "from marts.segment_history order by 1, 2")  # fmt: skip
    assert got == [
        (date(2024, 12, 1), "x1", "entered", "Hibernating", date(2024, 8, 23), "old-1"),
        (date(2024, 12, 1), "x2", "entered", "Promising", date(2024, 11, 21), "old-1"),
        (date(2024, 12, 15), "x2", "changed", "Champions", date(2024, 11, 21), "old-2"),
        (date(2025, 1, 1), "x1", "left", None, None, "old-3"),
        (D1, ann, "entered", "New Customers", date(2025, 1, 10), "upgrade"),
        (D1, "x2", "left", None, None, "upgrade"),
    ]
    assert wh.query("select as_of_date, run_id, customers from marts.segment_history_dates order by 1") == [
        (date(2024, 12, 1), "old-1", 2), (date(2024, 12, 15), "old-2", 2), (date(2025, 1, 1), "old-3", 1),
        (D1, "upgrade", 1),
    ]  # fmt: skip
    dbt_build(wh, as_of=D1, run_id="again")  # converted once: the next build leaves the old dates
    assert wh.query("select count(*) from marts.segment_history where run_id like 'old-%'") == [(4,)]


# ---- the state table: a day's build reads each customer's latest rows, not the whole log ----------------

STATE_TABLE = "intermediate.segment_history__state"
F1, F2, F3, F4 = date(2025, 2, 1), date(2025, 2, 20), date(2025, 2, 21), date(2025, 3, 1)
B, F5, F6, F7 = date(2025, 2, 10), date(2025, 3, 10), date(2025, 3, 20), date(2025, 4, 1)


def _reads_state(wh: Any) -> bool:
    """Whether the last build's segment_history read the state table (its compiled SQL selects from the quoted
    relation; the whole-log form does not, comments aside)."""
    compiled = wh.settings.warehouse_dir / "dbt" / "target" / "compiled" / "rapport" / "models" / "marts"
    return '"intermediate"."segment_history__state"' in (compiled / "segments" / "segment_history.sql").read_text()


def _kept_state(wh: Any) -> tuple[date, pd.DataFrame] | None:
    with duckdb.connect(str(wh.path), read_only=True) as con:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'intermediate' "
            "and table_name = 'segment_history__state'"
        ).fetchall()[0][0]:
            return None
        [(state_date,)] = con.execute(f"select max(as_of_date) from {STATE_TABLE}_dates").fetchall()
        rows = con.execute(f"select {', '.join(LOG)} from {STATE_TABLE}").df()
    return state_date, normalised(rows)


def _expected_state(log: pd.DataFrame, state_date: date) -> pd.DataFrame:
    """Each customer's latest row before the state date, and their row at it (from a log, in pandas)."""
    before = log[log["as_of_date"] < state_date].sort_values("as_of_date").groupby("customer_id").tail(1)
    at = log[log["as_of_date"] == state_date]
    return normalised(pd.concat([before, at]))


@pytest.fixture(scope="module")
def kept(make_warehouse, rows) -> dict[str, Any]:
    """In-order days (the first build writes the state), a re-run, a backfill between recorded dates, a merge
    and a forget; after each build: the log, the state table and whether the build read it. ann orders on
    01-10 and 03-05 (a change on F5), ben on 01-20 and 02-15, dan (guest) on 01-05, cat never."""
    from rapport.orchestration.forget import forget
    from rapport.privacy.store import KEY_ENV

    wh = make_warehouse("segment_history_state")
    seed(wh, rows, ann_orders_again=True)
    snapshots: dict[date, pd.DataFrame] = {}
    forgotten: set[str] = set()
    out: dict[str, dict[str, Any]] = {}

    def build(as_of: date, run_id: str) -> None:
        dbt_build(wh, as_of=as_of, run_id=run_id)
        snapshots[as_of] = read_snapshot(wh)
        record(run_id)
        out[run_id]["reads_state"] = _reads_state(wh)

    def record(name: str) -> None:
        kept_snapshots = {d: s[~s["customer_id"].isin(forgotten)] for d, s in snapshots.items()}
        out[name] = {"log": normalised(read_log(wh)), "expected": expected_log(kept_snapshots),
                     "state": _kept_state(wh), "latest_recorded": max(snapshots)}  # fmt: skip

    build(F1, "f1")  # the first build: no table yet; it writes the state (post-hook)
    build(F2, "f2")  # the next day, read from the state the first build wrote
    build(F3, "f3")  # the next day, read from the state
    build(F3, "f3b")  # a re-run of the latest date
    build(F4, "f4")
    build(B, "b")  # a backfill between F1 and F2: the whole log, F2 re-diffed, the state rebuilt
    build(F5, "f5")  # ann's second order
    cat = wh.customer_of("orders.customer", 3)
    wh.insert("helpdesk_users", [rows.helpdesk_user(500, email="dan@x.com", external_id="2")],
              run_id="r2", extracted_at="2025-06-30 01:00:00")  # fmt: skip
    build(F6, "f6")  # ben's and dan's records merged: one id leaves
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_ENV, raising=False)
        result = forget(wh.settings, ["cat@x.com"])
    assert result.status == {"cat@x.com": "erased"}
    forgotten.add(cat)
    record("forget")
    build(F7, "f7")  # after the forget, read from the state
    return {"wh": wh, "out": out, "cat": cat}


def test_in_order_days_and_re_runs_read_the_state_and_backfills_the_whole_log(kept):
    reads = {name: o["reads_state"] for name, o in kept["out"].items() if "reads_state" in o}
    assert reads == {"f1": False, "f2": True, "f3": True, "f3b": True, "f4": True, "b": False, "f5": True,
                     "f6": True, "f7": True}  # fmt: skip


def test_with_the_state_the_log_equals_the_in_order_log_after_every_step(kept):
    """The same log as running the dates once each in date order (independent, from the snapshots), whichever
    way each build found the states before its date; after the forget, without the forgotten person."""
    for name, o in kept["out"].items():
        pd.testing.assert_frame_equal(o["log"], o["expected"], obj=f"after {name}")
    log = kept["out"]["f7"]["log"]
    assert kept["cat"] not in set(log["customer_id"])
    assert (log["change"] == "left").sum() == 1  # the merge


def test_the_state_table_holds_the_logs_latest_rows_after_every_step(kept):
    """After every build (and the forget): the state date is the latest recorded date and the table holds each
    customer's latest log row before it and their row at it, computed here from the expected log."""
    for name, o in kept["out"].items():
        assert o["state"] is not None, name  # the first build writes it too
        state_date, state = o["state"]
        assert state_date == o["latest_recorded"], name
        pd.testing.assert_frame_equal(state, _expected_state(o["expected"], state_date), obj=f"state after {name}")
    _, state = kept["out"]["forget"]["state"]
    assert kept["cat"] not in set(state["customer_id"])
