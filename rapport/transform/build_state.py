"""What the marts, the dbt docs and the report were last made from, so a run that changed nothing can
reuse them instead of rebuilding (issue 16: a run's cost follows what changed).

The marts are a function of the landed data, the dbt project, the code its models and checks run, the
as-of date and a few settings. `inputs_fingerprint` condenses these:

- per table of `raw` and `quarantine`: its row count and latest load time (`_extracted_at`, `rejected_at`).
  Extractors only add rows (a changed record is a new version, stamped with its load time) and erasures
  delete rows, so any change to the landed data changes a count or a latest load time; the erasure
  records (`ops.erasures`, `ops.erasure_identifiers`, `ops.erasure_purges`) count too, since erasing
  also blanks values in place;
- the dbt project's files, the UDFs and dbt glue (`rapport/transform/*.py`), the check suites and their
  code (`expectations/`), the report's code (`reports/`);
- the as-of date and the settings that change the outputs (`OUTPUT_SETTINGS`).

`ops.build_state` keeps, per output, the fingerprint it was last made from: `marts` once the models are
built and their checks passed, `report` once the report and audience files are written, `docs` once the
dbt docs are generated (their own fingerprint: project and catalog, `docs_fingerprint`). Any dbt build
clears `marts` before it starts (`invalidate`), so a build that fails or is killed half-way is never
reused. A wrong fingerprint can only cause a rebuild: reuse needs an exact match.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import duckdb

from rapport.core.config import PROJECT_ROOT, Settings
from rapport.core.warehouse import UTC_NOW, table_exists
from rapport.transform.project import DBT_PROJECT_DIR, files_fingerprint, project_fingerprint

STEPS = ("marts", "report", "docs")
# Settings that change what the transform or the report produce (source settings only change what lands).
OUTPUT_SETTINGS = ("RAPPORT_AS_OF", "RAPPORT_REPORTING_CURRENCY", "RAPPORT_ENGINE", "RAPPORT_REPORT_LANGUAGE")
_CODE = (("rapport/transform", "*.py"), ("expectations", "**/*.py"), ("expectations/suites", "**/*.json"),
         ("reports", "**/*"))  # fmt: skip
_LOAD_TIME_COLUMNS = ("_extracted_at", "rejected_at", "erased_at", "added_at", "purged_at")
_ERASURE_TABLES = ("erasures", "erasure_identifiers", "erasure_purges")

_DDL = """create table if not exists ops.build_state (
    step varchar primary key, fingerprint varchar not null, run_id varchar, recorded_at timestamp)"""


def code_fingerprint(root: Path = PROJECT_ROOT) -> str:
    files = sorted({p for folder, pattern in _CODE for p in (root / folder).glob(pattern)
                    if p.is_file() and "__pycache__" not in p.parts})  # fmt: skip
    return files_fingerprint(files, root)


def landed_state(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int, str | None]]:
    """(schema, table, rows, latest load time) of every table in `raw` and `quarantine`, and of the erasure
    records (`rapport forget` and the purges after it change raw rows)."""
    stamps = ", ".join(f"'{c}'" for c in _LOAD_TIME_COLUMNS)
    erasures = ", ".join(f"'{t}'" for t in _ERASURE_TABLES)
    tables = con.execute(
        f"""select table_schema, table_name, list(column_name) filter (where column_name in ({stamps})) as stamps
            from information_schema.columns
            where table_catalog = current_database()
              and (table_schema in ('raw', 'quarantine') or (table_schema = 'ops' and table_name in ({erasures})))
            group by table_schema, table_name order by table_schema, table_name"""
    ).fetchall()
    state = []
    for schema, table, found in tables:
        stamp = next((c for c in _LOAD_TIME_COLUMNS if c in (found or [])), None)
        latest = f'max("{stamp}")::varchar' if stamp else "null"
        rows, last = con.execute(f'select count(*), {latest} from "{schema}"."{table}"').fetchall()[0]
        state.append((schema, table, rows, last))
    return state


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, *, as_of: date, env: Mapping[str, str] | None = None) -> str:
    """Fingerprint of everything the marts, their checks and the report are made from (module docstring)."""
    env = os.environ if env is None else env
    parts = {
        "landed": landed_state(con),
        "project": project_fingerprint(),
        "code": code_fingerprint(),
        "as_of": as_of.isoformat(),
        "settings": {k: env.get(k) for k in OUTPUT_SETTINGS},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def docs_fingerprint(con: duckdb.DuckDBPyConnection, env: Mapping[str, str] | None = None) -> str:
    """What dbt's documentation site shows: the project (models, descriptions, tests) and the catalog's
    relations and columns. Data changes alone leave it alone."""
    env = os.environ if env is None else env
    catalog = con.execute(
        """select table_schema, table_name, column_name, data_type from information_schema.columns
           where table_catalog = current_database()
             and table_schema not in ('information_schema', 'pg_catalog', 'ops')
           order by all"""
    ).fetchall()
    parts = {"project": project_fingerprint(DBT_PROJECT_DIR), "catalog": catalog,
             "engine": env.get("RAPPORT_ENGINE")}  # fmt: skip
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "ops", "build_state")


def recorded(con: duckdb.DuckDBPyConnection, step: str) -> str | None:
    """The fingerprint `step` was last made from, or None."""
    if not _has_table(con):
        return None
    rows = con.execute("select fingerprint from ops.build_state where step = ?", [step]).fetchall()
    return rows[0][0] if rows else None


def recorded_run(con: duckdb.DuckDBPyConnection, step: str) -> str | None:
    """The run that recorded `step`, or None."""
    if not _has_table(con):
        return None
    rows = con.execute("select run_id from ops.build_state where step = ?", [step]).fetchall()
    return rows[0][0] if rows else None


def record(con: duckdb.DuckDBPyConnection, step: str, fingerprint: str, run_id: str) -> None:
    if step not in STEPS:
        raise ValueError(f"unknown build step {step!r}; expected one of {STEPS}")
    con.execute("create schema if not exists ops")
    con.execute(_DDL)
    con.execute(f"insert or replace into ops.build_state values (?, ?, ?, {UTC_NOW})", [step, fingerprint, run_id])


def clear(con: duckdb.DuckDBPyConnection, *steps: str) -> None:
    if not _has_table(con):
        return
    con.execute("delete from ops.build_state where step in (select unnest(?::varchar[]))", [list(steps)])


def invalidate(settings: Settings) -> None:
    """Before a dbt build: the marts are about to change, so nothing built earlier may be reused. Opens the
    working file without the writer lock: the caller holds it (or is the only process, as in tests)."""
    if not settings.work_db.exists():
        return
    con = duckdb.connect(str(settings.work_db), config=settings.duckdb_config())
    try:
        clear(con, "marts", "report")
    finally:
        con.close()
