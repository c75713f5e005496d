"""The cosmos operator behind rapport's per-layer dbt tasks (imported only when a DAG renders them)."""

from __future__ import annotations

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
