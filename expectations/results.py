"""Check outcomes: the `ops.check_results` table, offending-row samples and the failure message.

No Great Expectations here: outcomes arrive as plain `Outcome` records, samples are read back from the
frame Parquet file with DuckDB, using a predicate derived from the expectation's type and kwargs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from rapport.expectations.frames import lit

CHECK_RESULTS_DDL = """
    create table if not exists ops.check_results (
        run_id varchar not null, gate varchar not null, suite varchar not null, expectation varchar not null,
        severity varchar not null, success boolean not null, observed_value varchar,
        element_count bigint, unexpected_count bigint, sample varchar, checked_at timestamp not null)"""
SAMPLE_ROWS = 5


@dataclass
class Outcome:
    suite: str
    expectation: str  # catalog.expectation_label
    severity: str  # "error" or "warn"
    success: bool
    observed_value: str
    element_count: int | None = None
    unexpected_count: int | None = None
    sample: list[dict] = field(default_factory=list)  # offending rows, failures only


@dataclass
class CheckSummary:
    gate: str
    run_id: str
    outcomes: list[Outcome]
    data_docs_index: Path | None
    problems: dict[str, str] = field(default_factory=dict)  # suite -> why its frame is degraded
    missing: set[str] = field(default_factory=set)  # suites whose relation does not exist
    # counts as plain fields, so `dataclasses.asdict` (the pipeline's task return value) carries them
    evaluated: int = field(init=False)
    passed: int = field(init=False)
    errors: int = field(init=False)
    warnings: int = field(init=False)

    def __post_init__(self) -> None:
        self.evaluated = len(self.outcomes)
        self.passed = sum(o.success for o in self.outcomes)
        self.errors = len(self.failed_errors)
        self.warnings = len(self.failed_warns)

    @property
    def failed_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    @property
    def failed_warns(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.failed_errors


class CheckFailed(Exception):
    """An error-severity expectation failed: the run must stop (before transformation or publishing)."""

    def __init__(self, message: str, summary: CheckSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


def ensure_check_results(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ops")
    con.execute(CHECK_RESULTS_DDL)


def write_outcomes(con: duckdb.DuckDBPyConnection, summary: CheckSummary, checked_at: datetime) -> None:
    """Replace this run's rows of this gate (a retried task rewrites, never duplicates)."""
    rows = pa.Table.from_pylist(
        [
            {
                "run_id": summary.run_id,
                "gate": summary.gate,
                "suite": o.suite,
                "expectation": o.expectation,
                "severity": o.severity,
                "success": o.success,
                "observed_value": o.observed_value,
                "element_count": o.element_count,
                "unexpected_count": o.unexpected_count,
                "sample": json.dumps(o.sample, default=str) if o.sample else None,
                "checked_at": checked_at,
            }
            for o in summary.outcomes
        ],
        schema=pa.schema(
            [
                ("run_id", pa.string()),
                ("gate", pa.string()),
                ("suite", pa.string()),
                ("expectation", pa.string()),
                ("severity", pa.string()),
                ("success", pa.bool_()),
                ("observed_value", pa.string()),
                ("element_count", pa.int64()),
                ("unexpected_count", pa.int64()),
                ("sample", pa.string()),
                ("checked_at", pa.timestamp("us")),
            ]
        ),
    )
    con.execute("begin transaction")
    try:
        con.execute("delete from ops.check_results where run_id = ? and gate = ?", [summary.run_id, summary.gate])
        con.register("_check_outcomes", rows)
        try:
            con.execute("insert into ops.check_results by name select * from _check_outcomes")
        finally:
            con.unregister("_check_outcomes")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _value(v: object) -> str:
    if isinstance(v, dict) and "$PARAMETER" in v:
        raise KeyError(v["$PARAMETER"])
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return lit(v)


def offending_predicate(expectation_type: str, kwargs: dict, params: dict[str, object]) -> str | None:
    """SQL condition that selects the rows an expectation objects to; None for table-level ones."""
    kw = {k: (params[v["$PARAMETER"]] if isinstance(v, dict) and "$PARAMETER" in v else v) for k, v in kwargs.items()}
    col = _q(kw["column"]) if "column" in kw else None
    if expectation_type == "expect_column_values_to_not_be_null":
        return f"{col} is null"
    if expectation_type == "expect_column_values_to_be_null":
        return f"{col} is not null"
    if expectation_type == "expect_column_values_to_be_in_set":
        allowed = ", ".join(lit(str(v)) for v in kw["value_set"]) or "null"
        return f"{col} is not null and {col}::varchar not in ({allowed})"
    if expectation_type == "expect_column_values_to_be_between":
        conds = []
        if kw.get("min_value") is not None:
            conds.append(f"{col} {'<=' if kw.get('strict_min') else '<'} {_value(kw['min_value'])}")
        if kw.get("max_value") is not None:
            conds.append(f"{col} {'>=' if kw.get('strict_max') else '>'} {_value(kw['max_value'])}")
        return " or ".join(conds) or None
    if expectation_type == "expect_column_values_to_be_unique":
        return f"{col} in (select {col} from frame where {col} is not null group by {col} having count(*) > 1)"
    if expectation_type == "expect_compound_columns_to_be_unique":
        cols = ", ".join(_q(c) for c in kw["column_list"])
        return f"({cols}) in (select ({cols}) from frame group by {cols} having count(*) > 1)"
    if expectation_type == "expect_column_values_to_match_regex":
        return f"{col} is not null and not regexp_matches({col}::varchar, {lit(kw['regex'])})"
    if expectation_type == "expect_column_pair_values_a_to_be_greater_than_b":
        op = ">=" if kw.get("or_equal") else ">"
        a, b = _q(kw["column_A"]), _q(kw["column_B"])
        return _pair_predicate(a, b, f"not ({a} {op} {b})", kw.get("ignore_row_if", "both_values_are_missing"))
    return None


def _missing(col: str) -> str:
    # GX reads the frame with pandas, where NaN is missing too; DuckDB reads it as a number
    return f"({col} is null or {col}::varchar = 'nan')"


def _pair_predicate(a: str, b: str, failed: str, ignore_row_if: str) -> str:
    """GX skips the rows `ignore_row_if` names and finds every other row with a missing value unexpected (a
    comparison with a missing value is false), so those rows are offending too."""
    either = f"{_missing(a)} or {_missing(b)}"
    if ignore_row_if == "either_value_is_missing":
        return f"not ({either}) and {failed}"
    compared = f"({either} or {failed})"
    if ignore_row_if == "neither":
        return compared
    return f"not ({_missing(a)} and {_missing(b)}) and {compared}"


def sample_offending_rows(
    con: duckdb.DuckDBPyConnection,
    frame_path: Path,
    key: tuple[str, ...],
    expectation: dict,
    params: dict[str, object],
    frame_columns: tuple[str, ...],
) -> list[dict]:
    """Up to SAMPLE_ROWS offending rows (key columns and the checked columns) from the validated frame."""
    try:
        predicate = offending_predicate(expectation["type"], expectation.get("kwargs") or {}, params)
    except KeyError:
        return []
    if predicate is None:
        return []
    kw = expectation.get("kwargs") or {}
    wanted = [*key, kw.get("column"), kw.get("column_A"), kw.get("column_B"), *(kw.get("column_list") or [])]
    columns = list(dict.fromkeys(c for c in wanted if c and c in frame_columns))
    if not columns or any(c not in frame_columns for c in (kw.get("column"), kw.get("column_A")) if c):
        return []
    sql = (
        f"with frame as (select * from read_parquet({lit(str(frame_path))})) "
        f"select {', '.join(_q(c) for c in columns)} from frame where {predicate} limit {SAMPLE_ROWS}"
    )
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _fmt(v: object) -> str:
    s = "null" if v is None else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


MAX_DETAILED = 12


def failure_message(summary: CheckSummary) -> str:
    failed = summary.failed_errors
    where = "before transformation" if summary.gate == "raw" else "before publishing"
    lines = [
        f"{summary.gate} data checks failed for run {summary.run_id}: {len(failed)} error expectation(s) "
        f"failed, the run stops {where}."
    ]
    detailed = 0
    for suite in dict.fromkeys(o.suite for o in failed):
        in_suite = [o for o in failed if o.suite == suite]
        problem = summary.problems.get(suite)
        if suite in summary.missing:
            # The frame could not be built (missing relation): one line, not one per expectation.
            lines.append(f"- suite {suite}: {problem} ({len(in_suite)} expectation(s) could not run)")
            continue
        if problem:
            lines.append(f"- suite {suite}: validated a reduced frame because: {problem}")
        for o in in_suite:
            if detailed == MAX_DETAILED:
                lines.append(f"- ... {len(failed) - MAX_DETAILED} more, see ops.check_results")
                break
            detailed += 1
            lines.append(f"- suite {o.suite}: {o.expectation} [error]: {o.observed_value}")
            if o.sample:
                cols = list(o.sample[0])
                lines.append(f"  offending rows (up to {SAMPLE_ROWS}): " + " | ".join(cols))
                lines.extend("    " + " | ".join(_fmt(r[c]) for c in cols) for r in o.sample)
        if detailed == MAX_DETAILED:
            break
    if summary.failed_warns:
        names = "; ".join(f"{o.suite}: {o.expectation}" for o in summary.failed_warns[:10])
        more = ", ..." if len(summary.failed_warns) > 10 else ""
        lines.append(f"(also {len(summary.failed_warns)} warning(s): {names}{more})")
    if summary.data_docs_index:
        lines.append(f"Data Docs: {summary.data_docs_index}")
    return "\n".join(lines)
