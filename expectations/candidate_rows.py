"""The rows of a mart's frame that its suite's expectations could object to, selected in DuckDB.

Great Expectations then validates only those rows instead of every row of the large marts (5.8M identity
rows at 1M people: their export to Parquet, reading into pandas and GX's per-row work were most of the mart
gate's cost). For each expectation kind listed here, GX's result over the candidate rows is its result over
the whole frame, whatever the data:

- a row-wise expectation (not null, null, in a set, between, a > b): its condition in SQL, widened so that it
  holds on every row GX could count as unexpected (NaN, a missing value in a pair, bounds either way); GX
  decides on those rows, and the rows left out are rows it accepts, so its unexpected count is the same;
- a uniqueness expectation: every row of each key group that occurs more than once (grouped by a hash of the
  key, so a hash collision only adds rows); a key that is unique in the frame is unique among any of its rows;
- the number of distinct values of a column: one row per value;
- expectations about the schema (columns, types of typed columns): the candidate frame has the same columns
  and types.

An expectation of any other kind, a `mostly`, a row condition, a value set or bound of another type, a column
type outside those listed: `candidate_query` returns None and the gate validates the whole frame as before.
Only the element count differs (GX counts the candidate rows): the gate reports the frame's row count
instead (`gx_runner.validate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# Exported column types (after frames._export_cast) that pandas reads into a typed, non-object column: a type
# check sees the column's dtype, never its values, and equality and order mean the same in DuckDB and pandas.
STRINGS = frozenset({"VARCHAR"})
INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
FLOATS = frozenset({"FLOAT", "DOUBLE"})
TIMESTAMPS = frozenset({"TIMESTAMP"})
TYPED = STRINGS | INTEGERS | FLOATS | TIMESTAMPS | {"BOOLEAN"}
# keys grouped alike by DuckDB and pandas (floats are not: -0.0 and 0.0, NaN)
GROUPABLE = STRINGS | INTEGERS | TIMESTAMPS | {"BOOLEAN"}
ROW_NUMBER = "_candidate_row"


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Unbounded(Exception):
    """The expectation's result needs rows this module cannot pick out: validate the whole frame."""


class _Candidates:
    def __init__(self, types: dict[str, str]) -> None:
        self.types = {name: t.upper() for name, t in types.items()}
        self.conditions: list[str] = []
        self.duplicate_keys: list[tuple[str, ...]] = []
        self.distinct_columns: list[str] = []

    def type_of(self, column: object, allowed: Iterable[str]) -> str:
        if not isinstance(column, str) or column not in self.types:
            # a missing column fails the suite's column checks; GX reports it on the whole frame as before
            raise _Unbounded
        t = self.types[column]
        if t not in allowed:
            raise _Unbounded
        return t

    def add(self, expectation: dict) -> None:
        kind = expectation.get("type")
        kw = expectation.get("kwargs") or {}
        if "mostly" in kw or kw.get("row_condition") or any(isinstance(v, dict) for v in kw.values()):
            raise _Unbounded  # a share of all rows, a subset GX picks, or a parameter resolved by GX
        if kind in (
            "expect_table_columns_to_match_set",
            "expect_table_column_count_to_be_between",
            "expect_table_columns_to_match_ordered_list",
        ):
            return  # the candidate frame has the frame's columns
        if kind == "expect_column_values_to_be_in_type_list":
            self.type_of(kw.get("column"), TYPED)
            return
        if kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
            columns = kw.get("column_list") or [kw.get("column")]
            for c in columns:
                self.type_of(c, GROUPABLE)
            self.duplicate_keys.append(tuple(columns))
            return
        if kind == "expect_column_unique_value_count_to_be_between":
            self.type_of(kw.get("column"), GROUPABLE)
            self.distinct_columns.append(kw["column"])
            return
        self.conditions.append(self.row_condition(kind, kw))

    def row_condition(self, kind: object, kw: dict) -> str:
        if kind == "expect_column_pair_values_a_to_be_greater_than_b":
            return self.pair_condition(kw)
        column = kw.get("column")
        t = self.type_of(column, TYPED)
        col = _q(column)
        nan = f" or isnan({col})" if t in FLOATS else ""  # NaN: null to pandas, a number to DuckDB
        if kind == "expect_column_values_to_not_be_null":
            return f"{col} is null{nan}"
        if kind == "expect_column_values_to_be_null":
            return f"{col} is not null"
        if kind == "expect_column_values_to_be_in_set":
            values = kw.get("value_set")
            if t not in STRINGS or not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _Unbounded  # pandas' isin and DuckDB's in agree on strings compared with strings
            return f"{col} not in ({', '.join(_text(v) for v in values)})" if values else f"{col} is not null"
        if kind == "expect_column_values_to_be_between":
            low, high = kw.get("min_value"), kw.get("max_value")
            bounds = [b for b in (low, high) if b is not None]
            if t not in INTEGERS | FLOATS or not bounds or not all(_number(b) and math.isfinite(b) for b in bounds):
                raise _Unbounded
            outside = []
            if low is not None:
                outside.append(f"{col} {'<=' if kw.get('strict_min') else '<'} {low!r}")
            if high is not None:
                outside.append(f"{col} {'>=' if kw.get('strict_max') else '>'} {high!r}")
            return " or ".join(outside) + nan
        raise _Unbounded

    def pair_condition(self, kw: dict) -> str:
        ta = self.type_of(kw.get("column_A"), INTEGERS | FLOATS | TIMESTAMPS)
        tb = self.type_of(kw.get("column_B"), INTEGERS | FLOATS | TIMESTAMPS)
        if (ta in TIMESTAMPS) != (tb in TIMESTAMPS):
            raise _Unbounded
        a, b = _q(kw["column_A"]), _q(kw["column_B"])
        op = ">=" if kw.get("or_equal") else ">"
        nan = "".join(f" or isnan({c})" for c, t in ((a, ta), (b, tb)) if t in FLOATS)
        # GX ignores a row whose two values are both missing (its default), compares the rest: a row with one
        # value missing is kept as a candidate whatever GX makes of it
        either_missing = f"{a} is null or {b} is null or not ({a} {op} {b}){nan}"
        if kw.get("ignore_row_if", "both_values_are_missing") == "neither":
            return either_missing
        return f"not ({a} is null and {b} is null) and ({either_missing})"


def candidate_query(exported: str, expectations: Iterable[dict], types: dict[str, str]) -> str | None:
    """A query over `exported` (the frame's select, whose column types are `types`) selecting the rows the
    `expectations` could object to, in the frame's order and with its columns; None when some expectation
    needs the whole frame."""
    found = _Candidates(types)
    try:
        for e in expectations:
            found.add(e)
    except _Unbounded:
        return None
    numbered = bool(found.distinct_columns)
    ctes = [
        f"frame as (select *{f', row_number() over () as {ROW_NUMBER}' if numbered else ''} "
        f"from ({exported}) as exported)"
    ]
    wanted = [f"({c})" for c in found.conditions]
    for i, key in enumerate(dict.fromkeys(found.duplicate_keys)):
        hashed = "hash(" + ", ".join(_q(c) for c in key) + ")"
        ctes.append(f"duplicated_keys_{i} as (select {hashed} as key_hash from frame group by all having count(*) > 1)")
        wanted.append(f"{hashed} in (select key_hash from duplicated_keys_{i})")
    for i, column in enumerate(dict.fromkeys(found.distinct_columns)):
        ctes.append(f"value_rows_{i} as (select min({ROW_NUMBER}) as row_number from frame group by {_q(column)})")
        wanted.append(f"{ROW_NUMBER} in (select row_number from value_rows_{i})")
    columns = f"* exclude ({ROW_NUMBER})" if numbered else "*"
    return f"with {', '.join(ctes)}\nselect {columns} from frame where {' or '.join(wanted) or 'false'}"
