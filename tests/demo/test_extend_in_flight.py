"""Property test: the base's orders still settling when a continuation starts get later steps that follow
the order life cycle (demo/orders.py), happen after the start, and respect the delays of the base's model."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.demo.common import DAY, HOUR
from rapport.demo.extend_shop import schedule_in_flight
from rapport.demo.shop import SCHEMA

START = 1_793_577_600  # 2026-11-01 00:00 UTC
NEXT = {"pending": ("paid", "cancelled"), "paid": ("fulfilled",), "fulfilled": ("refunded", "partially_refunded")}

order = st.tuples(
    st.sampled_from(["pending", "paid", "fulfilled", "cancelled", "refunded"]),
    st.integers(0, 20 * DAY),  # how long ago the order reached its status
    st.integers(1_000, 2_000_000),
    st.sampled_from(["USD", "KRW", "EUR"]),
)  # total in cents


def _iso(ts: int) -> str:
    return str(np.datetime_as_string(np.datetime64(ts, "s"), unit="s")) + "Z"


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.lists(order, min_size=1, max_size=30), st.integers(0, 2**32 - 1))
def test_in_flight_orders_settle_along_the_life_cycle(orders: list, seed: int) -> None:
    con = sqlite3.connect(":memory:")
    con.executescript(SCHEMA)
    for i, (status, age, cents, cur) in enumerate(orders, start=1):
        since = START - age
        created = since - (0 if status == "pending" else 2 * DAY)
        con.execute(
            "insert into orders values (?,null,'a@b.co',null,?,?,0,0,0,0,?,0,null,null,null,null,?,?,null)",
            (i, status, cur, cents / 100, _iso(created), _iso(since)),
        )
    steps = schedule_in_flight(con, np.random.default_rng(seed), START)
    assert (steps["ts"] > START).all()
    for i, (status, age, cents, _cur) in enumerate(orders, start=1):
        mine = steps[steps["key"] == i].sort_values("ts")
        seq = [json.loads(p) for p in mine["payload"]]
        state, last = status, START - age
        for ts, step in zip(mine["ts"], seq, strict=True):
            assert step["status"] in NEXT.get(state, ()), (status, [s["status"] for s in seq])
            assert ts > last
            if step["status"] == "paid":
                assert ts - last < 1_800
            if step["status"] == "fulfilled":
                assert 12 * HOUR <= ts - last < 96 * HOUR or state == "paid"
            if step["status"] == "cancelled":
                assert ts - (START - age) < 48 * HOUR and step["cancelled"]
            if step["status"] in ("refunded", "partially_refunded"):
                assert ts - last < 8 * DAY
                assert 0 < step["refunded"] <= cents and (step["refunded"] == cents) == (step["status"] == "refunded")
            state, last = step["status"], ts
        if status == "pending" and age >= 48 * HOUR:
            assert seq == []  # neither paid (within 30 min) nor cancelled (within 48 h) any more: stuck for good
        if status == "fulfilled" and age >= 8 * DAY:
            assert seq == []  # past the last day a refund comes
        if status == "paid":
            assert seq and seq[0]["status"] == "fulfilled"  # every paid order is fulfilled
