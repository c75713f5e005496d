"""Run the real rapport DAGs once, in this process, with no Airflow servers (`rapport run`).

A pipeline run is a `rapport_daily` run (start, extract) followed by the `rapport_transform` run it
triggers through its source assets (checks, dbt, publish, report). In-process there is no scheduler to
react to asset events, so the runner plays its part: it runs `rapport_transform` right after
`rapport_daily`, for the same run (conf `run_id`, interval, as_of), and marks `rapport_daily`'s
await_transform done instead of letting it wait.

Airflow reads its configuration when first imported, so `configure_airflow` must run before any Airflow
import. The metadata database is a SQLite file under the warehouse directory (what `dag.test()` needs),
migrated only when its schema is behind (rapport.orchestration.metadata_db); a real deployment uses
PostgreSQL (docker-compose.yml).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from rapport.core.config import PROJECT_ROOT, Settings
from rapport.core.progress import quiet_terminal

log = logging.getLogger("rapport.runner")
DAG_ID = "rapport_daily"
TRANSFORM_DAG_ID = "rapport_transform"
AWAIT_TASK = "await_transform"


@dataclass(frozen=True)
class DagOutcome:
    """One pipeline run: `run_id` is the rapport run id (the rapport_daily run's), `task_states` holds the
    tasks of both DAGs in execution order."""

    run_id: str
    state: str
    task_states: dict[str, str]
    seconds: float
    interval_end: str | None = None
    dag_runs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "success"


def configure_airflow(settings: Settings) -> Path:
    home = settings.warehouse_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # cosmos' partial-parse cache, per warehouse: concurrent runs on other warehouses don't share it
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "DO_NOT_TRACK": "1",
        # Someone is waiting at the terminal: retry a failing source once, after 5-10 s, where a deployment
        # retries 3 times over about 7 minutes (the extractors retry transient HTTP errors themselves).
        "RAPPORT_EXTRACT_RETRIES": "1",
        "RAPPORT_EXTRACT_RETRY_DELAY": "5",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # Tasks run in this process and read their settings from the environment.
    os.environ["RAPPORT_WAREHOUSE_DIR"] = str(settings.warehouse_dir)
    return home


def run_dag(
    settings: Settings,
    *,
    interval_end: datetime | None = None,
    as_of: str | None = None,
    log_file: Path | None = None,
    full_refresh: bool = False,
) -> DagOutcome:
    """Run the pipeline once; its data interval ends at `interval_end` (default: now).

    With `log_file`, Airflow's and dbt's output goes there and only progress lines reach the terminal.
    `full_refresh` rebuilds every model from scratch (dbt's `--full-refresh`) and every output, reusing
    nothing an earlier run built; extraction is unchanged (it lands what changed since the last run).
    """
    configure_airflow(settings)
    with quiet_terminal(log_file) if log_file else nullcontext():
        close_abandoned_runs(settings)
        with _collector_paused():
            dags = _load_dags()
        end = _utc(interval_end or datetime.now(UTC))
        conf: dict[str, Any] = {"interval_end": end.isoformat()}
        if as_of:
            conf["as_of"] = as_of
        if full_refresh:
            conf["full_refresh"] = True
        with _long_lived_frozen():
            return _run_pipeline(dags, logical_date=end, conf=conf)


def backfill(settings: Settings, start: date, end: date, *, log_file: Path | None = None) -> list[DagOutcome]:
    """Run the pipeline for each UTC day from `start` to `end` (inclusive), oldest first, as a scheduler's
    backfill would: the run for day D gets rapport_daily's data interval [D, D+1) from its timetable (no
    conf). Stops at the first failed day, since later days build on it. Returns one outcome per day run.

    On a deployment, `airflow backfill create --dag-id rapport_daily --from-date D1 --to-date D2` does the
    same through the scheduler (see docs/airflow.md).
    """
    if end < start:
        raise ValueError(f"backfill end {end} is before its start {start}")
    configure_airflow(settings)
    outcomes: list[DagOutcome] = []
    with quiet_terminal(log_file) if log_file else nullcontext():
        close_abandoned_runs(settings)
        with _collector_paused():
            dags = _load_dags()
        day = start
        with _long_lived_frozen():
            while day <= end:
                # dag.test infers a manual run's interval as the last complete one before its logical date:
                # logical date D+1 00:00 gives [D, D+1), the interval of the scheduled run of day D.
                next_midnight = datetime.combine(day + timedelta(days=1), dtime.min, tzinfo=UTC)
                outcome = _run_pipeline(dags, logical_date=next_midnight, conf={})
                outcomes.append(outcome)
                if not outcome.ok:
                    break
                _collect_between_runs()
                day += timedelta(days=1)
    return outcomes


ABANDONED = "abandoned: its process stopped before the run finished (killed, or the machine went down)"


def close_abandoned_runs(settings: Settings) -> list[str]:
    """Mark the runs ops.runs still shows as running as failed, with error `ABANDONED`; returns their ids.

    A run whose process is killed (or whose machine goes down) never gets to record its end, and its row
    would say 'running' for ever, in the published ops.runs too. The in-process runner's callers hold the
    warehouse's run lock (`rapport run`, `rapport backfill`), so no other run can be under way here: any
    such row belongs to a process that is gone. (Not for a deployment's runs: they don't take that lock.)
    """
    if not settings.work_db.exists():
        return []
    from rapport.core.progress import progress
    from rapport.core.warehouse import open_warehouse, table_exists

    with open_warehouse(settings) as con:
        if not table_exists(con, "ops", "runs"):
            return []
        rows = con.execute(
            "update ops.runs set status = 'failed', error = coalesce(error, ?) where status = 'running' "
            "returning run_id",
            [ABANDONED],
        ).fetchall()
    abandoned = sorted(r[0] for r in rows)
    if abandoned:
        progress(f"earlier run(s) that stopped without finishing, now marked failed: {', '.join(abandoned)}")
    return abandoned


def _utc(ts: datetime) -> datetime:
    ts = ts.replace(microsecond=0)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _load_dags() -> dict[str, Any]:
    from rapport.orchestration.dbt_tasks import ensure_manifest
    from rapport.orchestration.execution_api import prepare_execution_api
    from rapport.orchestration.metadata_db import ensure_metadata_db

    # Before the DAG files are parsed: they render the dbt tasks from this manifest.
    ensure_manifest()
    ensure_metadata_db()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"the DAG files failed to import: {bag.import_errors}")
    dags = {dag_id: bag.get_dag(dag_id) for dag_id in (DAG_ID, TRANSFORM_DAG_ID)}
    # The server the tasks' Task SDK clients call, with the routes of their API version only; built before
    # the runs freeze what is loaded (it lives as long as the process)
    prepare_execution_api()
    return dags


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading Airflow, the DAG files and the execution API with the garbage collector paused.

    Loading makes over 400,000 objects that live as long as the process (modules, classes, DAGs, routes) and
    next to no garbage: the six full collections Python made meanwhile in `rapport run` (every time the heap
    had grown by a quarter) walked the growing heap each time and found a few hundred objects (0.6 s of CPU
    in all; 0.4-0.5 s less to the first task with the pause). One collection at the end frees what loading
    left, before the runs freeze the rest (`_long_lived_frozen`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
    if enabled:
        gc.collect()


@contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """The runs of this process with the garbage collector's view of what is loaded so far frozen.

    Airflow, the DAGs and the modules loaded before the first task (over 500,000 objects) live as long as
    the process; left in the collector's generations, every full collection walks them again: cosmos
    collects after each dbt command, Python whenever enough new objects pile up (0.3 s or more each in
    `rapport run`). `gc.freeze()` moves them out of its way (the dbt layer tasks freeze again before and
    after each dbt command: rapport.orchestration.dbt_operators). Unfrozen at the end, so that a later run in the same
    process (tests, a daily loop) collects what this one left, as without it.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _collect_between_runs() -> None:
    """Between two days of a backfill: what the last run froze is not all long-lived (its DAG runs, task
    instances, dbt results). Unfrozen, collected once, frozen again: a backfill's memory does not grow with
    its days, and the next day's collections still skip what lives on."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _states(dag: Any, dag_run: Any, skip: set[str] = frozenset()) -> dict[str, str]:
    order = {task_id: i for i, task_id in enumerate(t.task_id for t in dag.topological_sort())}
    tis = sorted(dag_run.get_task_instances(), key=lambda ti: order.get(ti.task_id, len(order)))
    return {ti.task_id: str(ti.state) for ti in tis if ti.task_id not in skip}


def _run_pipeline(dags: dict[str, Any], *, logical_date: datetime, conf: dict[str, Any]) -> DagOutcome:
    t0 = time.monotonic()
    daily, transform = dags[DAG_ID], dags[TRANSFORM_DAG_ID]
    daily_run = daily.test(logical_date=logical_date, run_conf=conf, mark_success_pattern=AWAIT_TASK)
    states = _states(daily, daily_run, skip={AWAIT_TASK})
    runs = {DAG_ID: daily_run.run_id}
    ctx = _run_context_of(daily_run)
    failed = any(state != "success" for state in states.values())
    if failed:
        return DagOutcome(daily_run.run_id, "failed", states, time.monotonic() - t0, ctx["interval_end"], runs)
    transform_run = transform.test(logical_date=logical_date, run_conf=ctx)
    runs[TRANSFORM_DAG_ID] = transform_run.run_id
    states.update(_states(transform, transform_run))
    state = str(transform_run.state)
    return DagOutcome(daily_run.run_id, state, states, time.monotonic() - t0, ctx["interval_end"], runs)


def _run_context_of(dag_run: Any) -> dict[str, Any]:
    """The rapport run context the daily run's tasks computed (same function, same inputs), as conf for the
    transform run that continues it."""
    from rapport.orchestration.task_context import run_context

    context = {
        "dag_run": dag_run,
        "data_interval_start": dag_run.data_interval_start,
        "data_interval_end": dag_run.data_interval_end,
        "logical_date": dag_run.logical_date,
    }
    return run_context(context).to_dict()
