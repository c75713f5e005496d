"""What the incremental dbt models have read, so that a build reads only the raw rows landed since.

A dbt build gets one var (dbt_project/macros/incremental.sql): `since`, the `batch_at` of the last build
that completed (null: read everything), where a build's `batch_at` is the latest raw `_extracted_at` when it
starts. The ledger `ops.transform_increments` keeps both:

- `pending`: the plan of the build under way, written when its first dbt command starts; every later command
  of the same run (the Airflow layer tasks, a retry of one of them) builds with the same vars;
- `committed`: the plan of the last build that completed (`commit`), whose `batch_at` is the next `since`,
  and whose `written_through` (the latest build time in int_customer_ids_assigned when it completed) is the
  next `written_after`: the scoped dbt tests of the stable ids check only pairs stamped later
  (docs/quality.md "Written since, by build time").

A build reads everything (`since` null, dbt's `--full-refresh`) when there is no committed build, when
`--full-refresh` is asked for, when the engine or what computes the models changed since (the dbt project's
files, the UDFs and the versions of the libraries they and DuckDB compute with, vars passed on top of the
project's), and after rows a build had read were deleted from raw
(`forget_if_read`: a raw-check rollback of an earlier run, an erasure), since an incremental model only ever
hears of keys whose rows landed. The ledger is only ever a reason to read more: a build that fails or is
killed commits nothing, and the next one reads again from the last committed `batch_at` (the models are
idempotent for rows read twice).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from rapport.core.config import PROJECT_ROOT
from rapport.core.warehouse import UTC_NOW, table_exists
from rapport.transform.project import files_fingerprint, project_fingerprint

# Code whose change changes what the models compute, beside the dbt project: the UDFs they call.
_UDF_CODE = ("rapport/transform/udfs.py", "rapport/experiments/distributions.py")
# ... and the libraries that compute values: the UDFs' (a new phonenumbers release re-assigns number ranges)
# and DuckDB itself. An upgrade makes the next build read everything, so old rows do not keep old results.
_VALUE_LIBRARIES = ("phonenumbers", "email-validator", "scipy", "duckdb")
_DDL = """create table if not exists ops.transform_increments (
    state varchar primary key, batch_at timestamp, since timestamp, logic varchar, engine varchar,
    reason varchar, run_id varchar, recorded_at timestamp)"""
# Added later (a ledger written before has neither: its next build tests from `since`, as it did then).
# written_after: the plan's bound for the stable ids' scoped tests (the committed build's written_through);
# written_through: set when the build completes, the latest last_assigned_at of its state.
_ADDED_COLUMNS = ("written_after", "written_through")
# The build times a passing build's state holds at most: (table, column) written with dbt's run_started_at.
_WRITTEN_AT = ("int_customer_ids_assigned", "last_assigned_at")
# vars the runner sets for every build (not the project's logic)
_RUNNER_VARS = ("as_of", "run_id", "since", "batch_at", "written_after")


@dataclass(frozen=True)
class Plan:
    """One build's vars: read the raw rows landed after `since` (None: everything), up to `batch_at`."""

    since: datetime | None
    batch_at: datetime | None
    reason: str  # why the build reads everything, or "incremental"
    # the latest build time of the ids' pairs when the last passing build completed (None: unknown, the
    # scoped tests use `since`); only with `since`
    written_after: datetime | None = None

    @property
    def full_refresh(self) -> bool:
        return self.since is None

    def dbt_vars(self) -> dict[str, str | None]:
        # batch_at stays in the ledger only: rows landing during the build are read by this build and the
        # next (the models are idempotent for rows read twice), so the models need no upper bound.
        dbt_vars = {"since": self.since.isoformat(sep=" ") if self.since else None}
        if self.since and self.written_after:
            dbt_vars["written_after"] = self.written_after.isoformat(sep=" ")
        return dbt_vars


def logic_fingerprint(overrides: Mapping[str, Any] | None = None) -> str:
    """What computes the models: the dbt project's files, the UDFs' code and vars given on top of the project's."""
    udfs = files_fingerprint([PROJECT_ROOT / p for p in _UDF_CODE if (PROJECT_ROOT / p).exists()], PROJECT_ROOT)
    extra = {k: v for k, v in (overrides or {}).items() if k not in _RUNNER_VARS}
    libraries = {name: _installed_version(name) for name in _VALUE_LIBRARIES}
    text = json.dumps([project_fingerprint(), udfs, extra, libraries], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def latest_load(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The latest `_extracted_at` of any raw table (None when nothing landed)."""
    tables = con.execute(
        """select table_name from information_schema.columns
           where table_catalog = current_database() and table_schema = 'raw' and column_name = '_extracted_at'"""
    ).fetchall()
    if not tables:
        return None
    union = " union all ".join(f'select max(_extracted_at) as t from raw."{name}"' for (name,) in tables)
    return con.execute(f"select max(t) from ({union})").fetchall()[0][0]


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ops")
    con.execute(_DDL)
    have = {
        name
        for (name,) in con.execute(
            """select column_name from information_schema.columns where table_catalog = current_database()
               and table_schema = 'ops' and table_name = 'transform_increments'"""
        ).fetchall()
    }
    for column in _ADDED_COLUMNS:
        if column not in have:  # a ledger of an earlier version
            con.execute(f"alter table ops.transform_increments add column {column} timestamp")


def _row(con: duckdb.DuckDBPyConnection, state: str) -> dict[str, Any] | None:
    _ensure(con)
    cur = con.execute("select * from ops.transform_increments where state = ?", [state])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return dict(zip(names, rows[0], strict=True)) if rows else None


def plan(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    engine: str,
    full_refresh: bool = False,
    overrides: Mapping[str, Any] | None = None,
    continue_pending: bool = False,
) -> Plan:
    """The vars of this run's build, recorded as pending. With `continue_pending`, a plan already pending for
    the same run (an earlier dbt task of the build) is reused as it is."""
    if continue_pending:
        pending = _row(con, "pending")
        if pending and pending["run_id"] == run_id:
            return Plan(pending["since"], pending["batch_at"], pending["reason"], pending["written_after"])
    logic = logic_fingerprint(overrides)
    committed = _row(con, "committed")
    if full_refresh:
        reason = "--full-refresh"
    elif committed is None or committed["batch_at"] is None:
        reason = "no complete incremental build yet"
    elif committed["engine"] != engine:
        reason = f"the engine changed ({committed['engine']} -> {engine})"
    elif committed["logic"] != logic:
        reason = "the dbt project, the UDFs, their libraries or the dbt vars changed"
    else:
        reason = "incremental"
    incremental = reason == "incremental" and committed is not None
    since = committed["batch_at"] if incremental and committed else None
    written_after = committed["written_through"] if incremental and committed else None
    result = Plan(since, latest_load(con) or since, reason, written_after)
    con.execute("delete from ops.transform_increments where state = 'pending'")
    con.execute(
        "insert into ops.transform_increments (state, batch_at, since, logic, engine, reason, run_id, "
        f"recorded_at, written_after) values ('pending', ?, ?, ?, ?, ?, ?, {UTC_NOW}, ?)",
        [result.batch_at, result.since, logic, engine, reason, run_id, written_after],
    )
    return result


def commit(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """The pending build of `run_id` completed: the next build reads what landed after its batch_at, and its
    scoped tests of the ids check the pairs stamped after the latest build time there is now."""
    pending = _row(con, "pending")
    if not pending or pending["run_id"] != run_id:
        return False
    written_through = latest_written_at(con)
    con.execute("delete from ops.transform_increments where state = 'committed'")
    con.execute(f"update ops.transform_increments set state = 'committed', recorded_at = {UTC_NOW}, "
                "written_through = ? where state = 'pending'", [written_through])  # fmt: skip
    return True


def latest_written_at(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The latest build time (`last_assigned_at`) in int_customer_ids_assigned, in whichever schema dbt built
    it (None: no such table, or no stamped row).

    Read when a build completes, every pair there passed that build's tests (a whole check, or a scoped one
    over the pairs stamped after the previous bound); a pair written later carries the start of a later dbt
    invocation (run_started_at, the same clock), hence a later time. Retired pairs keep older stamps: the max
    over every row is the same bound."""
    table, column = _WRITTEN_AT
    schemas = con.execute(
        """select table_schema from information_schema.columns
           where table_catalog = current_database() and table_name = ? and column_name = ?""",
        [table, column],
    ).fetchall()
    if not schemas:
        return None
    union = " union all ".join(f'select max("{column}") as t from "{schema}"."{table}"' for (schema,) in schemas)
    return con.execute(f"select max(t) from ({union})").fetchall()[0][0]


def drop_pending(con: duckdb.DuckDBPyConnection) -> None:
    """New raw rows are about to be checked: the next dbt command plans afresh."""
    _ensure(con)
    con.execute("delete from ops.transform_increments where state = 'pending'")


def forget(con: duckdb.DuckDBPyConnection) -> None:
    """The next build reads everything (rows the models had read are gone)."""
    _ensure(con)
    con.execute("delete from ops.transform_increments")


def forget_if_read(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list[Any] | None = None) -> bool:
    """Before deleting or changing the rows of raw `table` matching `where`: when a build has read any of them
    (landed no later than the committed or pending batch_at), the next build reads everything. Returns
    whether it must."""
    if not table_exists(con, "ops", "transform_increments"):
        return False
    read_up_to = con.execute("select max(batch_at) from ops.transform_increments").fetchall()[0][0]
    if read_up_to is None:
        return False
    hit = con.execute(
        f"select count(*) from (select 1 from {table} where ({where}) and _extracted_at <= ? limit 1)",
        [*(params or []), read_up_to],
    ).fetchall()[0][0]
    if hit:
        forget(con)
    return bool(hit)


# The identity labels' state: the label_propagation model's table, the before-images of the edges it has not
# consumed yet (dbt_project/macros/identity_edges_before.sql), the region it hands to the clusters
# (identity_region.sql) and the records the clusters hand to the ids (identity_clusters_changed.sql: clear
# record ids); `__edges_built` are the kept edges of earlier versions (dropped too when found)
LABEL_STATE_TABLES = (
    "int_identity_labels",
    "int_identity_edges_filtered__before",
    "int_identity_labels__region",
    "int_identity_clusters_propagated__changed",
    "int_identity_labels__edges_built",
)


def drop_label_state(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop the identity labels, the edges' before-images pending for them, the region pending for the clusters
    and the clusters' change list pending for the ids; returns what was dropped.

    For an erasure: the labels' rows are record keys (hashes) that cannot all be matched to the erased person
    row by row, and labels left for the person's nodes would make the next incremental labelling differ from a
    full one; the before-images hold clear identifier values, the change list clear record ids. A build that
    finds neither labels every component again (and the clusters, finding no change list, say so to the ids)."""
    found = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
        f"and table_name in ({', '.join('?' for _ in LABEL_STATE_TABLES)}) order by table_schema, table_name",
        list(LABEL_STATE_TABLES),
    ).fetchall()
    dropped = []
    for schema, table in found:
        con.execute(f'drop table if exists "{schema}"."{table}"')
        dropped.append(f"{schema}.{table}")
    return dropped
