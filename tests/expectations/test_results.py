"""Suite catalogue, offending-row samples, ops.check_results and the failure message (no Great Expectations)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from rapport.expectations.catalog import SEVERITY, expectation_label, load_suites, suites_for
from rapport.expectations.frames import RAW_TABLES
from rapport.expectations.mart_frames import MART_QUERIES
from rapport.expectations.results import (
    CheckSummary,
    Outcome,
    ensure_check_results,
    failure_message,
    offending_predicate,
    sample_offending_rows,
    write_outcomes,
)
from rapport.extractors.schemas import RAW_TABLES as RAW_LAYOUT


def test_importing_the_gate_does_not_import_great_expectations():
    code = "import sys, rapport.expectations.gate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_expectation_is_error_or_warn_and_named_uniquely():
    for suite in load_suites().values():
        labels = [expectation_label(e) for e in suite.expectations]
        assert len(labels) == len(set(labels)), suite.name
        assert {e["severity"] for e in suite.expectations} <= set(SEVERITY), suite.name


def test_one_suite_per_raw_table_and_one_per_mart():
    raw = {s.relation.removeprefix("raw.") for s in suites_for("raw") if s.name != "raw_volume"}
    assert raw == set(RAW_LAYOUT) == set(RAW_TABLES)
    marts = {s.relation for s in suites_for("mart") if s.name != "mart_reconciliation"}
    assert marts == {
        "marts.customers",
        "marts.customer_identities",
        "marts.identity_rejected_identifiers",
        "marts.customer_segments",
        "marts.segment_summary",
        "marts.value_concentration",
        "marts.campaign_performance",
        "marts.campaign_segment_performance",
        "marts.customer_predictions",
    }
    assert {s.name for s in suites_for("mart")} == set(MART_QUERIES)


def test_raw_contract_columns_exist_in_the_landing_layout():
    for suite in suites_for("raw"):
        table = suite.relation.removeprefix("raw.")
        if table not in RAW_LAYOUT:
            continue
        layout = {c.strip().split()[0].strip('"') for c in RAW_LAYOUT[table][0].split(",")}
        assert set(suite.contract_columns) <= layout, table


def test_contract_columns_follow_sources_md():
    # a few hand-copied from sources.md: a suite that forgot them would not guard the contract
    suites = load_suites()
    assert {"status", "currency", "total", "refunded_total", "cancelled_at"} <= set(
        suites["raw_shop_orders"].contract_columns
    )
    assert {"sg_event_id", "event", "timestamp", "sg_machine_open", "asm_group_id"} <= set(
        suites["raw_esp_events"].contract_columns
    )
    assert {"requester_id", "satisfaction_rating", "metric_set"} <= set(suites["raw_helpdesk_tickets"].contract_columns)


@pytest.fixture
def frame(tmp_path) -> Path:
    path = tmp_path / "frame.parquet"
    duckdb.execute(f"""copy (select * from (values
        (1, 'a', 5.0, 1.0, 'paid', timestamp '2026-01-01'),
        (2, 'a', -1.0, 2.0, 'lost', timestamp '2027-06-01'),
        (3, null, 3.0, 4.0, 'paid', timestamp '2026-01-02')) t(id, k, total, refund, status, ts))
        to '{path}' (format parquet)""")
    return path


@pytest.mark.parametrize(
    ("etype", "kwargs", "ids"),
    [
        ("expect_column_values_to_not_be_null", {"column": "k"}, [3]),
        ("expect_column_values_to_be_null", {"column": "k"}, [1, 2]),
        ("expect_column_values_to_be_in_set", {"column": "status", "value_set": ["paid"]}, [2]),
        ("expect_column_values_to_be_between", {"column": "total", "min_value": 0}, [2]),
        ("expect_column_values_to_be_between", {"column": "total", "min_value": 3, "strict_min": True}, [2, 3]),
        ("expect_column_values_to_be_between", {"column": "ts", "max_value": {"$PARAMETER": "limit"}}, [2]),
        ("expect_column_values_to_be_unique", {"column": "k"}, [1, 2]),
        ("expect_compound_columns_to_be_unique", {"column_list": ["k", "status"]}, []),
        ("expect_column_values_to_match_regex", {"column": "status", "regex": "^p"}, [2]),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "total", "column_B": "refund", "or_equal": True},
            [2, 3],
        ),
    ],
)
def test_offending_rows_are_the_ones_the_expectation_objects_to(frame, etype, kwargs, ids):
    expectation = {"type": etype, "kwargs": kwargs}
    cols = ("id", "k", "total", "refund", "status", "ts")
    rows = sample_offending_rows(duckdb.connect(), frame, ("id",), expectation, {"limit": "2026-12-01"}, cols)
    assert sorted(r["id"] for r in rows) == ids


@pytest.fixture
def pair_frame(tmp_path) -> Path:
    path = tmp_path / "pair.parquet"
    duckdb.execute(f"""copy (select * from (values
        (1, 5.0, 1.0), (2, 1.0, 5.0), (3, null, 1.0), (4, 1.0, null), (5, null, null), (6, 'nan'::double, 1.0))
        t(id, a, b)) to '{path}' (format parquet)""")
    return path


@pytest.mark.parametrize(
    ("ignore_row_if", "ids"),
    [
        # GX skips rows with both values missing and finds a comparison with one missing value (null or NaN)
        # false; these ids are the rows GX 1.24 itself reported unexpected on this frame in each mode
        (None, [2, 3, 4, 6]),
        ("both_values_are_missing", [2, 3, 4, 6]),
        ("either_value_is_missing", [2]),
        ("neither", [2, 3, 4, 5, 6]),
    ],
)
def test_a_pair_with_a_missing_value_is_sampled_as_gx_counts_it(pair_frame, ignore_row_if, ids):
    kwargs = {"column_A": "a", "column_B": "b", "or_equal": True}
    if ignore_row_if:
        kwargs["ignore_row_if"] = ignore_row_if
    expectation = {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": kwargs}
    rows = sample_offending_rows(duckdb.connect(), pair_frame, ("id",), expectation, {}, ("id", "a", "b"))
    assert sorted(r["id"] for r in rows) == ids


def test_table_level_expectations_have_no_row_sample():
    assert offending_predicate("expect_table_row_count_to_equal", {"value": 1}, {}) is None
    assert offending_predicate("expect_table_columns_to_match_set", {"column_set": ["a"]}, {}) is None


def _summary(run_id: str, outcomes: list[Outcome], **kw) -> CheckSummary:
    return CheckSummary(
        gate="raw", run_id=run_id, outcomes=outcomes, data_docs_index=Path("/wh/data_docs/index.html"), **kw
    )


def test_check_results_rows_replace_a_retried_runs_rows(con):
    ensure_check_results(con)
    first = _summary(
        "r1",
        [
            Outcome(
                "raw_shop_orders",
                "x(total)",
                "error",
                False,
                "1 of 2 rows unexpected",
                2,
                1,
                [{"id": 2, "total": -1.0}],
            ),
            Outcome("raw_shop_orders", "y(id)", "warn", True, "0 of 2 rows unexpected", 2, 0),
        ],
    )
    write_outcomes(con, first, datetime(2026, 3, 1))
    write_outcomes(con, _summary("r2", first.outcomes[:1]), datetime(2026, 3, 2))
    write_outcomes(con, _summary("r1", first.outcomes[1:]), datetime(2026, 3, 3))  # the retry of r1
    rows = con.execute(
        "select run_id, gate, suite, expectation, severity, success, observed_value, "
        "element_count, unexpected_count, sample, checked_at from ops.check_results "
        "order by run_id, expectation"
    ).fetchall()
    assert rows == [
        (
            "r1",
            "raw",
            "raw_shop_orders",
            "y(id)",
            "warn",
            True,
            "0 of 2 rows unexpected",
            2,
            0,
            None,
            datetime(2026, 3, 3),
        ),
        (
            "r2",
            "raw",
            "raw_shop_orders",
            "x(total)",
            "error",
            False,
            "1 of 2 rows unexpected",
            2,
            1,
            json.dumps([{"id": 2, "total": -1.0}]),
            datetime(2026, 3, 2),
        ),
    ]


def test_summary_counts_are_plain_fields():
    s = _summary(
        "r1",
        [
            Outcome("a", "x", "error", False, "o"),
            Outcome("a", "y", "warn", False, "o"),
            Outcome("a", "z", "warn", True, "o"),
        ],
    )
    assert (s.evaluated, s.passed, s.errors, s.warnings, s.ok) == (3, 1, 1, 1, False)
    assert [o.expectation for o in s.failed_warns] == ["y"]


def test_failure_message_names_suite_expectation_and_offending_rows():
    s = _summary(
        "r7",
        [
            Outcome(
                "raw_shop_orders",
                "expect_column_values_to_be_between(total)",
                "error",
                False,
                "1 of 40 rows unexpected, e.g. -120.0",
                40,
                1,
                [{"id": 90000001, "total": -120.0}],
            ),
            Outcome(
                "raw_helpdesk_tickets",
                "expect_column_values_to_be_null(orphan_requester_id)",
                "warn",
                False,
                "1 of 3 rows unexpected",
                3,
                1,
            ),
            Outcome(
                "mart_value_concentration",
                "expect_table_row_count_to_equal",
                "error",
                False,
                "could not evaluate: no table",
            ),
        ],
        missing={"mart_value_concentration"},
        problems={"mart_value_concentration": "marts.value_concentration does not exist"},
    )
    msg = failure_message(s)
    assert "run r7: 2 error expectation(s) failed" in msg
    assert "suite raw_shop_orders: expect_column_values_to_be_between(total) [error]: 1 of 40" in msg
    assert "id | total" in msg and "90000001 | -120.0" in msg
    assert "suite mart_value_concentration: marts.value_concentration does not exist (1 expectation(s)" in msg
    assert "raw_helpdesk_tickets: expect_column_values_to_be_null(orphan_requester_id)" in msg  # warnings listed
    assert "/wh/data_docs/index.html" in msg
