"""The steps of a rapport run, as plain functions of (settings, run context).

The Airflow DAG (`dags/rapport_daily.py`) only wires these together; they are importable and testable
without Airflow. Heavy libraries (dbt, Great Expectations, matplotlib) are imported inside the steps that
need them.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rapport.core.config import Settings
from rapport.core.progress import progress, step
from rapport.core.run_context import RunContext
from rapport.core.warehouse import UTC_NOW, open_warehouse, writer_lock
from rapport.pipeline import reuse

log = logging.getLogger("rapport.pipeline.steps")

SOURCES = ("orders", "helpdesk", "esp")


def start_run(settings: Settings, ctx: RunContext) -> None:
    from rapport.extractors.landing import ensure_schema

    progress(f"run {ctx.run_id}: data interval ends {ctx.interval_end}, segments as of {ctx.as_of}")
    with step("start run"), open_warehouse(settings) as con:
        ensure_schema(con)
        # A rerun of the same run id starts its row afresh instead of adding a second one.
        con.execute("delete from ops.runs where run_id = ?", [ctx.run_id])
        con.execute(
            "insert into ops.runs (run_id, started_at, status, data_interval_start, data_interval_end, "
            f"as_of_date) values (?, {UTC_NOW}, 'running', ?, ?, ?)",
            [ctx.run_id, ctx.interval_start, ctx.interval_end, ctx.as_of],
        )
    # Files written once per run (logs, status markers, saved dbt results) of runs before the newest
    # RAPPORT_KEEP_RUNS: 365 runs a year would otherwise pile up (rapport.pipeline.retention). Housekeeping:
    # a file that cannot be deleted is left for the next run, never a reason to stop this one.
    from rapport.pipeline.retention import prune_run_files

    try:
        prune_run_files(settings, current_run_id=ctx.run_id)
    except OSError as exc:
        log.warning("could not delete the files of old runs: %s", exc)


@contextmanager
def helpdesk_endpoint(settings: Settings) -> Iterator[str]:
    """The configured helpdesk, or the demo helpdesk served on loopback for the length of the extract."""
    if settings.helpdesk_url:
        yield settings.helpdesk_url
        return
    from rapport.demo.helpdesk_server import serve_helpdesk

    data_dir = settings.demo_dir / "helpdesk"
    if not data_dir.exists():
        raise FileNotFoundError(
            f"RAPPORT_HELPDESK_URL is not set and there is no demo helpdesk data in {data_dir}: "
            "run `rapport generate` (or `rapport demo`) first, or point RAPPORT_HELPDESK_URL at your helpdesk"
        )
    with serve_helpdesk(data_dir, token=settings.helpdesk_token) as server:
        log.info("serving the demo helpdesk at %s", server.base_url)
        yield server.base_url


def extract(settings: Settings, ctx: RunContext, source: str) -> dict[str, int]:
    """Land one source into raw.* and record its counts on the run."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    with step(f"extract {source}"), open_warehouse(settings) as con:
        if source == "orders":
            from rapport.extractors.orders import extract_orders

            result = extract_orders(con, settings, run_id=ctx.run_id, interval_end=ctx.interval_end)
        elif source == "helpdesk":
            from rapport.extractors.helpdesk import extract_helpdesk

            with helpdesk_endpoint(settings) as url:
                result = extract_helpdesk(con, settings, run_id=ctx.run_id, interval_end=ctx.interval_end, base_url=url)
        else:
            from rapport.extractors.esp import extract_esp

            result = extract_esp(con, settings, run_id=ctx.run_id, interval_end=ctx.interval_end)
        from rapport.extractors.source_health import errors_of, freshness_findings, record_run

        findings = result.findings + freshness_findings(con, settings, source, ctx.interval_end)
        record_run(con, ctx.run_id, result, findings)
        # The sources still hold people erased by `rapport forget`: take them out of what just landed.
        from rapport.privacy.keep import keep_erased

        keep_erased(con, settings, run_id=ctx.run_id)
    counts = {
        "read": result.rows_read,
        "landed": result.rows_landed,
        "quarantined": result.rows_quarantined,
        "duplicate": result.rows_duplicate,
    }
    notes = ""
    if result.future_dated:
        notes += f"; {result.future_dated} dated in the future (quarantined)"
    if result.reconciled:
        notes += f"; {result.reconciled} committed after the look-back (found by the reconciliation)"
    progress(
        f"  {source}: read {counts['read']}, landed {counts['landed']}, quarantined {counts['quarantined']}, "
        f"duplicates skipped {counts['duplicate']}{notes}"
    )
    for finding in findings:  # the source checks' (rapport.extractors.source_health); errors stop the run
        progress(f"  {'ERROR' if finding.severity == 'error' else 'warning'}: {finding}")
    if errors_of(findings):
        from rapport.extractors.errors import SourceCheckError

        raise SourceCheckError(errors_of(findings))
    return counts


def check_raw(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    from rapport.expectations.gate import CheckFailed, run_raw_checks
    from rapport.privacy.keep import keep_erased

    with step("raw data checks"), open_warehouse(settings) as con:
        # Again here: a transform triggered by hand may follow an extract that stopped before its own pass.
        keep_erased(con, settings, run_id=ctx.run_id)
        _refuse_rolled_back(con, ctx.run_id)
        # the dbt tasks after these checks plan their incremental build afresh (rapport.transform.increments)
        from rapport.transform.increments import drop_pending

        drop_pending(con)
        # no row landed since the checks last passed: only suites about what did not arrive (every_run)
        unchanged = reuse.reusable_marts(con, ctx) is not None
        try:
            summary = run_raw_checks(con, settings, run_id=ctx.run_id, interval_end=ctx.interval_end,
                                     every_run_only=unchanged)  # fmt: skip
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}\n{_roll_back_unchecked(con, ctx.run_id)}", exc.summary) from None
        if unchanged:
            progress(f"  raw data checks of new rows skipped: {reuse.unchanged_message(con)}")
            return {"skipped": "unchanged", **_summary_dict(summary)}
    return _summary_dict(summary)


def _refuse_rolled_back(con: Any, run_id: str) -> None:
    """A retry of a run whose data was rolled back would validate nothing and publish without it."""
    from rapport.expectations.gate import CheckFailed
    from rapport.extractors.rollback import was_rolled_back

    if was_rolled_back(con, run_id):
        raise CheckFailed(
            f"the raw data of run {run_id} failed its checks and was rolled back; this run cannot go "
            "on: start a new run (`rapport run`), which reads those records again"
        )


def _roll_back_unchecked(con: Any, run_id: str) -> str:
    """Undo the runs whose raw data just failed, so the next run reads those records again (rather than
    stopping on the same landed rows forever); returns what the user should know and do."""
    from rapport.extractors.rollback import rollback_runs, unvalidated_runs

    undone = rollback_runs(con, unvalidated_runs(con), by=run_id)
    tables = ", ".join(f"{t} {n}" for t, n in sorted(undone.raw_rows.items())) or "none"
    progress(
        f"  rolled back the unchecked data of {len(undone.runs)} run(s): {undone.total_rows} raw rows "
        f"({tables}), {undone.rejects} rejects, {len(undone.states_restored)} extractor positions, "
        f"{undone.esp_files} ESP files"
    )
    return (
        f"The raw rows these checks rejected were rolled back ({undone.total_rows} rows landed by "
        f"{len(undone.runs)} run(s); extractor watermarks and cursors restored), so nothing bad stays in the "
        "warehouse and the published marts are those of the last good run. Correct the records named above in "
        "the source system (or the source's configuration) and run again: the next run reads them again."
    )


def transform(settings: Settings, ctx: RunContext) -> None:
    from rapport.transform.runner import dbt_build

    with step("dbt build"):
        with open_warehouse(settings) as con:
            unchanged = reuse.reusable_marts(con, ctx) and reuse.unchanged_message(con)
        if unchanged:
            progress(f"  dbt build skipped: {unchanged}")
            return
        # dbt opens the file itself; the lock keeps other rapport processes out meanwhile.
        with writer_lock(settings):
            dbt_build(settings, run_id=ctx.run_id, as_of=ctx.as_of, full_refresh=ctx.full_refresh)


def predict(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    from rapport.transform.increments import commit

    with step("customer predictions"):
        with open_warehouse(settings) as con:
            # the dbt tasks before this step completed: the next build reads what lands after this one's batch
            commit(con, ctx.run_id)
            unchanged = reuse.reusable_marts(con, ctx) and reuse.unchanged_message(con)
        if unchanged:  # the marts, predictions included, are those built from these very inputs
            progress(f"  customer predictions skipped: {unchanged}")
            return {"skipped": "unchanged"}
        # imported only now: the models import scipy (~0.3 s), which a run that reuses the marts does not need
        from rapport.predictions.step import predict as predict_customers

        # the step opens the file itself (like dbt); the lock keeps other rapport processes out meanwhile
        with writer_lock(settings):
            summary = predict_customers(settings, ctx)
    progress(f"  {summary['message']}")
    return summary


def check_marts(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    from rapport.expectations.gate import run_mart_checks
    from rapport.transform import build_state

    with step("mart checks"), open_warehouse(settings) as con:
        if reuse.reusable_marts(con, ctx):
            progress(f"  mart checks skipped: {reuse.unchanged_message(con)}")
            return {"skipped": "unchanged"}
        summary = run_mart_checks(con, settings, run_id=ctx.run_id)
        # built and checked: a later run with the same inputs reuses these marts (rapport.pipeline.reuse)
        build_state.record(con, "marts", build_state.inputs_fingerprint(con, as_of=ctx.as_of), ctx.run_id)
    return _summary_dict(summary)


def publish(settings: Settings, ctx: RunContext) -> str:
    from rapport.publishing.publish import publish as publish_marts

    with step("publish marts"), open_warehouse(settings) as con:
        result = publish_marts(con, settings, run_id=ctx.run_id)
    progress(f"  published {len(result.tables)} relations to {result.path}")
    with step("dbt docs"):
        docs = publish_dbt_docs(settings, ctx)
    progress(f"  dbt docs (lineage and column descriptions): {docs}")
    return str(result.path)


def publish_dbt_docs(settings: Settings, ctx: RunContext | None = None) -> Path:
    """dbt's documentation site, as one self-contained page beside the published file. Regenerated only
    when the dbt project or the warehouse's relations and columns changed (or on a full refresh); the
    page published before is kept otherwise."""
    from rapport.transform import build_state
    from rapport.transform.runner import dbt_docs_generate

    index = settings.published_dir / "dbt_docs" / "index.html"
    with open_warehouse(settings) as con:
        fingerprint = build_state.docs_fingerprint(con)
        current = build_state.recorded(con, "docs") == fingerprint
    if current and index.exists() and not (ctx and ctx.full_refresh):
        progress("  dbt docs unchanged (same project, relations and columns): kept as published")
        return index
    with writer_lock(settings):
        target = dbt_docs_generate(settings, run_id=ctx.run_id if ctx else None, as_of=ctx.as_of if ctx else None)
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_name(".index.html.tmp")
    shutil.copyfile(target / "static_index.html", tmp)
    os.replace(tmp, index)
    with open_warehouse(settings) as con:
        build_state.record(con, "docs", fingerprint, ctx.run_id if ctx else "manual")
    return index


def write_outputs(settings: Settings, ctx: RunContext) -> dict[str, str | None]:
    """Audience files and the marketer report, both read from the freshly published file; kept as they are
    when a run changed nothing since they were written (same marts, same as-of date)."""
    from rapport.publishing.audiences import export_audiences
    from rapport.reports.render import render_report
    from rapport.transform import build_state

    with open_warehouse(settings) as con:
        fingerprint = build_state.inputs_fingerprint(con, as_of=ctx.as_of)
        written = build_state.recorded(con, "report") == fingerprint and not ctx.full_refresh
    html, pdf = settings.reports_dir / "latest.html", settings.reports_dir / "latest.pdf"
    if written and html.exists():
        progress(f"  report and audience files unchanged (nothing changed since they were written): {html}")
        return {"html": str(html), "pdf": str(pdf) if pdf.exists() else None}
    with step("audience files and report"):
        files = export_audiences(settings.published_db, settings.audiences_dir)
        paths = render_report(
            settings.published_db,
            settings.reports_dir,
            run_id=ctx.run_id,
            as_of=ctx.as_of,
            audiences_dir=settings.audiences_dir,
            language=settings.report_language,
        )
    with open_warehouse(settings) as con:
        build_state.record(con, "report", fingerprint, ctx.run_id)
    progress(f"  wrote {len(files)} audience files and the report {paths.html}")
    return {"html": str(paths.html), "pdf": str(paths.pdf) if paths.pdf else None}


def finish_run(settings: Settings, ctx: RunContext, *, status: str = "success", error: str | None = None) -> None:
    with open_warehouse(settings) as con:
        con.execute(
            f"update ops.runs set status = ?, finished_at = {UTC_NOW}, error = ? where run_id = ?",
            [status, error[:2000] if error else None, ctx.run_id],
        )


def _summary_dict(summary: Any) -> dict[str, Any]:
    if hasattr(summary, "__dataclass_fields__"):
        return {k: v for k, v in asdict(summary).items() if isinstance(v, int | float | str | bool)}
    return {"summary": str(summary)}
