"""int_campaign_members' pre-hook diffs of its kept copies (dbt_project/macros/campaign_members_touched.sql,
`campaign_members_changes_statements`; docs/identity-day-costs.md section 7), rendered as dbt renders them on
DuckDB (tests/macro_render.py) and run on a plain DuckDB connection: a kept row whose key is gone, a row new
today, and a row whose key stays but whose other columns changed are listed both ways (is_now true: today's
version, false: the kept one); an unchanged row is not. The value-only change is what the incremental-days
harness does not exercise for the segments (a rank shift moving a customer who has no changed order of their
own): without it these tests fail. Expected rows are hand-written from the rows below."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from macro_render import render_macro

STATE = SimpleNamespace(
    orders="kept_orders", segments="kept_segments", changed_orders="changed_orders", changed_segments="changed_segments"
)
# today's rows, as the model's full build reads them (the macros that select them read dbt refs)
TODAY = SimpleNamespace(
    campaign_members_window_orders_sql=lambda: "select * from orders_now",
    campaign_members_send_segments_sql=lambda: "select * from segments_now",
)


ORDERS = "(order_id int, customer_id varchar, created_at timestamp, net_revenue_usd decimal(18, 4))"
SEGMENTS = "(cutoff_at timestamp, customer_id varchar, rfm_segment varchar)"


@pytest.fixture
def con() -> Any:
    """Both kept copies and today's rows, empty (the pre-hook diffs both: a test fills one pair)."""
    with duckdb.connect() as con:
        for table, columns in [("kept_orders", ORDERS), ("orders_now", ORDERS), ("kept_segments", SEGMENTS),
                               ("segments_now", SEGMENTS)]:  # fmt: skip
            con.execute(f"create table {table} {columns}")
        yield con


def _run_changes(con: Any) -> None:
    sql = render_macro(
        "campaign_members_touched.sql", "campaign_members_changes_statements(state)", {"state": STATE, "rapport": TODAY}
    )
    for statement in sql.split(";"):  # as the pre-hook runs them
        con.execute(statement)


def test_changed_orders_both_ways(con) -> None:
    con.execute("""insert into kept_orders values
        (1, 'c1', '2026-01-01', 10), (2, 'c2', '2026-01-02', 20), (3, 'c3', '2026-01-03', 30),
        (4, 'c4', '2026-01-04', 40)""")
    # 1 unchanged; 2 refunded (revenue); 3 re-keyed to c9 by a merge; 4 gone (cancelled); 5 new
    con.execute("""insert into orders_now values
        (1, 'c1', '2026-01-01', 10), (2, 'c2', '2026-01-02', 5), (3, 'c9', '2026-01-03', 30),
        (5, 'c5', '2026-01-05', 50)""")
    _run_changes(con)
    rows = con.execute(
        "select order_id, customer_id, cast(net_revenue_usd as int), is_now from changed_orders order by all"
    ).fetchall()
    assert rows == [
        (2, "c2", 5, True),
        (2, "c2", 20, False),
        (3, "c3", 30, False),
        (3, "c9", 30, True),
        (4, "c4", 40, False),
        (5, "c5", 50, True),
    ]


def test_changed_segments_both_ways(con) -> None:
    con.execute("""insert into kept_segments values
        ('2026-03-01', 'c1', 'Champions'), ('2026-03-01', 'c2', 'Loyal'), ('2026-04-01', 'c1', 'Loyal'),
        ('2026-04-01', 'c3', 'At Risk')""")
    # c1 unchanged in the first scope; c2 moved by a rank shift (same key, another segment); c1 moved in the
    # second; c3 gone from it; c4 new there
    con.execute("""insert into segments_now values
        ('2026-03-01', 'c1', 'Champions'), ('2026-03-01', 'c2', 'Potential Loyalists'),
        ('2026-04-01', 'c1', 'Champions'), ('2026-04-01', 'c4', 'New Customers')""")
    _run_changes(con)
    rows = con.execute(
        "select cast(cutoff_at as date)::varchar, customer_id, rfm_segment, is_now from changed_segments order by all"
    ).fetchall()
    assert rows == [
        ("2026-03-01", "c2", "Loyal", False),
        ("2026-03-01", "c2", "Potential Loyalists", True),
        ("2026-04-01", "c1", "Champions", True),
        ("2026-04-01", "c1", "Loyal", False),
        ("2026-04-01", "c3", "At Risk", False),
        ("2026-04-01", "c4", "New Customers", True),
    ]
