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
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from rapport.core.config import Settings
from rapport.extractors.coerce import cast_expr, columns, json_type_checks, quote, sql_str, typed_query
from rapport.extractors.contract import check_json_drift
from rapport.extractors.helpdesk_client import HelpdeskClient, Page, RetryPolicy
from rapport.extractors.landing import (
    ExtractResult,
    TableCounts,
    Timer,
    ensure_schema,
    merge_batch,
    to_utc_naive,
    utc_now,
    utc_session,
)
from rapport.extractors.state import batch_transaction, get_state, log_failure, put_state, write_extraction_log

log = logging.getLogger(__name__)

SOURCE = "helpdesk"
KINDS = {"users": "helpdesk_users", "tickets": "helpdesk_tickets"}


def _typed_sql(table: str, kind: str, where: str) -> str:
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
        loc_sql=f"{sql_str(f'{kind} {where} item ')} || _idx",
        ord_sql="_ord",
        extra_sql=f"case when j is not null then nullif(json_merge_patch(j, '{known}')::varchar, '{{}}') end",
        # NaN and Infinity are read by Python's json module, which re-serialises them: DuckDB reads them too
        pre_reason_sql="""case when _pre is not null then _pre when j is null then
                              case when json_valid(_raw) then 'not a JSON object' else 'invalid JSON' end end""",
        checks_sql=json_type_checks(table, "_t"),
        where="_ord < ?",
        group_sql=sql_str(f"{kind} page at {where}"),
    )


def _export(
    con: duckdb.DuckDBPyConnection, client: HelpdeskClient, kind: str, *, run_id: str, hi: datetime,
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
        items = pa.table({
            "_ord": pa.array(np.arange(next_ord, next_ord + n, dtype=np.int64)),
            "_idx": pa.array(np.arange(n, dtype=np.int64)),
            "_raw": pa.array(page.items, pa.string()),
            "_pre": pa.array([page.bad.get(i) for i in range(n)], pa.string()),
        })
        next_ord += n
        with Timer(counts), batch_transaction(con):
            con.register("_items", items)
            try:
                # the first item past the interval ends this run's export (items arrive by updated_at);
                # items are JSON we serialised, and a non-object simply has no updated_at here
                updated = cast_expr("json_extract_string(_raw, '$.updated_at')", "timestamp")
                stop = con.execute(
                    f"""select min(_ord) from _items
                        where case when _pre is null and json_valid(_raw) then {updated} > ? end""",
                    [hi],
                ).fetchall()[0][0]
                limit = stop if stop is not None else next_ord
                counts.add(merge_batch(con, table, _typed_sql(table, kind, where), system=SOURCE,
                                       run_id=run_id, params=[limit]))
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


def extract_helpdesk(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, interval_end: datetime, base_url: str
) -> ExtractResult:
    """Land helpdesk users and tickets updated up to `interval_end` into raw.helpdesk_*."""
    ensure_schema(con)
    started = utc_now()
    hi = to_utc_naive(interval_end)
    extra = settings.extra
    retry = RetryPolicy(
        attempts=int(extra.get("helpdesk_retry_attempts", RetryPolicy.attempts)),
        base_s=float(extra.get("helpdesk_retry_base_s", RetryPolicy.base_s)),
        max_wait_s=float(extra.get("helpdesk_retry_max_s", RetryPolicy.max_wait_s)),
    )
    counts = {t: TableCounts() for t in KINDS.values()}
    try:
        with utc_session(con), HelpdeskClient(base_url, settings.helpdesk_token, retry=retry,
                                              timeout_s=float(extra.get("helpdesk_timeout_s", 30))) as client:
            for kind, table in KINDS.items():
                _export(con, client, kind, run_id=run_id, hi=hi, counts=counts[table])
    except Exception:
        log_failure(con, run_id=run_id, source=SOURCE, tables=counts, started_at=started)
        raise
    write_extraction_log(con, run_id=run_id, source=SOURCE, tables=counts, started_at=started)
    return ExtractResult.from_tables(SOURCE, counts)
