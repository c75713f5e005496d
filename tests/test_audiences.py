"""Audience CSV exports (rapport.publishing.audiences) on hand-made marts, the prediction audiences included."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from rapport.publishing.audiences import (
    COLUMNS,
    SEGMENTS,
    audience_paths,
    export_audiences,
    first_name_of,
    neutralise,
    slugify,
)

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
    ("c10", "Ola Nordmann", "subscribed", "ola@x.no", "Loyal Customers", 300, 20, 4, "300.0000"),
]
MID_TIER = {"c3", "c10"}  # value tier mid; everyone else high

# customer_id, p_alive, predicted_clv_365d_usd, churn_risk, p_order_90d, expected_revenue_90d_usd.
# Likely to churn, high value (tier high, risk high), most revenue at risk first: c2 (50 x 0.9 / 0.1 = 450),
# c1 (100 x 0.8 / 0.2 = 400); c3 is mid tier, c4 unsubscribed, c9's address is no address.
# Likely to buy again (p_order_90d >= 0.5), likeliest first: c10 (0.75), c3 (0.5, the boundary); c5 is cleaned,
# c7 has no usable address.
PREDICTIONS = [
    ("c1", 0.2, 100.0, "high", 0.15, 12.0),
    ("c2", 0.1, 50.0, "high", 0.05, 4.0),
    ("c3", 0.25, 80.0, "high", 0.5, 30.0),
    ("c4", 0.05, 80.0, "high", 0.01, 1.0),
    ("c5", 0.9, 40.0, "low", 0.9, 25.0),
    ("c7", 0.95, 900.0, "low", 0.8, 300.0),
    ("c9", 0.2, 10.0, "high", 0.1, 1.0),
    ("c10", 0.85, 333.3333, "low", 0.75, 90.0),
]


def _marts(con: duckdb.DuckDBPyConnection, predictions: list[tuple] | None = PREDICTIONS) -> None:
    """`predictions=None`: a file published before marts.customer_predictions existed."""
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
            "insert into marts.customer_segments values (?, date '2025-06-30', ?, ?, ?, ?, 'active', ?, "
            "'engaged', 'none', ?)",
            [cid, recency, orders, monetary, segment, "mid" if cid in MID_TIER else "high", mail],
        )
    if predictions is None:
        return
    con.execute(
        "create table marts.customer_predictions (customer_id varchar, as_of_date date, p_alive double, "
        "expected_orders_90d double, expected_revenue_90d_usd double, predicted_clv_365d_usd double, "
        "churn_risk varchar, model varchar, expected_order_value_usd double, p_order_90d double)"
    )
    for cid, alive, clv, risk, p_order, revenue in predictions:
        con.execute(
            "insert into marts.customer_predictions values (?, date '2025-06-30', ?, 1, ?, ?, ?, "
            "'pareto_nbd+gamma_gamma fitted 2025-06-30', 50, ?)",
            [cid, alive, revenue, clv, risk, p_order],
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
        "likely-to-churn-high-value.csv",
        "likely-to-buy-again.csv",
    ]
    assert len(paths) == len(SEGMENTS) + 2
    assert paths == audience_paths(tmp_path / "audiences")  # what `rapport forget` regenerates
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
    assert (alice["churn_risk"], alice["p_alive"], alice["p_order_90d"], alice["predicted_clv_365d_usd"]) == (
        "high",
        "0.2",
        "0.15",
        "100",
    )
    assert alice["revenue_at_risk_usd"] == "400"  # 100 x (1 - 0.2) / 0.2
    ola = _read(tmp_path / "loyal-customers.csv")[0]
    assert (ola["p_alive"], ola["p_order_90d"], ola["predicted_clv_365d_usd"]) == ("0.85", "0.75", "333.33")
    assert ola["revenue_at_risk_usd"] == "58.82"  # 333.3333 x 0.15 / 0.85 = 58.8235
    plus = _read(tmp_path / "no-purchases.csv")[0]  # no paid order: no predictions
    assert [plus[c] for c in COLUMNS[-5:]] == [""] * 5
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
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in audience_paths(out))


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


def test_prediction_audiences_hold_the_reports_groups_in_order(con, tmp_path):
    export_audiences(con, tmp_path)
    churn = _read(tmp_path / "likely-to-churn-high-value.csv")
    assert [r["customer_id"] for r in churn] == ["c2", "c1"]
    assert [r["revenue_at_risk_usd"] for r in churn] == ["450", "400"]
    assert [r["email"] for r in churn] == ["bob@x.com", "alice@x.com"]
    assert churn[0]["full_name"] == '\'=HYPERLINK("http://evil")'  # the same formula guard as every file
    assert (churn[0]["segment"], churn[0]["churn_risk"], churn[0]["p_alive"]) == ("Champions", "high", "0.1")
    again = _read(tmp_path / "likely-to-buy-again.csv")
    assert [r["customer_id"] for r in again] == ["c10", "c3"]
    assert [r["p_order_90d"] for r in again] == ["0.75", "0.5"]
    assert list(again[0]) == list(COLUMNS)


def test_prediction_audiences_are_empty_without_predictions(tmp_path):
    """A file published before the predictions (or a run whose model did not fit): header-only files, so no
    earlier run's list lingers, and empty prediction columns in the segment files."""
    with duckdb.connect() as con:
        _marts(con, predictions=None)
        out = tmp_path / "out"
        (out).mkdir()
        (out / "likely-to-buy-again.csv").write_text("email\nstale@x.com\n", encoding="utf-8")
        export_audiences(con, out)
    for name in ("likely-to-churn-high-value.csv", "likely-to-buy-again.csv"):
        assert (out / name).read_text(encoding="utf-8").strip() == ",".join(COLUMNS)
    alice = next(r for r in _read(out / "champions.csv") if r["customer_id"] == "c1")
    assert [alice[c] for c in COLUMNS[-5:]] == [""] * 5
    with duckdb.connect() as con:  # a model that did not fit: rows without numbers
        _marts(con, predictions=[(cid, None, None, None, None, None) for cid, *_ in PREDICTIONS])
        export_audiences(con, out)
    assert _read(out / "likely-to-churn-high-value.csv") == _read(out / "likely-to-buy-again.csv") == []
