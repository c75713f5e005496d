"""The cosmos operator behind rapport's per-layer dbt tasks (imported only when a DAG renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos.operators.local import DbtBuildLocalOperator

# dbt writes manifest.json (and semantic_manifest.json, graph.gpickle) after every command: 0.2-0.4 s of CPU
# per layer for files in cosmos's temporary project copy, deleted when the task ends and read by nothing
# rapport runs (cosmos's OpenLineage events read them, and nothing emits those here: no OpenLineage
# provider is installed). `--no-write-json` skips them all, run_results.json included: the one artifact
# rapport reads (progress line, retry state) is written by run_dbt_runner from the command's result.
NO_WRITE_JSON = "--no-write-json"


class DbtLayerBuildOperator(DbtBuildLocalOperator):
    """`dbt build` of one layer: `layer_select` is the layer's selection; the interceptor narrows it on a
    retry to what did not succeed in the previous attempt (rapport.orchestration.dbt_tasks.inject_run_context)."""

    def __init__(self, *, layer_select: str, **kwargs: Any) -> None:
        # cautious: dbt adds only tests whose parents are all in the layer; cross-layer tests are in
        # layer_select by name (rapport.orchestration.dbt_tasks.layer_selections)
        kwargs.setdefault("indirect_selection", "cautious")
        super().__init__(select=layer_select, **kwargs)
        self.layer_select = layer_select

    def run_dbt_runner(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any) -> Any:
        """cosmos's in-process dbt call, given the manifest parsed for this run's first layer: the layers
        of one run share it instead of parsing the project each (rapport.transform.manifests)."""
        from cosmos.dbt.project import change_working_directory, environ
        from cosmos.dbt.runner import _cleanup_dbt_adapters
        from dbt.cli.main import dbtRunner

        from rapport.orchestration.task_context import task_settings
        from rapport.transform.dbt_invocation import dbt_log_args
        from rapport.transform.heap import frozen_heap
        from rapport.transform.manifests import parsed_manifest
        from rapport.transform.runner import dbt_dirs

        args = command[1:]  # without the dbt executable
        settings = task_settings()
        target_path, logs = dbt_dirs(settings)
        scratch = target_path.parent / "parse"
        # dbt's log file where rapport's other dbt commands write theirs (docs/operations.md), not in cosmos's
        # temporary project copy, deleted when the task ends; at RAPPORT_DBT_LOG_LEVEL
        log_args = ["--log-path", str(logs), *dbt_log_args(settings)]
        with change_working_directory(cwd), environ(env):
            manifest = parsed_manifest(Path(self.project_dir), args, scratch)
            # What the command starts with lives on after it (Airflow's, Great Expectations' and dbt's modules
            # and objects, the parsed manifest: over a million objects in `rapport run`). Frozen, the full
            # collections during the command (Python's, as objects pile up) and after it (cosmos's cleanup)
            # do not walk it again: 0.3-0.8 s of CPU each. Kept frozen after it, with what survived cosmos's
            # collection, for the tasks after this one: the in-process runner unfreezes at the end of its
            # runs (local_runner); a deployment's task process ends with its task.
            with frozen_heap(keep_frozen=True):
                runner = dbtRunner(manifest=manifest, callbacks=self._dbt_runner_callbacks)
                try:
                    result = runner.invoke([*args, *log_args, NO_WRITE_JSON])
                finally:
                    _cleanup_dbt_adapters()  # as cosmos does: adapters hold semaphores between commands
        write_run_results(result, Path(cwd))
        return result


def write_run_results(result: Any, project_dir: Path) -> Path | None:
    """Write the command's run_results.json where dbt would have (`target/` of the project directory cosmos
    runs it in), from the result dbt returned: the same `RunExecutionResult.write` dbt calls itself. None
    when dbt returned no node results (it could not run: its exception is in `result`)."""
    node_results = getattr(result, "result", None)
    if not hasattr(node_results, "write"):
        return None
    path = project_dir / "target" / "run_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    node_results.write(str(path))
    return path
