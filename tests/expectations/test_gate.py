"""The gates with Great Expectations on hand-made warehouses: each family of expectation, its severity,
ops.check_results and Data Docs. Slow: importing GX takes seconds and each gate validates every suite."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime

import duckdb
import pytest
from expectation_helpers import build_clean_marts, event, land, land_clean_sources, order, settings_for, ticket

from rapport.expectations.catalog import suites_for
from rapport.expectations.gate import CheckFailed, run_mart_checks, run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)


def _failures(summary) -> set[tuple[str, str, str]]:
    return {(o.suite, o.expectation, o.severity) for o in summary.outcomes if not o.success}


@pytest.fixture(scope="module")
def raw_gate(tmp_path_factory):
    """A warehouse whose clean run r0 passed, then run r1 landing one corruption per family."""
    wh = tmp_path_factory.mktemp("raw") / "warehouse"
    settings = settings_for(wh)
    con = duckdb.connect(str(wh / "work.duckdb"))
    land_clean_sources(con, "r0")
    clean = run_raw_checks(con, settings, run_id="r0", interval_end=END)

    land(
        con,
        "shop_orders",
        [
            order(id=20, total=-30, subtotal=-30),  # negative total (components add up)
            order(id=21, total=90),  # total does not add up (100 - 0 + 0 + 0)
            order(id=22, status="teleported"),  # unknown status
            order(id=23, created_at="2099-06-01 00:00:00"),  # far ahead of any clock this test runs on
            # two different orders under one id at one version (the source reused a key)
            order(id=24, customer_id=1),
            order(id=24, customer_id=None, email="other@example.com"),
            # a new version of order 10 with another created_at: another order reusing the id
            order(id=10, created_at="2026-02-20 09:00:00", updated_at="2026-02-20 09:00:00"),
        ],
        "r1",
    )
    land(con, "helpdesk_tickets", [ticket(id=901, requester_id=777)], "r1")  # orphan requester
    land(con, "esp_events", [event(sg_event_id="e9", event="opened")], "r1")  # unknown event type
    land(
        con,
        "esp_contacts",
        [
            {
                "contact_id": "c-2",
                "email": "bo@example.com",
                "status": None,
                "created_at": "2026-02-01",
                "updated_at": "2026-02-01",
                "snapshot_date": "2026-02-02",
            }
        ],
        "r1",
    )  # missing status
    with pytest.raises(CheckFailed) as failed:
        run_raw_checks(con, settings, run_id="r1", interval_end=END)
    yield settings, con, clean, failed.value
    con.close()


def test_clean_sources_pass_every_raw_suite(raw_gate):
    settings, con, clean, _ = raw_gate
    n_expectations = sum(len(s.expectations) for s in suites_for("raw"))
    assert (clean.evaluated, clean.passed, clean.errors, clean.warnings) == (n_expectations,) * 2 + (0, 0)
    stored = con.execute(
        "select count(*), count(*) filter (where success) from ops.check_results where run_id = 'r0' and gate = 'raw'"
    ).fetchall()[0]
    assert stored == (n_expectations, n_expectations)


EXPECTED_RAW_FAILURES = {
    ("raw_shop_orders", "expect_column_values_to_be_between(total)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_between(subtotal)", "error"),
    ("raw_shop_orders", "expect_column_pair_values_a_to_be_greater_than_b(total,refunded_total)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_between(total_minus_components)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_in_set(status)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_between(created_at)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_unique(id)", "error"),
    ("raw_shop_orders", "expect_column_values_to_be_between(created_at_variants)", "error"),
    # order 23 was created after its last update; order 24's second row is a guest order with an email
    ("raw_shop_orders", "expect_column_pair_values_a_to_be_greater_than_b(updated_at,created_at)", "warn"),
    ("raw_helpdesk_tickets", "expect_column_values_to_be_null(orphan_requester_id)", "warn"),
    ("raw_esp_events", "expect_column_values_to_be_in_set(event)", "error"),
    ("raw_esp_contacts", "expect_column_values_to_not_be_null(status)", "error"),
}


def test_each_corruption_fails_its_expectation_with_its_severity_and_nothing_else(raw_gate):
    _, _, _, failed = raw_gate
    assert _failures(failed.summary) == EXPECTED_RAW_FAILURES


def test_failure_message_names_expectations_and_shows_offending_rows(raw_gate):
    _, _, _, failed = raw_gate
    msg = str(failed)
    assert "raw data checks failed for run r1" in msg and "before transformation" in msg
    assert "- suite raw_shop_orders: expect_column_values_to_be_unique(id) [error]" in msg
    assert "offending rows (up to 5): id" in msg
    assert "- suite raw_esp_events: expect_column_values_to_be_in_set(event) [error]: 1 of 1 rows" in msg
    assert "e9 | opened" in msg
    assert "raw_helpdesk_tickets: expect_column_values_to_be_null(orphan_requester_id)" in msg  # the warning


def test_check_results_keep_observed_values_and_samples(raw_gate):
    _, con, _, _ = raw_gate
    row = con.execute(
        "select severity, success, observed_value, unexpected_count, sample from ops.check_results "
        "where run_id = 'r1' and suite = 'raw_helpdesk_tickets' "
        "and expectation = 'expect_column_values_to_be_null(orphan_requester_id)'"
    ).fetchall()
    assert row == [("warn", False, "1 of 1 rows unexpected, e.g. 777", 1, '[{"id": 901, "orphan_requester_id": 777}]')]


def test_data_docs_are_rendered_under_the_warehouse(raw_gate):
    settings, _, _, _ = raw_gate
    index = settings.warehouse_dir / "data_docs" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "raw_shop_orders" in html and "raw_volume" in html
    pages = list((settings.warehouse_dir / "data_docs" / "validations" / "raw_shop_orders").rglob("*.html"))
    assert {p.parts[-3] for p in pages} == {"r0", "r1"}  # one page per run, named after the run id


def test_frames_are_not_fingerprinted(raw_gate):
    """GX would hash every row of each frame for its batch markers (seconds per gate at 1M people)."""
    settings, _, _, _ = raw_gate
    stored = list((settings.warehouse_dir / "gx" / "uncommitted" / "validations" / "raw_shop_orders").rglob("*.json"))
    assert stored
    for path in stored:
        markers = json.loads(path.read_text(encoding="utf-8"))["meta"]["batch_markers"]
        assert "ge_load_time" in markers and "pandas_data_fingerprint" not in markers


def test_failed_rows_stay_in_scope_until_superseded(raw_gate, tmp_path):
    settings, con, _, _ = raw_gate
    # Same warehouse file copied, so the module's state is untouched.
    con.execute("checkpoint")
    path = tmp_path / "copy.duckdb"
    shutil.copy(settings.warehouse_dir / "work.duckdb", path)
    copy = duckdb.connect(str(path))
    with pytest.raises(CheckFailed) as again:  # nothing new landed: r1's rows are still unchecked
        run_raw_checks(copy, settings, run_id="r2", interval_end=END)
    assert ("raw_esp_contacts", "expect_column_values_to_not_be_null(status)", "error") in _failures(
        again.value.summary
    )
    # the ESP sends the contact again with a status: its latest version is fine now
    land(
        copy,
        "esp_contacts",
        [
            {
                "contact_id": "c-2",
                "email": "bo@example.com",
                "status": "subscribed",
                "created_at": "2026-02-01",
                "updated_at": "2026-02-03",
                "snapshot_date": "2026-02-04",
            }
        ],
        "r3",
    )
    with pytest.raises(CheckFailed) as later:
        run_raw_checks(copy, settings, run_id="r3", interval_end=END)
    assert not [f for f in _failures(later.value.summary) if f[0] == "raw_esp_contacts"]
    copy.close()


def test_a_missing_raw_table_is_an_error_named_once(tmp_path):
    settings = settings_for(tmp_path / "warehouse")
    con = duckdb.connect()
    land_clean_sources(con, "r0")
    con.execute("drop table raw.esp_audiences")
    with pytest.raises(CheckFailed) as failed:
        run_raw_checks(con, settings, run_id="r0", interval_end=END)
    msg = str(failed.value)
    assert "- suite raw_esp_audiences: " in msg and "esp_audiences" in msg and "could not run" in msg
    assert {f[0] for f in _failures(failed.value.summary) if f[2] == "error"} == {"raw_esp_audiences"}


# ---------------------------------------------------------------- marts


@pytest.fixture(scope="module")
def mart_warehouse(tmp_path_factory):
    wh = tmp_path_factory.mktemp("marts") / "warehouse"
    settings = settings_for(wh)
    con = duckdb.connect(str(wh / "work.duckdb"))
    land_clean_sources(con, "r0")
    build_clean_marts(con)
    yield settings, con
    con.close()


def test_clean_marts_pass_every_mart_suite(mart_warehouse):
    settings, con = mart_warehouse
    summary = run_mart_checks(con, settings, run_id="m0")
    n_expectations = sum(len(s.expectations) for s in suites_for("mart"))
    assert (summary.evaluated, summary.errors, summary.warnings) == (n_expectations, 0, 0)


def test_mart_corruptions_fail_their_expectations(mart_warehouse):
    settings, con = mart_warehouse
    try:
        con.execute("update marts.campaign_performance set click_rate = 1.5")  # a rate above 1
        con.execute("update marts.campaign_performance set lift_ci_low = 0.7")  # interval bounds crossed
        con.execute("insert into marts.customer_identities values ('esp.contact', 'c-9', 'p404')")  # orphan
        con.execute(
            "update marts.customers set lifetime_revenue_usd = 110.0, avg_order_value_usd = 110.0 "
            "where customer_id = 'p1'"
        )  # revenue no longer reconciles with the valid orders
        con.execute(
            "update marts.segment_summary set revenue_usd = 90.0 where rfm_segment = 'New Customers'"
        )  # nor do the segments (as of their date)
        con.execute("delete from marts.customer_predictions where customer_id = 'p2'")  # a buyer left out
        with pytest.raises(CheckFailed) as failed:
            run_mart_checks(con, settings, run_id="m1")
    finally:
        build_clean_marts(con)
    got = _failures(failed.value.summary)
    for expected in [
        ("mart_campaign_performance", "expect_column_values_to_be_between(click_rate)", "error"),
        (
            "mart_campaign_performance",
            "expect_column_pair_values_a_to_be_greater_than_b(lift_ci_high,lift_ci_low)",
            "error",
        ),
        ("mart_customer_identities", "expect_column_values_to_be_null(orphan_customer_id)", "error"),
        (
            "mart_reconciliation",
            "expect_column_pair_values_a_to_be_greater_than_b(revenue_tolerance_usd,customers_vs_orders_gap_usd)",
            "error",
        ),
        (
            "mart_reconciliation",
            "expect_column_pair_values_a_to_be_greater_than_b(revenue_tolerance_usd,segments_vs_orders_as_of_gap_usd)",
            "error",
        ),
        ("mart_customer_predictions", "expect_column_values_to_be_null(buyer_without_prediction)", "error"),
    ]:
        assert expected in got, (expected, got)
    assert not [f for f in got if f[0] in ("mart_customer_segments", "mart_segment_summary")]
    msg = str(failed.value)
    assert "before publishing" in msg and "k1 | 1.5" in msg and "c-9" in msg


def test_a_pruned_frame_still_fails_a_bad_row_and_samples_its_key(mart_warehouse):
    """Mart frames carry only the columns their suite reads: a column no expectation reads is left out, a
    bad value in a checked column still fails its expectation, and the sample still names the row's key."""
    settings, con = mart_warehouse
    try:
        con.execute("alter table marts.customers add column notes varchar default 'not checked'")
        con.execute("update marts.customers set email_status = 'bogus' where customer_id = 'p2'")
        con.execute("update marts.customer_segments set r_score = 9 where customer_id = 'p1'")
        with pytest.raises(CheckFailed) as failed:
            run_mart_checks(con, settings, run_id="m3")
    finally:
        build_clean_marts(con)
    frame = settings.warehouse_dir / "gx" / "frames" / "mart" / "mart_customers.parquet"
    columns = {r[0] for r in duckdb.sql(f"describe select * from read_parquet('{frame}')").fetchall()}
    assert "notes" not in columns and {"customer_id", "email_status", "identity_count"} <= columns
    assert _failures(failed.value.summary) == {
        ("mart_customers", "expect_column_values_to_be_in_set(email_status)", "error"),
        ("mart_customer_segments", "expect_column_values_to_be_between(r_score)", "error"),
    }
    by_expectation = {o.expectation: o for o in failed.value.summary.outcomes if not o.success}
    assert by_expectation["expect_column_values_to_be_in_set(email_status)"].sample == [
        {"customer_id": "p2", "email_status": "bogus"}
    ]
    assert by_expectation["expect_column_values_to_be_between(r_score)"].sample == [{"customer_id": "p1", "r_score": 9}]
    assert "p2 | bogus" in str(failed.value) and "p1 | 9" in str(failed.value)


def test_suite_pages_are_rendered_only_when_missing_or_older_than_the_suite(mart_warehouse):
    settings, con = mart_warehouse
    run_mart_checks(con, settings, run_id="m4")
    pages = settings.warehouse_dir / "data_docs" / "expectations"
    customers, segments = pages / "mart_customers.html", pages / "mart_customer_segments.html"
    rendered = customers.stat().st_mtime_ns
    segments.unlink()
    stored = settings.warehouse_dir / "gx" / "expectations" / "mart_segment_summary.json"
    summary_page = pages / "mart_segment_summary.html"
    summary_rendered = summary_page.stat().st_mtime_ns
    os.utime(stored, ns=(summary_rendered + 10**9,) * 2)  # the suite stored after its page
    run_mart_checks(con, settings, run_id="m5")
    assert customers.stat().st_mtime_ns == rendered  # unchanged suite: its page stays as it was
    assert segments.exists()  # a missing page is rendered again
    assert summary_page.stat().st_mtime_ns > summary_rendered  # a stale page too
    assert "mart_customers" in (settings.warehouse_dir / "data_docs" / "index.html").read_text(encoding="utf-8")
    # the run's validation pages are rendered every run
    assert list((settings.warehouse_dir / "data_docs" / "validations" / "mart_customers" / "m5").rglob("*.html"))


def test_a_missing_mart_table_is_an_error(mart_warehouse):
    settings, con = mart_warehouse
    try:
        con.execute("drop table marts.value_concentration")
        with pytest.raises(CheckFailed) as failed:
            run_mart_checks(con, settings, run_id="m2")
    finally:
        build_clean_marts(con)
    assert "- suite mart_value_concentration: " in str(failed.value)


def test_old_results_are_pruned_per_suite(tmp_path):
    from rapport.expectations.gx_runner import _prune_history

    for run, time in [
        ("a", "20260101T000000.000000Z"),
        ("b", "20260102T000000.000000Z"),
        ("b", "20260103T000000.000000Z"),
    ]:
        (tmp_path / "raw_volume" / run / time).mkdir(parents=True)
        (tmp_path / "raw_volume" / run / time / "result.json").write_text("{}")
    _prune_history(tmp_path, keep=2)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert left == [
        "raw_volume/b/20260102T000000.000000Z/result.json",
        "raw_volume/b/20260103T000000.000000Z/result.json",
    ]
    assert not (tmp_path / "raw_volume" / "a").exists()
