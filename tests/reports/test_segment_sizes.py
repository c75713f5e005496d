"""Segment sizes over time from the change log (reports.migrations.load_segment_history), against a direct count.

The report reads the sizes at the latest recorded dates from `marts.segment_history`, a change log. The oracle
here counts them the plain way, in Python: on each date, every customer's latest row on or before it, unless that
row is 'left', counted in its segment. Random logs (hypothesis) cover rows before, on and between the dates, a
customer leaving and coming back, dates where nothing changed (registry only) and more dates than the report shows.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.reports.data import relation_columns
from rapport.reports.migrations import HISTORY_POINTS, load_segment_history

SEGMENTS = ("Champions", "At Risk", "Hibernating")
CHANGES = ("entered", "moved", "left")
START = date(2026, 1, 1)

customer_logs = st.lists(  # per customer: (day offset, change, segment); one row per customer and date
    st.dictionaries(st.integers(0, 19), st.tuples(st.sampled_from(CHANGES), st.sampled_from(SEGMENTS)), max_size=6),
    min_size=1,
    max_size=12,
)


def _expected(rows: list[tuple[date, int, str, str]], dates: list[date]) -> dict[date, Counter]:
    sizes = {}
    for on in dates[-HISTORY_POINTS:]:
        latest: dict[int, tuple[date, str, str]] = {}
        for as_of, customer, change, segment in rows:
            if as_of <= on and (customer not in latest or latest[customer][0] < as_of):
                latest[customer] = (as_of, change, segment)
        counts = Counter(segment for _, change, segment in latest.values() if change != "left")
        if counts:
            sizes[on] = counts
    return sizes


@settings(max_examples=60, deadline=None)
@given(logs=customer_logs, extra_dates=st.sets(st.integers(0, 19), max_size=5))
def test_sizes_equal_a_direct_count_of_each_dates_state(logs, extra_dates) -> None:
    rows = [
        (START + timedelta(days=offset), customer, change, segment)
        for customer, log in enumerate(logs)
        for offset, (change, segment) in log.items()
    ]
    # the registry: every date a build recorded, with or without rows
    dates = sorted({r[0] for r in rows} | {START + timedelta(days=d) for d in extra_dates})
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.segment_history (as_of_date date, customer_id varchar, change varchar, "
            "rfm_segment varchar)"
        )
        for d, c, ch, s in rows:
            con.execute("insert into marts.segment_history values (?, ?, ?, ?)", [d, f"c{c}", ch, s])
        con.execute("create table marts.segment_history_dates (as_of_date date)")
        for d in dates:
            con.execute("insert into marts.segment_history_dates values (?)", [d])
        history = load_segment_history(con, relation_columns(con))
    expected = _expected(rows, dates)
    if len(expected) < 2:  # one point is no trend: the report shows none
        assert history is None
        return
    assert history is not None
    assert history.dates == sorted(expected)
    got = {
        on: Counter({segment: series[i] for segment, series in history.series.items() if series[i]})
        for i, on in enumerate(history.dates)
    }
    assert got == expected
