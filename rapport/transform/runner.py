"""Run the dbt project in-process (dbt's programmatic `dbtRunner`), against the run's working database.

dbt is imported inside the functions: importing it costs seconds, and most rapport commands don't need it.
Target and log paths go under `{warehouse_dir}/dbt/` so the source tree stays clean.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from rapport.core.config import Settings
from rapport.transform.project import DBT_PROJECT_DIR

# dbt result statuses that mean something went wrong (skips follow from an upstream failure).
_FAILED = {"error", "fail", "runtime error"}


class TransformError(RuntimeError):
    """dbt failed: `failures` holds (node name, message) for every failed model or test."""

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


def dbt_dirs(settings: Settings) -> tuple[Path, Path]:
    """(target path, log path) of dbt for this warehouse."""
    base = settings.warehouse_dir / "dbt"
    return base / "target", base / "logs"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment profiles.yml reads; every dbt invocation of rapport (here and the Airflow tasks) uses it."""
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    settings.temp_dir.mkdir(parents=True, exist_ok=True)
    return {
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "RAPPORT_WORK_DB": str(settings.work_db),
        "RAPPORT_DUCKDB_THREADS": str(settings.duckdb_threads),
        "RAPPORT_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "RAPPORT_DUCKDB_TEMP_DIR": str(settings.temp_dir),
    }


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    # dbt reads env_var() from os.environ at invocation time; restore the caller's environment after.
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _invoke(settings: Settings, command: list[str], extra_args: list[str] | None) -> object:
    from dbt.cli.main import dbtRunner

    from rapport.transform.manifests import parsed_manifest

    target, logs = dbt_dirs(settings)
    args = [
        *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target),
        "--log-path", str(logs),
        "--no-use-colors",  # plain text in logs and in TransformError messages
        *(extra_args or []),
    ]  # fmt: skip
    with _environ(dbt_env(settings)):
        # parsed once for all commands of a run with the same vars (rapport.transform.manifests)
        manifest = parsed_manifest(DBT_PROJECT_DIR, args, target.parent / "parse")
        try:
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


def _failures(run_result: object) -> list[tuple[str, str]]:
    failures = []
    for node_result in getattr(run_result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status)).lower()
        if status in _FAILED:
            node = node_result.node
            name = f"{node.resource_type}:{node.name}" if hasattr(node, "resource_type") else str(node)
            message = node_result.message or ""
            if getattr(node_result, "failures", None):
                message = f"{message} ({node_result.failures} failing rows)".strip()
            failures.append((name, message))
    return failures


def _split_vars(args: list[str]) -> tuple[list[str], dict[str, object]]:
    import yaml  # dbt's own dependency; --vars accepts YAML (a superset of JSON)

    rest: list[str] = []
    merged: dict[str, object] = {}
    it = iter(args)
    for arg in it:
        if arg == "--vars" or arg.startswith("--vars="):
            text = arg.split("=", 1)[1] if "=" in arg else next(it, "{}")
            value = yaml.safe_load(text) or {}
            if not isinstance(value, dict):
                raise TransformError(f"--vars must be a mapping, got {text!r}")
            merged.update(value)
        else:
            rest.append(arg)
    return rest, merged


def dbt_build(
    settings: Settings,
    *,
    run_id: str,
    as_of: date,
    select: list[str] | None = None,
    extra_args: list[str] | None = None,
    unit_tests: bool = False,
    full_refresh: bool = False,
) -> None:
    """`dbt build` (models and data tests) with vars as_of and run_id; TransformError on any failure.

    dbt unit tests check SQL on fixed fixtures, not the data: production builds leave them out and the test
    suite runs them (`unit_tests=True`). `full_refresh` rebuilds incremental models from scratch (dbt's
    `--full-refresh`). A `--vars` in extra_args (JSON or YAML mapping) is merged over as_of/run_id instead of
    replacing them, e.g. `extra_args=["--vars", '{"max_identifier_fanout": 3}']`.
    """
    from rapport.transform.build_state import invalidate

    extra, overrides = _split_vars(extra_args or [])
    dbt_vars = {"as_of": as_of.isoformat(), "run_id": run_id, **overrides}
    command = ["build", "--vars", json.dumps(dbt_vars)]
    if select:
        command += ["--select", *select]
    if not unit_tests:
        command += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        command.append("--full-refresh")
    invalidate(settings)  # the marts are about to change: nothing built before may be reused
    result = _invoke(settings, command, extra)
    failures = _failures(result.result)
    if failures or not result.success:
        detail = "; ".join(f"{name}: {msg}" for name, msg in failures) or "see the dbt log"
        raise TransformError(
            f"dbt build failed ({len(failures)} failed nodes, log under {dbt_dirs(settings)[1]}): {detail}",
            failures,
        )


def dbt_docs_generate(settings: Settings, *, run_id: str | None = None, as_of: date | None = None) -> Path:
    """`dbt docs generate --static` into `{warehouse_dir}/dbt/target`; returns that directory.

    `static_index.html` there embeds the manifest and catalog, so it opens from disk without a web server.
    With the run's vars, the manifest parsed for its build is reused (rapport.transform.manifests).
    """
    command = ["docs", "generate", "--static"]
    if run_id and as_of:
        command += ["--vars", json.dumps({"as_of": as_of.isoformat(), "run_id": run_id})]
    result = _invoke(settings, command, None)
    if not result.success:
        raise TransformError(f"dbt docs generate failed, log under {dbt_dirs(settings)[1]}")
    return dbt_dirs(settings)[0]
