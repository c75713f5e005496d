"""A frame larger than `check_chunk_rows` is validated part by part (pandas holds one part at a time) with the
same results as the whole frame: the raw gate of test_gate.py's scenario, run whole and split in parts of
two rows, must fail the same expectations with the same counts."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import duckdb
import pytest
from expectation_helpers import event, land, land_clean_sources, order, settings_for, ticket

from rapport.expectations.gate import CheckFailed, run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)


def _run(directory, chunk_rows: int):
    settings = dataclasses.replace(settings_for(directory), check_chunk_rows=chunk_rows)
    con = duckdb.connect(str(directory / "work.duckdb"))
    land_clean_sources(con, "r0")
    run_raw_checks(con, settings, run_id="r0", interval_end=END)
    land(
        con,
        "shop_orders",
        [
            order(id=20, total=-30, subtotal=-30),
            order(id=22, status="teleported"),
            # one id, two different rows at one version: both rows are in one part, whatever the split
            order(id=24, customer_id=1),
            order(id=24, customer_id=None, email="other@example.com"),
            order(id=25),
            order(id=26),
            order(id=27),
            order(id=28),
            order(id=29),
        ],
        "r1",
    )
    land(con, "helpdesk_tickets", [ticket(id=901, requester_id=777)], "r1")
    land(
        con,
        "esp_events",
        [event(sg_event_id=f"x{i}", event="opened" if i % 3 == 0 else "open") for i in range(9)],
        "r1",
    )
    with pytest.raises(CheckFailed) as failed:
        run_raw_checks(con, settings, run_id="r1", interval_end=END)
    rows = con.execute("""select suite, expectation, success, unexpected_count from ops.check_results
                          where run_id = 'r1' order by all""").fetchall()
    con.close()
    return settings, failed.value.summary, rows


@pytest.fixture(scope="module")
def whole_and_parts(tmp_path_factory):
    base = tmp_path_factory.mktemp("parts")
    return _run(base / "whole", 2_000_000), _run(base / "parts", 2)


def test_the_frame_was_split(whole_and_parts):
    (whole, _, _), (parts, _, _) = whole_and_parts
    frames = parts.warehouse_dir / "gx" / "frames" / "raw"
    files = sorted((frames / "raw_shop_orders.parts").glob("part-*.parquet"))
    assert len(files) == 5  # 9 rows in scope (8 orders, id 24 twice), at most 2 a part: ceil(9 / 2)
    counts = duckdb.sql("select count(*) from read_parquet($files)", params={"files": [str(f) for f in files]})
    assert counts.fetchall() == [(9,)]
    assert not (frames / "raw_shop_orders.parquet").exists()
    assert (whole.warehouse_dir / "gx" / "frames" / "raw" / "raw_shop_orders.parquet").exists()


def test_split_results_equal_the_whole_frame(whole_and_parts):
    (_, whole_summary, whole_rows), (_, parts_summary, parts_rows) = whole_and_parts
    assert parts_rows == whole_rows

    def failed(summary):  # examples come in part order: compared as a multiset
        return sorted(
            (
                o.suite,
                o.expectation,
                o.observed_value.partition(", e.g. ")[0],
                sorted(o.observed_value.partition(", e.g. ")[2].split(", ")),
            )
            for o in summary.outcomes
            if not o.success
        )

    assert failed(parts_summary) == failed(whole_summary)


def test_split_results_by_hand(whole_and_parts):
    _, (_, summary, _) = whole_and_parts
    failed = {
        (o.suite, o.expectation): (o.unexpected_count, o.element_count) for o in summary.outcomes if not o.success
    }
    assert failed[("raw_shop_orders", "expect_column_values_to_be_unique(id)")] == (2, 9)
    assert failed[("raw_shop_orders", "expect_column_values_to_be_in_set(status)")] == (1, 9)
    assert failed[("raw_esp_events", "expect_column_values_to_be_in_set(event)")] == (3, 9)  # x0, x3, x6


def test_no_frame_stays_in_memory_after_a_gate(whole_and_parts):
    # GX's execution engine would keep every frame it loaded for the life of the process (the in-process
    # Airflow runner runs the next tasks in it): a gate leaves none behind
    import gc

    from great_expectations.core.batch_manager import BatchManager

    # type(), not isinstance(): isinstance reads __class__, which makes some lazy proxies (Airflow's) import
    managers = [m for m in gc.get_objects() if type(m) is BatchManager]
    assert managers  # the gates of the fixture ran in this process
    assert [m for m in managers if m._batch_data_cache or m._batch_cache] == []
