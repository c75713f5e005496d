"""The tolerant row comparison the equality tests fall back on when their hashes differ."""

from __future__ import annotations

import duckdb
from row_equality import table_differences, unmatched_rows

FLOATS = frozenset({1})


def test_last_bit_differences_across_a_rounding_boundary_are_equal():
    a = [("c1", 2.0000000024999998), ("c2", 0.0)]
    b = [("c2", 0.0), ("c1", 2.0000000025)]  # the next double up: rounds apart at 9 decimals
    assert round(a[0][1], 9) != round(b[1][1], 9)
    assert unmatched_rows(a, b, FLOATS) == ([], [])


def test_real_differences_are_reported_from_both_sides():
    a = [("c1", 1.0), ("c2", -9.3e-7), ("c3", None), ("c4", 2.0)]
    b = [("c1", 1.000001), ("c2", 0.0), ("c3", 0.0), ("c4", 2.0), ("c4", 2.0)]
    only_a, only_b = unmatched_rows(a, b, FLOATS)
    assert sorted(only_a, key=str) == [("c1", 1.0), ("c2", -9.3e-7), ("c3", None)]
    assert sorted(only_b, key=str) == [("c1", 1.000001), ("c2", 0.0), ("c3", 0.0), ("c4", 2.0)]


def test_rows_pair_up_within_a_key_whatever_their_order():
    a = [("k", 1.0, "x"), ("k", 2.0, "x"), ("k", float("nan"), "x")]
    b = [("k", float("nan"), "x"), ("k", 2.0 + 1e-12, "x"), ("k", 1.0, "x")]
    assert unmatched_rows(a, b, FLOATS) == ([], [])
    assert unmatched_rows(a, [("k", 1.0, "y"), *b[:2]], FLOATS)[0] == [("k", 1.0, "x")]


def test_table_differences_finds_a_changed_row_and_ignores_build_times_and_float_noise(tmp_path):
    files = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    for k, f in enumerate(files):
        with duckdb.connect(str(f)) as con:
            con.execute("create schema marts")
            for i in range(31):  # the helper insists on a warehouse-sized set of tables
                con.execute(f"create table marts.t{i} as select 1 as id, 'x' as v")
            con.execute(
                "create table marts.changed as select * from (values (1, 'a'), (2, ?)) t(id, v)",
                ["b" if k == 0 else "c"],
            )
            con.execute("create table marts.timed as select 1 as id, now() + to_seconds(?) as built_at", [k])
            con.execute("create table marts.summed as select 1 as id, ? as total", [0.1 + 0.2 if k else 0.3])
    assert table_differences(*files, ("marts",), {"marts.timed": "built_at"}) == {"marts.changed": (1, 1)}
    assert "marts.timed" in table_differences(*files, ("marts",), {})
