"""Segment migrations (optional mart, or a comparison with the previous published file) and history."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from rapport.reports.data import relation_columns
from rapport.reports.migrations import load_migrations, load_segment_history, summarise


def _load(path: Path, previous_db: Path | None = None):
    with duckdb.connect(str(path), read_only=True) as con:
        cols = relation_columns(con)
        return load_migrations(con, cols, previous_db), load_segment_history(con, cols)


def test_from_the_mart(published_db: Path) -> None:
    migrations, history = _load(published_db)
    assert migrations is not None and migrations.source == "marts.segment_migrations"
    assert (migrations.from_date, migrations.to_date) == (date(2025, 5, 31), date(2025, 6, 30))
    assert not migrations.first_snapshot
    assert (migrations.moved, migrations.arrived, migrations.left, migrations.stayed) == (10, 5, 0, 10)
    assert migrations.net == [
        ("New Customers", 5),
        ("Champions", 3),
        ("Hibernating", 3),
        ("Cannot Lose Them", 1),
        ("Loyal Customers", -2),
        ("Potential Loyalists", -2),
        ("At Risk", -3),
    ]
    assert migrations.flows[0] == {"from_segment": "(new)", "to_segment": "New Customers", "customers": 5}
    assert all(f["from_segment"] != f["to_segment"] for f in migrations.flows)
    assert history is not None
    assert history.dates == [date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 30)]
    assert history.series["Champions"] == [8, 9, 12]


def test_absent_without_mart_or_previous_file(make_published_db) -> None:
    assert _load(make_published_db()) == (None, None)


def test_from_the_previous_published_file(make_published_db, facts) -> None:
    # Previous run: c07 did not exist yet and c01 was a Loyal Customer; c12 has since gone.
    prev_people = [p for p in facts.people if p[0] != "c07"]
    prev_people = [(*p[:12], "Loyal Customers", *p[13:]) if p[0] == "c01" else p for p in prev_people]
    previous = make_published_db("previous.duckdb", people=prev_people)
    current = make_published_db("current.duckdb", people=[p for p in facts.people if p[0] != "c12"])
    migrations, _ = _load(current, previous)
    assert migrations is not None and migrations.source == "the previous published file"
    assert {(f["from_segment"], f["to_segment"], f["customers"]) for f in migrations.flows} == {
        ("Loyal Customers", "Champions", 1),
        ("(new)", "New Customers", 1),
        ("No Purchases", "(gone)", 1),
    }
    assert (migrations.moved, migrations.arrived, migrations.left, migrations.stayed) == (1, 1, 1, 9)


def test_first_run_has_nothing_to_compare(make_published_db) -> None:
    # dbt's first run: one history date, so from_date is null and everyone comes from "(absent)"
    path = make_published_db(
        migrations=[("(absent)", "Champions", 3), ("(absent)", "At Risk", 2)], migration_dates=(None, date(2025, 6, 30))
    )
    migrations, _ = _load(path)
    assert migrations is not None and migrations.first_snapshot
    assert (migrations.arrived, migrations.from_date) == (5, None)


def test_mart_with_several_periods_uses_the_latest(make_published_db) -> None:
    path = make_published_db(migrations=[])
    with duckdb.connect(str(path)) as con:
        con.execute(
            "insert into marts.segment_migrations values "
            "(date '2025-04-30', date '2025-05-31', 'Champions', 'At Risk', 7, null, false), "
            "(date '2025-05-31', date '2025-06-30', 'Champions', 'Hibernating', 2, null, false), "
            "(date '2025-05-31', date '2025-06-30', 'Hibernating', '(absent)', 1, null, false)"
        )
    migrations, _ = _load(path)
    assert migrations is not None
    assert [(f["to_segment"], f["customers"]) for f in migrations.flows] == [("Hibernating", 2), ("(gone)", 1)]
    assert (migrations.moved, migrations.left, migrations.from_date) == (2, 1, date(2025, 5, 31))


def test_summarise_counts_departures() -> None:
    m = summarise([("At Risk", None, 2), (None, "Champions", 1), ("At Risk", "At Risk", 4)], "test")
    assert (m.moved, m.arrived, m.left, m.stayed) == (0, 1, 2, 4)
    assert m.net == [("Champions", 1), ("At Risk", -2)]
