"""int_campaign_members' touched members on a day (dbt_project/macros/campaign_members_touched.sql,
`campaign_members_touched_sql`; the letters are docs/identity-day-costs.md section 7's), rendered as dbt renders
it on DuckDB (tests/macro_render.py) and run on a plain DuckDB connection over hand-made tables.

The list reads the old members twice: by the reassigned recipients' keys for (e), and by the touched
(campaign, customer) pairs for the final lookup. The fixture has one member per branch (b)-(e) that must be
listed, and members that share a key with a touched one but not the whole join key (the reassigned recipient
in another campaign, a touched customer's member in another campaign without a change there), which must not
be. Expected rows are hand-written from the rows below."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from macro_render import render_macro

STATE = SimpleNamespace(
    assignments="kept_assignments",
    touched_campaigns="touched_campaigns",
    changed_orders="changed_orders",
    changed_segments="changed_segments",
)


class _Result:
    """What dbt's run_query returns, as far as the macro reads it (`.columns[0].values()[0]`)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.columns = [SimpleNamespace(values=lambda: [row[0] for row in rows])]


@pytest.fixture
def con() -> Any:
    with duckdb.connect() as con:
        con.execute("create table campaigns (campaign_id varchar, send_at timestamp)")
        con.execute("insert into campaigns values ('c1', '2026-03-01 09:00'), ('c2', '2026-04-01 09:00')")
        # the table as the last build left it
        con.execute(
            "create table members (campaign_id varchar, audience_group varchar, recipient_key varchar, "
            "customer_id varchar)"
        )
        con.execute("""insert into members values
            ('c1', 'treatment', 'a@x.com', 'k1'),  -- (b): its audience record is re-assigned to k2 today
            ('c1', 'control', 'b@x.com', 'k1'),    -- (e): shares k1, a@x.com's customer before
            ('c1', 'treatment', 'c@x.com', 'k2'),  -- (e): shares k2, a@x.com's customer now
            ('c1', 'treatment', 'd@x.com', 'k3'),  -- (c): k3 has a changed order in c1's pre-period
            ('c1', 'treatment', 'e@x.com', 'k4'),  -- (d): k4's segment as of c1's send changed
            ('c1', 'treatment', 'f@x.com', 'k5'),  -- nothing of k5 changed
            ('c1', 'treatment', 'g@x.com', 'k6'),  -- k6's changed order is outside every window of c1
            ('c2', 'treatment', 'a@x.com', 'k1'),  -- same recipient, other campaign: its record kept its id
            ('c2', 'treatment', 'h@x.com', 'k3')   -- k3's changed order is 6 weeks before c2's send too
        """)
        con.execute(
            "create table audiences (audience_member_id varchar, campaign_id varchar, email varchar, "
            "audience_group varchar, _extracted_at timestamp)"
        )
        con.execute("""insert into audiences values
            ('c1:A@x.com ', 'c1', 'A@x.com ', 'Treatment', '2026-01-01'),
            ('c2:a@x.com', 'c2', 'a@x.com', 'treatment', '2026-01-01')""")
        con.execute(
            "create table ids (source varchar, source_id varchar, customer_id varchar, is_current boolean, "
            "last_assigned_at timestamp)"
        )
        con.execute("""insert into ids values
            ('esp.audience_member', 'c1:A@x.com ', 'k1', false, '2026-01-01'),
            ('esp.audience_member', 'c1:A@x.com ', 'k2', true, '2026-06-02'),
            ('esp.audience_member', 'c2:a@x.com', 'k1', true, '2026-01-01')""")
        con.execute("create table kept_assignments as select timestamp '2026-06-01' as last_assigned_at")
        con.execute("create table touched_campaigns (campaign_id varchar)")
        con.execute("create table changed_orders (customer_id varchar, created_at timestamp)")
        con.execute("""insert into changed_orders values
            ('k3', '2026-02-15'), ('k6', '2025-01-01')""")
        con.execute("create table changed_segments (cutoff_at timestamp, customer_id varchar)")
        con.execute("insert into changed_segments values ('2026-03-01 09:00', 'k4')")
        yield con


def _touched(con: Any) -> list[tuple[str, str, str]]:
    rapport = SimpleNamespace(
        increment_since=lambda: "cast('2026-06-01' as timestamp)",
        campaign_members_campaigns_sql=lambda: "select campaign_id, send_at from campaigns",
        campaign_members_window=lambda order_at, send_at: (
            f"{send_at} - interval 90 day <= {order_at} and {order_at} < {send_at} + interval 7 day"
        ),
    )
    refs = {"stg_esp__audiences": "audiences", "int_customer_ids_assigned": "ids"}
    sql = render_macro(
        "campaign_members_touched.sql",
        "campaign_members_touched_sql(state)",
        {
            "state": STATE,
            "rapport": rapport,
            "ref": refs.__getitem__,
            "this": "members",
            "run_query": lambda query: _Result(con.execute(query).fetchall()),
        },
    )
    return con.execute(f"select * from ({sql}) order by all").fetchall()


def test_touched_members_of_each_branch(con) -> None:
    assert _touched(con) == [
        ("c1", "control", "b@x.com"),
        ("c1", "treatment", "a@x.com"),
        ("c1", "treatment", "c@x.com"),
        ("c1", "treatment", "d@x.com"),
        ("c1", "treatment", "e@x.com"),
        ("c2", "treatment", "h@x.com"),
    ]


def test_nothing_changed_touches_nobody(con) -> None:
    for table in ("changed_orders", "changed_segments"):
        con.execute(f"delete from {table}")
    con.execute("update ids set last_assigned_at = timestamp '2026-01-01'")
    assert _touched(con) == []
