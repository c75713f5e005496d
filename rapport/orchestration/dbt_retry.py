"""Retrying a failed dbt layer task rebuilds only what failed.

After each dbt invocation of a layer task (rapport.orchestration.dbt_tasks) its run_results.json is kept under
`{warehouse}/dbt/airflow/<run>/<task>/` while something in it did not succeed. The next attempt of that
task selects, with dbt's `result:` method against those results, the nodes that errored, failed or were
skipped and their children inside the layer, instead of the whole layer. The saved results are dropped when
what the layer reads changes (an extract or check_raw runs again, another layer is built in full) and when
the layer has succeeded, so the next attempt then builds the whole layer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rapport.core.config import Settings

log = logging.getLogger("rapport.orchestration.dbt_retry")

# dbt result statuses a retry has to redo (skips follow from an upstream failure)
UNSUCCESSFUL = {"error", "fail", "runtime error", "skipped"}


def run_results_dir(settings: Settings, run_id: str, task_id: str) -> Path:
    """Where a layer task keeps each attempt's run_results.json (for `result:` selection on retry)."""
    from rapport.orchestration.task_context import safe_name

    return settings.warehouse_dir / "dbt" / "airflow" / safe_name(run_id) / safe_name(task_id)


def retry_selection(results: dict[str, Any], layer_select: str) -> str | None:
    """dbt selection for a retry: the nodes of the previous attempt that did not succeed, and their children
    inside the layer. None when the previous attempt left nothing to redo (or there is none)."""
    if not any(str(r.get("status", "")).lower() in UNSUCCESSFUL for r in results.get("results", [])):
        return None
    # Errored and skipped nodes and their children; a failed test also rebuilds the model it tests (`1+`),
    # since whatever fixed the data or the SQL needs the model rebuilt. `result:` reads --state's
    # run_results.json. Each term is intersected with each part of the layer's selection (a union), so a
    # retry never leaves the layer.
    terms = ("result:error+", "1+result:fail+", "result:skipped+")
    return " ".join(f"{term},{part}" for term in terms for part in layer_select.split())


def narrow_layer_retry(operator: Any, settings: Settings, run_id: str, layer_select: str) -> None:
    """Set the layer operator's selection for this attempt: the whole layer, or only what the saved results
    of its last attempt say did not succeed (with `--state` pointing at them)."""
    # Saved results exist only while the task's last attempt left something undone and nothing it reads
    # changed since (extract, check_raw and full layer builds forget them): this attempt is a retry.
    state_dir = run_results_dir(settings, run_id, operator.task_id)
    previous = state_dir / "run_results.json"
    if not previous.exists():
        operator.select = layer_select
        return
    results = json.loads(previous.read_text())
    narrowed = retry_selection(results, layer_select)
    if narrowed is None:
        operator.select = layer_select
        return
    log.info("retry of %s: rebuilding only what did not succeed last time: %s", operator.task_id, narrowed)
    operator.select = narrowed
    operator.dbt_cmd_flags = [*(operator.dbt_cmd_flags or []), "--state", str(state_dir)]


def forget_retry_state(settings: Settings, run_id: str, keep: str | None = None) -> None:
    """Drop the saved dbt results of a run's layer tasks (all, or all but task `keep`): called when what
    they were built from changes (new raw data, a layer rebuilt in full), so their next attempt rebuilds
    the whole layer instead of only what failed before."""
    from rapport.orchestration.task_context import safe_name

    run_dir = run_results_dir(settings, run_id, "x").parent
    if not run_dir.exists():
        return
    for task_dir in run_dir.iterdir():
        if keep is None or task_dir.name != safe_name(keep):
            shutil.rmtree(task_dir, ignore_errors=True)


def save_run_results(source: Path, context: Any, *, narrowed: bool = False) -> None:
    """Keep the attempt's run_results.json for a retry, only while something in the layer is unsuccessful
    (a layer that succeeded needs no retry: its results are removed, so they don't pile up run after run).
    A full build of a layer also drops the other layers' saved results: their inputs changed."""
    if not source.exists():
        return
    from rapport.orchestration.task_context import run_context, task_settings

    settings = task_settings()
    ctx = run_context(context, settings)
    if not narrowed:
        forget_retry_state(settings, ctx.run_id, keep=context["ti"].task_id)
    target = run_results_dir(settings, ctx.run_id, context["ti"].task_id)
    previous = target / "run_results.json"
    results = json.loads(source.read_text())
    if previous.exists() and narrowed:
        # A narrowed retry only reports what it re-ran: keep the earlier outcome of everything else.
        merged = {r["unique_id"]: r for r in json.loads(previous.read_text()).get("results", [])}
        merged.update({r["unique_id"]: r for r in results.get("results", [])})
        results["results"] = list(merged.values())
    if not any(str(r.get("status", "")).lower() in UNSUCCESSFUL for r in results.get("results", [])):
        shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # the run's directory, once none of its layers needs a retry
        return
    target.mkdir(parents=True, exist_ok=True)
    (target / "run_results.json").write_text(json.dumps(results))
