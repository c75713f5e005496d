"""ESP export files: which exist and are due for an interval, the manifest of loaded files, and decoding.

Decoding keeps line numbers and never gives up on a file: invalid UTF-8 lines, a truncated gzip stream or
CSV rows with the wrong number of fields come back as rejects (line number, raw text, reason) next to the
good records. The one thing that stops a CSV file is a header that cannot be read (SchemaDriftError): then
no line of it can be interpreted. What Windows tools write reads like any other file: a UTF-8 byte-order
mark is dropped, CRLF line ends are read as LF, and UTF-16 or UTF-32 with a byte-order mark is decoded as
such. A file in another encoding (Windows-1252, EUC-KR, ...) has its undecodable lines quarantined with
the encoding the file looks like in the reason (charset-normalizer's guess), so the exporter can be fixed.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rapport.extractors.csv_fast import regular_csv, regular_csv_bytes
from rapport.extractors.errors import SchemaDriftError

log = logging.getLogger(__name__)

_SNAPSHOT_RE = re.compile(r"^(contacts|campaigns)_(\d{8})\.csv$")
_PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$"), re.compile(r"^hour=(\d{1,2})$")
TABLE_OF_KIND = {
    "contacts": "esp_contacts",
    "campaigns": "esp_campaigns",
    "audiences": "esp_audiences",
    "events": "esp_events",
}


@dataclass(frozen=True)
class EspFile:
    kind: str  # contacts | campaigns | audiences | events
    rel: str  # path relative to the export root, '/'-separated: the manifest key
    path: Path
    snapshot_date: date | None = None
    campaign_id: str | None = None

    @property
    def table(self) -> str:
        return TABLE_OF_KIND[self.kind]


def discover(root: Path, hi: datetime) -> list[EspFile]:
    """Files due at `hi`: snapshots dated on or before it, all audience files, event files of hour partitions
    that ended by it. Ordered: snapshots by date, audiences, events by partition then name."""
    if not root.is_dir():
        raise FileNotFoundError(f"ESP export root not found: {root} (RAPPORT_ESP_ROOT)")
    found: list[EspFile] = []
    for kind in ("contacts", "campaigns"):
        for p in sorted((root / kind).glob("*.csv")):
            m = _SNAPSHOT_RE.match(p.name)
            if not m or m.group(1) != kind:
                log.warning("ESP: ignoring %s (expected %s_YYYYMMDD.csv)", p, kind)
                continue
            try:
                day = datetime.strptime(m.group(2), "%Y%m%d").date()
            except ValueError:
                log.warning("ESP: ignoring %s (not a date)", p)
                continue
            if datetime.combine(day, datetime.min.time()) <= hi:
                found.append(EspFile(kind, p.relative_to(root).as_posix(), p, snapshot_date=day))
    found.sort(key=lambda f: (f.kind != "contacts", f.snapshot_date, f.rel))
    for p in sorted((root / "audiences").glob("*.csv")):
        found.append(EspFile("audiences", p.relative_to(root).as_posix(), p, campaign_id=p.stem))
    events: list[tuple[datetime, str, EspFile]] = []
    for p in (root / "events").glob("dt=*/hour=*/*.jsonl*"):
        if not (p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz")):
            continue
        m_dt, m_hour = _PARTITION_RE[0].match(p.parent.parent.name), _PARTITION_RE[1].match(p.parent.name)
        try:
            start = datetime.fromisoformat(m_dt.group(1)) + timedelta(hours=int(m_hour.group(1)))  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            log.warning("ESP: ignoring %s (partition is not dt=YYYY-MM-DD/hour=HH)", p)
            continue
        if start + timedelta(hours=1) <= hi:
            rel = p.relative_to(root).as_posix()
            events.append((start, rel, EspFile("events", rel, p)))
    found.extend(f for _s, _r, f in sorted(events, key=lambda e: (e[0], e[1])))
    return found


def load_manifest(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    return {r[0]: (r[1], r[2]) for r in con.execute("select path, size, sha256 from ops.esp_manifest").fetchall()}


def record_manifest(
    con: duckdb.DuckDBPyConnection, files: list[tuple[str, int, str, int]], run_id: str, loaded_at: datetime
) -> None:
    """Upsert manifest rows (path, size, sha256, rows read) in one statement, inside the batch transaction."""
    if not files:
        return
    paths, sizes, shas, reads = (list(x) for x in zip(*files, strict=True))
    rows = pa.table(
        {"path": paths, "size": pa.array(sizes, pa.int64()), "sha256": shas, "rows_read": pa.array(reads, pa.int64())}
    )
    con.register("_manifest_in", rows)
    try:
        con.execute(
            """insert into ops.esp_manifest (path, size, sha256, rows_read, loaded_at, run_id)
               select path, size, sha256, rows_read, ?, ? from _manifest_in
               on conflict (path) do update set size = excluded.size, sha256 = excluded.sha256,
                   rows_read = excluded.rows_read, loaded_at = excluded.loaded_at, run_id = excluded.run_id""",
            [loaded_at, run_id],
        )
    finally:
        with suppress(duckdb.Error):  # in an aborted transaction: keep its error
            con.unregister("_manifest_in")


@dataclass
class Decoded:
    text: str | None  # the whole file when it all decoded
    lines: list[str] | None = None  # per-line text when it did not (invalid lines left empty)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, raw, reason)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)  # UTF-32 LE starts like UTF-16 LE


def looks_like(bad: list[bytes], non_ascii: int) -> str:
    """' (the file looks like <encoding>: ...)' for the reason of undecodable lines, or '' without a good
    guess: only when at least two lines, and most of those holding non-ASCII bytes, fail as UTF-8 (one bad
    line among good UTF-8 ones is a damaged line, not another encoding)."""
    if len(bad) < 2 or 2 * len(bad) < non_ascii:
        return ""
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    best = from_bytes(b"\n".join(bad)[: 1 << 20]).best()
    encoding = best.encoding if best is not None else None
    return f" (the file looks like {encoding}: export it as UTF-8)" if encoding and encoding != "utf_8" else ""


def decode(data: bytes, rel: str) -> Decoded:
    """Gunzip (tolerating a truncated stream) and decode UTF-8, line by line only when the fast path fails.

    A truncated gzip file (still being written, or cut short) yields what it holds; its cut last line is
    quarantined as malformed, and when the file is complete later its checksum changes and it is reloaded."""
    rejects: list[tuple[int, str, str]] = []
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data)
        except _Truncated as exc:
            data = exc.partial
            log.warning("ESP: %s is a truncated gzip stream; loading the %d bytes it holds", rel, len(data))
        except zlib.error as exc:
            log.warning("ESP: %s is not a readable gzip stream (%s); loading nothing from it", rel, exc)
            data = b""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    if encoding != "utf-8-sig":
        with suppress(UnicodeDecodeError):  # a file that only starts like UTF-16 falls through to UTF-8
            text = data.decode(encoding)
            if encoding != "utf-8":
                log.warning("ESP: %s is %s (with a byte-order mark), not UTF-8; read as such", rel, encoding)
            return Decoded(text.replace("\r\n", "\n"), rejects=rejects)
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return Decoded(data.decode("utf-8").replace("\r\n", "\n"), rejects=rejects)
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    bad: list[tuple[int, bytes]] = []
    for i, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append("")
            bad.append((i, raw))
    non_ascii = sum(not line.isascii() for line in lines) + len(bad)
    reason = "invalid UTF-8" + looks_like([raw for _i, raw in bad], non_ascii)
    rejects += [(i, raw.decode("utf-8", "backslashreplace"), reason) for i, raw in bad]
    return Decoded(None, lines, rejects)


class _Truncated(Exception):
    def __init__(self, partial: bytes) -> None:
        self.partial = partial


def _gunzip(data: bytes) -> bytes:
    out = io.BytesIO()
    while data:  # gzip files may hold several members
        d = zlib.decompressobj(wbits=31)
        out.write(d.decompress(data))
        if not d.eof:
            raise _Truncated(out.getvalue())
        data = d.unused_data.lstrip(b"\x00")
    return out.getvalue()


def event_lines(f: EspFile, dec: Decoded, first_ord: int) -> pa.Table:
    """One row per physical line: _file, _line, line, _pre (reason found while decoding), _ord."""
    lines = dec.text.split("\n") if dec.text is not None else dec.lines or []
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    n = len(lines)
    pre: list[str | None] = [None] * n
    for line_no, _raw, reason in dec.rejects:
        if 1 <= line_no <= n:
            pre[line_no - 1] = reason
    for line_no, raw, _reason in dec.rejects:  # keep the raw text of undecodable lines for quarantine
        if 1 <= line_no <= n:
            lines[line_no - 1] = raw
    arr = pa.array(lines, pa.string())
    return pa.table(
        {
            "_file": pa.repeat(f.rel, n).cast(pa.string()) if n else pa.array([], pa.string()),
            "_line": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "line": arr,
            "_pre": pa.array(pre, pa.string()),
            "_ord": pa.array(np.arange(first_ord, first_ord + n, dtype=np.int64)),
        }
    )


def csv_records(f: EspFile, dec: Decoded, known: list[str], first_ord: int) -> tuple[pa.Table, list[str] | None]:
    """Rows of a CSV file as text columns named after `known` (missing ones NULL, '' read as NULL), plus
    _extra (JSON of columns not in `known`), _file, _line, _rawline (only for rejects), _pre and _ord; and
    the header (None for a file without one: an empty file)."""
    text = dec.text if dec.text is not None else "\n".join(dec.lines or [])
    text = text.removeprefix("\ufeff")
    regular = None if dec.rejects else regular_csv(text)
    if regular is not None:
        return _regular_records(f, *regular, known, first_ord), regular[0]
    rows: list[list[str]] = []
    line_nos: list[int] = []
    pre: list[str | None] = []
    rawlines: list[str | None] = []
    physical: list[str] | None = None
    header: list[str] | None = None
    bad_lines = {ln: (raw, reason) for ln, raw, reason in dec.rejects}

    def add(row: list[str], line: int, reason: str | None, raw: str | None) -> None:
        rows.append(row)
        line_nos.append(line)
        pre.append(reason)
        rawlines.append(raw)

    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the size limit: reject the record, go on
            start, prev = prev + 1, reader.line_num
            physical = physical or text.split("\n")
            add([], start, f"unreadable CSV record: {exc}", "\n".join(physical[start - 1 : prev])[:10_000])
            continue
        start, prev = prev + 1, reader.line_num
        if start in bad_lines:
            if header is None:  # the next line would be taken for the header: every row would be misread
                raise SchemaDriftError(
                    f"esp: {f.rel}: the header line ({start}) is not valid UTF-8"
                    f"{bad_lines[start][1].removeprefix('invalid UTF-8')}; the run stops "
                    "before transformation"
                )
            add([], start, bad_lines[start][1], bad_lines.pop(start)[0])
            continue
        if not row or (len(row) == 1 and not row[0].strip()):  # a blank line is no record
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if len(row) != len(header):
            physical = physical or text.split("\n")
            add([], start, f"expected {len(header)} fields, got {len(row)}", "\n".join(physical[start - 1 : prev]))
            continue
        add(row, start, None, None)
    for ln, (raw, reason) in sorted(bad_lines.items()):  # bad lines the CSV parser swallowed (inside quotes)
        add([], ln, reason, raw)
    header_seen = header is not None
    header = header or []
    cols = _known_columns(
        header, known, len(rows), lambda i: pa.array([r[i] if r else None for r in rows], pa.string())
    )
    extra_idx = _extra_columns(header, known)
    extras = (
        [
            json.dumps({h: r[i] for i, h in extra_idx}, ensure_ascii=False, separators=(",", ":")) if r else None
            for r in rows
        ]
        if extra_idx
        else [None] * len(rows)
    )
    n = len(rows)
    return pa.table(
        {
            **cols,
            "_extra": pa.array(extras, pa.string()),
            "_file": pa.array([f.rel] * n, pa.string()),
            "_line": pa.array(line_nos, pa.int64()),
            "_rawline": pa.array(rawlines, pa.string()),
            "_pre": pa.array(pre, pa.string()),
            "_ord": pa.array(np.arange(first_ord, first_ord + n, dtype=np.int64)),
        }
    ), (header if header_seen else None)


def regular_records(f: EspFile, data: bytes, known: list[str], first_ord: int) -> tuple[pa.Table, list[str]] | None:
    """`csv_records(f, decode(data, f.rel), known, first_ord)` for a regular file in plain UTF-8, parsed from its
    bytes without decoding them to text (`csv_fast.regular_csv_bytes`); None for any other file. A file that
    `decode` would change (gzip, a byte-order mark) is left to it."""
    if data[:2] == b"\x1f\x8b" or data.startswith(tuple(bom for bom, _name in _BOMS)):
        return None
    regular = regular_csv_bytes(data)
    if regular is None:
        return None
    return _regular_records(f, *regular, known, first_ord), regular[0]


def _known_columns(
    header: list[str], known: list[str], n: int, column: Callable[[int], pa.Array | pa.ChunkedArray]
) -> dict[str, pa.Array | pa.ChunkedArray]:
    """The `known` columns as text, '' read as NULL; a known column the header lacks is all NULL. `column(i)` is
    the header's i-th column."""
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in known:
        if name in header:
            arr = column(header.index(name))
            cols[name] = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        else:
            cols[name] = pa.nulls(n, pa.string())
    return cols


def _extra_columns(header: list[str], known: list[str]) -> list[tuple[int, str]]:
    """(position, name in _extra) of the columns that land in _extra: unknown columns, and a second column of
    a known name (its first one is the value)."""
    return [
        (i, h if h not in known else f"{h} (column {i + 1})")
        for i, h in enumerate(header)
        if h not in known or header.index(h) != i
    ]


def _regular_records(
    f: EspFile, header: list[str], fields: list[pa.ChunkedArray], known: list[str], first_ord: int
) -> pa.Table:
    """What `csv_records` builds, from a regular file's columns (`csv_fast`): every row valid, on line i + 2."""
    n = len(fields[0])
    cols = _known_columns(header, known, n, fields.__getitem__)
    extra_idx = _extra_columns(header, known)
    names = [h for _i, h in extra_idx]
    extras = (
        [
            json.dumps(dict(zip(names, vals, strict=True)), ensure_ascii=False, separators=(",", ":"))
            for vals in zip(*(fields[i].to_pylist() for i, _h in extra_idx), strict=True)
        ]
        if extra_idx
        else [None] * n
    )
    return pa.table(
        {
            **cols,
            "_extra": pa.array(extras, pa.string()),
            "_file": pa.repeat(pa.scalar(f.rel, pa.string()), n),
            "_line": pa.array(np.arange(2, n + 2, dtype=np.int64)),
            "_rawline": pa.nulls(n, pa.string()),
            "_pre": pa.nulls(n, pa.string()),
            "_ord": pa.array(np.arange(first_ord, first_ord + n, dtype=np.int64)),
        }
    )
