"""The in-process runner's Airflow metadata database: migrated only when its schema is behind.

`airflow db migrate` (`initdb`) imports every model and walks the migration scripts: seconds on every
`rapport run`, for a schema that changes only when Airflow is upgraded. The database records its schema
revision in `alembic_version`; Airflow lists the head revision of each release that added migrations
(`_REVISION_HEADS_MAP`). When the recorded revision is the head of the installed release and the pool
exists, nothing needs doing. Anything else (a new file, an older schema, an unknown revision, a newer
Airflow than the map knows) runs the migration as before, so a wrong guess costs time, never correctness.

Every `rapport run` adds two dag runs with their task instances, XComs, rendered fields, audit log rows and
asset events (~55 kB a run); nothing reads them after the run (ops.runs is rapport's record). Airflow never
deletes them itself: `airflow db clean` does, on request. The runner does the same with that command's own
function (`run_cleanup`), keeping the newest `RAPPORT_KEEP_RUNS` runs of each DAG (docs/operations.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

log = logging.getLogger("rapport.runner")


def expected_head() -> str | None:
    """The schema revision of the installed Airflow: the head of the latest release in Airflow's map that
    is not newer than it (None when the map offers none)."""
    from airflow import __version__
    from airflow.utils.db import _REVISION_HEADS_MAP
    from packaging.version import Version

    installed = Version(__version__).release
    known = [(Version(v).release, head) for v, head in _REVISION_HEADS_MAP.items()]
    older = [(release, head) for release, head in known if release <= installed]
    return max(older)[1] if older else None


def metadata_state(pool: str | None) -> tuple[str | None, bool]:
    """(revision recorded in the metadata DB or None, whether `pool` exists or no pool is wanted)."""
    from airflow import settings
    from sqlalchemy import inspect, text

    with settings.engine.connect() as con:
        tables = set(inspect(con).get_table_names())
        if "alembic_version" not in tables:
            return None, False
        revision = con.execute(text("select version_num from alembic_version")).scalar()
        if not pool:
            return revision, True
        if "slot_pool" not in tables:
            return revision, False
        found = con.execute(text("select 1 from slot_pool where pool = :pool"), {"pool": pool}).scalar()
        return revision, found is not None


def ensure_metadata_db() -> bool:
    """Migrate the metadata DB if its schema is behind, create the warehouse pool if it is missing and delete
    the records of runs before the newest RAPPORT_KEEP_RUNS (`clean_metadata_history`). Returns whether a
    migration ran."""
    from rapport.orchestration.dag_policy import warehouse_pool

    pool = warehouse_pool()
    revision, pool_ok = metadata_state(pool)
    migrate = revision is None or revision != expected_head()
    if migrate:
        from airflow.utils.db import initdb

        log.info("migrating the Airflow metadata DB (schema revision %s, expected %s)", revision, expected_head())
        initdb()
    if pool and (migrate or not pool_ok):
        from airflow.models.pool import Pool

        # dag.test() ignores pools; created anyway so this metadata DB matches a deployment's.
        Pool.create_or_update_pool(pool, 1, "rapport: one writer of the working DuckDB file", False)
    try:
        clean_metadata_history()
    except Exception as exc:  # noqa: BLE001 (housekeeping: never a reason not to run; retried next run)
        log.warning("could not delete Airflow's records of old runs: %s: %s", type(exc).__name__, exc)
    return migrate


# What `airflow db clean` is asked to clean: the records one dag run leaves. The dag runs go by their start
# date (dag.test() sets it to the run's logical date, which may lie in the past: a backfill, the demo); task
# instances (with their XComs, rendered fields and history, deleted with them), the audit log and asset
# events by the wall-clock time they were written at. Two cut-offs, each below every kept run's own.
RUN_TABLES = ["dag_run"]
WALL_CLOCK_TABLES = ["task_instance", "task_instance_history", "xcom", "log", "asset_event"]


def history_cutoffs(keep: int) -> tuple[datetime, datetime] | None:
    """(start-date cut-off, wall-clock cut-off) below which records belong to none of the newest `keep` dag
    runs (by creation) of any DAG; None when no DAG has more than `keep` plus a fifth runs (`airflow db
    clean` reads every table's schema, ~0.5 s: it runs once per a fifth of `keep` runs, not every run)."""
    from airflow import settings
    from sqlalchemy import text

    slack = max(1, keep // 5)
    with settings.engine.connect() as con:
        counts = con.execute(text("select dag_id, count(*) from dag_run group by dag_id")).fetchall()
        if not counts or max(n for _, n in counts) <= keep + slack:
            return None
        row = con.execute(
            text(
                """select min(start_date), min(created_at) from (
                       select start_date, created_at,
                           row_number() over (partition by dag_id order by id desc) as newest
                       from dag_run)
                   where newest <= :keep"""
            ),
            {"keep": keep},
        ).fetchone()
        if row is None or row[0] is None or row[1] is None:
            return None
        by_start, by_wall_clock = _as_datetime(row[0]), _as_datetime(row[1])
        # Cleaning dag_run also cleans its dependent task_instance by start date, which is wall-clock time: a
        # start-date cut-off in the future of a kept run's tasks (logical dates ahead of the clock) must not
        # reach them, so it is never later than the wall-clock one.
        by_start = min(by_start, by_wall_clock)
        # no dag run before it (the extra runs are recent ones for old dates, a backfill's): nothing to delete
        older = text("select count(*) from dag_run where start_date < :start")
        if not con.execute(older, {"start": by_start.strftime("%Y-%m-%d %H:%M:%S.%f")}).scalar():
            return None
    return by_start, by_wall_clock


def _as_datetime(value: Any) -> datetime:
    from airflow.utils import timezone

    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return timezone.coerce_datetime(parsed)


def clean_metadata_history(keep: int | None = None) -> bool:
    """Delete Airflow's records of the dag runs before the newest `keep` of each DAG (default
    RAPPORT_KEEP_RUNS; 0 keeps everything) with `airflow db clean`'s function, without archive tables.
    Returns whether it ran."""
    if keep is None:
        from rapport.core.config import load_settings

        keep = load_settings().keep_runs
    if keep <= 0:
        return False
    cutoffs = history_cutoffs(keep)
    if cutoffs is None:
        return False
    from airflow.utils.db_cleanup import run_cleanup

    by_start, by_wall_clock = cutoffs
    log.info("deleting Airflow's records of the runs before the newest %d (dag runs started before %s)", keep, by_start)
    for tables, before in ((RUN_TABLES, by_start), (WALL_CLOCK_TABLES, by_wall_clock)):
        run_cleanup(clean_before_timestamp=before, table_names=tables, skip_archive=True, confirm=False)
    return True
