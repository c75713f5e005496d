"""The catalog look-ups of the project's macros (dbt_project/macros/change_lists.sql): whether relations exist
now, asked of the database itself (a hook may have created or dropped one during the invocation, which dbt's
relation cache would not know), one query for all the relations a check needs together (issue 16). Rendered
with Jinja as dbt renders macros, `return` included; run_query runs on a real DuckDB connection. The dbt builds
of the models incremental by key (tests/dbt/test_*_incremental.py) run them for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import duckdb
import jinja2
import pytest
from macro_render import MACROS


class _Returned(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def _return(value: Any) -> None:
    raise _Returned(value)  # dbt's `return`: the macro's value, not its text


@pytest.fixture
def con() -> Iterator[Any]:
    with duckdb.connect() as con:
        con.execute("create schema intermediate")
        con.execute("create table intermediate.kept (x int)")
        con.execute("create table main.kept_elsewhere (x int)")  # asked below in another catalog
        con.execute("create table main.listed (x int)")
        con.execute("create temp table scratch (x int)")
        yield con


@pytest.fixture
def macros(con: Any) -> Iterator[tuple[SimpleNamespace, list[str]]]:
    """change_lists.sql's macros as the project calls them (`rapport.<name>`), and the queries they ran."""
    queries: list[str] = []

    def run_query(sql: str) -> Any:
        queries.append(sql)
        return SimpleNamespace(rows=con.execute(sql).fetchall())

    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    module: dict[str, Any] = {}

    def call(name: str) -> Callable[..., Any]:
        def macro(*args: Any) -> Any:
            try:
                return getattr(module["m"], name)(*args)
            except _Returned as returned:
                return returned.value

        return macro

    rapport = SimpleNamespace(**{n: call(n) for n in ("table_exists_now", "all_tables_exist_now", "tables_exist_now")})
    env.globals.update({"return": _return, "run_query": run_query, "rapport": rapport})
    module["m"] = env.from_string((MACROS / "change_lists.sql").read_text()).module
    yield rapport, queries


def _rel(schema: str, identifier: str, database: str = "memory") -> SimpleNamespace:
    return SimpleNamespace(database=database, schema=schema, identifier=identifier)


def test_which_relations_exist_in_their_order_from_one_query(con, macros) -> None:
    rapport, queries = macros
    relations = [
        _rel("intermediate", "kept"),
        _rel("intermediate", "listed"),  # the name exists, in another schema
        _rel("main", "listed"),
        _rel("main", "kept"),  # ... and the other way round
        _rel("main", "scratch", database="temp"),  # a temp table of this connection
        _rel("main", "kept_elsewhere", database="other"),  # another catalog
    ]
    assert rapport.tables_exist_now(relations) == [True, False, True, False, True, False]
    assert len(queries) == 1
    assert rapport.all_tables_exist_now(relations[:1] + relations[2:3]) is True
    assert rapport.all_tables_exist_now(relations[:2]) is False
    assert len(queries) == 3
    assert rapport.tables_exist_now([]) == [] and len(queries) == 3  # nothing to ask: no query


def test_each_call_asks_the_catalog_again(con, macros) -> None:
    """Nothing is remembered: a relation created or dropped between two checks is seen by the second."""
    rapport, _ = macros
    assert rapport.table_exists_now(_rel("intermediate", "later")) is False
    con.execute("create table intermediate.later (x int)")
    assert rapport.table_exists_now(_rel("intermediate", "later")) is True
    con.execute("drop table intermediate.kept")
    assert rapport.all_tables_exist_now([_rel("intermediate", "kept"), _rel("intermediate", "later")]) is False
