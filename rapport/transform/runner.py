"""Run the dbt project in-process (dbt's programmatic `dbtRunner`), against the run's working database.

dbt is imported inside the functions: importing it costs seconds, and most rapport commands don't need it.
Target and log paths go under `{warehouse_dir}/dbt/` so the source tree stays clean.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from rapport.core.config import Settings
from rapport.transform import increments

# the invocation itself; names kept importable from here, where other packages always found them
from rapport.transform.dbt_invocation import (  # noqa: F401
    DBT_PROJECT_DIR,
    TransformError,
    dbt_dirs,
    dbt_env,
    environ_set,
    invoke,
    release_duckdb,
)

# dbt result statuses that mean something went wrong (skips follow from an upstream failure).
_FAILED = {"error", "fail", "runtime error"}


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
    `--full-refresh`; a build also reads everything when rapport.transform.increments says it must, and
    otherwise only what landed since the last complete build). A `--vars` in extra_args (JSON or YAML
    mapping) is merged over as_of/run_id instead of replacing them,
    e.g. `extra_args=["--vars", '{"max_identifier_fanout": 3}']`.
    With RAPPORT_ENGINE=spark the models build on Spark (rapport.transform.spark_exchange): raw tables and the
    incremental models' state go to Spark as Parquet first, and the built tables come back into the working
    DuckDB file after, so what follows the build reads the same tables whichever engine built them.
    """
    from rapport.transform.build_state import invalidate

    extra, overrides = _split_vars(extra_args or [])
    increment = plan_increment(settings, run_id, full_refresh=full_refresh, overrides=overrides)
    dbt_vars = json.dumps({"as_of": as_of.isoformat(), "run_id": run_id, **increment.dbt_vars(), **overrides})
    command = ["build", "--vars", dbt_vars]
    if select:
        command += ["--select", *select]
    if not unit_tests:
        command += ["--exclude-resource-type", "unit_test"]
    if increment.full_refresh:
        command.append("--full-refresh")
    invalidate(settings)  # the marts are about to change: nothing built before may be reused
    if settings.engine != "spark":
        raise_on_failures(settings, invoke(settings, command, extra), "build")
    else:
        from rapport.transform import spark_exchange

        # parsed with the run's vars, so the build that follows reuses the parse
        manifest = parse_manifest(settings, ["--vars", dbt_vars])
        spark_exchange.load_into_spark(settings, manifest)
        raise_on_failures(settings, invoke(settings, command, extra, target="spark"), "build")
        spark_exchange.collect_from_spark(settings, manifest)
    if not select:  # the whole project read what landed up to batch_at: the next build starts there
        commit_increment(settings, run_id)


def _work_db(settings: Settings) -> Any:
    import duckdb

    # the caller holds the writer lock (a dbt step): not open_warehouse(), whose lock would wait on it
    return duckdb.connect(str(settings.work_db), config=settings.duckdb_config())


def plan_increment(
    settings: Settings,
    run_id: str,
    *,
    full_refresh: bool = False,
    overrides: dict[str, object] | None = None,
    continue_pending: bool = False,
) -> increments.Plan:
    """This build's `since` and `batch_at` (rapport.transform.increments), recorded as the run's pending plan."""
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    with _work_db(settings) as con:
        return increments.plan(con, run_id=run_id, engine=settings.engine, full_refresh=full_refresh,
                               overrides=overrides, continue_pending=continue_pending)  # fmt: skip


def commit_increment(settings: Settings, run_id: str) -> bool:
    """The run's dbt build completed: the next one reads only what lands after its batch_at."""
    if not settings.work_db.exists():
        return False
    with _work_db(settings) as con:
        return increments.commit(con, run_id)


def raise_on_failures(settings: Settings, result: object, what: str) -> None:
    """TransformError naming every failed node of a dbt result, if any failed."""
    failures = _failures(result.result)  # type: ignore[attr-defined]
    if failures or not result.success:  # type: ignore[attr-defined]
        detail = "; ".join(f"{name}: {msg}" for name, msg in failures) or "see the dbt log"
        raise TransformError(
            f"dbt {what} failed ({len(failures)} failed nodes, log under {dbt_dirs(settings)[1]}): {detail}",
            failures,
        )


def parse_manifest(settings: Settings, extra_args: list[str] | None = None) -> dict[str, Any]:
    """`dbt parse` for the engine's target; the manifest as JSON (nodes, sources, their configs)."""
    result = invoke(settings, ["parse"], extra_args, target=settings.dbt_target)
    if not result.success:  # type: ignore[attr-defined]
        raise TransformError(f"dbt parse failed, log under {dbt_dirs(settings)[1]}")
    return json.loads((dbt_dirs(settings, settings.dbt_target)[0] / "manifest.json").read_text())


def dbt_docs_generate(settings: Settings, *, run_id: str | None = None, as_of: date | None = None) -> Path:
    """`dbt docs generate --static` into `{warehouse_dir}/dbt/target`; returns that directory.

    `static_index.html` there embeds the manifest and catalog, so it opens from disk without a web server.
    With the run's vars, the manifest parsed for its build is reused (rapport.transform.manifests). Always
    against the working DuckDB file: with RAPPORT_ENGINE=spark the built tables are back in it too.
    """
    command = ["docs", "generate", "--static"]
    if run_id and as_of:
        command += ["--vars", json.dumps({"as_of": as_of.isoformat(), "run_id": run_id})]
    result = invoke(settings, command)
    if not result.success:
        raise TransformError(f"dbt docs generate failed, log under {dbt_dirs(settings)[1]}")
    return dbt_dirs(settings)[0]
