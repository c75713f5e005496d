"""The column types the DuckDB build gives every dbt model, for tables another engine built.

Spark's types are not DuckDB's (`int` where DuckDB has BIGINT, `decimal(28,4)` where it has DECIMAL(38,4),
UTC instants where it has naive timestamps). Tables built on Spark are brought back into the working file
with the types a DuckDB build of the same models has, so the checks, publishing and the report read the
same schema whichever engine built them. Those types come from building the project on DuckDB with
`dbt run --empty` (every ref and source limited to no rows) in a scratch file whose raw tables are empty
copies of the working file's: seconds, and cached until the dbt project or the raw layout changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb

from rapport.core.config import Settings
from rapport.transform.dbt_invocation import DBT_PROJECT_DIR, TransformError, invoke, release_duckdb

# What the models' types depend on (tests, docs and analyses don't change them).
_TYPE_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots")
MODEL_SCHEMAS = ("staging", "intermediate", "marts")

Columns = list[tuple[str, str]]  # (column, DuckDB type) in the DuckDB build's order


def _raw_layout(work: duckdb.DuckDBPyConnection) -> Columns:
    rows = work.execute(
        "select table_name || '.' || column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' order by table_name, ordinal_position"
    ).fetchall()
    return [(name, dtype) for name, dtype in rows]


def _fingerprint(raw_layout: Columns) -> str:
    digest = hashlib.sha256(json.dumps(raw_layout).encode())
    for name in _TYPE_INPUTS:
        path = DBT_PROJECT_DIR / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(str(file.relative_to(DBT_PROJECT_DIR)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def duckdb_model_types(settings: Settings, work: duckdb.DuckDBPyConnection) -> dict[str, Columns]:
    """`schema.table` -> its columns and DuckDB types as a DuckDB build makes them, for every model table.

    `work` is an open connection to the working file (for the raw layout). Cached in
    `{warehouse}/spark/duckdb_types.json`; TransformError when the DuckDB build of the empty tables fails.
    """
    raw_layout = _raw_layout(work)
    fingerprint = _fingerprint(raw_layout)
    cache = settings.spark_dir / "duckdb_types.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("fingerprint") == fingerprint:
            return {name: [tuple(c) for c in cols] for name, cols in cached["types"].items()}
    types = _build_empty(settings, raw_layout)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "types": types}))
    tmp.replace(cache)
    return types


def _build_empty(settings: Settings, raw_layout: Columns) -> dict[str, Columns]:
    scratch = settings.spark_dir / "duckdb_types"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    db = scratch / "types.duckdb"
    tables: dict[str, list[str]] = {}
    for name, dtype in raw_layout:
        table, column = name.split(".", 1)
        tables.setdefault(table, []).append(f'"{column}" {dtype}')
    with duckdb.connect(str(db)) as con:
        con.execute("create schema raw")
        for table, columns in tables.items():
            con.execute(f"create table raw.{table} ({', '.join(columns)})")
    dbt_vars = json.dumps({"as_of": "2000-01-01", "run_id": "duckdb-types"})
    try:
        result = invoke(
            settings,
            ["run", "--empty", "--vars", dbt_vars, "--quiet"],
            env={"RAPPORT_WORK_DB": str(db), "RAPPORT_DUCKDB_TEMP_DIR": str(scratch / "tmp")},
            target_path=scratch / "target",
        )
    finally:
        release_duckdb()
    if not result.success:  # type: ignore[attr-defined]
        raise TransformError(
            "the DuckDB build of the empty models (the column types Spark's tables are brought back with) failed: "
            f"the dbt project does not build on DuckDB; see the dbt log under {settings.warehouse_dir / 'dbt' / 'logs'}"
        )
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name, data_type from information_schema.columns "
            f"where table_schema in {MODEL_SCHEMAS} order by table_schema, table_name, ordinal_position"
        ).fetchall()
    types: dict[str, Columns] = {}
    for table, column, dtype in rows:
        types.setdefault(table, []).append((column, dtype))
    shutil.rmtree(scratch, ignore_errors=True)
    return types
