"""Segment sizes at the latest recorded dates, kept from one report to the next (issue 16: a day's report reads
the day's changes of `marts.segment_history`, not the whole log).

The log grows by a day's changes every day (a year at 1,000,000 people: ~34M rows), and the sizes at a date are
a function of the log's rows on or before that date only. So the report keeps the sizes it computed, per date,
in `.segment_sizes.json` beside the reports, each with a signature of every log row up to that date: per
recorded date, its row count and its first and last `recorded_at`. A build writes a date whole (it deletes the
date's rows and inserts the new ones, all stamped with that build's one time, and no two builds share a time),
and rows leave otherwise only by deletion (`rapport forget`), which changes a count; so two logs with the same
signatures up to a date hold the same rows up to it (the argument rapport.publishing.publish_diff relies on for
`DATED`). A kept size whose signature still matches is the size; the next date's sizes are the previous date's
plus the moves of the rows between the two (each such row adds its customer to its segment and takes them out of
the segment of their row before it, found for those customers only). When no kept date matches (the first
report, a re-run that rewrote the first date shown, an erasure before it) the sizes are computed from the whole
log, as before (`migrations._sizes_from_changes`), and kept.

A log without `recorded_at` or `customer_id`, a row without a date, or no place to keep the sizes: the whole
log, every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from rapport.reports.files import write_atomic

log = logging.getLogger("rapport.reports")

CACHE_FILE = ".segment_sizes.json"
_VERSION = 1

Sizes = dict[str | None, int]  # segment (None: a row without one) -> customers, zeros left out

# The moves of the rows after `after` up to `upto`, for the customers those rows belong to: the first of each
# customer's rows is compared with their latest row on or before `after` (their state then), the later ones with
# the row before them, as `migrations._sizes_from_changes` does for every customer.
_MOVES_BETWEEN = """
    with rows_between as (
        select as_of_date, customer_id, change, rfm_segment
        from marts.segment_history
        where as_of_date > $after and as_of_date <= $upto
    ),
    state_before as (
        select
            $after as as_of_date,
            history.customer_id,
            arg_max_null(history.change, history.as_of_date) as change,
            arg_max_null(history.rfm_segment, history.as_of_date) as rfm_segment
        from marts.segment_history as history
        -- null-safe: the whole-log query groups rows without a customer id as one customer too
        semi join (select distinct customer_id from rows_between) as moved
            on history.customer_id is not distinct from moved.customer_id
        where history.as_of_date <= $after
        group by all
    ),
    rows_with_previous as (
        select
            as_of_date,
            change,
            rfm_segment,
            lag(change) over (partition by customer_id order by as_of_date) as previous_change,
            lag(rfm_segment) over (partition by customer_id order by as_of_date) as previous_segment
        from (select * from state_before union all by name select * from rows_between)
    ),
    moves as (
        select rfm_segment, 1 as n from rows_with_previous where as_of_date > $after and change <> 'left'
        union all
        select previous_segment, -1 from rows_with_previous
        where as_of_date > $after and previous_change is not null and previous_change <> 'left'
    )
    select rfm_segment, sum(n) as n from moves group by all
"""


def _signatures(con: duckdb.DuckDBPyConnection) -> list[tuple[date, int, str, str]] | None:
    """(date, rows, first and last recorded_at) per date of the log, in date order; None when a row has no date
    (the whole-log query never counts such rows, and no signature would cover them: the caller reads the whole
    log)."""
    rows = con.execute(
        """select as_of_date, count(*), min(recorded_at)::varchar, max(recorded_at)::varchar
           from marts.segment_history group by as_of_date order by as_of_date nulls first"""
    ).fetchall()
    if any(d is None for d, *_ in rows):
        return None
    return [(d, n, str(first), str(last)) for d, n, first, last in rows]


def _prefixes(signatures: list[tuple[date, int, str, str]], dates: list[date]) -> dict[date, str]:
    """For each of `dates` (ascending), a digest of the signatures of every log date on or before it."""
    out: dict[date, str] = {}
    digest = hashlib.sha256()
    i = 0
    for d in dates:
        while i < len(signatures) and signatures[i][0] <= d:
            digest.update(json.dumps([signatures[i][0].isoformat(), *signatures[i][1:]]).encode())
            i += 1
        out[d] = digest.copy().hexdigest()
    return out


def _load(path: Path) -> dict[str, Any]:
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("version") != _VERSION or not isinstance(kept.get("dates"), dict):
        return {}
    return kept["dates"]


def _as_sizes(pairs: Any) -> Sizes | None:
    try:
        return {(None if s is None else str(s)): int(n) for s, n in pairs}
    except (TypeError, ValueError):
        return None


def _moves_between(con: duckdb.DuckDBPyConnection, after: date, upto: date) -> Sizes:
    rows = con.execute(_MOVES_BETWEEN, {"after": after, "upto": upto}).fetchall()
    return {segment: int(n) for segment, n in rows}


def _add(sizes: Sizes, moves: Sizes) -> Sizes:
    out = dict(sizes)
    for segment, n in moves.items():
        out[segment] = out.get(segment, 0) + n
    return {s: n for s, n in out.items() if n != 0}


def sizes_at_dates(
    con: duckdb.DuckDBPyConnection, dates: list[date], whole_log: Any, cache: Path | None
) -> list[dict[str, Any]]:
    """Rows (as_of_date, rfm_segment, n), n not 0, for each of `dates` (the latest recorded dates, ascending):
    from the kept sizes where their signature matches, the moves since the previous date for the others, or
    `whole_log()` (rows of the same shape, computed from the whole log) when the first date is not kept."""
    signatures = _signatures(con) if cache is not None and dates else None
    if signatures is None:
        return whole_log()
    prefixes = _prefixes(signatures, dates)
    kept = _load(cache)  # type: ignore[arg-type]
    sizes: dict[date, Sizes] = {}
    previous: date | None = None
    for d in dates:
        entry = kept.get(d.isoformat())
        found = (
            _as_sizes(entry.get("sizes")) if isinstance(entry, dict) and entry.get("prefix") == prefixes[d] else None
        )
        if found is not None:
            sizes[d] = found
        elif previous is not None:
            sizes[d] = _add(sizes[previous], _moves_between(con, previous, d))
        else:  # the first date shown is not kept: every date from the whole log
            rows = whole_log()
            sizes = {d: {} for d in dates}
            for r in rows:
                sizes[r["as_of_date"]][r["rfm_segment"]] = int(r["n"])
            _save(cache, sizes, prefixes)  # type: ignore[arg-type]
            return rows
        previous = d
    if any(kept.get(d.isoformat(), {}).get("prefix") != prefixes[d] for d in dates) or set(kept) != {
        d.isoformat() for d in dates
    }:
        _save(cache, sizes, prefixes)  # type: ignore[arg-type]
    return [{"as_of_date": d, "rfm_segment": s, "n": n} for d in dates for s, n in sizes[d].items() if n != 0]


def _save(path: Path, sizes: dict[date, Sizes], prefixes: dict[date, str]) -> None:
    """Keep the sizes of the dates shown (older ones are never shown again). A cache that cannot be written
    costs the next report the whole log, nothing else."""
    data = {
        "version": _VERSION,
        "dates": {
            d.isoformat(): {"prefix": prefixes[d], "sizes": [[s, n] for s, n in sizes[d].items() if n != 0]}
            for d in sorted(sizes)
        },
    }
    try:
        write_atomic(path, json.dumps(data, sort_keys=True).encode())
    except OSError as exc:
        log.warning("could not keep the segment sizes in %s: %s", path, exc)
