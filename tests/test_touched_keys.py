"""The macro the touched-list pre-hooks of the models incremental by key share (dbt_project/macros/
touched_keys.sql, docs/marts-incremental.md "The touched-list pre-hooks: one macro"), rendered as dbt renders
it on DuckDB (tests/macro_render.py): its queries run on a real DuckDB connection, and so does the delete it
renders. Expected rows and counts are hand-computed from the few rows below. The dbt builds of the four models
(tests/dbt/test_*_incremental.py, tests/integration/test_incremental_equals_full.py) run it for real."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from macro_render import render_macro


@pytest.fixture
def con() -> Any:
    with duckdb.connect() as con:
        yield con


def _render(con: Any, call: str, **names: Any) -> tuple[str, list[str]]:
    """The SQL `call` renders, and the lines it logged; its run_query runs on `con`."""
    logged: list[str] = []

    def run_query(sql: str) -> SimpleNamespace:
        rows = con.execute(sql).fetchall()
        return SimpleNamespace(columns=[SimpleNamespace(values=lambda: [r[0] for r in rows])])

    def log(message: str, info: bool = False) -> str:
        logged.append(message)
        return ""

    return render_macro("touched_keys.sql", call, {"run_query": run_query, "log": log, **names}), logged


def test_two_lists_one_by_a_key_column_one_by_several(con) -> None:
    con.execute("create table members (campaign_id int, recipient_key varchar, customer_id int)")
    con.execute("insert into members values (1, 'a', 10), (1, 'b', 11), (2, 'a', 10), (2, 'c', 12), (3, 'd', 13)")
    # campaign 3 twice; members (1, b) twice, (2, a), and (9, z) which has no row
    sql, logged = _render(
        con,
        """list_touched_keys([
        ('touched_campaigns', ['campaign_id'], "select 3 as campaign_id union all select 3"),
        ('touched', ['campaign_id', 'recipient_key'],
         "select 1 as campaign_id, 'b' as recipient_key, 0 as other union all select 1, 'b', 1
          union all select 2, 'a', 2 union all select 9, 'z', 3")
    ], 'recomputing {} campaigns and {} other members', delete_from='members')""",
    )
    # each list holds its keys once, in its key columns only
    assert con.execute("select * from touched_campaigns").fetchall() == [(3,)]
    assert sorted(con.execute("select * from touched").fetchall()) == [(1, "b"), (2, "a"), (9, "z")]
    assert logged == ["recomputing 1 campaigns and 3 other members"]
    con.execute(sql)
    # campaign 3's row and the members (1, b), (2, a) go; (1, a) stays: the key is both columns together
    assert sorted(con.execute("select * from members").fetchall()) == [(1, "a", 10), (2, "c", 12)]


def test_one_key_column_and_a_condition_whose_rows_go_too(con) -> None:
    con.execute("create table customers as select * from range(1, 7) as r(customer_id)")
    sql, logged = _render(
        con,
        """list_touched_keys(
        [('touched', ['customer_id'], "select 2 as customer_id union all select 2 union all select 9")],
        'customers: incremental, recomputing {} customers', delete_from='customers',
        also_delete='customer_id > 4')""",
    )
    assert logged == ["customers: incremental, recomputing 2 customers"]
    con.execute(sql)
    # 2 listed, 5 and 6 by the condition; 9 is listed but has no row
    assert [r[0] for r in con.execute("select * from customers order by 1").fetchall()] == [1, 3, 4]


def test_without_a_table_to_delete_from_it_lists_logs_and_renders_nothing(con) -> None:
    # the touched-set SQL may end in a comment
    sql, logged = _render(
        con,
        """list_touched_keys(
        [('touched', ['order_id'], "select 7 as order_id, 'x' as status union all select 7, 'y' -- a last comment")],
        'int_orders_enriched: incremental, recomputing {} orders')""",
    )
    assert sql == ""
    assert con.execute("select * from touched").fetchall() == [(7,)]
    assert logged == ["int_orders_enriched: incremental, recomputing 1 orders"]


class _TempRelation:
    """A dbt relation in DuckDB's temp catalog, as customers' engagement-only list is."""

    database = "temp"

    def __str__(self) -> str:
        return '"temp"."main"."scratch_list"'


def test_a_list_in_the_temp_catalog_is_a_temporary_table(con) -> None:
    # DuckDB refuses `create table temp.main.x` ("Only TEMPORARY table names can use the temp catalog")
    _, logged = _render(
        con,
        """list_touched_keys([(scratch, ['k'], "select 4 as k union all select 4")], 'listed {}')""",
        scratch=_TempRelation(),
    )
    assert logged == ["listed 1"]
    assert con.execute("select temporary from duckdb_tables() where table_name = 'scratch_list'").fetchall() == [
        (True,)
    ]
