"""A frame of more than `chunk_rows` rows is validated in parts: they hold exactly the frame's rows, every key
in one part, placed by a hash of the exported (cast) key values, as many parts as ceil(rows / chunk_rows).
A frame that is cheap to count (`count_first`, the marts') is written straight into its parts; the others
whole and then split: both ways give the same parts. Hand-made tables, DuckDB only."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from rapport.expectations.frames import Frame, export_frame

# 7 rows, 5 keys (k, day): key (1, 2026-01-01) and (2, 2026-01-02) twice each
ROWS = [
    (1, date(2026, 1, 1), "a"),
    (1, date(2026, 1, 1), "b"),
    (2, date(2026, 1, 2), "c"),
    (2, date(2026, 1, 2), "d"),
    (3, date(2026, 1, 3), "e"),
    (4, date(2026, 1, 4), "f"),
    (5, date(2026, 1, 5), None),
]
FRAME = Frame(suite="t", queries=("select * from t",), relation="t")
COUNTED = Frame(suite="t", queries=("select * from t",), relation="t", count_first=True)
BOTH = pytest.mark.parametrize("frame", [FRAME, COUNTED], ids=["written-whole-first", "counted-first"])


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute("create table t (k integer, day date, v varchar)")
    con.executemany("insert into t values (?, ?, ?)", ROWS)
    yield con
    con.close()


def _rows(con, files) -> list[tuple]:
    return sorted(con.execute("select * from read_parquet($f)", {"f": [str(f) for f in files]}).fetchall(), key=repr)


@BOTH
def test_a_frame_over_chunk_rows_is_written_in_its_parts(con, tmp_path, frame):
    path = tmp_path / "t.parquet"
    exported = export_frame(con, frame, path, chunk_rows=3, chunk_key=("k", "day"))
    assert exported.rows == 7
    assert len(exported.parts) == 3  # ceil(7 / 3)
    assert [p.name for p in exported.parts] == [f"part-000{i}-of-0003.parquet" for i in (1, 2, 3)]
    assert not path.exists()
    # the day is exported as a timestamp (pandas reads it better): the parts hold the exported values
    expected = sorted([(k, f"{d.isoformat()} 00:00:00", v) for k, d, v in ROWS], key=repr)
    got = [(k, str(d), v) for k, d, v in _rows(con, exported.parts)]
    assert got == expected
    for i, part in enumerate(exported.parts):
        # every row of part i hashes to i, the hash taken over the values as exported (timestamps): the
        # placement the gate has always used (it hashed the key of the whole exported file)
        wrong = con.execute(
            "select count(*) from read_parquet(?) where hash(k, day) % 3 <> ?", [str(part), i]
        ).fetchall()[0][0]
        assert wrong == 0, part
    keys_in_parts = con.execute(
        "select k from read_parquet($f, filename = true) group by k having count(distinct filename) > 1",
        {"f": [str(p) for p in exported.parts]},
    ).fetchall()
    assert keys_in_parts == []


@BOTH
def test_a_frame_within_chunk_rows_stays_whole_and_a_split_of_an_earlier_run_goes(con, tmp_path, frame):
    path = tmp_path / "t.parquet"
    split = export_frame(con, frame, path, chunk_rows=3, chunk_key=("k", "day"))
    whole = export_frame(con, frame, path, chunk_rows=7, chunk_key=("k", "day"))
    assert whole.rows == 7 and whole.parts == () and whole.path == path
    assert len(_rows(con, [path])) == 7
    assert not any(p.exists() for p in split.parts)


@BOTH
def test_a_whole_frame_of_an_earlier_run_goes_when_the_frame_is_split(con, tmp_path, frame):
    path = tmp_path / "t.parquet"
    export_frame(con, frame, path, chunk_rows=100, chunk_key=("k", "day"))
    assert path.exists()
    split = export_frame(con, frame, path, chunk_rows=2, chunk_key=("k", "day"))
    assert len(split.parts) == 4  # ceil(7 / 2)
    assert not path.exists()


@BOTH
def test_a_frame_without_its_key_is_not_split(con, tmp_path, frame):
    exported = export_frame(con, frame, tmp_path / "t.parquet", chunk_rows=2, chunk_key=("id",))
    assert exported.parts == () and exported.rows == 7


def test_both_ways_give_the_same_parts(con, tmp_path):
    whole_first = export_frame(con, FRAME, tmp_path / "a" / "t.parquet", chunk_rows=2, chunk_key=("k", "day"))
    counted = export_frame(con, COUNTED, tmp_path / "b" / "t.parquet", chunk_rows=2, chunk_key=("k", "day"))
    assert (whole_first.rows, counted.rows) == (7, 7)
    assert [_rows(con, [p]) for p in counted.parts] == [_rows(con, [p]) for p in whole_first.parts]


def test_mart_frames_are_counted_first_and_raw_frames_are_not():
    from rapport.expectations.catalog import load_suites
    from rapport.expectations.frames import raw_frame
    from rapport.expectations.mart_frames import mart_frame

    suites = load_suites()
    assert mart_frame(suites["mart_customer_identities"]).count_first
    assert not raw_frame(suites["raw_esp_audiences"]).count_first
