"""Audience CSV exports (rapport.publishing.audiences) on hand-made marts."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from rapport.publishing.audiences import COLUMNS, SEGMENTS, export_audiences, first_name_of, neutralise, slugify

# customer_id, full_name, email_status, marketing_email, rfm_segment, monetary, recency, order_count, revenue
PEOPLE = [
    ("c1", "Alice Smith", "subscribed", "alice@x.com", "Champions", 500, 3, 6, "500.0000"),
    ("c2", '=HYPERLINK("http://evil")', "subscribed", "bob@x.com", "Champions", 900, 1, 9, "900.5000"),
    ("c3", "김민수", "subscribed", "minsu@x.kr", "At Risk", 120, 150, 3, "120.0000"),
    ("c4", "Carol Unsub", "unsubscribed", None, "Champions", 800, 2, 7, "800.0000"),
    ("c5", "Dan Cleaned", "cleaned", None, "At Risk", 50, 140, 3, "50.0000"),
    ("c6", "Eve Nocontact", "none", None, "No Purchases", 0, None, 0, "0.0000"),
    ("c7", "Frank NoAddress", "subscribed", None, "Champions", 700, 4, 8, "700.0000"),
    ("c8", "-Minus @At", "subscribed", "+plus@x.com", "No Purchases", 0, None, 0, "0.0000"),
    # not an email address: no identifier upstream, and never uploaded
    ("c9", "Mallory", "subscribed", '=HYPERLINK("http://evil","x")@x.com', "No Purchases", 0, None, 0, "0.0000"),
]


def _marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema marts")
    con.execute(
        "create table marts.customers (customer_id varchar, primary_email varchar, full_name varchar, "
        "country varchar, email_status varchar, order_count integer, lifetime_revenue_usd decimal(18,4), "
        "avg_order_value_usd decimal(18,4), last_order_at timestamp)"
    )
    con.execute(
        "create table marts.customer_segments (customer_id varchar, as_of_date date, recency_days integer, "
        "frequency integer, monetary_usd decimal(18,4), rfm_segment varchar, lifecycle_stage varchar, "
        "value_tier varchar, engagement_tier varchar, support_health varchar, marketing_email varchar)"
    )
    for cid, name, status, mail, segment, monetary, recency, orders, revenue in PEOPLE:
        con.execute(
            "insert into marts.customers values (?, ?, ?, 'KR', ?, ?, ?, null, timestamp '2025-06-27 10:00:00')",
            [cid, f"shop-{cid}@x.com", name, status, orders, revenue],
        )
        con.execute(
            "insert into marts.customer_segments values (?, date '2025-06-30', ?, ?, ?, ?, 'active', 'high', "
            "'engaged', 'none', ?)",
            [cid, recency, orders, monetary, segment, mail],
        )


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    _marts(con)
    yield con
    con.close()


def test_one_file_per_segment_with_slugified_names(con, tmp_path):
    paths = export_audiences(con, tmp_path / "audiences")
    assert [p.name for p in paths] == [
        "champions.csv",
        "loyal-customers.csv",
        "potential-loyalists.csv",
        "new-customers.csv",
        "promising.csv",
        "need-attention.csv",
        "about-to-sleep.csv",
        "at-risk.csv",
        "cannot-lose-them.csv",
        "hibernating.csv",
        "no-purchases.csv",
    ]
    assert len(paths) == len(SEGMENTS)
    empty = _read(tmp_path / "audiences" / "hibernating.csv")
    assert empty == []
    with open(tmp_path / "audiences" / "hibernating.csv", encoding="utf-8") as fh:
        assert fh.read().strip() == ",".join(COLUMNS)


def test_only_emailable_people_in_revenue_order(con, tmp_path):
    export_audiences(con, tmp_path)
    champions = _read(tmp_path / "champions.csv")
    # c4 unsubscribed, c7 subscribed without a usable address: left out; c2 (900) before c1 (500)
    assert [r["customer_id"] for r in champions] == ["c2", "c1"]
    assert [r["email"] for r in champions] == ["bob@x.com", "alice@x.com"]
    at_risk = _read(tmp_path / "at-risk.csv")
    assert [r["customer_id"] for r in at_risk] == ["c3"]  # c5 cleaned is left out
    no_purchases = _read(tmp_path / "no-purchases.csv")
    assert [r["customer_id"] for r in no_purchases] == ["c8"]  # c6 has no ESP contact


def test_columns_and_values(con, tmp_path):
    export_audiences(con, tmp_path)
    alice = _read(tmp_path / "champions.csv")[1]
    assert list(alice) == list(COLUMNS)
    assert alice["first_name"] == "Alice"
    assert alice["full_name"] == "Alice Smith"
    assert alice["segment"] == "Champions"
    assert alice["recency_days"] == "3"
    assert alice["order_count"] == "6"
    assert alice["lifetime_revenue_usd"] == "500"
    assert alice["avg_order_value_usd"] == ""
    assert alice["last_order_at"] == "2025-06-27 10:00:00"
    assert alice["as_of_date"] == "2025-06-30"
    minsu = _read(tmp_path / "at-risk.csv")[0]
    assert minsu["first_name"] == "김민수" and minsu["full_name"] == "김민수"
    assert _read(tmp_path / "champions.csv")[0]["lifetime_revenue_usd"] == "900.5"


def test_formula_injection_is_neutralised(con, tmp_path):
    export_audiences(con, tmp_path)
    bob = _read(tmp_path / "champions.csv")[0]
    assert bob["full_name"] == '\'=HYPERLINK("http://evil")'
    assert bob["first_name"] == '\'=HYPERLINK("http://evil")'
    [c8] = _read(tmp_path / "no-purchases.csv")  # c9's address is not an email address: left out
    assert c8["email"] == "+plus@x.com"  # a valid address stays intact: the ESP needs it as it is
    assert c8["full_name"] == "'-Minus @At"
    assert c8["first_name"] == "'-Minus"
    assert [r for p in tmp_path.glob("*.csv") for r in _read(p) if r["customer_id"] == "c9"] == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("-dash@example.com", "-dash@example.com"),  # valid addresses are not formulas to neutralise
        ("=carol@example.com", "=carol@example.com"),
        ('=HYPERLINK("http://evil","x")@x.com', '\'=HYPERLINK("http://evil","x")@x.com'),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_helpers():
    assert slugify("Cannot Lose Them") == "cannot-lose-them"
    assert slugify("  Need / Attention!! ") == "need-attention"
    assert first_name_of("  Ana  Lopez ") == "Ana"
    assert first_name_of("") is None
    assert first_name_of(None) is None


def test_rerun_replaces_files_atomically_from_a_database_file(tmp_path):
    db = tmp_path / "published.duckdb"
    with duckdb.connect(str(db)) as con:
        _marts(con)
    out = tmp_path / "out"
    export_audiences(db, out)
    assert len(_read(out / "champions.csv")) == 2
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.customers set email_status = 'unsubscribed' where customer_id = 'c1'")
    export_audiences(str(db), out)
    assert [r["customer_id"] for r in _read(out / "champions.csv")] == ["c2"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{slugify(s)}.csv" for s in SEGMENTS)


def test_half_written_files_of_a_killed_export_are_removed(con, tmp_path):
    out = tmp_path / "audiences"
    out.mkdir()
    stale = out / ".champions.csv.4242.tmp"  # what _write_atomically leaves when killed mid-write
    stale.write_text("email\nsomeone@example.com\n")
    keep = out / "notes.txt"
    keep.write_text("not ours")
    export_audiences(con, out)
    assert not stale.exists()
    assert keep.exists()
    assert not list(out.glob(".*.tmp"))
