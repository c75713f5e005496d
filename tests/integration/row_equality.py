"""Do two tables hold the same rows, with doubles equal to 1e-9 (relative, or absolute near 0)?

Hashing doubles rounded to a fixed number of decimals is not enough on its own: two builds that add the
same floats in another order differ in the last bits, and now and then such a pair falls either side of a
rounding boundary (2.0000000024999998 and the next double up, 2.0000000025, round apart at 9 decimals).
The hash is the fast path; when it differs, the rows are compared here with a tolerance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

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
