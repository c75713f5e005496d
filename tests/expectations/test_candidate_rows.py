"""Which rows of a mart's frame Great Expectations is handed (`candidate_rows.py`): for each expectation kind,
the rows it could object to and none it accepts; and the kinds it cannot bound, which keep the whole frame.
Expected row sets are read off the hand-made table below. The gate's results over these rows against GX over
every row: test_gate_candidates.py."""

from __future__ import annotations

import duckdb
import pytest

from rapport.expectations.candidate_rows import candidate_query

# id  s        n     x       a (later)            b (earlier)
ROWS = """
    ('r1', 'ok',    1,    '1.0', '2026-01-02', '2026-01-01'),
    ('r2', 'bogus', 2,    '2.0', '2026-01-02', '2026-01-02'),
    ('r3', null,    -1,   'nan', null,         null),
    ('r4', 'ok',    null, '-0.5', null,        '2026-01-01'),
    ('r5', 'ok',    7,    null,  '2026-01-01', '2026-01-03'),
    ('r1', 'ok',    8,    '3.0', '2026-01-02', '2026-01-01')"""
FRAME = f"""select id, s, n, x::double as x, a::timestamp as a, b::timestamp as b
    from (values {ROWS}) t(id, s, n, x, a, b)"""


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _types(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    return {name: t for name, t, *_ in con.execute(f"describe {sql}").fetchall()}


def picked(con: duckdb.DuckDBPyConnection, *expectations: dict, sql: str = FRAME) -> list[tuple] | None:
    query = candidate_query(sql, expectations, _types(con, sql))
    if query is None:
        return None
    return sorted(con.execute(f"select id, n from ({query})").fetchall(), key=str)


def e(kind: str, **kwargs) -> dict:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def ids(rows: list[tuple] | None) -> set[str]:
    assert rows is not None
    return {r[0] for r in rows}


def test_not_null_picks_nulls_and_nan(con):
    assert ids(picked(con, e("column_values_to_not_be_null", column="s"))) == {"r3"}
    # NaN is a missing value to pandas: r3's NaN and r5's null
    assert ids(picked(con, e("column_values_to_not_be_null", column="x"))) == {"r3", "r5"}


def test_null_picks_every_filled_value(con):
    assert ids(picked(con, e("column_values_to_be_null", column="a"))) == {"r1", "r2", "r5"}


def test_in_set_picks_values_outside_the_set_not_nulls(con):
    assert ids(picked(con, e("column_values_to_be_in_set", column="s", value_set=["ok"]))) == {"r2"}
    assert ids(picked(con, e("column_values_to_be_in_set", column="s", value_set=[]))) == {"r1", "r2", "r4", "r5"}


def test_between_picks_values_outside_the_bounds_and_nan(con):
    assert ids(picked(con, e("column_values_to_be_between", column="n", min_value=0))) == {"r3"}
    assert ids(picked(con, e("column_values_to_be_between", column="n", min_value=1, max_value=7))) == {"r1", "r3"}
    # 1 and 7 are outside strict bounds; r1 with 8 too
    assert sorted(
        picked(
            con,
            e("column_values_to_be_between", column="n", min_value=1, max_value=7, strict_min=True, strict_max=True),
        )
    ) == [("r1", 1), ("r1", 8), ("r3", -1), ("r5", 7)]
    assert ids(picked(con, e("column_values_to_be_between", column="x", max_value=2.5))) == {"r1", "r3"}


def test_pair_picks_violations_and_rows_with_one_value_missing(con):
    ge = e("column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b", or_equal=True)
    # r5: a < b; r4: only b; r3: both missing, which GX ignores by default
    assert ids(picked(con, ge)) == {"r4", "r5"}
    gt = e("column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b")
    assert ids(picked(con, gt)) == {"r2", "r4", "r5"}  # r2: equal
    neither = e(
        "column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b", or_equal=True, ignore_row_if="neither"
    )
    assert ids(picked(con, neither)) == {"r3", "r4", "r5"}
    # a NaN on either side is picked
    nan = e("column_pair_values_a_to_be_greater_than_b", column_A="x", column_B="n", or_equal=True)
    # r3 NaN, r4 n missing, r5 x missing, r1's second row 3.0 < 8 (its first, 1.0 >= 1, is not)
    assert picked(con, nan) == [("r1", 8), ("r3", -1), ("r4", None), ("r5", 7)]


def test_uniqueness_picks_every_row_of_a_repeated_key(con):
    assert picked(con, e("column_values_to_be_unique", column="id")) == [("r1", 1), ("r1", 8)]
    assert picked(con, e("compound_columns_to_be_unique", column_list=["id", "s"])) == [("r1", 1), ("r1", 8)]
    assert picked(con, e("compound_columns_to_be_unique", column_list=["id", "n"])) == []


def test_distinct_count_keeps_one_row_per_value(con):
    expectation = e("column_unique_value_count_to_be_between", column="s", max_value=1)
    query = candidate_query(FRAME, [expectation], _types(con, FRAME))
    assert query is not None
    values = sorted(con.execute(f"select s from ({query})").fetchall(), key=str)
    assert values == [("bogus",), ("ok",), (None,)]  # r3's null too (GX leaves it out of its count)
    assert _types(con, query) == _types(con, FRAME)  # the row numbering is not a column of the frame


def test_schema_expectations_keep_no_row_but_every_column(con):
    query = candidate_query(
        FRAME,
        [
            e("table_columns_to_match_set", column_set=["id", "s"], exact_match=False),
            e("column_values_to_be_in_type_list", column="s", type_list=["str"]),
        ],
        _types(con, FRAME),
    )
    assert query is not None
    assert con.execute(f"select count(*) from ({query})").fetchall() == [(0,)]
    assert _types(con, query) == _types(con, FRAME)


def test_candidates_of_several_expectations_are_their_union_each_row_once(con):
    rows = picked(
        con,
        e("column_values_to_be_in_set", column="s", value_set=["ok"]),
        e("column_values_to_be_between", column="n", min_value=0),
        e("column_values_to_be_unique", column="id"),
        e("column_values_to_not_be_null", column="s"),
    )
    assert rows == [("r1", 1), ("r1", 8), ("r2", 2), ("r3", -1)]


@pytest.mark.parametrize(
    "expectation",
    [
        e("column_values_to_not_be_null", column="s", mostly=0.9),  # a share of every row
        e("column_values_to_be_between", column="n", min_value={"$PARAMETER": "low"}),  # resolved by GX
        e("column_values_to_be_between", column="a", min_value="2026-01-01"),  # dates compared as GX parses them
        e("column_values_to_be_in_set", column="n", value_set=[1, 2]),  # not strings
        e("column_values_to_be_in_set", column="s", value_set=["ok", 1]),
        e("column_values_to_match_regex", column="s", regex="^o"),  # another regex dialect
        e("column_values_to_be_unique", column="x"),  # floats group differently (-0.0, NaN)
        e("column_values_to_not_be_null", column="missing"),  # a column the frame lacks
        e("table_row_count_to_equal", value=6),
        e("column_values_to_not_be_null", column="s", row_condition='s=="ok"', condition_parser="pandas"),
    ],
)
def test_an_expectation_it_cannot_bound_keeps_the_whole_frame(con, expectation):
    assert picked(con, e("column_values_to_not_be_null", column="id"), expectation) is None
