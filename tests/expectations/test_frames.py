"""The frames the suites validate, built with DuckDB on hand-made raw tables (no Great Expectations)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from expectation_helpers import event, land, order, ticket

from rapport.expectations.catalog import SuiteSpec, load_suites, suites_for
from rapport.expectations.frames import ExportedFrame, contracts_by_table, export_frame, raw_frame
from rapport.expectations.mart_frames import mart_frame
from rapport.expectations.results import ensure_check_results
from rapport.expectations.volume import volume_frame

END = datetime(2026, 3, 1)


def _frame(con, suite: str, tmp_path) -> tuple[ExportedFrame, list[dict]]:
    ensure_check_results(con)
    exported = export_frame(con, raw_frame(load_suites()[suite]), tmp_path / f"{suite}.parquet")
    cur = con.execute(f"select * from read_parquet('{exported.path}')")
    names = [d[0] for d in cur.description]
    return exported, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _pass(con, suite: str, run_id: str, *, warn_failed: bool = False) -> None:
    """Record `run_id` as checked by `suite` (all error checks passed, maybe a failed warning)."""
    ensure_check_results(con)
    con.execute(
        "insert into ops.check_results (run_id, gate, suite, expectation, severity, success, checked_at) "
        "values (?, 'raw', ?, 'x', 'error', true, now())",
        [run_id, suite],
    )
    if warn_failed:
        con.execute(
            "insert into ops.check_results (run_id, gate, suite, expectation, severity, success, "
            "checked_at) values (?, 'raw', ?, 'w', 'warn', false, now())",
            [run_id, suite],
        )


def test_latest_version_per_record_and_ties_kept(con, tmp_path):
    land(
        con,
        "shop_orders",
        [
            order(id=1, status="pending", updated_at="2026-01-05 10:00:00"),
            order(id=1, status="paid", updated_at="2026-01-06 10:00:00"),
            # two different rows under one key at the same version: both survive, so `unique(id)` fails
            order(id=2, total=5, subtotal=5, updated_at="2026-01-07 10:00:00"),
            order(id=2, total=6, subtotal=6, updated_at="2026-01-07 10:00:00"),
        ],
        "r1",
    )
    _, rows = _frame(con, "raw_shop_orders", tmp_path)
    by_id = sorted((r["id"], r["status"], r["total"]) for r in rows)
    assert by_id == [(1, "paid", 100.0), (2, "paid", 5.0), (2, "paid", 6.0)]


def test_scope_skips_runs_the_suite_passed_and_keeps_failed_ones(con, tmp_path):
    land(con, "shop_orders", [order(id=1)], "passed")
    land(con, "shop_orders", [order(id=2)], "failed")
    land(con, "shop_orders", [order(id=3)], "warned")
    land(con, "shop_orders", [order(id=4)], "new")
    _pass(con, "raw_shop_orders", "passed")
    _pass(con, "raw_shop_orders", "warned", warn_failed=True)
    con.execute(
        "insert into ops.check_results (run_id, gate, suite, expectation, severity, success, checked_at) "
        "values ('failed', 'raw', 'raw_shop_orders', 'x', 'error', false, now())"
    )
    # another suite's verdict does not count for this one
    _pass(con, "raw_shop_customers", "new")
    _, rows = _frame(con, "raw_shop_orders", tmp_path)
    assert sorted(r["id"] for r in rows) == [2, 4]


def test_a_new_version_brings_the_whole_record_back_into_scope(con, tmp_path):
    land(con, "shop_orders", [order(id=1, created_at="2026-01-05 10:00:00")], "old")
    _pass(con, "raw_shop_orders", "old")
    # a different order reusing id 1: its created_at differs from the checked version's
    land(con, "shop_orders", [order(id=1, created_at="2026-02-01 10:00:00", updated_at="2026-02-01 10:00:00")], "new")
    _, rows = _frame(con, "raw_shop_orders", tmp_path)
    assert [(r["id"], r["created_at_variants"]) for r in rows] == [(1, 2)]


def test_order_derived_columns(con, tmp_path):
    land(con, "shop_customers", [{"id": 1, "updated_at": "2026-01-01 00:00:00"}], "r1")
    land(con, "shop_fx_rates", [{"rate_date": "2026-01-10", "currency": "EUR", "usd_per_unit": 1.1}], "r1")
    land(
        con,
        "shop_orders",
        [
            order(id=1),  # consistent, USD, known customer
            order(id=2, customer_id=7, total=99.5),  # unknown customer, 0.5 short
            order(id=3, customer_id=None, email=" ", currency="EUR"),  # guest without email; EUR before 2026-01-10
            order(id=4, status="paid", refunded_total=10),  # refund on a paid order
        ],
        "r1",
    )
    _, rows = _frame(con, "raw_shop_orders", tmp_path)
    got = {
        r["id"]: (
            r["total_minus_components"],
            r["orphan_customer_id"],
            r["guest_order_without_email"],
            r["currency_without_rate"],
            r["refund_status_mismatch"],
        )
        for r in rows
    }
    assert got == {
        1: (0.0, None, None, None, None),
        2: (-0.5, 7, None, None, None),
        3: (0.0, None, 3, "EUR", None),
        4: (0.0, None, None, None, "paid"),
    }


def test_ticket_and_event_derived_columns(con, tmp_path):
    land(con, "helpdesk_users", [{"id": 500, "role": "end-user", "updated_at": "2026-01-01 00:00:00"}], "r1")
    land(con, "helpdesk_tickets", [ticket(), ticket(id=901, requester_id=999)], "r1")
    _, rows = _frame(con, "raw_helpdesk_tickets", tmp_path)
    got = {
        r["id"]: (
            r["orphan_requester_id"],
            r["via_channel"],
            r["satisfaction_score"],
            r["reopens"],
            r["full_resolution_minutes"],
        )
        for r in rows
    }
    assert got == {900: (None, "email", "good", 0, 300), 901: (999, "email", "good", 0, 300)}

    land(con, "esp_campaigns", [{"campaign_id": "k1", "snapshot_date": "2026-01-01"}], "r1")
    land(con, "esp_events", [event(), event(sg_event_id="e2", event="bounce", type="soft", campaign_id="k9")], "r1")
    _, rows = _frame(con, "raw_esp_events", tmp_path)
    got = {r["sg_event_id"]: (r["event_at"], r["unknown_bounce_type"], r["unknown_campaign_id"]) for r in rows}
    assert got == {"e1": (datetime(2026, 1, 10, 10), None, None), "e2": (datetime(2026, 1, 10, 10), "soft", "k9")}


def test_export_casts_decimals_dates_and_json_for_pandas(con, tmp_path):
    land(con, "shop_fx_rates", [{"rate_date": "2026-01-10", "currency": "EUR", "usd_per_unit": 1.1}], "r1")
    exported, rows = _frame(con, "raw_shop_fx_rates", tmp_path)
    types = {r[0]: r[1] for r in con.execute(f"describe select * from read_parquet('{exported.path}')").fetchall()}
    assert types["usd_per_unit"] == "DOUBLE" and types["rate_date"] == "TIMESTAMP"
    assert rows[0]["usd_per_unit"] == pytest.approx(1.1)


def test_missing_relation_gives_an_empty_marker_frame(con, tmp_path):
    con.execute("drop table raw.esp_audiences")
    exported, rows = _frame(con, "raw_esp_audiences", tmp_path)
    assert exported.relation_missing and rows == []
    assert "esp_audiences" in exported.problem


def test_missing_column_falls_back_to_the_plain_latest_frame(con, tmp_path):
    con.execute("alter table raw.shop_orders drop column tax_total")
    land(con, "shop_orders", [{k: v for k, v in order().items() if k != "tax_total"}], "r1")
    exported, rows = _frame(con, "raw_shop_orders", tmp_path)
    assert not exported.relation_missing and "tax_total" in exported.problem
    assert len(rows) == 1 and "total_minus_components" not in rows[0] and "tax_total" not in rows[0]


def test_mart_frames_flag_orphans(con, tmp_path):
    con.execute("create schema marts")
    con.execute("create table marts.customers as select * from (values ('p1', 1)) t(customer_id, order_count)")
    con.execute(
        "create table marts.customer_identities as select * from (values "
        "('orders.customer', '1', 'p1'), ('helpdesk.user', '5', 'p9')) t(source, source_id, customer_id)"
    )
    exported = export_frame(con, mart_frame(load_suites()["mart_customer_identities"]), tmp_path / "i.parquet")
    got = con.execute(
        f"select source_id, orphan_customer_id from read_parquet('{exported.path}') order by source_id"
    ).fetchall()
    # the frame holds the rows an expectation could object to (candidate_rows.py): the orphan, of 2 rows
    assert got == [("5", "p9")] and exported.frame_rows == 2


def test_mart_frames_carry_only_the_columns_their_suite_reads(con, tmp_path):
    con.execute("create schema marts")
    # the contract's 3 columns plus two a mart may carry that no expectation of the suite reads
    con.execute(
        "create table marts.customer_identities as select * from (values "
        "('orders.customer', '1', 'p1', 'note', 7)) t(source, source_id, customer_id, comment, _loaded)"
    )
    con.execute("create table marts.customers as select 'p1' as customer_id")
    exported = export_frame(con, mart_frame(load_suites()["mart_customer_identities"]), tmp_path / "i.parquet")
    names = [d[0] for d in con.execute(f"describe select * from read_parquet('{exported.path}')").fetchall()]
    # contract columns, the key (source, source_id) and the derived orphan column, in the query's order
    assert names == ["source", "source_id", "customer_id", "orphan_customer_id"]
    assert exported.columns == tuple(names) and exported.problem is None


def test_a_contract_column_the_mart_lacks_stays_missing_rather_than_failing_the_query(con, tmp_path):
    con.execute("create schema marts")
    con.execute("create table marts.customer_identities as select 'orders.customer' as source, 'p1' as customer_id")
    con.execute("create table marts.customers as select 'p1' as customer_id")
    exported = export_frame(con, mart_frame(load_suites()["mart_customer_identities"]), tmp_path / "i.parquet")
    # the derived query still binds: the column-set expectation is what reports source_id missing
    assert exported.columns == ("source", "customer_id", "orphan_customer_id") and exported.problem is None


def _spec(*expectations: dict) -> SuiteSpec:
    return SuiteSpec(
        name="mart_x", gate="mart", relation="marts.x", key=("id",), expectations=expectations, path=Path("mart_x.json")
    )


def test_columns_read_are_the_named_columns_and_the_key_the_samples_show():
    between = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "v", "min_value": 0}}
    pair = {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "a", "column_B": "b"}}
    columns = {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["c"], "exact_match": False}}
    assert _spec(between, pair, columns).columns_read == {"id", "v", "a", "b", "c"}
    # an exact column set (GX's default when exact_match is left out) fails on any column left out
    exact = {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id", "c"]}}
    assert _spec(between, exact).columns_read is None


def test_suites_whose_checks_read_every_column_keep_every_column():
    suites = load_suites()
    assert suites["mart_identity_rejected_identifiers"].columns_read is None  # a column count
    assert mart_frame(suites["mart_reconciliation"]).columns is None  # its revenue figures explain a gap
    assert suites["mart_segment_summary"].columns_read == {
        "rfm_segment",
        "customers",
        "revenue_usd",
        "revenue_share",
        "avg_order_value_usd",
    }


# ---------------------------------------------------------------- volume


def _volume(con, run_id: str = "now", end: datetime = END) -> dict[str, dict]:
    ensure_check_results(con)
    frame = volume_frame(con, contracts_by_table(suites_for("raw")), run_id=run_id, interval_end=end)
    cur = con.execute(frame.queries[0])
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _orders_per_day(con, first: datetime, days: int, per_day: int, run_id: str, start_id: int) -> int:
    rows, next_id = [], start_id
    for d in range(days):
        for i in range(per_day):
            ts = (first + timedelta(days=d, hours=1 + i % 20)).isoformat(sep=" ")
            rows.append(order(id=next_id, created_at=ts, updated_at=ts))
            next_id += 1
    land(con, "shop_orders", rows, run_id)
    return next_id


def test_volume_ratio_compares_the_last_week_with_the_four_before(con):
    # 28 days at 10 orders a day, then 7 days at 1 a day: a 90% drop.
    n = _orders_per_day(con, datetime(2026, 1, 1), 28, 10, "old", 1)
    _orders_per_day(con, datetime(2026, 1, 29), 7, 1, "now", n)
    v = _volume(con)["shop_orders"]
    assert (v["volume_basis"], v["baseline_records"], v["recent_records"]) == ("records per day", 280, 7)
    assert v["volume_ratio"] == pytest.approx((7 / 7) / (280 / 28))  # 0.1: fails the strict > 0.1 check


def test_volume_is_judged_from_the_last_data_not_from_a_later_interval_end(con):
    # Steady 10 a day for 35 days; the run happens weeks after the last order (a quiet shop).
    _orders_per_day(con, datetime(2026, 1, 1), 35, 10, "old", 1)
    v = _volume(con, end=datetime(2026, 3, 1))["shop_orders"]
    assert v["volume_ratio"] == pytest.approx(1.0)


def test_volume_needs_history_and_a_baseline(con):
    _orders_per_day(con, datetime(2026, 1, 20), 14, 10, "old", 1)  # two weeks only
    assert _volume(con)["shop_orders"]["volume_ratio"] is None
    con.execute("delete from raw.shop_orders")
    _orders_per_day(con, datetime(2026, 1, 1), 35, 2, "old", 1)  # 56 baseline records: too few to judge
    assert _volume(con)["shop_orders"]["volume_ratio"] is None


def _send(con, campaign: str, send_at: str, treated: int, webhooks: int) -> None:
    land(con, "esp_campaigns", [{"campaign_id": campaign, "send_at": send_at, "snapshot_date": send_at[:10]}], "r")
    land(
        con,
        "esp_audiences",
        [
            {"campaign_id": campaign, "email": f"{campaign}-{i}@example.com", "group": "treatment"}
            for i in range(treated)
        ]
        + [{"campaign_id": campaign, "email": f"{campaign}-c@example.com", "group": "control"}],
        "r",
    )
    kinds = ["processed", "delivered", "open"]  # opens are not delivery webhooks
    land(
        con,
        "esp_events",
        [
            event(sg_event_id=f"{campaign}-{i}", campaign_id=campaign, event=kinds[i % 3])
            for i in range(webhooks * 3 // 2)
        ],
        "r",
    )


def test_event_volume_is_delivery_webhooks_per_treated_recipient_of_each_send(con):
    _send(con, "k0", "2025-12-20 10:00:00", 10, 20)  # history before the baseline window (2026-01-07 on)
    _send(con, "k1", "2026-01-10 10:00:00", 100, 200)  # baseline: 2 delivery webhooks per recipient
    _send(con, "k2", "2026-01-20 10:00:00", 50, 100)
    _send(con, "k3", "2026-02-10 10:00:00", 80, 16)  # recent: 0.2 per recipient, a 90% drop
    _send(con, "k4", "2026-02-28 20:00:00", 80, 0)  # sent the day before the interval end: not judged yet
    v = _volume(con, end=datetime(2026, 3, 1, 6))["esp_events"]
    assert (v["volume_basis"], v["ref_day"].isoformat()) == ("delivery webhooks per treated recipient", "2026-02-10")
    assert (v["recent_records"], v["baseline_records"]) == (16, 300)
    assert v["volume_ratio"] == pytest.approx((16 / 80) / (300 / 150))


def test_quarantine_rate_from_this_runs_extraction_log(con):
    con.execute(
        "insert into ops.extraction_log values "
        "('now', 'esp', 'esp_events', 200, 140, 60, 0, now(), 1), "
        "('now', 'orders', 'orders', 10, 5, 5, 0, now(), 1), "  # too few rows read to judge
        "('old', 'esp', 'esp_events', 100, 0, 100, 0, now(), 1)"
    )  # another run
    v = _volume(con)
    assert v["esp_events"]["quarantine_rate"] == pytest.approx(0.3)
    assert v["shop_orders"]["rows_read"] == 10 and v["shop_orders"]["quarantine_rate"] is None


def test_emptied_columns_are_usually_filled_columns_empty_in_this_run(con):
    land(
        con,
        "esp_contacts",
        [
            {
                "contact_id": f"c{i}",
                "email": f"p{i}@example.com",
                "status": "subscribed",
                "created_at": "2026-01-01",
                "updated_at": "2026-01-01",
                "snapshot_date": "2026-01-02",
            }
            for i in range(30)
        ],
        "old",
    )
    land(
        con,
        "esp_contacts",
        [
            {
                "contact_id": f"n{i}",
                "email": f"n{i}@example.com",
                "status": None,
                "created_at": "2026-02-01",
                "updated_at": "2026-02-01",
                "snapshot_date": "2026-02-02",
            }
            for i in range(25)
        ],
        "now",
    )
    v = _volume(con)["esp_contacts"]
    # first_name was never filled, so its absence says nothing; status was always filled
    assert v["run_rows"] == 25 and v["emptied_columns"] == "status"
    assert _volume(con, run_id="old")["esp_contacts"]["emptied_columns"] is None


def _contacts(con, prefix: str, n: int, run_id: str, *, status_filled: int) -> None:
    """`n` contacts landed by `run_id`, the first `status_filled` of them with a status."""
    rows = [
        {
            "contact_id": f"{prefix}{i}",
            "email": f"{prefix}{i}@example.com",
            "status": "subscribed" if i < status_filled else None,
            "created_at": "2026-01-01",
            "updated_at": "2026-01-01",
            "snapshot_date": "2026-01-02",
        }
        for i in range(n)
    ]
    land(con, "esp_contacts", rows, run_id)


@pytest.mark.parametrize(
    ("earlier_filled", "run_rows", "expected"),
    [
        (20, 20, "status"),  # filled in exactly half of the 40 earlier rows: reported
        (19, 20, None),  # in fewer than half: its absence says nothing
        (40, 19, None),  # a run of fewer than 20 rows is too small to judge
    ],
)
def test_emptied_columns_at_the_bounds(con, earlier_filled, run_rows, expected):
    """The bounds of the emptied-column rule (MIN_EMPTIED_ROWS = 20 rows of this run, at least half of the earlier
    rows filled), which the frame now reads in two steps (this run's rows, then the earlier rows of the columns
    the run left empty)."""
    _contacts(con, "o", 40, "old", status_filled=earlier_filled)
    _contacts(con, "n", run_rows, "now", status_filled=0)
    v = _volume(con)["esp_contacts"]
    assert (v["run_rows"], v["emptied_columns"]) == (run_rows, expected)
