"""Listing of the audience CSV files shown in the report."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rapport.reports.audience_files import list_audience_files


def test_lists_csv_files_with_people_counts(audiences_dir: Path) -> None:
    files = list_audience_files(audiences_dir)
    assert files is not None
    assert [(f.name, f.people) for f in files] == [("at_risk.csv", 2), ("champions.csv", 1)]
    assert files[1].path == str((audiences_dir / "champions.csv").resolve())


def test_no_directory_means_none(tmp_path: Path) -> None:
    assert list_audience_files(None) is None
    assert list_audience_files(tmp_path / "missing") is None
    assert list_audience_files(tmp_path) == []


# (bytes, data rows csv.reader reads, header excluded), counted by hand
ROW_COUNTS = [
    (b"", 0),
    (b"email\r\n", 0),
    (b"email\r\na@x.com\r\nb@x.com\r\n", 2),  # what export_audiences writes: CRLF line ends
    (b"email\na@x.com\nb@x.com", 2),  # LF, no line end after the last row
    (b"email\ra@x.com\rb@x.com\r", 2),  # a bare CR ends a row too
    (b"email\r\n\r\na@x.com\r\n", 2),  # an empty line is a row (an empty one) for csv.reader
    (b'email,name\r\na@x.com,"Kim,\r\nAlice"\r\nb@x.com,Bo\r\n', 2),  # a line break inside quotes: one row
    (b'email\r\n"a\nb"\r\n"c"\r\n', 2),
    (b"email\r\na\x00b@x.com\r\nc@x.com\r\n", 2),  # NUL: left to the csv module
]


@pytest.mark.parametrize(("data", "rows"), ROW_COUNTS)
def test_people_counts_match_the_csv_module(tmp_path: Path, data: bytes, rows: int) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    (tmp_path / "b.csv").write_bytes(data.replace(b"\r\n", b"\n"))
    # the hand count, and csv.reader's own (what the count without parsing must equal)
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        assert max(sum(1 for _ in csv.reader(f)) - 1, 0) == rows
    files = list_audience_files(tmp_path)
    assert files is not None
    assert [f.people for f in files] == [rows, rows]


def test_a_line_longer_than_the_csv_field_limit_is_left_to_the_csv_module(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    (tmp_path / "long.csv").write_bytes(b"email\r\n" + b"x" * (limit + 1) + b"\r\n")
    (tmp_path / "short.csv").write_bytes(b"email\r\n" + b"x" * limit + b"\r\n")
    files = list_audience_files(tmp_path)
    assert files is not None
    # csv.reader refuses a field over its limit: that file cannot be read as CSV (None), as before
    assert [(f.name, f.people) for f in files] == [("long.csv", None), ("short.csv", 1)]
