"""Bringing Spark's tables back into a working file that a DuckDB build wrote before: a mart that DuckDB builds as
a view (macro view_on_duckdb: marts.customer_identities) is a table on Spark, and must become that table.
No JVM: Spark's output is stood in for by a Parquet file where Spark's warehouse keeps the table."""

from __future__ import annotations

import json

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.transform import model_types
from rapport.transform.spark_exchange import collect_from_spark, spark_warehouse

COLUMNS = [("source", "VARCHAR"), ("source_id", "VARCHAR"), ("customer_id", "VARCHAR")]
MANIFEST = {"nodes": {
    # as the manifest parsed for DuckDB says (the one spark_load and spark_collect read): a view there
    "model.rapport.customer_identities": {"resource_type": "model", "config": {"materialized": "view"},
                                          "schema": "marts", "alias": "customer_identities"},
    "model.rapport.customers": {"resource_type": "model", "config": {"materialized": "table"},
                                "schema": "marts", "alias": "customers"},
}}  # fmt: skip


@pytest.fixture()
def settings(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh"), "RAPPORT_ENGINE": "spark"})
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.shop_customers (id bigint)")
        con.execute("create schema intermediate")
        con.execute(
            "create table intermediate.pairs as select 'esp.contact' as source, 'old' as source_id, 'c0' as customer_id"
        )
        con.execute("create schema marts")
        # what an earlier DuckDB build left: the mart as a view, and a mart that is a table on both engines
        con.execute("create view marts.customer_identities as select * from intermediate.pairs")
        con.execute("create table marts.customers as select 'c0' as customer_id")
        raw_layout = model_types._raw_layout(con)
    # the DuckDB build's column types, cached as rapport.transform.model_types keeps them
    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    (settings.spark_dir / "duckdb_types.json").write_text(json.dumps({
        "fingerprint": model_types._fingerprint(raw_layout),
        "types": {"marts.customer_identities": COLUMNS, "marts.customers": [("customer_id", "VARCHAR")]},
    }))  # fmt: skip
    # Spark's tables: two records of c1 (customer_identities), one customer c1
    warehouse = spark_warehouse(settings)
    with duckdb.connect() as con:
        for name, sql in (
            (
                "customer_identities",
                "select * from (values ('orders.customer', '7', 'c1'), "
                "('helpdesk.user', '9', 'c1')) t(source, source_id, customer_id)",
            ),
            ("customers", "select 'c1' as customer_id"),
        ):
            directory = warehouse / "marts.db" / name
            directory.mkdir(parents=True)
            con.execute(f"copy ({sql}) to '{directory / 'part-00000.parquet'}' (format parquet)")
    return settings


def test_a_view_left_by_a_duckdb_build_becomes_spark_s_table(settings) -> None:
    collected = collect_from_spark(settings, MANIFEST)
    assert sorted(collected) == ["marts.customer_identities", "marts.customers"]
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_schema = 'marts'").fetchall())  # fmt: skip
        assert kinds == {"customer_identities": "BASE TABLE", "customers": "BASE TABLE"}
        assert sorted(con.execute("select * from marts.customer_identities").fetchall()) == [
            ("helpdesk.user", "9", "c1"), ("orders.customer", "7", "c1")]  # fmt: skip
        assert con.execute("select * from marts.customers").fetchall() == [("c1",)]
        # the view's source table is not touched
        assert con.execute("select * from intermediate.pairs").fetchall() == [("esp.contact", "old", "c0")]
