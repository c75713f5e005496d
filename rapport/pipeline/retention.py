"""What a warehouse keeps of past runs: per-run files beyond the newest `RAPPORT_KEEP_RUNS` are deleted.

A daily schedule runs 365 times a year. Files written once per run and never read again by later runs would
fill the disk and make every listing of their folder dearer (issue 16), so each run's first step removes
those of older runs, keeping the newest `keep` of each kind (docs/operations.md, "What a run keeps"):

- `logs/run-*.log` and `logs/backfill-*.log`: the log of each `rapport run` / `rapport backfill` (Airflow's and
  dbt's output); `logs/forget-*.log` are kept (the record of erasures);
- `runs/<run>.json`: the status marker a run's `await_transform` waits on, read only while that run is open;
- `dbt/airflow/<run>/`: a failed dbt layer's results, kept so that a retry of that run rebuilds only what
  failed (rapport.orchestration.dbt_retry); a retry of an older run rebuilds its whole layer instead.

Never touched: anything of the current run, the published file, reports, audience files, quarantine and the
`ops.*` tables (history the docs promise), Great Expectations' results (gx_runner keeps 30 per suite).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rapport.core.config import Settings

log = logging.getLogger("rapport.retention")

KEEP_RUNS = 30  # default of RAPPORT_KEEP_RUNS
LOG_PATTERNS = ("run-*.log", "backfill-*.log")  # cli.py names them <kind>-<YYYYmmddTHHMMSS>.log


@dataclass
class Pruned:
    """What `prune_run_files` deleted, per kind (paths relative to the warehouse)."""

    logs: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    dbt_results: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.logs) + len(self.markers) + len(self.dbt_results)


def file_name(run_id: str) -> str:
    """A run id as it appears in file names (rapport.orchestration.task_context.safe_name, which this layer
    cannot import: ':' and '+' become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


def _newest_first(paths: list[Path]) -> list[Path]:
    """By modification time, then name (both newest first): the order runs wrote them in."""

    def key(p: Path) -> tuple[int, str]:
        try:
            return p.stat().st_mtime_ns, p.name
        except FileNotFoundError:
            return 0, p.name

    return sorted(paths, key=key, reverse=True)


def _beyond(paths: list[Path], keep: int, spared: set[str] = frozenset()) -> list[Path]:
    """The paths after the newest `keep`, except those named in `spared`."""
    return [p for p in _newest_first(paths)[keep:] if p.name not in spared]


def prune_run_files(settings: Settings, *, current_run_id: str | None = None, keep: int | None = None) -> Pruned:
    """Delete the per-run files of all but the newest `keep` runs (default: `settings.keep_runs`; 0 keeps
    everything). The current run's marker and saved dbt results are never deleted; nor is the newest log
    of each kind (the one this run is writing)."""
    keep = settings.keep_runs if keep is None else keep
    pruned = Pruned()
    if keep <= 0:
        return pruned
    wh = settings.warehouse_dir
    current = {f"{file_name(current_run_id)}.json", file_name(current_run_id)} if current_run_id else set()
    if settings.logs_dir.is_dir():
        for pattern in LOG_PATTERNS:
            for path in _beyond(list(settings.logs_dir.glob(pattern)), keep):
                path.unlink(missing_ok=True)
                pruned.logs.append(str(path.relative_to(wh)))
    markers = wh / "runs"
    if markers.is_dir():
        for path in _beyond([p for p in markers.glob("*.json") if p.is_file()], keep, current):
            path.unlink(missing_ok=True)
            pruned.markers.append(str(path.relative_to(wh)))
    saved = wh / "dbt" / "airflow"
    if saved.is_dir():
        for path in _beyond([p for p in saved.iterdir() if p.is_dir()], keep, current):
            shutil.rmtree(path, ignore_errors=True)
            pruned.dbt_results.append(str(path.relative_to(wh)))
    if pruned.count:
        log.info(
            "kept the files of the newest %d runs: deleted %d run logs, %d run status markers, %d saved dbt results",
            keep,
            len(pruned.logs),
            len(pruned.markers),
            len(pruned.dbt_results),
        )
    return pruned
