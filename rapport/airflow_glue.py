"""What the DAG file needs from Airflow's task context, kept out of the DAG file so it can be tested."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from rapport.config import Settings, load_settings
from rapport.pipeline import RunContext, finish_run

log = logging.getLogger("rapport.airflow")


def task_settings() -> Settings:
    """Settings for a task: environment variables, overridden by the rapport_* Airflow connections."""
    import os

    from rapport.connections import airflow_connection_getter, env_overrides

    env = dict(os.environ)
    env.update(env_overrides(airflow_connection_getter()))
    return load_settings(env)


def run_context(context: dict[str, Any], settings: Settings | None = None) -> RunContext:
    """The run's identity and data interval, from the Airflow context.

    `dag_run.conf` may override `interval_end` and `as_of` (ISO strings): `rapport run --interval-end` uses
    that. Otherwise the interval is Airflow's data interval, or the run's `run_after` for runs that have
    none (asset-triggered or manual runs on a trigger timetable).
    """
    settings = settings or load_settings()
    dag_run = context["dag_run"]
    conf = dict(getattr(dag_run, "conf", None) or {})
    end: datetime | None = None
    if conf.get("interval_end"):
        end = datetime.fromisoformat(conf["interval_end"])
    else:
        end = context.get("data_interval_end") or getattr(dag_run, "run_after", None) or context.get("logical_date")
    start = context.get("data_interval_start")
    if conf.get("interval_start"):
        start = datetime.fromisoformat(conf["interval_start"])
    as_of = date.fromisoformat(conf["as_of"]) if conf.get("as_of") else settings.as_of
    return RunContext.create(dag_run.run_id, interval_end=end, interval_start=start, as_of=as_of)


def record_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: the failure goes to ops.runs and to the log in one clear line."""
    ti = context.get("task_instance")
    task_id = getattr(ti, "task_id", "?")
    err = context.get("exception")
    message = f"task {task_id} failed: {type(err).__name__}: {err}" if err else f"task {task_id} failed"
    log.error("rapport run failed: %s", message)
    try:
        settings = load_settings()
        finish_run(settings, run_context(context, settings), status="failed", error=message)
    except Exception as exc:  # the callback must never mask the original failure
        log.error("could not record the failure in ops.runs: %s", exc)
