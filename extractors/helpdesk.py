"""Helpdesk extractor: Zendesk-style cursor export of users and tickets, resumable, interval-aware.

State is the cursor to ask for next (`ops.extract_state`, source `helpdesk`, key `<kind>.cursor`), written in
the transaction of the page it follows. A rerun, or a run after a crash or after retries ran out, resumes
there. Items are ordered by `updated_at`: at the first item past `interval_end` the export stops, lands what
came before it and leaves the cursor on the page it came from, so the next interval re-reads that page
(the items already landed are then duplicates).

Items that are not JSON objects, carry undecodable text, hold an object or array where the contract has a
scalar, or values that cannot be typed are quarantined with `<kind> <cursor> item <n>`; fields the
contract does not name land in `_extra`. A required field (`id`, `updated_at`) that no item of a page
carries stops the export (`contract.check_json_drift`) before the page lands.

An item dated more than RAPPORT_CLOCK_SKEW_MINUTES after the extraction is quarantined (`source_health`)
and, like an item past the interval, keeps the cursor where it is: a cursor moved past a far-future item
would skip every item updated before that date. Before exporting, the helpdesk is asked for its export
since the time of the ~200 most recently landed items of each kind: returning none of them (a helpdesk
emptied, replaced or answering with nothing) stops the run.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from rapport.core.config import Settings
from rapport.extractors.coerce import cast_expr, columns, json_type_checks, quote, sql_str, typed_query
from rapport.extractors.contract import check_json_drift
from rapport.extractors.extraction import extraction
from rapport.extractors.helpdesk_client import HelpdeskClient, Page, RetryPolicy
from rapport.extractors.landing import ExtractResult, TableCounts, Timer, merge_batch, utc_now
from rapport.extractors.source_health import Finding, future_check, volume_finding
from rapport.extractors.state import batch_transaction, get_state, put_state

log = logging.getLogger(__name__)

SOURCE = "helpdesk"
KINDS = {"users": "helpdesk_users", "tickets": "helpdesk_tickets"}
PROBE_ITEMS, PROBE_PAGES = 200, 2  # the volume probe asks for the export since the ~200th newest landed item
_UPDATED = cast_expr("json_extract_string(_raw, '$.updated_at')", "timestamp")
_VALID = "_pre is null and json_valid(_raw)"  # items are JSON we serialised; a non-object has no updated_at


def _typed_sql(table: str, kind: str, where: str, future: str, cut: datetime) -> str:
    """`future`: the quarantine check of items dated after `cut`. Those are read again every run, wherever
    the stream puts them, so their location names the item (a re-read is then a duplicate rejection)."""
    ahead = f"coalesce({_VALID} and {_UPDATED} > timestamp '{cut:%Y-%m-%d %H:%M:%S}', false)"
    cols = columns(table)
    paths = ", ".join(f"'$.{quote(c.name)}'" for c in cols)
    values = {}
    for i, c in enumerate(cols, start=1):
        # _s: every field as text, _j: as JSON (one parse of the item each); a JSON null is no value
        values[c.name] = f"case when _s[{i}] is null then null else _j[{i}] end" if c.type == "json" else f"_s[{i}]"
    known = json.dumps({c.name: None for c in cols})
    return typed_query(
        table,
        values,
        from_sql=f"""(select *, json_extract_string(j, [{paths}]) as _s, json_extract(j, [{paths}]) as _j,
                             json_type(j, [{paths}]) as _t
                      from (select _ord, _idx, _raw, _pre,
                                   case when _pre is null then case when json_valid(_raw) then
                                       case when json_type(_raw) = 'OBJECT' then _raw::json end end end as j
                            from _items)) t""",
        source_sql=sql_str(where),
        raw_sql="_raw",
        loc_sql=f"""case when {ahead} then {sql_str(f"{kind} id=")} || coalesce(json_extract_string(_raw, '$.id'), '?')
                     else {sql_str(f"{kind} {where} item ")} || _idx end""",
        ord_sql="_ord",
        extra_sql=f"case when j is not null then nullif(json_merge_patch(j, '{known}')::varchar, '{{}}') end",
        # NaN and Infinity are read by Python's json module, which re-serialises them: DuckDB reads them too
        pre_reason_sql="""case when _pre is not null then _pre when j is null then
                              case when json_valid(_raw) then 'not a JSON object' else 'invalid JSON' end end""",
        checks_sql=json_type_checks(table, "_t"),
        typed_checks_sql=[future],
        where=f"_ord < ? or {ahead}",
        group_sql=sql_str(f"{kind} page at {where}"),
    )


def _export(
    con: duckdb.DuckDBPyConnection,
    client: HelpdeskClient,
    kind: str,
    *,
    run_id: str,
    hi: datetime,
    cut: datetime,
    future: str,
    counts: TableCounts,
) -> None:
    table = KINDS[kind]
    key = f"{kind}.cursor"
    cursor = get_state(con, SOURCE, key)
    next_ord = 0
    while True:
        page: Page = client.page(kind, cursor)
        where = f"cursor={cursor}" if cursor else "start_time=0"
        n = len(page.items)
        items = pa.table(
            {
                "_ord": pa.array(np.arange(next_ord, next_ord + n, dtype=np.int64)),
                "_idx": pa.array(np.arange(n, dtype=np.int64)),
                "_raw": pa.array(page.items, pa.string()),
                "_pre": pa.array([page.bad.get(i) for i in range(n)], pa.string()),
            }
        )
        next_ord += n
        with Timer(counts), batch_transaction(con):
            con.register("_items", items)
            try:
                # the first item past the interval ends this run's export (items arrive by updated_at) and
                # keeps the cursor here; items dated in the future are quarantined, the others wait for
                # a later interval
                stop, wait = con.execute(
                    f"""select min(_ord), min(_ord) filter (where u <= ?)
                        from (select _ord, case when {_VALID} then {_UPDATED} end as u from _items) where u > ?""",
                    [cut, hi],
                ).fetchall()[0]
                limit = wait if wait is not None else next_ord
                counts.add(
                    merge_batch(
                        con,
                        table,
                        _typed_sql(table, kind, where, future, cut),
                        system=SOURCE,
                        run_id=run_id,
                        params=[limit],
                    )
                )
                check_json_drift(con, SOURCE, table, "the helpdesk")
            finally:
                with suppress(duckdb.Error):  # in an aborted transaction: keep its error
                    con.unregister("_items")
            if stop is None and page.after_cursor:
                put_state(con, SOURCE, key, page.after_cursor, run_id)
        if stop is not None:
            log.info("helpdesk %s: reached interval end %s at %s; cursor stays there", kind, hi, where)
            return
        # a cursor that does not move would ask for the same page for ever
        if page.end_of_stream or not page.after_cursor or page.after_cursor == cursor:
            return
        cursor = page.after_cursor


def probe(con: duckdb.DuckDBPyConnection, client: HelpdeskClient, settings: Settings, kind: str) -> Finding | None:
    """Ask for the export since the time of the ~200 newest landed items of `kind`: every one of them must
    come back (updated_at only moves forward). Judged only when the stream ended within PROBE_PAGES pages."""
    table = KINDS[kind]
    latest = f"select id, max(updated_at) as u from raw.{table} group by id"
    since = con.execute(
        f"select min(u) from (select u from ({latest}) order by u desc limit {PROBE_ITEMS})"
    ).fetchall()[0][0]
    if since is None:
        return None
    expected = {r[0] for r in con.execute(f"select id from ({latest}) where u >= ?", [since]).fetchall()}
    start = int(since.replace(tzinfo=UTC).timestamp())
    seen: set[int] = set()
    cursor = None
    for _ in range(PROBE_PAGES):
        page = client.page(kind, cursor, start_time=start)
        for text in page.items:
            with suppress(ValueError, TypeError, AttributeError):
                seen.add(int(json.loads(text).get("id")))
        if page.end_of_stream or not page.after_cursor or page.after_cursor == cursor:
            break
        cursor = page.after_cursor
    else:
        return None  # more pages than the probe reads: cannot tell
    held = len(expected & seen)
    count = "none" if held == 0 else f"{held}"
    what = (
        f"the export of {kind} since {since:%Y-%m-%d %H:%M} UTC returned {count} of the {len(expected)} "
        f"{kind} earlier runs landed from then on"
    )
    return volume_finding(
        settings,
        SOURCE,
        what,
        held,
        len(expected),
        "is RAPPORT_HELPDESK_URL the right helpdesk, and its export complete? Fix it and rerun",
    )


def extract_helpdesk(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, interval_end: datetime, base_url: str
) -> ExtractResult:
    """Land helpdesk users and tickets updated up to `interval_end` into raw.helpdesk_*."""
    extra = settings.extra
    retry = RetryPolicy(
        attempts=int(extra.get("helpdesk_retry_attempts", RetryPolicy.attempts)),
        base_s=float(extra.get("helpdesk_retry_base_s", RetryPolicy.base_s)),
        max_wait_s=float(extra.get("helpdesk_retry_max_s", RetryPolicy.max_wait_s)),
    )
    with (
        extraction(con, settings, SOURCE, KINDS.values(), run_id=run_id, interval_end=interval_end) as ex,
        HelpdeskClient(
            base_url, settings.helpdesk_token, retry=retry, timeout_s=float(extra.get("helpdesk_timeout_s", 30))
        ) as client,
    ):
        ex.check(filter(None, [probe(con, client, settings, kind) for kind in KINDS]))
        cut = max(utc_now(), ex.interval_end) + timedelta(minutes=settings.clock_skew_minutes)
        future = future_check(settings, cut)
        for kind, table in KINDS.items():
            _export(
                con, client, kind, run_id=run_id, hi=ex.interval_end, cut=cut, future=future, counts=ex.counts[table]
            )
    return ex.result()
