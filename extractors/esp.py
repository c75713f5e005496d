"""ESP exports extractor: contact and campaign snapshots, audiences, webhook event files.

`ops.esp_manifest` holds every loaded file's path, size and sha256, written in the transaction that lands
the file's rows. A file whose size and checksum match is skipped; a new (late) file is loaded; a changed file
is loaded again and merged on natural keys, so nothing is counted twice (raw tables keep what each version of
a file said: rows that disappear from a rewritten file are not deleted). A file whose size, mtime and ctime
are those it had when that content was hashed is skipped without being read (`esp_file_stats`), so a day
reads the day's files, not every file ever loaded. A regular CSV export (the usual daily snapshot) is parsed
by Arrow's reader, anything irregular by Python's (`csv_fast`).

Events are de-duplicated on `sg_event_id` (webhook retries put one event into several files: the first one
seen is kept). Contacts land one row per version (contact_id, updated_at) with the date of the first snapshot
that showed it, so status history (subscribed -> unsubscribed) is kept and the newest snapshot wins
downstream. Malformed lines (invalid JSON, invalid UTF-8, wrong field count, untypable values, an object or
array where a scalar belongs) go to `quarantine.<table>_rejects` with `<file>:<line>`; the rest of the file
loads. Columns and fields the contract does not name land in `_extra`.

A missing export root fails after bounded retries (`SourceNotFoundError`). An export root that no longer holds
the files earlier runs loaded (unmounted, emptied, a folder gone) stops the extraction before anything lands
(`source_health`). Files written by Windows tools (a byte-order mark, CRLF line ends) read like any other;
a file in another encoding has its undecodable lines quarantined with the encoding it looks like. A CSV
file whose header lacks a required column, or an events file none of whose records carries a required field,
stops the extraction (`SchemaDriftError`, see `contract`) before its batch lands; files already landed stay
landed.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import replace
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from rapport.core.config import Settings
from rapport.extractors.coerce import columns, json_type_checks, quote, typed_query
from rapport.extractors.contract import check_columns, check_json_drift
from rapport.extractors.errors import retry_source
from rapport.extractors.esp_file_stats import (
    FileRead,
    FileStat,
    forget_missing,
    load_stats,
    read_file,
    record_stats,
    unchanged_unread,
)
from rapport.extractors.esp_files import (
    TABLE_OF_KIND,
    EspFile,
    csv_records,
    decode,
    discover,
    event_lines,
    load_manifest,
    record_manifest,
    regular_records,
)
from rapport.extractors.extraction import extraction
from rapport.extractors.landing import ExtractResult, TableCounts, Timer, merge_batch, utc_now
from rapport.extractors.source_health import Finding, drop_severity, volume_finding
from rapport.extractors.state import batch_transaction

log = logging.getLogger(__name__)

SOURCE = "esp"
# columns that come from the file's name, not its content
FROM_NAME = {"contacts": "snapshot_date", "campaigns": "snapshot_date", "audiences": "campaign_id"}
_BLANK = r"^\s*$"
ROOT_ATTEMPTS, ROOT_BASE_S = 4, 0.25  # a remount or a sync in progress; Airflow's task retries cover the rest


def _events_sql() -> str:
    cols = columns("esp_events")
    paths = ", ".join(f"'$.{quote(c.name)}'" for c in cols)
    known = json.dumps({c.name: None for c in cols})
    return typed_query(
        "esp_events",
        # one JSON parse per line for all fields (a json_extract per field would parse it once per field)
        {c.name: f"_v[{i}]" for i, c in enumerate(cols, start=1)},
        from_sql=f"""(select *, json_extract_string(j, [{paths}]) as _v, json_type(j, [{paths}]) as _t
                      from (select *, case when _pre is null then case when json_valid(line)
                                           then case when json_type(line) = 'OBJECT' then line::json end end
                                           end as j
                            from _in)) t""",
        source_sql="_file || ':' || _line",
        raw_sql="line",
        loc_sql="_file || ':' || _line",
        ord_sql="_ord",
        extra_sql=f"case when j is not null then nullif(json_merge_patch(j, '{known}')::varchar, '{{}}') end",
        pre_reason_sql="""coalesce(_pre, case when j is null then
                              case when json_valid(line) then 'not a JSON object' else 'invalid JSON' end end)""",
        checks_sql=json_type_checks("esp_events", "_t"),
        where=f"not regexp_matches(line, '{_BLANK}')",
        group_sql="_file",
    )


def _csv_sql(kind: str) -> str:
    table = TABLE_OF_KIND[kind]
    names = [c.name for c in columns(table)]
    fields = ", ".join(f"{quote(n)} := {quote(n)}" for n in names if n != FROM_NAME[kind])
    return typed_query(
        table,
        {n: quote(n) for n in names},
        from_sql="_in t",
        source_sql="_file || ':' || _line",
        raw_sql=f"struct_pack(_rawline := _rawline, f := struct_pack({fields}))",
        raw_final="coalesce(_raw_src._rawline, to_json(_raw_src.f)::varchar)",
        loc_sql="_file || ':' || _line",
        ord_sql="_ord",
        extra_sql="_extra",
        pre_reason_sql="_pre",
    )


class _Batch:
    """Files of one kind decoded into one Arrow table, landed with their manifest rows in one transaction."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.parts: list[pa.Table] = []
        self.files: list[tuple[EspFile, FileRead, int]] = []  # file, what was read (data dropped), records read
        self.rows = 0

    def add(self, f: EspFile, got: FileRead, part: pa.Table, records: int) -> None:
        self.parts.append(part)
        self.files.append((f, replace(got, data=b""), records))  # the bytes are decoded: don't hold them
        self.rows += part.num_rows

    def land(self, con: duckdb.DuckDBPyConnection, run_id: str, counts: TableCounts) -> None:
        table = TABLE_OF_KIND[self.kind]
        sql = _events_sql() if self.kind == "events" else _csv_sql(self.kind)
        with Timer(counts), batch_transaction(con):
            con.register("_in", pa.concat_tables(self.parts))
            try:
                counts.add(merge_batch(con, table, sql, system=SOURCE, run_id=run_id))
                if self.kind == "events":
                    check_json_drift(con, SOURCE, table, "the events file")
            finally:
                with suppress(duckdb.Error):  # in an aborted transaction: keep its error
                    con.unregister("_in")
            record_manifest(
                con, [(f.rel, got.size, got.sha256, records) for f, got, records in self.files], run_id, utc_now()
            )
            record_stats(con, [(f.rel, got.stat, got.sha256) for f, got, _r in self.files if got.stat])


def _decode_file(f: EspFile, data: bytes, first_ord: int) -> tuple[pa.Table, int]:
    if f.kind == "events":
        part = event_lines(f, decode(data, f.rel), first_ord)
        blank = pc.sum(pc.match_substring_regex(part.column("line"), _BLANK)).as_py() or 0
        return part, part.num_rows - blank
    known = [c.name for c in columns(f.table) if c.name != FROM_NAME[f.kind]]
    regular = regular_records(f, data, known, first_ord)  # the usual snapshot: no decoding to text
    part, header = regular or csv_records(f, decode(data, f.rel), known, first_ord)
    if header is not None:
        check_columns(SOURCE, f.rel, f.table, header, supplied=[FROM_NAME[f.kind]])
    value = str(f.snapshot_date) if f.kind != "audiences" else f.campaign_id
    part = part.append_column(FROM_NAME[f.kind], pa.repeat(pa.scalar(value, pa.string()), part.num_rows))
    return part, part.num_rows


def missing_files(settings: Settings, manifest: dict[str, tuple[int, str]]) -> Finding | None:
    """Export files earlier runs loaded that are no longer under the export root: a folder that disappeared
    (an export kind holding none of its files) or an unmounted root is an error by default."""
    root = settings.esp_root
    loaded: dict[str, int] = {}
    held: dict[str, int] = {}
    for rel in manifest:
        kind = rel.split("/", 1)[0]
        loaded[kind] = loaded.get(kind, 0) + 1
        held[kind] = held.get(kind, 0) + (root / rel).is_file()
    severities = [drop_severity(settings, held[k], loaded[k]) for k in loaded]
    severity = "error" if "error" in severities else "warn" if "warn" in severities else None
    if severity is None:
        return None
    kinds = ", ".join(f"{k}/ {held[k]} of {loaded[k]}" for k in sorted(loaded) if held[k] < loaded[k])
    what = (
        f"RAPPORT_ESP_ROOT ({root}) holds {sum(held.values())} of the {len(manifest)} export files earlier "
        f"runs loaded ({kinds})"
    )
    return volume_finding(
        settings,
        SOURCE,
        what,
        sum(held.values()),
        len(manifest),
        "is the folder unmounted, or were files removed? Restore them and rerun",
        severity,
    )


def extract_esp(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, interval_end: datetime
) -> ExtractResult:
    """Land the ESP export files due at `interval_end` that are new or changed into raw.esp_*."""
    batch_rows = int(settings.extra.get("esp_batch_rows", 500_000))
    batch_files = int(settings.extra.get("esp_batch_files", 200))
    skipped = 0
    with extraction(con, settings, SOURCE, TABLE_OF_KIND.values(), run_id=run_id, interval_end=interval_end) as ex:
        counts = ex.counts
        manifest, stats = load_manifest(con), load_stats(con)
        remember: list[tuple[str, FileStat, str]] = []  # unchanged files read again (copied, touched)
        batch: _Batch | None = None
        next_ord = 0
        extra = settings.extra
        files = retry_source(
            lambda: discover(settings.esp_root, ex.interval_end),
            source="esp",
            where=str(settings.esp_root),
            attempts=int(extra.get("esp_root_attempts", ROOT_ATTEMPTS)),
            base_s=float(extra.get("esp_root_base_s", ROOT_BASE_S)),
        )
        ex.check(filter(None, [missing_files(settings, manifest)]))
        # after the check: an unmounted or emptied root stops the run above and keeps its files' cache rows
        forgotten = forget_missing(con, settings.esp_root, stats)
        for f in files:
            if unchanged_unread(f, manifest, stats):
                skipped += 1
                continue
            got = read_file(f)
            if manifest.get(f.rel) == (got.size, got.sha256):
                skipped += 1
                if got.stat:
                    remember.append((f.rel, got.stat, got.sha256))
                continue
            part, records = _decode_file(f, got.data, next_ord)
            next_ord += part.num_rows
            if batch and (
                batch.kind != f.kind or batch.rows + part.num_rows > batch_rows or len(batch.files) >= batch_files
            ):
                batch.land(con, run_id, counts[TABLE_OF_KIND[batch.kind]])
                batch = None
            batch = batch or _Batch(f.kind)
            batch.add(f, got, part, records)
        if batch:
            batch.land(con, run_id, counts[TABLE_OF_KIND[batch.kind]])
        record_stats(con, remember)  # one statement: atomic on its own
    log.info("ESP: %d files already loaded and unchanged; %d gone files forgotten", skipped, forgotten)
    return ex.result()
