"""The mart gate hands Great Expectations only the rows an expectation could object to (candidate_rows.py):
on hand-made marts with one bad row per kind of expectation, its results equal GX's over every row
(`whole_frames=True`, the gate as it was) row for row in ops.check_results, the counts are those read off the
rows below, and bad rows no run wrote (edited in place after a passing gate) fail it all the same."""

from __future__ import annotations

import json

import duckdb
import pytest
from expectation_helpers import build_clean_marts, land_clean_sources, settings_for

from rapport.expectations.catalog import load_suites
from rapport.expectations.frames import export_frame
from rapport.expectations.gate import CheckFailed, run_mart_checks
from rapport.expectations.mart_frames import mart_frame

pytestmark = pytest.mark.slow

RESULT_COLUMNS = "suite, expectation, severity, success, observed_value, element_count, unexpected_count, sample"

CORRUPTIONS = [
    # identities: 6 clean rows + 4 = 10
    "insert into marts.customer_identities values ('orders.customer', '1', 'p1')",  # a duplicate key
    "insert into marts.customer_identities values ('esp.contact', 'c-9', 'p404')",  # an orphan
    "insert into marts.customer_identities values ('helpdesk.user', '501', null)",  # a null customer
    "insert into marts.customer_identities values ('crm.lead', 'x1', 'p2')",  # a source outside the set
    # Each bad row below is the only reason its row is handed to GX (no other bad value on that row), so a
    # candidate condition that missed it would show as a result that differs from the whole frame's.
    # customers (2 rows): a negative count and a status outside the set (p2), a last order missing beside a
    # first one (p1)
    "update marts.customers set ticket_count = -1, open_ticket_count = -1 where customer_id = 'p2'",
    "update marts.customers set email_status = 'bogus' where customer_id = 'p2'",
    "update marts.customers set last_order_at = null where customer_id = 'p1'",
    # segments (2 rows): a score out of range (p2), a second as-of date (p1; a warning)
    "update marts.customer_segments set r_score = 9 where customer_id = 'p2'",
    "update marts.customer_segments set as_of_date = date '2026-02-28' where customer_id = 'p1'",
    # predictions (2 rows): NaN in a bounded column (a double, as dbt builds it), a value outside the set
    "alter table marts.customer_predictions alter p_alive type double",
    "update marts.customer_predictions set p_alive = 'nan'::double, churn_risk = 'extreme' where customer_id = 'p2'",
]


def _results(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple]:
    return con.execute(
        f"select {RESULT_COLUMNS} from ops.check_results where run_id = ? order by suite, expectation", [run_id]
    ).fetchall()


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    """A gate that passed on clean marts (m0), then the rows above edited in place and the gate run over
    candidate rows (m1) and over every row (m1_whole)."""
    wh = tmp_path_factory.mktemp("candidates") / "warehouse"
    settings = settings_for(wh)
    con = duckdb.connect(str(wh / "work.duckdb"))
    land_clean_sources(con, "r0")
    build_clean_marts(con)
    clean = run_mart_checks(con, settings, run_id="m0")
    for statement in CORRUPTIONS:
        con.execute(statement)
    failed = {}
    for run_id, whole in (("m1", False), ("m1_whole", True)):
        with pytest.raises(CheckFailed) as raised:
            run_mart_checks(con, settings, run_id=run_id, whole_frames=whole)
        failed[run_id] = raised.value.summary
    yield settings, con, clean, failed
    con.close()


def test_a_clean_gate_hands_no_row_of_the_large_marts_and_counts_every_row(corrupted):
    _, con, clean, _ = corrupted
    assert clean.ok and clean.warnings == 0
    counts = dict(
        con.execute("""select suite || ' ' || expectation, element_count from ops.check_results
                                 where run_id = 'm0'""").fetchall()
    )
    assert counts["mart_customer_identities expect_compound_columns_to_be_unique(source,source_id)"] == 6
    assert counts["mart_customers expect_column_values_to_be_unique(customer_id)"] == 2
    assert counts["mart_customer_segments expect_column_values_to_be_between(r_score)"] == 2


def test_results_over_candidate_rows_equal_results_over_every_row(corrupted):
    _, con, _, failed = corrupted
    candidate, whole = _results(con, "m1"), _results(con, "m1_whole")
    assert len(candidate) == sum(1 for _ in failed["m1"].outcomes) and candidate == whole
    assert [(o.suite, o.expectation, o.sample) for o in failed["m1"].outcomes] == [
        (o.suite, o.expectation, o.sample) for o in failed["m1_whole"].outcomes
    ]


def test_each_bad_row_fails_its_expectation_with_the_counts_of_the_whole_mart(corrupted):
    _, con, _, _ = corrupted
    failed = {
        (s, e): (n, bad)
        for s, e, n, bad in con.execute(
            """select suite, expectation, element_count, unexpected_count from ops.check_results
           where run_id = 'm1' and not success"""
        ).fetchall()
    }
    identities = "mart_customer_identities"
    assert failed[(identities, "expect_compound_columns_to_be_unique(source,source_id)")] == (10, 2)
    assert failed[(identities, "expect_column_values_to_be_null(orphan_customer_id)")] == (10, 1)
    assert failed[(identities, "expect_column_values_to_not_be_null(customer_id)")] == (10, 1)
    assert failed[(identities, "expect_column_values_to_be_in_set(source)")] == (10, 1)
    assert failed[("mart_customers", "expect_column_values_to_be_between(ticket_count)")] == (2, 1)
    assert failed[("mart_customers", "expect_column_values_to_be_in_set(email_status)")] == (2, 1)
    # GX compares a pair with one value missing (and finds it unexpected); both missing it skips
    assert failed[
        ("mart_customers", "expect_column_pair_values_a_to_be_greater_than_b(last_order_at,first_order_at)")
    ] == (2, 1)
    assert failed[("mart_customer_segments", "expect_column_values_to_be_between(r_score)")] == (2, 1)
    samples = dict(
        con.execute("select expectation, sample from ops.check_results where run_id = 'm1' and not success").fetchall()
    )
    # the row with the missing last order is the sample (p1's first order from build_clean_marts)
    assert json.loads(samples["expect_column_pair_values_a_to_be_greater_than_b(last_order_at,first_order_at)"]) == [
        {"customer_id": "p1", "last_order_at": None, "first_order_at": "2026-01-05 10:00:00"}
    ]
    assert failed[("mart_customer_segments", "expect_column_unique_value_count_to_be_between(as_of_date)")] == (
        None,
        None,
    )
    assert failed[("mart_customer_predictions", "expect_column_values_to_be_in_set(churn_risk)")] == (2, 1)
    observed = dict(
        con.execute("""select expectation, observed_value from ops.check_results
                                   where run_id = 'm1' and suite = 'mart_customer_segments'""").fetchall()
    )
    assert observed["expect_column_unique_value_count_to_be_between(as_of_date)"] == "observed 2"


def test_the_frame_holds_only_the_candidate_rows(corrupted):
    settings, con, _, _ = corrupted
    exported = export_frame(
        con,
        mart_frame(load_suites()["mart_customer_identities"]),
        settings.warehouse_dir / "probe" / "identities.parquet",
    )
    got = con.execute(f"select source, source_id from read_parquet('{exported.path}') order by all").fetchall()
    # the duplicate key's two rows, the orphan, the null customer, the source outside the set
    assert got == [
        ("crm.lead", "x1"),
        ("esp.contact", "c-9"),
        ("helpdesk.user", "501"),
        ("orders.customer", "1"),
        ("orders.customer", "1"),
    ]
    assert exported.frame_rows == 10 and exported.rows == 5
