"""The cosmos operator behind rapport's per-layer dbt tasks (imported only when a DAG renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos.operators.local import DbtBuildLocalOperator


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
        from rapport.transform.manifests import parsed_manifest
        from rapport.transform.runner import dbt_dirs

        args = command[1:]  # without the dbt executable
        scratch = dbt_dirs(task_settings())[0].parent / "parse"
        with change_working_directory(cwd), environ(env):
            manifest = parsed_manifest(Path(self.project_dir), args, scratch)
            runner = dbtRunner(manifest=manifest, callbacks=self._dbt_runner_callbacks)
            try:
                return runner.invoke(args)
            finally:
                _cleanup_dbt_adapters()  # as cosmos does: adapters hold semaphores between commands
