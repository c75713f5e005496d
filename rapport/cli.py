"""The `rapport` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from pathlib import Path

from rapport.core.config import Settings, load_settings

DESCRIPTION = """\
rapport: a customer-data pipeline for CRM analytics.

It extracts shop orders (SQL database), support tickets (helpdesk API) and email engagement (ESP exports)
into DuckDB, builds a unified customer table, segments and campaign-effectiveness marts with dbt, checks
them, publishes them for BI tools and writes a report for marketers.

  rapport demo        generate demo sources (or continue them to today) and run the pipeline (start here)
  rapport run         run the pipeline once against the configured sources
  rapport backfill    run the pipeline for each day of a date range, oldest first
  rapport generate    only generate the demo sources
  rapport forget      erase a person everywhere (right to erasure) and keep them out of later runs
  rapport plan-holdout  how many people to keep out of a campaign to tell whether it worked

`rapport COMMAND --help` says more about each.
"""

# The README's configuration table, one line each (tests/test_cli.py keeps the two in step).
SETTINGS_HELP: tuple[tuple[str, str], ...] = (
    ("RAPPORT_ORDERS_DB_URL", "SQLAlchemy URL of the orders database (sqlite:///path, postgresql+psycopg://...)"),
    ("RAPPORT_HELPDESK_URL", "helpdesk API base URL (Zendesk-style export); default: the demo helpdesk"),
    ("RAPPORT_HELPDESK_TOKEN", "helpdesk bearer token"),
    ("RAPPORT_ESP_ROOT", "directory of the ESP exports (contacts/, campaigns/, audiences/, events/)"),
    ("RAPPORT_WAREHOUSE_DIR", "where the DuckDB files, reports, audiences and logs go (./warehouse)"),
    ("RAPPORT_AS_OF", "ISO date segments are computed as of (the end of the run's data interval)"),
    ("RAPPORT_REPORTING_CURRENCY", "currency of all *_usd amounts (USD)"),
    ("RAPPORT_DUCKDB_THREADS", "DuckDB threads (2)"),
    ("RAPPORT_DUCKDB_MEMORY_LIMIT", "DuckDB memory limit (4GB)"),
    ("RAPPORT_ORDERS_LOOKBACK_MINUTES", "look-back for late-committed orders (10)"),
    ("RAPPORT_ORDERS_RECONCILE_DAYS", "how far back orders committed after the look-back are searched (7; 0: off)"),
    ("RAPPORT_CLOCK_SKEW_MINUTES", "records dated further ahead of the extraction are quarantined (60)"),
    ("RAPPORT_FRESHNESS_WARN_HOURS", "no new data from a source for longer: a warning (72; 0: off)"),
    ("RAPPORT_FRESHNESS_ERROR_HOURS", "no new data from a source for longer: the run stops (336; 0: off)"),
    ("RAPPORT_VOLUME_DROP_WARN_PCT", "a source holding this % less than was landed from it: a warning (10)"),
    ("RAPPORT_VOLUME_DROP_ERROR_PCT", "... the run stops (100: when it holds nothing)"),
    ("RAPPORT_DBT_LOG_LEVEL", "dbt's log file dbt/logs/dbt.log: info, or debug for every SQL statement (info)"),
    ("RAPPORT_CHECK_CHUNK_ROWS", "rows a data check validates at once (2000000)"),
    ("RAPPORT_KEEP_RUNS", "per-run logs, markers and Airflow records of the newest N runs are kept (30; 0: all)"),
    ("RAPPORT_REPORT_LANGUAGE", "language of the marketer report: en, ko or th (en; --language overrides it)"),
    ("RAPPORT_ENGINE", "where dbt builds the models: duckdb or spark (duckdb)"),
    ("RAPPORT_SPARK_MASTER", "Spark master with RAPPORT_ENGINE=spark (local[2])"),
)
ENVIRONMENT_HELP = (
    'configuration: RAPPORT_* environment variables (the README\'s "Configuration" table); with none set,\n'
    "everything points at the demo under ./warehouse.\n"
    + "\n".join(f"  {name:<33} {meaning}" for name, meaning in SETTINGS_HELP)
    + "\nrapport forget also reads RAPPORT_ERASURE_KEY; Airflow deployments RAPPORT_CATCHUP, RAPPORT_START_DATE and\n"
    "more (docs/airflow.md)."
)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 100)


def _progress(msg: str) -> None:
    print(f"[rapport {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval-end",
        type=datetime.fromisoformat,
        help="end of the run's data interval (ISO timestamp, UTC); default: now",
    )
    p.add_argument("--as-of", type=date.fromisoformat, help="date segments are computed as of (RAPPORT_AS_OF)")
    p.add_argument(
        "--language",
        choices=("en", "ko", "th"),
        help="language of the marketer report (overrides RAPPORT_REPORT_LANGUAGE; default en)",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every model and output from all landed data (dbt --full-refresh); extraction is unchanged",
    )


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="rapport", description=DESCRIPTION, epilog=ENVIRONMENT_HELP, formatter_class=raw
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Airflow's and dbt's own logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="write the demo source systems (orders DB, helpdesk data, ESP exports)",
        formatter_class=raw,
        description=_wrap(
            "Write the demo source systems: a shop's SQLite orders database, helpdesk exports (served on "
            "loopback during a run) and ESP export files, for --people people over --months months ending --end, with "
            "the ground truth kept apart for tests. Seeded: the same arguments give the same data."
        ),
    )
    _add_generate_args(gen)

    run = sub.add_parser(
        "run",
        help="run the rapport_daily Airflow DAG once, in-process, against the sources",
        formatter_class=raw,
        description=_wrap(
            "Run the pipeline once, in-process (no Airflow servers): extract the three sources, check "
            "them, build the dbt models, check the marts, publish published/rapport.duckdb atomically and write the "
            "report and audience files. A fresh warehouse loads the sources' full history, later runs what changed. "
            "Exits 1 when a task failed (the published file stays as it was), 3 when another run holds the warehouse."
        ),
        epilog=ENVIRONMENT_HELP,
    )
    _add_run_args(run)

    bf = sub.add_parser(
        "backfill",
        help="run the pipeline for each UTC day from --start to --end, oldest first, in-process",
        formatter_class=raw,
        epilog=ENVIRONMENT_HELP,
        description=_wrap(
            "Run the pipeline once per UTC day from --start to --end, oldest first, each day with its "
            "own data interval [day, day+1), as a scheduler's backfill would; stops at the first failed day."
        ),
    )
    bf.add_argument("--start", type=date.fromisoformat, required=True, help="first day: interval [start, start+1d)")
    bf.add_argument("--end", type=date.fromisoformat, required=True, help="last day, inclusive")

    fg = sub.add_parser(
        "forget",
        help="erase the person an email address belongs to, across every layer and output (right to erasure)",
        description="Erase the stitched customer each address belongs to: their records in all three sources "
        "(raw, quarantine), every model, the identity and segment history, the published file, Parquet, audience "
        "files, report and dbt docs. ops.erasures records a keyed hash of the address, the time and the rows "
        "removed; later runs keep the person out although the sources still hold them. The key is "
        "RAPPORT_ERASURE_KEY or warehouse/work/erasure.key.",
        epilog="exit status: 0 erased; 4 an address matched nobody (recorded anyway, so it is kept out of later "
        "runs); 1 erased, but rebuilding or republishing reported a problem; 2 not a usable address, a shared "
        "address, or the erasure key is missing; 3 a rapport run holds the warehouse (nothing erased)",
    )
    fg.add_argument(
        "--email",
        action="append",
        required=True,
        metavar="ADDRESS",
        help="an address of the person (repeat for several addresses or people)",
    )
    fg.add_argument("--dry-run", action="store_true", help="show what would be removed; change nothing")

    ph = sub.add_parser(
        "plan-holdout",
        help="how many people to keep out of a campaign (the control group) to tell whether it worked",
        description="Before a campaign: how many people to keep out of it (the control group, sent nothing) so "
        "that afterwards you can tell whether the email made people buy. The smaller the lift you want to see, "
        "the more people you must hold out. Prints the share and group sizes that detect an absolute lift of "
        "--mde in the 7-day conversion rate 8 times out of 10 when it is real (80% power), while a campaign "
        "that did nothing looks like a win at most 1 time in 20 (5% level): the same rule as the mde_abs "
        "column of marts.campaign_performance.",
        epilog="example: rapport plan-holdout --audience 20000 --mde 0.01   (detect 3% -> 4%)",
    )
    ph.add_argument(
        "--audience",
        type=int,
        required=True,
        metavar="N",
        help="people you plan to send the campaign to, control group included",
    )
    ph.add_argument(
        "--baseline-rate",
        type=float,
        metavar="P",
        help="share of the audience that buys within 7 days without the email (0.03 = 3%%); default: "
        "the median control-group rate of the published campaigns",
    )
    ph.add_argument(
        "--mde",
        type=float,
        default=0.02,
        metavar="D",
        help="smallest lift worth detecting, in absolute terms (0.02 = 2 percentage points, e.g. 3%% "
        "-> 5%%; default 0.02)",
    )

    demo = sub.add_parser(
        "demo",
        help="generate the demo sources (or continue them to a later day), then run the pipeline on them",
        formatter_class=raw,
        description=_wrap(
            "Generate the demo sources into $RAPPORT_WAREHOUSE_DIR/demo (as `rapport generate`), or on "
            "a later day continue the demo already there to today, then run the pipeline on them (as `rapport run`), "
            "whatever the RAPPORT_* source variables say."
        ),
    )
    _add_generate_args(demo)
    demo.set_defaults(people=None, seed=None, months=None)  # None: as the existing demo (else the defaults)
    _add_run_args(demo)
    return parser


def _add_generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--people", type=int, default=3000, help="number of real people behind the data (default 3000)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same seed and end date -> same data")
    p.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day of generated history (default: today, UTC)"
    )
    p.add_argument("--months", type=int, default=15, help="months of history (default 15)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: $RAPPORT_WAREHOUSE_DIR/demo)")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from rapport.demo.generate import generate

    out = (args.out or settings.demo_dir).resolve()
    _progress(f"generating demo sources for {args.people} people into {out}")
    t0 = time.monotonic()
    summary = generate(out, people=args.people, seed=args.seed, end=args.end, months=args.months, progress=_progress)
    counts = ", ".join(f"{k} {v:,}" for k, v in summary.counts.items())
    _progress(f"demo sources ready in {time.monotonic() - t0:.1f}s ({summary.start} to {summary.end}): {counts}")
    return 0


def cmd_demo_sources(args: argparse.Namespace, settings: Settings) -> int:
    """Generate the demo sources, or continue the existing demo's history to --end (rapport.demo.prepare)."""
    from rapport.demo.prepare import DemoConflict, prepare_demo

    with _whole_run(settings) as locked:  # never change the sources under a running pipeline
        if not locked:
            return 3
        try:
            prepare_demo(
                (args.out or settings.demo_dir).resolve(),
                people=args.people,
                seed=args.seed,
                months=args.months,
                end=args.end,
                work_db=settings.work_db,
                progress=_progress,
            )
        except DemoConflict as exc:
            print(f"rapport: {exc}", file=sys.stderr)
            return 2
    return 0


@contextmanager
def _whole_run(settings: Settings) -> Iterator[bool]:
    """The warehouse's run lock for `run` / `backfill`: False (and a message) when another run holds it."""
    from rapport.core.warehouse import RunInProgress, run_lock

    with ExitStack() as stack:
        try:
            stack.enter_context(run_lock(settings, what="`rapport run`"))
        except RunInProgress as exc:
            _progress(f"{exc}; not starting")
            yield False
            return
        yield True


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from rapport.orchestration.local_runner import run_dag

    with _whole_run(settings) as locked:
        if not locked:
            return 3
        _progress(f"running DAG rapport_daily in-process; warehouse {settings.warehouse_dir}")
        log_file = settings.logs_dir / f"run-{time.strftime('%Y%m%dT%H%M%S')}.log"
        if not args.verbose:
            _progress(f"Airflow and dbt logs: {log_file}")
        outcome = run_dag(
            settings,
            interval_end=args.interval_end,
            as_of=args.as_of.isoformat() if args.as_of else None,
            log_file=None if args.verbose else log_file,
            full_refresh=args.full_refresh,
        )
    for task_id, state in outcome.task_states.items():
        _progress(f"  {task_id:<18} {state}")
    if not outcome.ok:
        _progress(
            f"run {outcome.run_id} FAILED ({outcome.state}) after {outcome.seconds:.0f}s; "
            f"the previously published file, if any, is untouched: {settings.published_db}"
        )
        if not args.verbose:
            _progress(f"the log of this run, with each failed task's traceback: {log_file}")
            _print_errors(log_file)
        return 1
    _progress(f"run {outcome.run_id} succeeded in {outcome.seconds:.0f}s")
    _progress(f"published marts (DuckDB, open read-only): {settings.published_db}")
    _progress(f"published marts (Parquet):               {settings.published_dir / 'parquet'}")
    _progress(f"marketer report:                         {settings.reports_dir / 'latest.html'}")
    _progress(f"audience files:                          {settings.audiences_dir}")
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from rapport.orchestration.local_runner import backfill

    if args.end < args.start:
        print("rapport: --end is before --start", file=sys.stderr)
        return 2
    with _whole_run(settings) as locked:
        if not locked:
            return 3
        log_file = settings.logs_dir / f"backfill-{time.strftime('%Y%m%dT%H%M%S')}.log"
        outcomes = backfill(settings, args.start, args.end, log_file=None if args.verbose else log_file)
    for o in outcomes:
        _progress(f"  interval ending {o.interval_end}: {o.state} ({o.seconds:.0f}s, run {o.run_id})")
    complete = len(outcomes) == (args.end - args.start).days + 1
    return 0 if complete and all(o.ok for o in outcomes) else 1


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from rapport.core.warehouse import RunInProgress, WarehouseBusy
    from rapport.orchestration.forget import ForgetError, forget
    from rapport.privacy.store import ErasureKeyError

    log_file = None if args.verbose else settings.logs_dir / f"forget-{time.strftime('%Y%m%dT%H%M%S')}.log"
    what = "dry run: nothing is changed" if args.dry_run else f"warehouse {settings.warehouse_dir}"
    _progress(f"forget {len(args.email)} address(es); {what}")
    try:
        result = forget(settings, args.email, dry_run=args.dry_run, log_file=log_file)
    except (RunInProgress, WarehouseBusy) as exc:
        _progress(f"{exc}; nothing was erased")
        return 3
    except (ForgetError, ErasureKeyError) as exc:
        print(f"rapport forget: {exc}", file=sys.stderr)
        return 2
    verb = "would remove" if result.dry_run else "removed"
    for address, status in result.status.items():
        _progress(f"  {address}: {'matched NOBODY' if status == 'unmatched' else status}")
    _progress(f"  {result.customers} stitched customer(s), {result.records} identity record(s); rows {verb}:")
    for table, n in sorted(result.removed.items()):
        _progress(f"    {table:<48} {n:>8}")
    for table, n in sorted(result.redacted.items()):
        _progress(f"    {table:<48} {n:>8} value(s) {'to redact' if result.dry_run else 'redacted'}")
    for table in result.dropped:
        _progress(f"    {table:<48} {'would be dropped' if result.dry_run else 'dropped'} (rebuilt in full)")
    for line in result.files.lines(settings.warehouse_dir):
        _progress(f"    file {line}")
    if result.republished:
        _progress(f"  republished without them: {settings.published_db}, Parquet, dbt docs, audience files, report")
    if not result.dry_run:
        _progress(f"  recorded in ops.erasures as {result.erasure_id} (keyed SHA-256 of each address, no address)")
    for problem in result.problems:
        _progress(f"  PROBLEM: {problem}")
    if result.unmatched:
        _progress(
            f"  {len(result.unmatched)} address(es) matched nobody in this warehouse"
            + ("" if result.dry_run else "; recorded anyway, so they are kept out of future runs")
        )
        return 4
    return 1 if result.problems else 0


def cmd_plan_holdout(args: argparse.Namespace, settings: Settings) -> int:
    from rapport.experiments.planning import PlanningError, baseline_from_rates, describe_plan, plan_holdout

    try:
        baseline, source = args.baseline_rate, "given with --baseline-rate"
        if baseline is None:
            baseline, source = baseline_from_rates(_published_control_rates(settings), str(settings.published_db))
        plan = plan_holdout(args.audience, baseline, args.mde)
    except PlanningError as exc:
        print(f"rapport plan-holdout: {exc}", file=sys.stderr)
        return 2
    print("\n".join(describe_plan(plan, source)))
    return 0


def _published_control_rates(settings: Settings) -> list[float | None]:
    import duckdb

    from rapport.experiments.planning import PlanningError

    path = settings.published_db
    if not path.exists():
        raise PlanningError(
            f"no published marts at {path} to take the baseline conversion rate from: run "
            "`rapport run` first, or pass --baseline-rate (e.g. 0.03 if 3% buy without the email)"
        )
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select control_conversion_rate from marts.campaign_performance where has_control_group")
        return [r[0] for r in rows.fetchall()]


def _print_errors(log_file: Path, limit: int = 12) -> None:
    """The lines of the run log that say what went wrong, so the user need not open it first."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return
    errors = [ln for ln in lines if " [error " in ln or "Error:" in ln or "FAILED" in ln][-limit:]
    for line in errors:
        print(f"    {line[:400]}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("rapport").setLevel(logging.INFO)
    if getattr(args, "language", None):
        os.environ["RAPPORT_REPORT_LANGUAGE"] = args.language  # tasks read their settings from the environment
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"rapport: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "generate":
        return cmd_generate(args, settings)
    if args.command == "run":
        return cmd_run(args, settings)
    if args.command == "backfill":
        return cmd_backfill(args, settings)
    if args.command == "forget":
        return cmd_forget(args, settings)
    if args.command == "plan-holdout":
        return cmd_plan_holdout(args, settings)
    if args.command == "demo":
        # The demo always runs on the demo sources, whatever RAPPORT_* source variables say.
        for var in ("RAPPORT_ORDERS_DB_URL", "RAPPORT_HELPDESK_URL", "RAPPORT_HELPDESK_TOKEN", "RAPPORT_ESP_ROOT"):
            os.environ.pop(var, None)
        settings = load_settings()
        rc = cmd_demo_sources(args, settings)
        return rc or cmd_run(args, settings)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
