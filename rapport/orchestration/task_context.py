"""What the DAG files need from Airflow's task context, kept out of them so it can be tested."""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rapport.core.config import Settings, load_settings
from rapport.core.run_context import RunContext
from rapport.pipeline.steps import finish_run

log = logging.getLogger("rapport.airflow")


def task_settings() -> Settings:
    """Settings for a task: environment variables, overridden by the rapport_* Airflow connections.

    The secrets among them (helpdesk token, orders DB password) are registered with Airflow's secrets
    masker, so a task log line that contains one shows `***` instead, wherever the value came from.
    """
    from rapport.orchestration.connections import airflow_connection_getter, env_overrides

    env = dict(os.environ)
    env.update(env_overrides(airflow_connection_getter()))
    settings = load_settings(env)
    _mask(secrets_of(settings))
    return settings


def secrets_of(settings: Settings) -> list[str]:
    """The secret values inside the settings: the helpdesk token and the orders database password."""
    found = [settings.helpdesk_token] if settings.helpdesk_token else []
    try:
        password = urlsplit(settings.orders_db_url).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    return found


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _mask(values: list[str]) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - outside Airflow nothing logs task output
        return
    for value in values:
        mask_secret(value)


def _parse_ts(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def run_context(context: dict[str, Any], settings: Settings | None = None) -> RunContext:
    """The pipeline run this task works for, from the Airflow context. First that applies:

    1. `dag_run.conf`: `interval_end`, `interval_start`, `as_of` (ISO strings), `run_id` (the rapport run
       to continue) and `full_refresh` (rebuild every model and output); `rapport run` and the in-process
       runner use it;
    2. the triggering asset events (an asset-triggered `rapport_transform` run): the extract run they name;
    3. the run's data interval (scheduled runs, backfills, manual runs of `rapport_daily`);
    4. the run's `run_after` (runs without a data interval, e.g. a manual `rapport_transform`).

    The run id is the Airflow run id unless conf or the triggering events name another one. Every task of a
    run computes the same answer, so a task can be retried on its own.
    """
    settings = settings or load_settings()
    dag_run = context["dag_run"]
    conf = dict(getattr(dag_run, "conf", None) or {})
    upstream: dict[str, Any] = {}
    if not conf.get("interval_end"):
        from rapport.orchestration.assets import run_from_events

        upstream = run_from_events(context.get("triggering_asset_events")) or {}
    source = conf if conf.get("interval_end") else upstream
    end = _parse_ts(source.get("interval_end"))
    start = _parse_ts(source.get("interval_start"))
    if end is None:
        end = context.get("data_interval_end") or getattr(dag_run, "run_after", None) or context.get("logical_date")
    start = start or context.get("data_interval_start")
    if conf.get("interval_start"):
        start = _parse_ts(conf["interval_start"])
    as_of_text = conf.get("as_of") or source.get("as_of")
    as_of = date.fromisoformat(str(as_of_text)[:10]) if as_of_text else settings.as_of
    run_id = conf.get("run_id") or source.get("run_id") or dag_run.run_id
    full_refresh = _flag(conf.get("full_refresh", source.get("full_refresh")))
    return RunContext.create(run_id, interval_end=end, interval_start=start, as_of=as_of, full_refresh=full_refresh)


def _flag(value: Any) -> bool:
    """A conf flag given as JSON true/false or as text (`airflow dags trigger --conf`)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def open_transform(settings: Settings, ctx: RunContext, context: dict[str, Any]) -> bool:
    """First task of rapport_transform. A run that continues an extract run (named by its asset events or
    conf) is already in ops.runs; a standalone run (triggered by hand) registers itself. Returns whether
    the run is standalone."""
    from rapport.core.progress import progress
    from rapport.pipeline import steps as pipeline

    standalone = ctx.run_id == context["dag_run"].run_id
    clear_run_status(settings, ctx.run_id)
    if standalone:
        pipeline.start_run(settings, ctx)
    else:
        progress(f"transforming run {ctx.run_id}: data interval ends {ctx.interval_end}, segments as of {ctx.as_of}")
    return standalone


# --- run status markers -------------------------------------------------------------------------------
# A small JSON file per pipeline run, next to the warehouse: `rapport_daily`'s await_transform waits on it.
# It cannot read ops.runs instead: the working DuckDB file admits no reader while a transform writes it.


def safe_name(text: str) -> str:
    """A file-name-safe form of an Airflow run or task id (they contain ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def run_status_path(settings: Settings, run_id: str) -> Path:
    return settings.warehouse_dir / "runs" / f"{safe_name(run_id)}.json"


def write_run_status(settings: Settings, run_id: str, status: str, error: str | None = None) -> None:
    path = run_status_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"run_id": run_id, "status": status, "error": error, "at": datetime.now(UTC).isoformat()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def read_run_status(settings: Settings, run_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(run_status_path(settings, run_id).read_text())
    except FileNotFoundError:
        return None


def clear_run_status(settings: Settings, run_id: str) -> None:
    run_status_path(settings, run_id).unlink(missing_ok=True)


def await_transform_poke(settings: Settings, run_id: str) -> bool:
    """One look of rapport_daily's await_transform: True once the run's transform succeeded; raises (and
    fails the daily run without retries) when it failed; False while it has not finished."""
    status = read_run_status(settings, run_id)
    if status is None:
        log.info(
            "waiting for rapport_transform to finish run %s (it starts when the three source assets are "
            "updated; is rapport_transform unpaused?)",
            run_id,
        )
        return False
    if status.get("status") == "success":
        log.info("rapport_transform finished run %s", run_id)
        return True
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(f"rapport_transform failed for run {run_id}: {status.get('error') or 'see its log'}")


# --- failure callback ---------------------------------------------------------------------------------


def failure_message(context: dict[str, Any], secrets: list[str] | None = None) -> str:
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    try_number = getattr(ti, "try_number", None)
    err = context.get("exception")
    where = f"{dag_id}.{task_id}" + (f" (try {try_number})" if try_number else "")
    message = f"task {where} failed: {type(err).__name__}: {err}" if err else f"task {where} failed"
    return redact(message, secrets or [])


def record_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: the failure goes to ops.runs, the run's status marker and one clear log line.

    It runs after the last retry only (Airflow calls on_retry_callback for earlier attempts).
    """
    from rapport.transform.runner import release_duckdb

    settings: Settings | None = None
    try:
        settings = task_settings()
    except Exception:  # a broken connection definition must not hide the task's own error
        settings = load_settings()
    message = failure_message(context, secrets_of(settings))
    log.error("rapport run failed: %s", message)
    try:
        ctx = run_context(context, settings)
    except Exception as exc:
        log.error("could not work out the run of the failed task: %s", exc)
        return
    try:
        # An in-process dbt task may have left the working file open in this process.
        release_duckdb()
        finish_run(settings, ctx, status="failed", error=message)
    except Exception as exc:  # the callback must never mask the original failure
        log.error("could not record the failure in ops.runs: %s", redact(str(exc), secrets_of(settings)))
    try:
        write_run_status(settings, ctx.run_id, "failed", message)
    except OSError as exc:
        log.error("could not write the run status marker: %s", exc)
