"""Do two tables hold the same rows, with doubles equal to 1e-9 (relative, or absolute near 0)?

Hashing doubles rounded to a fixed number of decimals is not enough on its own: two builds that add the
same floats in another order differ in the last bits, and now and then such a pair falls either side of a
rounding boundary (2.0000000024999998 and the next double up, 2.0000000025, round apart at 9 decimals).
The hash is the fast path; when it differs, the rows are compared here with a tolerance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb

REL_TOL = 1e-9


def _same_value(a: Any, b: Any, is_float: bool) -> bool:
    if not is_float or a is None or b is None:
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=REL_TOL)


def _float_order(x: float | None) -> tuple[int, float]:
    if x is None:
        return (0, 0.0)
    return (1, 0.0) if math.isnan(x) else (2, x)


def _by_exact_part(rows: list[tuple], floats: frozenset[int]) -> dict[tuple, list[tuple]]:
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for row in rows:
        groups[tuple(v for i, v in enumerate(row) if i not in floats)].append(row)
    for group in groups.values():  # rows that agree on every exact column pair up in float order
        group.sort(key=lambda r: tuple(_float_order(r[i]) for i in sorted(floats)))
    return groups


def unmatched_rows(rows_a: list[tuple], rows_b: list[tuple], floats: frozenset[int]) -> tuple[list, list]:
    """(rows of a without a counterpart in b, rows of b without one in a); positions in `floats` are doubles."""
    ga, gb = _by_exact_part(rows_a, floats), _by_exact_part(rows_b, floats)
    only_a: list[tuple] = []
    only_b: list[tuple] = []
    order = sorted(floats)
    for key in ga.keys() | gb.keys():
        left, right = ga.get(key, []), gb.get(key, [])
        i = j = 0
        while i < len(left) and j < len(right):  # a merge of the two float-ordered lists
            ra, rb = left[i], right[j]
            if all(_same_value(x, y, k in floats) for k, (x, y) in enumerate(zip(ra, rb, strict=True))):
                i, j = i + 1, j + 1
            elif [_float_order(ra[k]) for k in order] < [_float_order(rb[k]) for k in order]:
                only_a.append(ra)
                i += 1
            else:
                only_b.append(rb)
                j += 1
        only_a.extend(left[i:])
        only_b.extend(right[j:])
    return only_a, only_b


def table_differences(a: Path, b: Path, schemas: tuple[str, ...], skip: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Table -> (rows only in a, rows only in b) for every table of `schemas` in the DuckDB files a and b that
    differs; `skip` names, per table, comma-separated columns left out (build times). `except all` is the fast
    path; a table with differences is compared again with doubles equal to 1e-9."""
    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_catalog = 'a' and table_schema in {schemas} order by 1").fetchall()  # fmt: skip
        assert len(tables) > 30
        for (table,) in tables:
            schema, name = table.split(".")
            left_out = {c.strip() for c in skip.get(table, "").split(",")}
            kept = [(c, t) for c, t in con.execute(
                "select column_name, data_type from information_schema.columns where table_catalog = 'a' "
                "and table_schema = ? and table_name = ? order by ordinal_position", [schema, name]).fetchall()
                if c not in left_out]  # fmt: skip
            if not kept:  # nothing but build times
                continue
            cols = ", ".join(f'"{c}"' for c, _ in kept)
            floats = frozenset(i for i, (_, t) in enumerate(kept) if t in ("DOUBLE", "FLOAT"))
            exact = sum(con.execute(f"select count(*) from (select {cols} from {x}.{table} "
                                    f"except all select {cols} from {y}.{table})").fetchone()[0]
                        for x, y in (("a", "b"), ("b", "a")))  # fmt: skip
            if not exact:
                continue
            rows = [[tuple(tuple(v) if isinstance(v, list) else v for v in row)  # lists: hashable
                     for row in con.execute(f"select {cols} from {side}.{table}").fetchall()]
                    for side in ("a", "b")]  # fmt: skip
            only_a, only_b = unmatched_rows(*rows, floats)
            if only_a or only_b:
                out[table] = (len(only_a), len(only_b))
    return out
