"""Great Expectations itself as the oracle of candidate_rows.py: on a frame of tricky values (NaN, null, ±inf,
-0.0, the empty string, tiny and extreme numbers, equal and missing pairs), for every expectation type the
suites use, every row GX marks unexpected over the whole frame is among the expectation's candidates; for the
kinds GX judges on the frame as a whole (a distinct count, a dtype, the columns), its result over the
candidates is its result over the whole frame.

The frame goes through Parquet and pandas as the gate's frames do (DuckDB's `copy`, `dtype_backend=
"numpy_nullable"`), and also with pandas' default dtypes; range checks run with rapport's vectorised condition
(gx_between.py, what the gate runs) and with GX's own value-by-value one. Slow: imports GX.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rapport.expectations.candidate_rows import candidate_query

pytestmark = pytest.mark.slow

# id, s (text), n (integer), x and y (doubles), a and b (timestamps), flag; values chosen at the edges the
# conditions must get right: NaN (a missing value to pandas, a number above every other to DuckDB), -0.0
# (equal to 0 in both, a bound of 0 either way), ±inf, values equal to a bound, pairs equal or half missing
ROWS = [
    ("ok", 0, "0.0", "0.0", "2026-01-02", "2026-01-01", True),
    ("bogus", 1, "-0.0", "0.0", "2026-01-01", "2026-01-01", False),
    (None, -1, "nan", "1.0", None, None, None),
    ("", None, None, "nan", None, "2026-01-01", True),
    ("OK", 5, "inf", "inf", "2026-01-01", None, True),
    ("ok ", 2147483647, "-inf", "-inf", "2026-01-03", "2026-01-02", False),
    ("ok", 5, "1.0", "nan", "2026-01-02", "2026-01-02", True),
    ("NaN", 1, "0.5", None, "2026-01-01", "2026-01-03", None),
    ("null", 0, "1e-300", "-1e-300", "2026-01-04", "2026-01-01", False),
    ("ok", None, "-1e-300", "-0.0", None, None, True),
    ("bogus", -1, "2.0", "2.0", "2026-01-05", "2026-01-05", False),
    ("ok", 1, "nan", "nan", "2026-01-02", "2026-01-01", True),
    (None, None, None, None, None, None, None),
    ("ok", 3, "1.0", "1.0", "2026-01-02", "2026-01-02", True),
    ("only", 2, "-1.5", "0.5", "2026-01-06", "2026-01-01", True),
]


def _sql(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


FRAME = (
    "select id::integer as id, s::varchar as s, n::integer as n, x::double as x, y::double as y, "
    "a::timestamp as a, b::timestamp as b, flag::boolean as flag from (values "
    + ", ".join(f"({i}, {', '.join(_sql(v) for v in row)})" for i, row in enumerate(ROWS))
    + ") as t(id, s, n, x, y, a, b, flag)"
)


def e(kind: str, **kwargs: object) -> dict:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def _between(column: str) -> list[dict]:
    bounds: list[dict] = [
        {"min_value": 0},
        {"max_value": 1},
        {"min_value": 0, "max_value": 1},
        {"min_value": 0, "strict_min": True},
        {"max_value": 0, "strict_max": True},
        {"min_value": 0, "max_value": 1, "strict_min": True, "strict_max": True},
        {"min_value": 1, "max_value": 1},  # the suites' "exactly one"
        {"min_value": 0.5, "max_value": 2.5},  # float bounds (on the integer column too)
        {"min_value": -1e-300},
    ]
    return [e("column_values_to_be_between", column=column, **b) for b in bounds]


def _pairs(a: str, b: str) -> list[dict]:
    kinds: list[dict] = [
        {},
        {"or_equal": True},
        {"ignore_row_if": "neither"},
        {"or_equal": True, "ignore_row_if": "either_value_is_missing"},
    ]
    return [e("column_pair_values_a_to_be_greater_than_b", column_A=a, column_B=b, **k) for k in kinds]


COLUMNS = ["id", "s", "n", "x", "y", "a", "b", "flag"]
# every expectation type of expectations/suites/*.json that candidate_query bounds, in the kinds of columns
# and parameters the suites give it (and a few more)
EXPECTATIONS = [
    *[e("column_values_to_not_be_null", column=c) for c in COLUMNS],
    *[e("column_values_to_be_null", column=c) for c in COLUMNS],
    *_between("n"),
    *_between("x"),
    *_between("y"),
    e("column_values_to_be_in_set", column="s", value_set=["ok"]),
    e("column_values_to_be_in_set", column="s", value_set=["ok", "", "NaN"]),
    e("column_values_to_be_in_set", column="s", value_set=[]),
    *_pairs("a", "b"),
    *_pairs("x", "y"),
    *_pairs("n", "x"),
    *_pairs("y", "n"),
    *[e("column_values_to_be_unique", column=c) for c in ("id", "s", "n", "a", "flag")],
    e("compound_columns_to_be_unique", column_list=["s", "n"]),
    e("compound_columns_to_be_unique", column_list=["a", "b"]),
    e("compound_columns_to_be_unique", column_list=["s", "flag"]),
    *[e("column_unique_value_count_to_be_between", column=c, max_value=4) for c in ("s", "n", "a", "flag")],
    e("column_unique_value_count_to_be_between", column="s", min_value=7, max_value=7),
    *[e("column_values_to_be_in_type_list", column=c, type_list=["Int64", "StringDtype"]) for c in COLUMNS],
    e("table_columns_to_match_set", column_set=COLUMNS, exact_match=True),
    e("table_columns_to_match_set", column_set=["id", "s"], exact_match=False),
    e("table_column_count_to_be_between", min_value=8, max_value=8),
]


# kinds GX judges on the frame as a whole (a count, a dtype, the columns), not row by row: their candidates
# must give GX's result over the whole frame, not just hold the rows it marks
NOT_ROW_BY_ROW = {
    "expect_column_unique_value_count_to_be_between",
    "expect_column_values_to_be_in_type_list",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_be_between",
}


def test_every_bounded_type_of_the_suites_is_exercised() -> None:
    in_suites = set()
    for path in (Path(__file__).resolve().parents[2] / "expectations" / "suites").glob("*.json"):
        in_suites |= {x["type"] for x in json.loads(path.read_text())["expectations"]}
    exercised = {x["type"] for x in EXPECTATIONS}
    # the two the module leaves to the whole frame (candidate_query is None: test_candidate_rows.py)
    assert in_suites - exercised == {"expect_column_values_to_match_regex", "expect_table_row_count_to_equal"}


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | dict[str, set[int]]]:
    """The whole frame as a Parquet file (as the gate writes them), each expectation's candidate ids, and the
    candidates of each expectation that is not judged row by row as a Parquet file of their own."""
    base = tmp_path_factory.mktemp("candidates_gx")
    con = duckdb.connect()
    con.execute("set threads = 2")
    types = {name: t for name, t, *_ in con.execute(f"describe {FRAME}").fetchall()}
    candidates: dict[str, set[int]] = {}
    own: dict[str, Path] = {}
    for x in EXPECTATIONS:
        query = candidate_query(FRAME, [x], types)
        assert query is not None, x  # bounded: GX sees only candidates in the gate
        candidates[_label(x)] = {i for (i,) in con.execute(f"select id from ({query})").fetchall()}
        if x["type"] in NOT_ROW_BY_ROW:
            own[_label(x)] = base / f"own_{len(own)}.parquet"
            con.execute(f"copy ({query}) to '{own[_label(x)]}' (format parquet)")
    con.execute(f"copy ({FRAME} order by id) to '{base / 'whole.parquet'}' (format parquet)")
    con.close()
    return {"whole": base / "whole.parquet", "ids": candidates, "own": own}


def _read(path: Path, reading: str) -> pd.DataFrame:
    """The frame as pandas holds it: `gate`, as the gates read their Parquet files (pandas' nullable dtypes,
    where a NaN becomes a missing value); `nan_as_value`, the same with each double's NaN kept as a value, not
    a missing one (as a frame built in pandas can hold it: the conditions must not depend on how pandas reads
    NaN); `default`, numpy's dtypes."""
    if reading == "default":
        return pd.read_parquet(path)
    frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
    if reading == "nan_as_value":
        table = pq.read_table(path)
        for name in ("x", "y"):
            values = table[name].to_numpy().astype("float64")  # nulls and NaN both NaN here
            frame[name] = pd.arrays.FloatingArray(values, np.asarray(table[name].is_null()))
        if path.name == "whole.parquet":  # NaN, not a missing value
            assert np.isnan(frame["x"].dropna().to_numpy(dtype="float64")).any()
    return frame


def _label(x: dict) -> str:
    return json.dumps(x, sort_keys=True)


@pytest.fixture(scope="module")
def gx_validate():
    """A function validating a Parquet frame against EXPECTATIONS with GX: per expectation, its success, the ids
    of the rows it marks unexpected and its observed value."""
    import great_expectations as gx
    from great_expectations.expectations.registry import _registered_metrics

    from rapport.expectations import gx_between, gx_runner  # noqa: F401 (installs the vectorised condition)

    context = gx.get_context(mode="ephemeral")
    batch_definition = context.data_sources.add_pandas("t").add_dataframe_asset("a")
    batch_definition = batch_definition.add_batch_definition_whole_dataframe("b")
    suite = context.suites.add(gx.ExpectationSuite(name="tricky", expectations=[dict(x) for x in EXPECTATIONS]))
    # GX reports in an order of its own and rewrites kwargs (defaults, floats): results are matched by id
    assert [x.expectation_type for x in suite.expectations] == [x["type"] for x in EXPECTATIONS]
    by_id = {x.id: original for x, original in zip(suite.expectations, EXPECTATIONS, strict=True)}
    suites = {"all": suite}
    for i, x in enumerate(EXPECTATIONS):
        if x["type"] in NOT_ROW_BY_ROW:
            suites[_label(x)] = context.suites.add(gx.ExpectationSuite(name=f"one_{i}", expectations=[dict(x)]))
            by_id[suites[_label(x)].expectations[0].id] = x
    providers = _registered_metrics[gx_between.METRIC]["providers"]
    vectorised = providers[gx_between.ENGINE]
    assert getattr(vectorised[1], "rapport_vectorised", False)

    def validate(path: Path, reading: str, own_between: bool = False, label: str = "all") -> dict[str, tuple]:
        frame = _read(path, reading)
        if own_between:  # GX's value-by-value condition, the one rapport's vectorised one stands in front of
            providers[gx_between.ENGINE] = (vectorised[0], vectorised[1].__wrapped__)
        try:
            result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
                suites[label], result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]}
            )
        finally:
            providers[gx_between.ENGINE] = vectorised
        out = {}
        for r in result.results:
            x = by_id[r.expectation_config.id]
            assert not r.exception_info.get("raised_exception"), (x, r.exception_info)
            found = r.result or {}
            unexpected = {int(row["id"]) for row in found.get("unexpected_index_list") or []}
            assert len(unexpected) == found.get("unexpected_count", 0), found  # the ids are the count's rows
            out[_label(x)] = (bool(r.success), unexpected, str(found.get("observed_value")))
        # GX checks the type of each value of an object column: a row-wise check the gate never makes, as it reads
        # no column as object; with numpy's dtypes a column's dtype depends on its values (a boolean or integer
        # column with a null is object or float64), so type checks are left out there
        objects = {name for name, dtype in frame.dtypes.items() if dtype.type is np.object_}  # as GX tells
        assert objects == set() or reading == "default"
        if reading == "default":
            return {k: v for k, v in out.items() if json.loads(k)["type"] != "expect_column_values_to_be_in_type_list"}
        return out

    return validate


@pytest.mark.parametrize(
    ("reading", "own_between"),
    [("gate", False), ("gate", True), ("nan_as_value", False), ("nan_as_value", True), ("default", False)],
)
def test_gx_marks_no_row_outside_the_candidates_and_judges_counts_and_types_on_them_as_on_the_whole_frame(
    frames, gx_validate, reading: str, own_between: bool
) -> None:
    """`own_between`: range checks with GX's own value-by-value condition instead of rapport's vectorised one."""
    whole = gx_validate(frames["whole"], reading, own_between)
    assert len(whole) == len(EXPECTATIONS) - (len(COLUMNS) if reading == "default" else 0)  # type checks aside
    missed = {label: sorted(unexpected - frames["ids"][label]) for label, (_, unexpected, _) in whole.items()}
    assert {label: ids for label, ids in missed.items() if ids} == {}
    if not own_between:  # (range checks are judged row by row)
        over_candidates = {
            label: gx_validate(path, reading, label=label)[label]
            for label, path in frames["own"].items()
            if label in whole
        }
        assert len(over_candidates) >= 7
        assert {label: (whole[label], found) for label, found in over_candidates.items() if whole[label] != found} == {}
    # the frame is tricky enough to matter: most expectations fail on it, and GX marks rows of every kind
    failing = {json.loads(label)["type"] for label, (success, _, _) in whole.items() if not success}
    assert failing >= {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_unique_value_count_to_be_between",
    }
