"""Segment sizes kept from one report to the next (rapport.reports.segment_sizes), against a direct count.

A log evolves as daily builds make it: each build writes one date whole (deletes its rows, inserts the new
ones, every row stamped with the build's one time), a re-run rewrites the latest date, a backfill an earlier one,
an erasure deletes a customer's rows. After every step the report's sizes, read with the kept sizes, must be
the sizes counted directly from the log (each date: every customer's latest row on or before it, not 'left');
the kept file must be used when it matches (a day after a day reads only the moves of the new date) and never
when it does not (a rewritten date, an erased row, a log replaced by another).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.reports import segment_sizes
from rapport.reports.data import relation_columns
from rapport.reports.migrations import HISTORY_POINTS, load_segment_history

SEGMENTS = ("Champions", "At Risk", "Hibernating", None)
START = date(2026, 1, 1)

Row = tuple[date, str | None, str, str | None, datetime]  # as_of_date, customer_id, change, rfm_segment, recorded_at


def _expected(rows: list[Row], dates: list[date]) -> dict[date, Counter]:
    sizes = {}
    for on in sorted(dates)[-HISTORY_POINTS:]:
        latest: dict[str | None, tuple[date, str, str | None]] = {}
        for as_of, customer, change, segment, _ in rows:
            if as_of <= on and (customer not in latest or latest[customer][0] < as_of):
                latest[customer] = (as_of, change, segment)
        counts = Counter(str(segment) for _, change, segment in latest.values() if change != "left")
        if counts:
            sizes[on] = counts
    return sizes


def _read(rows: list[Row], dates: list[date], cache: Path | None) -> dict[date, Counter] | None:
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.segment_history (as_of_date date, customer_id varchar, change varchar, "
            "rfm_segment varchar, recorded_at timestamp)"
        )
        if rows:
            con.executemany("insert into marts.segment_history values (?, ?, ?, ?, ?)", [list(r) for r in rows])
        con.execute("create table marts.segment_history_dates (as_of_date date)")
        if dates:
            con.executemany("insert into marts.segment_history_dates values (?)", [[d] for d in dates])
        history = load_segment_history(con, relation_columns(con), cache)
    if history is None:
        return None
    return {
        on: Counter({segment: series[i] for segment, series in history.series.items() if series[i]})
        for i, on in enumerate(history.dates)
    }


def _check(rows: list[Row], dates: list[date], cache: Path) -> None:
    expected = _expected(rows, dates)
    got = _read(rows, dates, cache)
    if len(expected) < 2:
        assert got is None
    else:
        assert got == expected
    assert _read(rows, dates, None) == got  # the whole log, as before


class Log:
    """A change log written the way the dbt model writes it: a build replaces one date's rows whole."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.dates: list[date] = []
        self.clock = datetime(2026, 6, 1)

    def state_before(self, on: date) -> dict[str | None, tuple[str, str | None]]:
        latest: dict[str | None, tuple[date, str, str | None]] = {}
        for as_of, customer, change, segment, _ in self.rows:
            if as_of < on and (customer not in latest or latest[customer][0] < as_of):
                latest[customer] = (as_of, change, segment)
        return {c: (ch, s) for c, (_, ch, s) in latest.items()}

    def build(self, on: date, moves: dict[str | None, str | None | bool]) -> None:
        """Write date `on`: each customer in `moves` gets a row (False: leaves) unless it keeps its state."""
        self.clock += timedelta(seconds=1)
        before = self.state_before(on)
        new = []
        for customer, segment in sorted(moves.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            previous = before.get(customer)
            if segment is False:
                if previous and previous[0] != "left":
                    new.append((on, customer, "left", previous[1], self.clock))
            elif previous is None or previous[0] == "left":
                new.append((on, customer, "entered", segment, self.clock))
            elif previous[1] != segment:
                new.append((on, customer, "changed", segment, self.clock))
        self.rows = [r for r in self.rows if r[0] != on] + new
        if on not in self.dates:
            self.dates.append(on)

    def erase(self, customer: str) -> None:
        self.rows = [r for r in self.rows if r[1] != customer]


# a row without a customer id is one more customer to the whole-log query: the kept path must agree
customers = st.sampled_from([*(f"c{i}" for i in range(8)), None])
day_moves = st.dictionaries(customers, st.one_of(st.sampled_from(SEGMENTS), st.just(False)), max_size=6)


@settings(max_examples=12, deadline=None)
@given(
    days=st.lists(day_moves, min_size=2, max_size=18),
    events=st.lists(st.tuples(st.sampled_from(("rerun", "backfill", "erase")), st.integers(0, 30), day_moves)),
)
def test_kept_sizes_equal_a_direct_count_after_every_day(tmp_path_factory, days, events) -> None:
    cache = tmp_path_factory.mktemp("reports") / segment_sizes.CACHE_FILE
    log = Log()
    for i, moves in enumerate(days):
        log.build(START + timedelta(days=i), moves)
        _check(log.rows, log.dates, cache)
        if events and i % 3 == 2:
            kind, at, again = events.pop()
            if kind == "rerun":  # the latest date built again
                log.build(log.dates[-1], again)
            elif kind == "backfill":  # an earlier date built again, with other moves
                log.build(log.dates[at % len(log.dates)], again)
            else:
                log.erase(f"c{at % 8}")
            _check(log.rows, log.dates, cache)


def _year(n_dates: int) -> Log:
    log = Log()
    for i in range(n_dates):
        log.build(START + timedelta(days=i), {f"c{(i * 3 + k) % 10}": SEGMENTS[(i + k) % 3] for k in range(3)})
    return log


def test_a_day_after_a_day_reads_only_the_new_dates_moves(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / segment_sizes.CACHE_FILE
    log = _year(HISTORY_POINTS + 5)
    _check(log.rows, log.dates, cache)  # the first report: the whole log, kept
    kept = json.loads(cache.read_text())["dates"]
    assert sorted(kept) == [d.isoformat() for d in log.dates[-HISTORY_POINTS:]]

    calls: list[tuple[date, date]] = []
    real = segment_sizes._moves_between
    monkeypatch.setattr(segment_sizes, "_moves_between", lambda con, a, b: calls.append((a, b)) or real(con, a, b))

    def no_whole_log(*_args: object) -> None:
        raise AssertionError("the whole log was read")

    log.build(log.dates[-1] + timedelta(days=1), {"c1": "At Risk", "c4": False, "c11": "Champions"})
    with monkeypatch.context() as m:
        m.setattr("rapport.reports.migrations.fetch_dicts", no_whole_log)
        _check_cached_only(log, cache)
    assert calls == [(log.dates[-2], log.dates[-1])]  # only the new date's moves

    # a re-run of that day (another build time, other rows): its size is computed again, the others kept
    calls.clear()
    log.build(log.dates[-1], {"c1": "Hibernating"})
    with monkeypatch.context() as m:
        m.setattr("rapport.reports.migrations.fetch_dicts", no_whole_log)
        _check_cached_only(log, cache)
    assert calls == [(log.dates[-2], log.dates[-1])]


def _check_cached_only(log: Log, cache: Path) -> None:
    assert _read(log.rows, log.dates, cache) == _expected(log.rows, log.dates)


@pytest.mark.parametrize("change", ["backfill_first_shown", "erase", "other_log", "corrupt"])
def test_a_kept_size_that_no_longer_matches_is_not_used(tmp_path: Path, change: str) -> None:
    cache = tmp_path / segment_sizes.CACHE_FILE
    log = _year(HISTORY_POINTS + 3)
    _check(log.rows, log.dates, cache)
    first_shown = log.dates[-HISTORY_POINTS]
    if change == "backfill_first_shown":  # a date before every other shown date rewritten: all recomputed
        log.build(log.dates[-HISTORY_POINTS - 1], {"c0": "Hibernating", "c9": False})
    elif change == "erase":
        log.erase("c3")
    elif change == "other_log":  # another warehouse's log, same dates, other build times
        other = _year(HISTORY_POINTS + 3)
        other.rows = [(d, c, ch, s, t + timedelta(hours=1)) for d, c, ch, s, t in other.rows if c != "c5"]
        log = other
    else:
        cache.write_text("{not json")
    assert log.dates[-HISTORY_POINTS] == first_shown
    _check(log.rows, log.dates, cache)


def test_rows_without_a_customer_id_are_one_customer_on_the_kept_path_too(tmp_path: Path) -> None:
    """The whole-log query groups rows without a customer id as one customer: so must the day's moves (a join that
    drops them would count the day's row of that 'customer' without taking it out of its earlier segment)."""
    cache = tmp_path / segment_sizes.CACHE_FILE
    log = _year(HISTORY_POINTS + 2)
    log.build(log.dates[-1] + timedelta(days=1), {None: "Champions"})
    _check(log.rows, log.dates, cache)
    log.build(log.dates[-1] + timedelta(days=1), {None: "At Risk"})  # read from the kept sizes plus this day's moves
    _check(log.rows, log.dates, cache)
