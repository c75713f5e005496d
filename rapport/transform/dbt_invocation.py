"""One in-process dbt command (dbt's programmatic `dbtRunner`) against a profiles.yml target, with the
environment profiles.yml reads; what rapport.transform.runner and the Spark engine's modules build on.

dbt is imported inside the functions: importing it costs seconds, and most rapport commands don't need it.
Target and log paths go under `{warehouse_dir}/dbt/` so the source tree stays clean.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rapport.core.config import Settings
from rapport.core.environ import environ_set
from rapport.transform.project import DBT_PROJECT_DIR


class TransformError(RuntimeError):
    """dbt failed: `failures` holds (node name, message) for every failed model or test."""

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


def dbt_dirs(settings: Settings, target: str = "work") -> tuple[Path, Path]:
    """(target path, log path) of dbt for this warehouse; each profiles.yml target has its own target path,
    so switching between them keeps dbt's partial parsing."""
    base = settings.warehouse_dir / "dbt"
    return base / ("target" if target == "work" else f"target-{target}"), base / "logs"


def dbt_log_args(settings: Settings) -> list[str]:
    """The level of dbt's log file, RAPPORT_DBT_LOG_LEVEL (dbt's own default is debug: every statement it sends,
    19,521 lines in a 100k-person day build against 546 at info, which keeps each node's start and end,
    warnings, errors and what the models log; ~0.1 s of CPU less: bench/RESULTS.md). For every in-process dbt
    command rapport runs."""
    return ["--log-level-file", settings.dbt_log_level]


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment profiles.yml reads; every dbt invocation of rapport (here and the Airflow tasks) uses it."""
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    settings.temp_dir.mkdir(parents=True, exist_ok=True)
    return {
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "RAPPORT_WAREHOUSE_DIR": str(settings.warehouse_dir),
        "RAPPORT_WORK_DB": str(settings.work_db),
        "RAPPORT_DUCKDB_THREADS": str(settings.duckdb_threads),
        "RAPPORT_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "RAPPORT_DUCKDB_TEMP_DIR": str(settings.temp_dir),
        "RAPPORT_SPARK_MASTER": settings.spark_master,
    }


def invoke(
    settings: Settings,
    command: list[str],
    extra_args: list[str] | None = None,
    *,
    target: str = "work",
    env: dict[str, str] | None = None,
    target_path: Path | None = None,
) -> object:
    """One in-process dbt command against profiles.yml's `target`; `env` overrides dbt_env(settings).

    Returns dbt's result object; TransformError when dbt could not run at all.
    """
    from dbt.cli.main import dbtRunner

    from rapport.transform.heap import frozen_heap
    from rapport.transform.manifests import parsed_manifest

    default_target_path, logs = dbt_dirs(settings, target)
    args = [
        *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", target,
        "--target-path", str(target_path or default_target_path),
        "--log-path", str(logs),
        *dbt_log_args(settings),
        "--no-use-colors",  # plain text in logs and in TransformError messages
        *(extra_args or []),
    ]  # fmt: skip
    with environ_set({**dbt_env(settings), **(env or {})}):
        # parsed once for all commands of a run with the same target and vars (rapport.transform.manifests)
        manifest = (
            None
            if command[0] == "parse"
            else parsed_manifest(DBT_PROJECT_DIR, args, (target_path or default_target_path).parent / f"parse-{target}")
        )
        try:
            with frozen_heap():
                result = dbtRunner(manifest=manifest).invoke(args)
        finally:
            release_duckdb()
    if result.exception is not None:
        raise TransformError(f"dbt {command[0]} could not run: {result.exception}") from result.exception
    return result


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an in-process dbt call.

    dbt-duckdb caches its environment (and the open database) on a class attribute; left open, any later
    `duckdb.connect()` of the work file in this process with other settings (read_only, publish, the next
    task of an in-process run) fails with "Can't open a connection to same database file with a different
    configuration". A no-op when dbt-duckdb was never imported.
    """
    if "dbt.adapters.duckdb.connections" not in sys.modules:
        return
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()
