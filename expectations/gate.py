"""The data-quality gates the pipeline calls: raw suites after extraction, mart suites after dbt.

    from rapport.expectations.gate import run_raw_checks, run_mart_checks, CheckFailed

Importing this module is cheap: Great Expectations is imported inside the validating functions only
(through `gx_runner`; by the raw gate in a thread while its frames are exported). Both gates build one frame per
suite with DuckDB through `con`, validate all of them in one GX checkpoint (Data Docs under
`{warehouse}/data_docs/`), write one `ops.check_results` row per expectation, and raise `CheckFailed` when
an error-severity expectation failed. Warnings are recorded and returned in the `CheckSummary`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import ModuleType

import duckdb

from rapport.core.config import Settings
from rapport.expectations.catalog import SuiteSpec, expectation_label, suites_for
from rapport.expectations.frames import ExportedFrame, Frame, contracts_by_table, export_frame, raw_frame
from rapport.expectations.mart_frames import mart_frame
from rapport.expectations.results import (
    CheckFailed,
    CheckSummary,
    Outcome,
    ensure_check_results,
    failure_message,
    sample_offending_rows,
    write_outcomes,
)
from rapport.expectations.volume import volume_frame

__all__ = ["CheckFailed", "CheckSummary", "Outcome", "run_mart_checks", "run_raw_checks"]

log = logging.getLogger(__name__)

# Clock skew between sources and the warehouse is minutes; a day also absorbs a demo generated up to
# the end of today. A timestamp later than this is a unit or timezone bug (or a test record).
FUTURE_TOLERANCE = timedelta(days=1)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def run_raw_checks(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    run_id: str,
    interval_end: datetime,
    every_run_only: bool = False,
) -> CheckSummary:
    """Validate the rows landed since the last passing check (plus volumes) before transformation.

    `every_run_only`: only the suites marked `"every_run": true` in their meta (a run that landed nothing
    new since the checks last passed); without such suites nothing is validated and GX is not imported.
    """
    ensure_check_results(con)
    end = _naive_utc(interval_end)
    now = datetime.now(UTC).replace(tzinfo=None)
    params = {"max_allowed_time": (max(end, now) + FUTURE_TOLERANCE).isoformat()}
    specs = [s for s in suites_for("raw") if s.every_run or not every_run_only]
    if not specs:
        return CheckSummary(gate="raw", run_id=run_id, outcomes=[], data_docs_index=None)
    with _gx_imported_meanwhile() as runner:
        contracts = contracts_by_table(specs)
        frames = [
            volume_frame(con, contracts, run_id=run_id, interval_end=end) if s.name == "raw_volume" else raw_frame(s)
            for s in specs
        ]
        return _run_gate(con, settings, "raw", specs, frames, runner, run_id=run_id, params=params)


def run_mart_checks(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, whole_frames: bool = False
) -> CheckSummary:
    """Validate the marts (keys, orphans, ranges, reconciliation) before publishing.

    Great Expectations sees only the rows of each mart an expectation could object to (candidate_rows.py),
    with the same results as over every row; `whole_frames`: every row, as the gate did before (the frames
    under gx/frames/ then hold whole marts).
    """
    ensure_check_results(con)
    specs = suites_for("mart")
    # GX imported after the export, not beside it as in the raw gate: building the mart frames imports the
    # prediction code (numpy, scipy, pandas), which GX's import also imports; two threads importing one package
    # at once is best avoided
    frames = [mart_frame(s, candidates=not whole_frames) for s in specs]
    return _run_gate(con, settings, "mart", specs, frames, None, run_id=run_id, params={})


@contextmanager
def _gx_imported_meanwhile() -> Iterator[Future[ModuleType]]:
    """`gx_runner` (Great Expectations: 3-4 s to import, the raw gate's largest part at 100k people) imported in a
    thread while the raw gate's frames are queried and exported: DuckDB releases the GIL while it works, and
    those queries import nothing. Only a gate that validates something imports it. The import's
    `warnings.catch_warnings` swaps the process's warning filters for its duration; the frame queries neither
    change them nor rely on a warning being shown."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-gx-import") as pool:
        yield pool.submit(importlib.import_module, "rapport.expectations.gx_runner")


def _run_gate(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    gate: str,
    specs: list[SuiteSpec],
    frames: list[Frame],
    runner: Future[ModuleType] | None,
    *,
    run_id: str,
    params: dict[str, object],
) -> CheckSummary:
    """`runner`: gx_runner being imported meanwhile (`_gx_imported_meanwhile`), or None to import it here."""
    frame_dir = settings.warehouse_dir / "gx" / "frames" / gate
    by_name = {s.name: s for s in specs}
    exported: dict[str, ExportedFrame] = {}
    for f in frames:
        spec = by_name[f.suite]
        exported[f.suite] = export_frame(
            con,
            f,
            frame_dir / f"{f.suite}.parquet",
            chunk_rows=settings.check_chunk_rows,
            chunk_key=spec.key if spec.splittable else (),
        )
    if runner is None:
        from rapport.expectations import gx_runner  # seconds to import: only when validating
    else:
        gx_runner = runner.result()  # raises what the import raised
    outcomes, docs_index = gx_runner.validate(
        settings.warehouse_dir,
        gate,
        specs,
        {n: e.files for n, e in exported.items()},
        run_id=run_id,
        params=params,
        frame_rows={n: e.frame_rows for n, e in exported.items() if e.frame_rows is not None},
    )
    by_label = {(s.name, expectation_label(e)): (s, e) for s in specs for e in s.expectations}
    for o in outcomes:
        if not o.success and (o.suite, o.expectation) in by_label:
            spec, expectation = by_label[(o.suite, o.expectation)]
            frame = exported[o.suite]
            o.sample = sample_offending_rows(con, frame.path, spec.key, expectation, params, frame.columns)
    summary = CheckSummary(
        gate=gate,
        run_id=run_id,
        outcomes=outcomes,
        data_docs_index=docs_index,
        problems={n: e.problem for n, e in exported.items() if e.problem},
        missing={n for n, e in exported.items() if e.relation_missing},
    )
    write_outcomes(con, summary, datetime.now(UTC).replace(tzinfo=None))
    for w in summary.failed_warns:
        log.warning("%s check warning: %s: %s: %s", gate, w.suite, w.expectation, w.observed_value)
    if summary.failed_errors:
        raise CheckFailed(failure_message(summary), summary)
    return summary
