"""Scheduling, retry and timeout policy shared by rapport's two DAG files (dags/rapport_*.py).

Environment (read when a DAG file is parsed; scheduler, dag-processor and workers must agree):

| variable | meaning | default |
|---|---|---|
| `RAPPORT_CATCHUP` | `rapport_daily` creates runs for every missed day since `RAPPORT_START_DATE` | `false` |
| `RAPPORT_START_DATE` | first data interval of `rapport_daily` (ISO date, UTC) | `2025-01-01` |
| `RAPPORT_AIRFLOW_POOL` | the one-slot pool every warehouse-writing task runs in (empty: none) | `rapport_warehouse` |
| `RAPPORT_DBT_TASKS` | dbt task granularity: `layer` or `model` (rapport.orchestration.dbt_tasks) | `layer` |
| `RAPPORT_EXTRACT_RETRIES`, `RAPPORT_EXTRACT_RETRY_DELAY` | extract retries and first wait (seconds) | `3`, `30` |
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from typing import Any

DAILY_DAG_ID = "rapport_daily"
TRANSFORM_DAG_ID = "rapport_transform"
DEFAULT_POOL = "rapport_warehouse"


# Sources are remote systems: transient failures (a 503, a reset connection, a locked file) deserve retries
# with backoff. Transforms, checks and publishing are deterministic given the landed data: retrying them
# would only repeat the failure, so they fail at once.
def extract_retries(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Retry policy of the extract tasks: `RAPPORT_EXTRACT_RETRIES` (default 3) attempts more, the first after
    `RAPPORT_EXTRACT_RETRY_DELAY` seconds (default 30), each wait about twice the previous (Airflow adds
    jitter: 30-60 s, 60-120 s, 120-240 s), never more than 10 minutes."""
    env = env if env is not None else dict(os.environ)
    return {
        "retries": int(env.get("RAPPORT_EXTRACT_RETRIES") or 3),
        "retry_delay": timedelta(seconds=float(env.get("RAPPORT_EXTRACT_RETRY_DELAY") or 30)),
        # a multiplier in Airflow 3 (True would mean 1.0: a constant delay)
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    }


# Task-level timeouts: a hung source or a runaway query fails its task instead of holding the warehouse.
TIMEOUTS: dict[str, timedelta] = {
    "start": timedelta(minutes=5),
    "extract": timedelta(minutes=45),
    "check": timedelta(minutes=30),
    "dbt": timedelta(minutes=60),
    "predict": timedelta(minutes=20),
    "publish": timedelta(minutes=15),
    "report": timedelta(minutes=20),
}
# How long rapport_daily waits for the transform of its own run, and how often it looks.
AWAIT_TRANSFORM: dict[str, Any] = {
    "timeout": timedelta(hours=4),
    "poke_interval": timedelta(seconds=10),
    "execution_timeout": timedelta(hours=4, minutes=5),  # poke mode: the sensor's own timeout comes first
}


def env_flag(name: str, default: bool = False, env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r}: use true or false")


def catchup(env: dict[str, str] | None = None) -> bool:
    return env_flag("RAPPORT_CATCHUP", False, env)


def start_date(env: dict[str, str] | None = None) -> datetime:
    from datetime import UTC

    text = (env if env is not None else os.environ).get("RAPPORT_START_DATE") or "2025-01-01"
    return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)


def warehouse_pool(env: dict[str, str] | None = None) -> str | None:
    value = (env if env is not None else os.environ).get("RAPPORT_AIRFLOW_POOL", DEFAULT_POOL).strip()
    return value or None


def daily_timetable() -> Any:
    """One run per UTC day with a real data interval: the run of logical date D covers [D, D+1) and starts
    at D+1 00:00. (`schedule="@daily"` in Airflow 3 is a trigger timetable with zero-length intervals.)"""
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def default_args(pool: str | None) -> dict[str, Any]:
    """Every task: no retries unless it says so, the failure callback, a timeout, the warehouse pool."""
    from rapport.orchestration.task_context import record_failure

    args: dict[str, Any] = {
        "owner": "rapport",
        "retries": 0,
        "on_failure_callback": record_failure,
        "execution_timeout": TIMEOUTS["dbt"],
    }
    if pool:
        args["pool"] = pool
    return args
