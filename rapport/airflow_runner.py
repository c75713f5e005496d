"""Run the real `rapport_daily` DAG once, in this process, with no Airflow servers.

Airflow reads its configuration when first imported, so `configure_airflow` must run before any Airflow
import. The metadata database is a SQLite file under the warehouse directory (what `dag.test()` needs);
a real deployment uses PostgreSQL (see docker-compose.yml).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rapport.config import PROJECT_ROOT, Settings

log = logging.getLogger("rapport.runner")
DAG_ID = "rapport_daily"


@dataclass(frozen=True)
class DagOutcome:
    run_id: str
    state: str
    task_states: dict[str, str]
    seconds: float

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
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # Tasks run in this process and read their settings from the environment.
    os.environ["RAPPORT_WAREHOUSE_DIR"] = str(settings.warehouse_dir)
    return home


def migrate_metadata_db() -> None:
    from airflow.utils.db import initdb

    initdb()


@contextmanager
def _quiet_terminal(log_file: Path) -> Iterator[None]:
    """Send everything written to fd 1 and 2 (Airflow's and dbt's logs) to a file, keeping the terminal for
    rapport's progress lines (RAPPORT_PROGRESS_FD)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    previous = os.environ.get("RAPPORT_PROGRESS_FD")
    os.environ["RAPPORT_PROGRESS_FD"] = str(saved_out)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (target, saved_out, saved_err):
            os.close(fd)
        if previous is None:
            os.environ.pop("RAPPORT_PROGRESS_FD", None)
        else:
            os.environ["RAPPORT_PROGRESS_FD"] = previous


def run_dag(
    settings: Settings,
    *,
    interval_end: datetime | None = None,
    as_of: str | None = None,
    log_file: Path | None = None,
) -> DagOutcome:
    """Run `rapport_daily` once; its data interval ends at `interval_end` (default: now).

    With `log_file`, Airflow's and dbt's output goes there and only progress lines reach the terminal.
    """
    configure_airflow(settings)
    with _quiet_terminal(log_file) if log_file else nullcontext():
        return _run(settings, interval_end, as_of)


def _run(settings: Settings, interval_end: datetime | None, as_of: str | None) -> DagOutcome:
    t0 = time.monotonic()
    migrate_metadata_db()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"the DAG files failed to import: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    end = (interval_end or datetime.now(UTC)).replace(microsecond=0)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    conf: dict[str, str] = {"interval_end": end.isoformat()}
    if as_of:
        conf["as_of"] = as_of
    dag_run = dag.test(logical_date=end, run_conf=conf)
    order = {task_id: i for i, task_id in enumerate(t.task_id for t in dag.topological_sort())}
    tis = sorted(dag_run.get_task_instances(), key=lambda ti: order.get(ti.task_id, len(order)))
    states = {ti.task_id: str(ti.state) for ti in tis}
    state = str(dag_run.state)
    return DagOutcome(dag_run.run_id, state, states, time.monotonic() - t0)
