"""Reading a regular CSV export with Arrow's CSV reader instead of Python's, with the same result.

A daily contacts snapshot holds the whole contact list (739,311 rows at 1M people) and every row of it is
read every day, though few changed; Python's csv module and the per-row bookkeeping around it took ~3 s of
the 1M day's ~9 s ESP extraction. Arrow's reader parses it in a fraction of that.

Only a file where the two readers cannot disagree takes this path: no quote character (so no quoted field,
no field spanning lines, none of the quoting corner cases where the readers differ), no carriage return or
NUL, no blank line, a header of at least two fields, every line holding exactly the header's number of
fields, and no field longer than Python csv's field size limit. Then each physical line is one record, line
numbers are positions, and both readers split on commas. Anything else (a quoted field, a short row, a blank
line, undecodable bytes) returns None and the caller reads the file the careful way, rejects and all.
"""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_IRREGULAR = ('"', "\r", "\0", "\n\n")
_IRREGULAR_BYTES = tuple(s.encode() for s in _IRREGULAR)


def regular_csv(text: str) -> tuple[list[str], list[pa.ChunkedArray]] | None:
    """(header with names stripped, one text column per header field, rows in line order from line 2) for a
    regular file (module docstring), else None."""
    if not text or text.startswith("\n") or any(s in text for s in _IRREGULAR):
        return None
    first = text[: text.find("\n")] if "\n" in text else text  # (partition would copy the whole rest)
    return _regular(text.encode("utf-8"), first, text.count("\n") + (not text.endswith("\n")))


def regular_csv_bytes(data: bytes) -> tuple[list[str], list[pa.ChunkedArray]] | None:
    """What `regular_csv(data.decode("utf-8"))` returns, read from the bytes: a daily snapshot is ~90 MB at 1M
    people, and decoding it to text, scanning the text and encoding it back for Arrow cost more than parsing
    it. None also when the bytes are not valid UTF-8 (Arrow's reader checks every field, as Python's decoder
    would: no byte outside a field but commas and newlines), so the caller decodes the careful way.
    The caller keeps what `esp_files.decode` would change (gzip, a byte-order mark) away from here; a CR is
    irregular in both."""
    if not data or data.startswith(b"\n") or any(s in data for s in _IRREGULAR_BYTES):
        return None
    end = data.find(b"\n")
    try:
        first = (data[:end] if end >= 0 else data).decode("utf-8")  # the header is skipped by Arrow's reader
    except UnicodeDecodeError:
        return None
    return _regular(data, first, data.count(b"\n") + (not data.endswith(b"\n")))


def _regular(data: bytes, first: str, lines: int) -> tuple[list[str], list[pa.ChunkedArray]] | None:
    """Parse a file with no irregular character: `first` is its first line, `lines` its number of lines."""
    header = [h.strip() for h in first.split(",")]
    if len(header) < 2:
        return None
    names = [f"c{i}" for i in range(len(header))]  # the file's own names may repeat or be blank
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            parse_options=pacsv.ParseOptions(
                quote_char=False, escape_char=False, newlines_in_values=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # a row with another number of fields (or, from bytes, invalid UTF-8)
        return None
    if table.num_rows == 0 or table.num_rows != lines - 1:
        return None
    limit = csv.field_size_limit()
    if any((pc.max(pc.utf8_length(col)).as_py() or 0) >= limit for col in table.columns):
        return None  # Python's reader rejects such a record: let it
    return header, table.columns
