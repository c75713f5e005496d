"""Regular CSV exports read with Arrow's reader (rapport.extractors.csv_fast): the same records as the careful
reader, and every irregular file left to the careful reader."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pytest

from rapport.extractors import esp_files
from rapport.extractors.csv_fast import regular_csv, regular_csv_bytes
from rapport.extractors.esp_files import Decoded, EspFile, csv_records, decode, regular_records

F = EspFile("contacts", "contacts/contacts_20250801.csv", Path("/nowhere"))
KNOWN = ["contact_id", "email", "first_name", "last_name", "status", "created_at", "updated_at"]


def test_a_regular_file_gives_hand_read_records():
    text = (
        "contact_id , email,first_name,last_name,status,created_at,updated_at,owner,email\n"
        "c1,Min@Example.com,민준,,subscribed,2025-07-01T00:00:00Z,2025-07-02T00:00:00Z,kim,alt@x.com\n"
        "c2,,สมชาย,ใจดี,cleaned,2025-07-01T00:00:00Z,2025-07-03T00:00:00Z,,\n"
    )
    table, header = csv_records(F, Decoded(text), KNOWN, 10)
    assert header == [*KNOWN, "owner", "email"]
    assert table.column("contact_id").to_pylist() == ["c1", "c2"]  # the header's spaces are stripped
    assert table.column("email").to_pylist() == ["Min@Example.com", None]  # '' reads as NULL
    assert table.column("last_name").to_pylist() == [None, "ใจดี"]
    assert table.column("_extra").to_pylist() == [
        '{"owner":"kim","email (column 9)":"alt@x.com"}',
        '{"owner":"","email (column 9)":""}',
    ]
    assert table.column("_line").to_pylist() == [2, 3]
    assert table.column("_ord").to_pylist() == [10, 11]
    assert table.column("_file").to_pylist() == [F.rel] * 2
    assert table.column("_pre").to_pylist() == [None, None]
    assert table.column("_rawline").to_pylist() == [None, None]


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3,4\n",
        "a,b\n1,2\n3,4",  # no newline at the end
        "a,b,a,c\n1,2,3,4\n,,,\n",
        "contact_id,email,x\nc1, spaced ,\u00e9\u0301\nc2,\u2028,\x0c\n",  # separators only io/str.splitlines know
    ],
)
def test_regular_files_read_as_pythons_csv_module_reads_them(text):
    expected = list(csv.reader(io.StringIO(text, newline="")))
    got = regular_csv(text)
    assert got is not None
    header, cols = got
    assert header == [h.strip() for h in expected[0]]
    assert [list(r) for r in zip(*(c.to_pylist() for c in cols), strict=True)] == expected[1:]


@pytest.mark.parametrize(
    "text",
    [
        'a,b\n1,"2,3"\n',  # a quoted field
        'a,b\n"1",2\n',  # a quoted field of the right width: Python's reader drops the quotes
        "a,b\n1,2\n\n3,4\n",  # a blank line
        "a,b\n1,2\n  \n",  # a line of spaces
        "a,b\r\n1,2\r\n",  # a carriage return
        "a,b\n1,2,3\n",  # a long row
        "a,b\n1\n",  # a short row
        "a\n1\n",  # one column: a blank line would read as a record
        "\na,b\n1,2\n",  # the header is not on line 1
        "a,b\n",  # no record
        "",
        "a,b\n1,2\x00\n",  # NUL
        f"a,b\n1,{'x' * csv.field_size_limit()}\n",  # Python's reader rejects a field this long
    ],
)
def test_irregular_files_are_left_to_the_careful_reader(text):
    assert regular_csv(text) is None


def test_the_careful_reader_still_rejects_a_short_row_with_its_line(monkeypatch):
    text = (
        "\n".join(
            [
                ",".join(KNOWN),
                "c1,a@x.com,A,B,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z",
                "c4,short,row",
                "c5,e@x.com,E,F,cleaned,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z",
            ]
        )
        + "\n"
    )
    table, _ = csv_records(F, Decoded(text), KNOWN, 0)
    assert table.column("_line").to_pylist() == [2, 3, 4]
    assert table.column("_pre").to_pylist() == [None, "expected 7 fields, got 3", None]
    assert table.column("_rawline").to_pylist() == [None, "c4,short,row", None]


def test_a_regular_file_gives_the_careful_readers_table(monkeypatch):
    rows = [
        f"c{i},p{i}@example.com,이름{i},,{'subscribed' if i % 3 else 'cleaned'},2025-07-01T00:00:00Z,"
        f"2025-07-{1 + i % 28:02d}T00:00:00Z,extra{i}"
        for i in range(2_000)
    ]
    text = "\n".join([",".join(KNOWN) + ",owner", *rows]) + "\n"
    fast, fast_header = csv_records(F, Decoded(text), KNOWN, 7)
    monkeypatch.setattr(esp_files, "regular_csv", lambda _text: None)  # the careful reader alone
    slow, slow_header = csv_records(F, Decoded(text), KNOWN, 7)
    assert fast_header == slow_header
    assert fast.schema == slow.schema
    assert fast.combine_chunks().equals(slow.combine_chunks())
    assert isinstance(fast.column("_extra"), pa.ChunkedArray) and fast.num_rows == 2_000


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3,4\n",
        "a,b\n1,2\n3,4",
        "a,b,a,c\n1,2,3,4\n,,,\n",
        "contact_id,email,x\nc1, spaced ,\u00e9\u0301\nc2,\u2028,\x0c\n",
        "\u00e9t\u00e9 ,\u314e\nx,\U0001f600\n",  # a header and fields beyond ASCII
    ],
)
def test_a_regular_file_read_from_its_bytes_is_read_as_from_its_text(text):
    got, want = regular_csv_bytes(text.encode("utf-8")), regular_csv(text)
    assert want is not None and got is not None
    assert got[0] == want[0]
    assert [c.to_pylist() for c in got[1]] == [c.to_pylist() for c in want[1]]


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,"2,3"\n',  # a quoted field
        b"a,b\r\n1,2\r\n",  # CRLF: decode() turns it into LF first, so the text reader sees a regular file
        b"a,b\n1,2\n\n3,4\n",  # a blank line
        b"a,b\n1,2,3\n",  # a long row
        b"a\n1\n",  # one column
        b"",
        b"a,b\n1,\xff\n",  # invalid UTF-8 in a field
        b"a,\xed\xa0\x80\n1,2\n",  # invalid UTF-8 (a surrogate) in the header, which Arrow's reader skips
        b"a,b\n\xc0\xaf,2\n",  # an overlong encoding
    ],
)
def test_irregular_or_undecodable_bytes_are_left_to_the_careful_reader(data):
    assert regular_csv_bytes(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfcontact_id,email\nc1,a@x.com\n",  # a UTF-8 byte-order mark: decode() drops it
        "contact_id,email\nc1,a@x.com\n".encode("utf-16"),  # decoded from UTF-16 by decode()
        gzip.compress(b"contact_id,email\nc1,a@x.com\n", mtime=0),  # gunzipped by decode()
    ],
)
def test_files_that_decode_changes_are_not_read_from_their_bytes(data):
    assert regular_records(F, data, KNOWN, 0) is None
    table, header = csv_records(F, decode(data, F.rel), KNOWN, 0)  # what the extractor does instead
    assert header == ["contact_id", "email"]
    assert table.column("contact_id").to_pylist() == ["c1"]


def test_records_from_the_bytes_are_the_careful_readers_table(monkeypatch):
    rows = [
        f"c{i},p{i}@example.com,이름{i},,{'subscribed' if i % 3 else 'cleaned'},2025-07-01T00:00:00Z,"
        f"2025-07-{1 + i % 28:02d}T00:00:00Z,extra{i}"
        for i in range(2_000)
    ]
    data = ("\n".join([",".join(KNOWN) + ",owner", *rows]) + "\n").encode("utf-8")
    got = regular_records(F, data, KNOWN, 7)
    assert got is not None
    monkeypatch.setattr(esp_files, "regular_csv", lambda _text: None)  # the careful reader alone
    slow, slow_header = csv_records(F, decode(data, F.rel), KNOWN, 7)
    assert got[1] == slow_header
    assert got[0].schema == slow.schema
    assert got[0].combine_chunks().equals(slow.combine_chunks())
