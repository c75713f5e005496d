"""Whether a run can reuse what an earlier run built: nothing it depends on changed since.

A run that landed nothing new (a rerun, a quiet day with the same as-of date) would rebuild exactly the
marts already in the working warehouse. When the inputs' fingerprint equals the one the marts were built
and checked from (rapport.transform.build_state), the run skips the raw checks (no new rows), dbt and the
mart checks (the same marts, already passed), and the report (already written from them); it still
publishes, so the published `ops.runs` records it. `--full-refresh` never reuses anything.
"""

from __future__ import annotations

import duckdb

from rapport.core.run_context import RunContext
from rapport.transform import build_state


def reusable_marts(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> str | None:
    """The fingerprint of this run's inputs when the marts in the warehouse were built and checked from
    exactly them (so this run may skip raw checks, dbt and mart checks); None otherwise."""
    if ctx.full_refresh:
        return None
    current = build_state.inputs_fingerprint(con, as_of=ctx.as_of)
    return current if build_state.recorded(con, "marts") == current else None


def unchanged_message(con: duckdb.DuckDBPyConnection) -> str:
    built_by = build_state.recorded_run(con, "marts") or "an earlier run"
    return f"nothing changed since run {built_by} (no new rows, same project, same as-of date)"
