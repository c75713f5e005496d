"""Orders extractor on a hand-made SQLite shop database (the embedded default)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from extract_helpers import checksums, connect, make_settings, raw_rows, write_shop

from rapport.extractors.errors import SourceConfigError
from rapport.extractors.orders import extract_orders

DAY1_END = datetime(2025, 8, 2)
DAY2_END = datetime(2025, 8, 3)

CUSTOMERS = [
    (1, " Min@Example.com ", "민준", "김", "010-1234-5678", "KR", 1, "2025-08-01T00:00:00Z", "2025-08-01T08:00:00Z"),
    (2, "som@example.co.th", "สมชาย", "ใจดี", None, "TH", 0, "2025-08-01 01:00:00", "2025-08-01 09:00:00+00:00"),
    (
        3,
        "li+promo@example.cn",
        "伟",
        "李",
        "+86 10 1234 5678",
        "CN",
        1,
        "2025-08-02T01:00:00Z",
        "2025-08-02T10:00:00Z",
    ),  # changed on day 2
    (4, "bad@example.com", "B", "D", None, "US", 0, "2025-08-01T02:00:00Z", "yesterday"),  # untypable
]


def _order(oid, cust, total, updated, *, status="paid", currency="USD"):
    return (
        oid,
        cust,
        "guest@example.com" if cust is None else None,
        None,
        status,
        currency,
        total,
        0,
        0,
        0,
        total,
        0,
        None,
        "esp",
        "email",
        "cmp_1",
        "2025-08-01T00:00:00Z",
        updated,
        None,
    )


ORDERS = [
    _order(10, 1, 52500, "2025-08-01T10:00:00Z", currency="KRW"),
    _order(11, None, 19.99, "2025-08-01T23:59:59Z"),
    _order(12, 2, "n/a", "2025-08-01T12:00:00Z", currency="THB"),  # non-numeric total
    _order(13, 3, 5.5, "2025-08-02T05:00:00Z"),  # day 2
]
ITEMS = [
    (100, 10, "TEA-1", "Tea", "food", 2, 25000),
    (101, 10, "CUP-1", "Cup", "home", 1, 2500),
    (102, 11, "MUG-1", "Mug", "home", 1, 19.99),
    (103, 12, "X", "x", "y", 1, 100),
    (104, 13, "Y", "y", "z", 1, 5.5),
]
FX = [
    ("2025-08-01", "KRW", 0.00072),
    ("2025-08-01", "THB", 0.028),
    ("2025-08-01", "USD", 1),
    ("2025-08-02", "KRW", 0.00073),
    ("2025-08-03", "KRW", 0.00074),
]


@pytest.fixture
def shop(tmp_path):
    write_shop(tmp_path / "shop.db", customers=CUSTOMERS, orders=ORDERS, items=ITEMS, fx=FX)
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    yield tmp_path, settings, con
    con.close()


def _ids(con, table):
    return sorted(r[0] for r in con.execute(f"select id from raw.{table}").fetchall())


def test_first_run_lands_the_interval_and_quarantines_bad_rows(shop):
    tmp, settings, con = shop
    res = extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)
    t = res.tables
    # customers 1, 2 land, 4 is quarantined, 3 (updated on day 2) is not read
    assert (t["shop_customers"].rows_read, t["shop_customers"].rows_landed, t["shop_customers"].rows_quarantined) == (
        3,
        2,
        1,
    )
    assert (t["shop_orders"].rows_read, t["shop_orders"].rows_landed, t["shop_orders"].rows_quarantined) == (3, 2, 1)
    # items of the orders read (12's item is valid even though its order is not)
    assert t["shop_order_items"].rows_landed == 4
    # fx rates dated up to the interval end's date: 2025-08-01 x3 and 2025-08-02
    assert t["shop_fx_rates"].rows_landed == 4
    assert (res.rows_read, res.rows_landed, res.rows_quarantined, res.rows_duplicate) == (14, 12, 2, 0)
    assert _ids(con, "shop_customers") == [1, 2]
    assert _ids(con, "shop_orders") == [10, 11]
    assert _ids(con, "shop_order_items") == [100, 101, 102, 103]
    # typed values, as the source said them (no cleaning here)
    assert con.execute(
        "select email, first_name, accepts_marketing, updated_at from raw.shop_customers where id = 1"
    ).fetchall() == [(" Min@Example.com ", "민준", True, datetime(2025, 8, 1, 8))]
    assert con.execute("select customer_id, total from raw.shop_orders where id = 11").fetchall() == [
        (None, Decimal("19.99"))
    ]
    rejects = con.execute("select location, reason from quarantine.shop_orders_rejects").fetchall()
    assert rejects == [("orders:id=12", "bad subtotal (n/a); bad total (n/a)")]
    assert con.execute("select location from quarantine.shop_customers_rejects").fetchall() == [("customers:id=4",)]
    log = con.execute(
        'select "table", rows_read, rows_landed, rows_quarantined, rows_duplicate '
        "from ops.extraction_log where run_id = 'r1' order by 1"
    ).fetchall()
    assert log == [
        ("shop_customers", 3, 2, 1, 0),
        ("shop_fx_rates", 4, 4, 0, 0),
        ("shop_order_items", 4, 4, 0, 0),
        ("shop_orders", 3, 2, 1, 0),
    ]
    state = dict(con.execute("select key, value from ops.extract_state where source = 'orders'").fetchall())
    assert state == {"customers.updated_at": "2025-08-01 09:00:00", "orders.updated_at": "2025-08-01 23:59:59"}


def test_consecutive_runs_without_source_change_add_nothing(shop):
    tmp, settings, con = shop
    extract_orders(con, settings, run_id="r1", interval_end=DAY2_END)
    before = checksums(con)
    res = extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
    assert res.rows_landed == 0 and res.rows_quarantined == 0
    assert res.rows_read == res.rows_duplicate > 0  # the look-back re-read rows, all skipped
    assert checksums(con) == before


def test_interval_rerun_leaves_warehouse_identical(shop):
    tmp, settings, con = shop
    extract_orders(con, settings, run_id="day1", interval_end=DAY1_END)
    extract_orders(con, settings, run_id="day2", interval_end=DAY2_END)
    after_day2 = checksums(con)
    # backfill reruns of both intervals (older first, as Airflow clears them) change nothing
    extract_orders(con, settings, run_id="day1-rerun", interval_end=DAY1_END)
    extract_orders(con, settings, run_id="day2-rerun", interval_end=DAY2_END)
    assert checksums(con) == after_day2
    # and the same state as one run over both days
    tmp2 = tmp / "single"
    tmp2.mkdir()
    con2 = connect(tmp2 / "wh.duckdb", settings)
    extract_orders(con2, settings, run_id="once", interval_end=DAY2_END)
    for t in ("shop_customers", "shop_orders", "shop_order_items", "shop_fx_rates"):
        assert raw_rows(con, t) == raw_rows(con2, t), t
    con2.close()


@pytest.mark.parametrize("reconcile_days", [7, 0])
def test_updates_land_as_new_versions_and_lookback_catches_clock_skew(shop, reconcile_days):
    tmp, _settings, con = shop
    settings = make_settings(tmp, orders_reconcile_days=reconcile_days)
    extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)  # orders watermark: 23:59:59
    write_shop(
        tmp / "shop.db",
        orders=[
            _order(10, 1, 52500, "2025-08-02T01:00:00Z", status="refunded", currency="KRW"),  # order 10 changed
            _order(14, None, 7, "2025-08-01T23:55:00Z"),  # committed late, 5 min before the watermark
            _order(15, None, 8, "2025-08-01T23:40:00Z"),  # 20 min before: outside the 10-minute look-back
        ],
    )
    res = extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
    assert con.execute("select id, status from raw.shop_orders where id = 10 order by updated_at").fetchall() == [
        (10, "paid"),
        (10, "refunded"),
    ]
    # order 15 is found by the reconciliation over the last 7 days (none with RAPPORT_ORDERS_RECONCILE_DAYS=0)
    assert _ids(con, "shop_orders") == [10, 10, 11, 13, 14] + ([15] if reconcile_days else [])
    assert res.reconciled == (1 if reconcile_days else 0)
    assert res.tables["shop_orders"].rows_landed == 3 + res.reconciled  # 10's new version, 13 (day 2), 14
    assert res.tables["shop_orders"].reconciles


def test_lookback_is_configurable(shop):
    tmp, settings, con = shop
    extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)
    write_shop(tmp / "shop.db", orders=[_order(15, None, 8, "2025-08-01T23:40:00Z")])
    wide = make_settings(tmp, orders_lookback_minutes=30)
    extract_orders(con, wide, run_id="r2", interval_end=DAY2_END)
    assert 15 in _ids(con, "shop_orders")


def test_batches_and_unknown_columns(tmp_path):
    # 25 customers in batches of 4 rows; the source has a column the layout does not name
    write_shop(tmp_path / "shop.db")
    db = sqlite3.connect(tmp_path / "shop.db")
    db.execute("alter table customers add column tier text")
    db.executemany(
        "insert into customers values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                i,
                f"c{i}@x.com",
                None,
                None,
                None,
                "US",
                i % 2,
                "2025-08-01T00:00:00Z",
                f"2025-08-01T{i % 24:02d}:00:00Z",
                "gold" if i == 3 else None,
            )
            for i in range(1, 26)
        ],
    )
    db.commit()
    db.close()
    settings = make_settings(tmp_path, extra={"orders_batch_rows": 4})
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)
    assert res.tables["shop_customers"].rows_landed == 25
    assert con.execute("select _extra from raw.shop_customers where id = 3").fetchall() == [('{"tier":"gold"}',)]
    assert con.execute("select max(updated_at) from raw.shop_customers").fetchall() == [(datetime(2025, 8, 1, 23),)]
    con.close()


def test_aware_interval_end_and_missing_database(shop, tmp_path):
    tmp, settings, con = shop
    res = extract_orders(con, settings, run_id="r1", interval_end=datetime(2025, 8, 2, tzinfo=UTC))
    assert res.tables["shop_orders"].rows_landed == 2
    gone = make_settings(tmp_path, orders_db_url=f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(SourceConfigError, match="nope.db"):
        extract_orders(con, gone, run_id="r2", interval_end=DAY2_END)
    # the source is opened read-only: the extractor never creates or changes it
    assert not (tmp_path / "nope.db").exists()
    assert sqlite3.connect(tmp / "shop.db").execute("select count(*) from orders").fetchall() == [(4,)]
