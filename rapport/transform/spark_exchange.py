"""Moving tables between the working DuckDB file and Spark for RAPPORT_ENGINE=spark.

The working DuckDB file stays the warehouse of record; Spark is where dbt computes. Before a build
(`load_into_spark`) the raw tables go to Spark as Parquet tables in database `raw` (so the models'
`source()` calls resolve unchanged), and so do the incremental models' tables (their state: stable customer
ids, segment history) as the working file holds them, so Spark continues from exactly that state (also
after `rapport forget` purged it). After the build (`collect_from_spark`) every model table Spark built
comes back into the working file's schema of the same name, with the columns and types the DuckDB build
gives it (rapport.transform.model_types): the checks, publishing, the report, audiences and `forget` read
the same tables whichever engine built them.

The Parquet written here lives under `{warehouse}/spark/exchange/`; Spark's own tables under
`{warehouse}/spark/warehouse/` (profiles.yml). A state table is sent to Spark again only when Spark's copy may
differ from the working file's: `spark/state.json` records a fingerprint (rows, sum of row hashes) of each
one as collected after a complete build, and is cleared when the next build starts, so an incremental table
of any size costs one DuckDB scan per build, not a copy, while the two agree.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb

from rapport.core.config import Settings
from rapport.core.progress import progress
from rapport.core.warehouse import tables_in
from rapport.transform.dbt_invocation import TransformError, dbt_env
from rapport.transform.model_types import duckdb_model_types
from rapport.transform.spark import spark_parameters, spark_session

_NOT_TABLES = {"view", "ephemeral"}


def model_tables(
    manifest: dict[str, Any], materialized: set[str] | None = None, *, views: bool = False
) -> list[dict[str, Any]]:
    """The manifest's model nodes that dbt materialises as tables (or only those materialised as one of
    `materialized`; `views`: views too), sorted by schema and name."""
    not_tables = _NOT_TABLES - {"view"} if views else _NOT_TABLES
    nodes = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
        and n["config"].get("enabled", True)
        and (
            n["config"].get("materialized") in materialized
            if materialized
            else n["config"].get("materialized") not in not_tables
        )
    ]
    return sorted(nodes, key=lambda n: (n["schema"], n["alias"]))


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    # The caller holds the writer lock (a dbt build step): not open_warehouse(), whose lock would wait on it.
    return duckdb.connect(str(settings.work_db), config=settings.duckdb_config())


def _export(con: duckdb.DuckDBPyConnection, relation: str, directory: Path) -> Path:
    """COPY a DuckDB relation to one Parquet file in a fresh `directory` (replacing the previous export)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con.execute(f"copy (select * from {relation}) to '{tmp / 'part-0.parquet'}' (format parquet)")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def _register_parquet(session: Any, name: str, directory: Path) -> None:
    """An external Spark table over the Parquet in `directory` (dropping it leaves the files). Re-exported files
    at the same place only need Spark's cached listing refreshed (a Hive metastore change costs seconds)."""
    columns = [f.name for f in session.read.parquet(directory.as_uri()).schema.fields]
    if session.catalog.tableExists(name) and session.table(name).columns == columns:
        session.sql(f"refresh table {name}")
        return
    session.sql(f"drop table if exists {name}")
    session.sql(f"create table {name} using parquet location '{directory.as_uri()}'")


def _state_mark(settings: Settings) -> Path:
    return settings.spark_dir / "state.json"


def _fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    rows, hashes = con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {relation} as t").fetchone()
    return f"{rows}:{hashes}"


def load_into_spark(settings: Settings, manifest: dict[str, Any]) -> None:
    """Start (or reuse) the session, then raw tables and incremental models' state from DuckDB into Spark."""
    started = time.monotonic()
    env = dbt_env(settings)
    session = spark_session(settings, env)
    exchange = settings.spark_dir / "exchange"
    state = model_tables(manifest, {"incremental"})
    mark = _state_mark(settings)
    in_spark = json.loads(mark.read_text()) if mark.exists() else {}
    mark.unlink(missing_ok=True)  # the build about to run changes Spark's copies: current again once collected
    with _connect(settings) as con:
        duckdb_model_types(settings, con)  # cached; computed now, while nothing else holds the file
        raw = {t: _export(con, f"raw.{t}", exchange / "raw" / t) for t in tables_in(con, "raw")}
        seeded, current = {}, set()
        for node in state:
            schema, name = node["schema"], node["alias"]
            if name not in tables_in(con, schema):
                continue
            key = f"{schema}.{name}"
            if in_spark.get(key) == _fingerprint(con, key) and session.catalog.tableExists(key):
                current.add((schema, name))  # Spark's copy is what the working file holds
            else:
                seeded[(schema, name)] = _export(con, key, exchange / "state" / key)
    session.sql("create database if not exists raw")
    for table, directory in raw.items():
        _register_parquet(session, f"raw.{table}", directory)
    for node in state:
        schema, name = node["schema"], node["alias"]
        if (schema, name) in current:
            continue
        session.sql(f"create database if not exists {schema}")
        session.sql(f"drop table if exists {schema}.{name}")
        if (schema, name) not in seeded:
            continue  # not in the working file: dbt builds it from scratch, as on DuckDB
        partition_by = node["config"].get("partition_by")
        partition_by = [partition_by] if isinstance(partition_by, str) else partition_by or []
        partitioned = f"partitioned by ({', '.join(partition_by)}) " if partition_by else ""
        session.sql(
            f"create table {schema}.{name} using parquet {partitioned}"
            f"as select * from parquet.`{seeded[(schema, name)].as_uri()}`"
        )
    progress(
        f"  spark: {len(raw)} raw tables and {len(seeded)} incremental models' state loaded "
        f"({len(current)} already current) in {time.monotonic() - started:.1f}s"
    )


def spark_warehouse(settings: Settings) -> Path:
    """Spark's warehouse directory (profiles.yml): a managed table's files are in `<schema>.db/<table>/`."""
    return Path(spark_parameters(dbt_env(settings))["spark.sql.warehouse.dir"])


def _parquet_files(directory: Path) -> list[Path]:
    # partitioned tables keep their files in `column=value` directories (the column may start with `_`, as the
    # staging models' `_part`); other `_`/`.` names are Spark's markers
    return sorted(
        p
        for p in directory.rglob("*.parquet")
        if not any(
            part.startswith(".") or (part.startswith("_") and "=" not in part)
            for part in p.relative_to(directory).parts
        )
    )


def _converted(column: str, parquet_type: str | None, duckdb_type: str) -> str:
    quoted = '"' + column.replace('"', '""') + '"'
    if parquet_type is None:  # an empty table (a partitioned one has no file at all): no values to convert
        return f"cast(null as {duckdb_type}) as {quoted}"
    if parquet_type == "TIMESTAMP WITH TIME ZONE" and duckdb_type == "TIMESTAMP":
        # Spark writes UTC instants; the warehouse holds naive UTC timestamps
        return f"cast(timezone('UTC', {quoted}) as TIMESTAMP) as {quoted}"
    return f"cast({quoted} as {duckdb_type}) as {quoted}"


def _drop_view(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop `schema.name` if it is a view: a mart that a DuckDB build makes a view (macro view_on_duckdb) is a
    table on Spark, and DuckDB will not replace a view by a table (a warehouse built on DuckDB before)."""
    is_view = con.execute(
        "select count(*) from duckdb_views() where database_name = current_database() and schema_name = ? "
        "and view_name = ?",
        [schema, name],
    ).fetchall()[0][0]
    if is_view:
        con.execute(f"drop view {schema}.{name}")


# State that DuckDB builds keep beside a model (in the schema of the model named second) and Spark builds do
# not write: once Spark's table replaced the model's, it describes an older table.
_DUCKDB_ONLY_STATE = {
    "segment_history": ("int_segment_scopes", ["segment_history__state", "segment_history__state_dates"]),
}


def _drop_duckdb_only_state(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any], collected: list[str]) -> None:
    """Drop the DuckDB-only state of the models just collected: a later DuckDB build rebuilds it from the
    table. Kept, the segment history's registry copy would make that build undo the dates Spark recorded
    (macros/segment_history_unwritten.sql)."""
    schemas = {n["alias"]: n["schema"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for model, (beside, tables) in _DUCKDB_ONLY_STATE.items():
        if model in schemas and f"{schemas[model]}.{model}" in collected and beside in schemas:
            for table in tables:
                con.execute(f"drop table if exists {schemas[beside]}.{table}")


def collect_from_spark(settings: Settings, manifest: dict[str, Any]) -> list[str]:
    """Every model table Spark holds into the working file (one transaction), typed as the DuckDB build types
    it; returns the `schema.table` names brought back."""
    started = time.monotonic()
    warehouse = spark_warehouse(settings)
    collected = []
    with _connect(settings) as con:
        types = duckdb_model_types(settings, con)
        con.execute("begin")
        # the manifest is parsed for DuckDB (rapport.transform.runner.parse_manifest): a model it makes a view
        # (macro view_on_duckdb) is a table on Spark, so views are looked for too; a model Spark did not
        # build as a table has no directory there and is passed over
        for node in model_tables(manifest, views=True):
            schema, name = node["schema"], node["alias"]
            directory = warehouse / f"{schema}.db" / name
            columns = types.get(f"{schema}.{name}")
            if columns is None or not directory.exists():
                continue  # not built on Spark (deselected, or disabled on DuckDB)
            files = _parquet_files(directory)
            con.execute(f"create schema if not exists {schema}")
            if files:
                source = f"read_parquet({[str(f) for f in files]}, hive_partitioning = true)"
                described = {r[0]: r[1] for r in con.execute(f"describe select * from {source}").fetchall()}
                missing = [c for c, _ in columns if c not in described]
                if missing:
                    raise TransformError(
                        f"Spark's {schema}.{name} ({directory}) lacks the columns {missing} that the DuckDB build "
                        "of the same model has: the model's SQL gives different columns on the two engines"
                    )
            else:
                source, described = "(select 1 where false)", {}
            select = ", ".join(_converted(c, described.get(c), t) for c, t in columns)
            _drop_view(con, schema, name)
            con.execute(f"create or replace table {schema}.{name} as select {select} from {source}")
            collected.append(f"{schema}.{name}")
        _drop_duckdb_only_state(con, manifest, collected)
        con.execute("commit")
        marks = {
            f"{n['schema']}.{n['alias']}": _fingerprint(con, f"{n['schema']}.{n['alias']}")
            for n in model_tables(manifest, {"incremental"})
            if f"{n['schema']}.{n['alias']}" in collected
        }
    _state_mark(settings).write_text(json.dumps(marks))
    progress(f"  spark: {len(collected)} model tables back in the working file in {time.monotonic() - started:.1f}s")
    return collected
