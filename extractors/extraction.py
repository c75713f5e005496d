"""What every extractor does around its own work: one place for the preamble and the bookkeeping.

    with extraction(con, settings, "esp", tables, run_id=run_id, interval_end=end) as ex:
        ...land batches, adding to ex.counts[table]; ex.check(findings) for the source's volume checks...
    return ex.result()

Entering creates the landing layout and reads offset-less timestamps as UTC; leaving writes
`ops.extraction_log` (also when the body failed, then the error propagates unchanged) and counts the records
this run held back as dated in the future.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from rapport.core.config import Settings
from rapport.extractors.errors import SourceCheckError
from rapport.extractors.landing import ExtractResult, TableCounts, ensure_schema, to_utc_naive, utc_now, utc_session
from rapport.extractors.source_health import FUTURE_REASON, Finding
from rapport.extractors.state import log_failure, write_extraction_log


@dataclass
class Extraction:
    source: str
    run_id: str
    interval_end: datetime  # naive UTC
    started_at: datetime  # naive UTC, wall clock
    settings: Settings
    counts: dict[str, TableCounts]
    findings: list[Finding] = field(default_factory=list)
    future_dated: int = 0
    reconciled: int = 0

    def check(self, findings: Iterable[Finding]) -> None:
        """Keep the warnings; stop the extraction (before it lands more) when any finding is an error."""
        findings = list(findings)
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise SourceCheckError("; ".join(str(f) for f in errors))
        self.findings.extend(findings)

    def result(self) -> ExtractResult:
        res = ExtractResult.from_tables(self.source, self.counts)
        res.findings, res.future_dated, res.reconciled = list(self.findings), self.future_dated, self.reconciled
        return res


@contextmanager
def extraction(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    source: str,
    tables: Iterable[str],
    *,
    run_id: str,
    interval_end: datetime,
) -> Iterator[Extraction]:
    ensure_schema(con)
    ex = Extraction(source, run_id, to_utc_naive(interval_end), utc_now(), settings, {t: TableCounts() for t in tables})
    log_args = dict(run_id=run_id, source=source, tables=ex.counts, started_at=ex.started_at)
    try:
        with utc_session(con):
            yield ex
    except Exception:
        log_failure(con, **log_args)
        raise
    write_extraction_log(con, **log_args)
    ex.future_dated = _future_dated(con, run_id, ex.counts)


def _future_dated(con: duckdb.DuckDBPyConnection, run_id: str, tables: Iterable[str]) -> int:
    """Records this run newly quarantined as dated in the future (a re-rejection is not new)."""
    parts = " union all ".join(
        f"select count(*) as n from quarantine.{t}_rejects where run_id = $run and starts_with(reason, $why)"
        for t in tables
    )
    return int(con.execute(f"select sum(n) from ({parts})", {"run": run_id, "why": FUTURE_REASON}).fetchall()[0][0])
