"""Right to erasure: `rapport forget --email ADDRESS` and keeping erased people out of later runs.

`forget(settings, emails)`:
1. takes the run lock (refuses while a run is active: it would republish the person) and the writer lock;
2. resolves each address (normalised as the identity models do) to the stitched customer it belongs to,
   with all that customer's records and non-rejected identifiers (rapport.privacy.database.resolve);
3. in one transaction: records keyed hashes of those identifiers (ops.erasure_identifiers), removes the
   person from raw.* and quarantine.* (rapport.privacy.purge), from every dbt-built table including the
   incremental history (int_customer_ids_assigned, segment_history and its state table
   intermediate.segment_history__state, which so stays the log's latest rows per customer;
   segment_history_dates' customer counts are recounted from the history without them), drops the identity
   labels and the edges' before-images pending for them (record keys cannot be matched row by row; the
   rebuild labels in full), redacts remaining mentions, and
   writes ops.erasures (one row per address: hash, time, status, rows removed per table);
4. rewrites the working file (deleted rows' bytes gone), rebuilds the models (aggregates and scores
   without the person), runs the mart checks, republishes atomically (published file, Parquet, dbt docs,
   audience files, report), and scrubs the other files under the warehouse directory. Spark's copies
   (RAPPORT_ENGINE=spark: its tables, metastore and exchange files) are deleted before the rebuild.
An address that matches nobody is still recorded (status 'unmatched'), so it is kept out from then on.

Keeping erased people out of later runs is rapport.privacy.keep's (a pipeline step); this module is the
command that sequences the erasure, the rebuild and the republishing.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.core.progress import progress, quiet_terminal
from rapport.core.warehouse import open_warehouse, run_lock
from rapport.privacy.database import (
    Person,
    SharedAddress,
    compact,
    delete_derived,
    matched_addresses,
    patterns,
    resolve,
)
from rapport.privacy.database import sweep as sweep_mentions
from rapport.privacy.files import FileChanges, delete_check_frames, delete_spark_copies, scrub_files
from rapport.privacy.match import install, keyed_hash, normalize_emails
from rapport.privacy.purge import purge_raw
from rapport.privacy.store import ensure_tables, has_identifiers, key_id, require_key
from rapport.transform.increments import drop_label_state


class ForgetError(ValueError):
    """The request cannot be carried out as given (nothing was changed)."""


@dataclass
class ForgetResult:
    erasure_id: str
    dry_run: bool
    status: dict[str, str]  # address as given -> 'erased' | 'already erased' | 'unmatched'
    customers: int = 0
    records: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows deleted
    redacted: dict[str, int] = field(default_factory=dict)  # "schema.table" -> values redacted
    dropped: list[str] = field(default_factory=list)  # "schema.table" dropped whole, rebuilt in full
    files: FileChanges = field(default_factory=FileChanges)
    republished: bool = False
    problems: list[str] = field(default_factory=list)
    regenerated: set[Path] = field(default_factory=set, repr=False)  # files rewritten from the erased marts
    person: Person = field(default_factory=Person, repr=False)  # clear values: memory only, never stored

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    @property
    def anyone_erased(self) -> bool:
        """Someone was erased, now or by an earlier forget: the working file is rewritten and everything
        republished, also on a rerun, which so mends an earlier forget whose rewrite or republishing failed."""
        return bool(self.removed_total) or "already erased" in self.status.values()

    @property
    def unmatched(self) -> list[str]:
        return [a for a, s in self.status.items() if s == "unmatched"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def forget(
    settings: Settings, addresses: list[str], *, dry_run: bool = False, log_file: Path | None = None
) -> ForgetResult:
    """Erase the people these addresses belong to (see the module doc). ForgetError / RunInProgress
    when nothing was done. With `log_file`, dbt's and the checks' output during the rebuild goes there."""
    normalised = normalize_emails(addresses)
    bad = [a for a, n in zip(addresses, normalised, strict=True) if n is None]
    if bad:
        raise ForgetError(f"not an email address rapport can match (one '@' and a dotted domain): {bad[0]!r}")
    erasure_id = "e" + secrets.token_hex(8)
    with run_lock(settings, what="`rapport forget`"):
        try:
            result = _erase_in_warehouse(settings, addresses, normalised, erasure_id, dry_run)
        except SharedAddress as exc:
            raise ForgetError(str(exc)) from None
        if not dry_run and result.anyone_erased:
            with quiet_terminal(log_file) if log_file else nullcontext():
                _republish(settings, result)
        # files are scrubbed even when nothing matched in the warehouse: logs may mention any address
        result.files = _scrub(settings, result, dry_run)
    return result


def _erase_in_warehouse(
    settings: Settings, addresses: list[str], normalised: list[str], erasure_id: str, dry_run: bool
) -> ForgetResult:
    emails = sorted(set(normalised))
    with open_warehouse(settings) as con:
        key = require_key(con, settings, create=not dry_run) if not dry_run or has_identifiers(con) else None
        key = key or secrets.token_hex(32)  # a dry run on a warehouse without erasures stores nothing
        kid = key_id(key)
        install(con, key)
        con.begin()
        try:
            ensure_tables(con)
            found = matched_addresses(con, emails)
            before = {
                h for (h,) in con.execute("select email_hash from ops.erasures where status <> 'unmatched'").fetchall()
            }
            person = resolve(con, emails)
            seeds = [
                (kind, keyed_hash(key, kind, v))
                for kind in ("email", "phone", "shop_customer", "order", "helpdesk_user", "esp_contact")
                for v in person.get(kind)
            ]
            con.executemany(
                "insert into ops.erasure_identifiers values (?, ?, ?, ?, ?, ?) on conflict do nothing",
                [(k, h, kid, erasure_id, _now(), f"forget:{erasure_id}") for k, h in seeds],
            )
            purged = purge_raw(con, key_id=kid, added_by=f"forget:{erasure_id}", erasure_id=erasure_id)
            for kind, values in purged.ids.items():
                person.add(kind, values)
            for kind, source in (
                ("shop_customer", "orders.customer"),
                ("helpdesk_user", "helpdesk.user"),
                ("esp_contact", "esp.contact"),
                ("audience_member", "esp.audience_member"),
            ):
                person.add("record", [f"{source}:{v}" for v in person.get(kind)])
            # identity labels are rebuilt in full by the rebuild below (record keys cannot be matched row by row);
            # dropped first so that delete_derived neither deletes from them nor lists them as rows removed
            dropped = drop_label_state(con)
            removed = dict(purged.removed)
            removed.update(delete_derived(con, person))
            recount_segment_history_dates(con)
            redacted = dict(purged.redacted)
            for table, n in sweep_mentions(con, patterns(person), person.names).items():
                redacted[table] = redacted.get(table, 0) + n
            status = {
                a: (
                    "erased" if found[n] else "already erased" if keyed_hash(key, "email", n) in before else "unmatched"
                )
                for a, n in zip(addresses, normalised, strict=True)
            }
            result = ForgetResult(
                erasure_id,
                dry_run,
                status,
                customers=len(person.get("customer")),
                records=len(person.get("record")),
                removed=removed,
                redacted=redacted,
                dropped=dropped,
            )
            now = _now()
            con.executemany(
                "insert into ops.erasures values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                [
                    (
                        erasure_id,
                        now,
                        keyed_hash(key, "email", n),
                        kid,
                        status[a],
                        result.customers,
                        len(person.get("record")),
                        json.dumps(removed, sort_keys=True),
                        json.dumps(redacted, sort_keys=True),
                    )
                    for a, n in zip(addresses, normalised, strict=True)
                ],
            )
            if dry_run:
                con.rollback()
            else:
                con.commit()
        except BaseException:
            con.rollback()
            raise
    result.person = person
    if not dry_run and result.anyone_erased and (differences := compact(settings)):
        result.problems.append(not_rewritten(settings.work_db, differences))
    return result


def not_rewritten(work_db: Path, differences: list[str], shown: int = 3) -> str:
    """The problem of a working file whose rewritten copy differed from it (rapport.privacy.database.compact):
    what differed (the first `shown` differences, each with its counts), what it means and what to do."""
    listed = "; ".join(differences[:shown])
    if len(differences) > shown:
        listed += f"; {len(differences) - shown} more in the logged warning"
    return (
        f"the working file {work_db} was not rewritten: its rewritten copy differed from it ({listed}) and was "
        "thrown away. The erased rows are deleted, but their bytes may linger in the file's free space until "
        "DuckDB reuses it. Run the same `rapport forget` again to retry the rewrite; if the copy differs again, "
        "report it with this message."
    )


def recount_segment_history_dates(con: duckdb.DuckDBPyConnection) -> None:
    """Set marts.segment_history_dates.customers to what the change log now holds at each date (customers who
    entered minus those who left, up to it): a forgotten person's rows are gone from the log, and the
    counts of the dates they were in would otherwise still count them."""
    columns = {(t, c) for t, c in con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name in ('segment_history', 'segment_history_dates')").fetchall()}  # fmt: skip
    if ("segment_history", "change") not in columns or ("segment_history_dates", "customers") not in columns:
        return  # no history yet, or the earlier form (converted by the next build)
    con.execute(
        """
        update marts.segment_history_dates as dates set customers = coalesce((
            select sum(case change when 'entered' then 1 when 'left' then -1 else 0 end)
            from marts.segment_history as history
            where history.as_of_date <= dates.as_of_date
        ), 0)
        """
    )


def _last_run(settings: Settings) -> tuple[str, datetime, date | None] | None:
    with open_warehouse(settings) as con:
        rows = con.execute(
            "select run_id, data_interval_end, as_of_date from ops.runs where status = 'success' "
            "order by coalesce(finished_at, started_at) desc limit 1"
        ).fetchall()
    return rows[0] if rows else None


@contextmanager
def _argv_without_addresses() -> Iterator[None]:
    """dbt records the process's command line (`invocation_command`) in its logs and run_results.json: keep
    the addresses out of it rather than scrub them afterwards."""
    saved = sys.argv
    sys.argv = [saved[0], "forget"]
    try:
        yield
    finally:
        sys.argv = saved


def _republish(settings: Settings, result: ForgetResult) -> None:
    """Rebuild the models without the person and republish everything that copies the marts."""
    from rapport.core.run_context import RunContext
    from rapport.core.warehouse import writer_lock
    from rapport.pipeline import steps as pipeline
    from rapport.transform.runner import dbt_build

    delete_check_frames(settings)
    if spark_copies := delete_spark_copies(settings):
        progress(
            f"forget: deleted Spark's copies of the warehouse ({len(spark_copies)} files under "
            f"{settings.spark_dir}); the next Spark build loads them from the working file again"
        )
    last = _last_run(settings)
    if last is None or not settings.published_db.exists():
        return  # nothing was ever published
    run_id, interval_end, as_of = last
    ctx = RunContext.create(run_id, interval_end=interval_end, as_of=as_of)
    erasure_ctx = RunContext.create(f"forget-{result.erasure_id}", interval_end=interval_end, as_of=as_of)
    progress(f"forget: rebuilding the models without the erased people (segments as of {ctx.as_of})")
    with _argv_without_addresses():
        try:
            with writer_lock(settings):
                # dbt unit tests check SQL on fixed fixtures: the erasure cannot change their outcome
                dbt_build(
                    settings,
                    run_id=erasure_ctx.run_id,
                    as_of=ctx.as_of,
                    extra_args=["--exclude-resource-type", "unit_test"],
                )
        except Exception as exc:  # the erased tables themselves are still published below
            result.problems.append(
                f"dbt build after the erasure failed ({exc}); publishing the erased marts as "
                "they were: aggregates count the erased people until the next run"
            )
        try:
            pipeline.check_marts(settings, erasure_ctx)
        except Exception as exc:
            result.problems.append(f"mart checks after the erasure failed: {exc}")
        # Published even when a check failed: the previous file still holds the person.
        try:
            pipeline.publish(settings, ctx)
            paths = pipeline.write_outputs(settings, ctx)
        except Exception as exc:
            result.problems.append(
                f"republishing failed ({type(exc).__name__}: {exc}): the published file, Parquet, "
                "audience files or report may still hold the person; run the same "
                "`rapport forget` again"
            )
            return
    result.republished = True
    result.regenerated = regenerated_files(settings, paths)


def regenerated_files(settings: Settings, report_paths: dict[str, str | None]) -> set[Path]:
    """The files a republish rewrites from the erased marts, which the scrub leaves alone: exactly the audience
    files the export writes (not every CSV in the folder: a copy someone saved there is scrubbed), the report
    (`report_paths`: pipeline.write_outputs) and the dbt docs."""
    from rapport.publishing.audiences import audience_paths

    files = {
        settings.published_dir / "dbt_docs" / "index.html",
        settings.reports_dir / "latest.html",
        *audience_paths(settings.audiences_dir),
    }
    return files | {Path(p) for p in report_paths.values() if p}


def _scrub(settings: Settings, result: ForgetResult, dry_run: bool) -> FileChanges:
    person = result.person
    return scrub_files(
        settings,
        person.get("email"),
        person.get("phone"),
        person.names | person.get("customer"),
        keep=result.regenerated,
        dry_run=dry_run,
    )
