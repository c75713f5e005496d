"""Hostile rows in the orders database: the extractor never crashes, quarantines every bad row with a reason
and its id, lands every good row exactly once, and its counts reconcile.

Hypothesis builds a SQLite shop whose tables have no declared types (SQLite then stores whatever it is given:
text in an integer column, a REAL id, a BLOB of bytes that are not UTF-8) and no primary keys (so the same
order can appear twice, identical or conflicting). Each generated row is good or carries one known defect;
the expected outcome is written from that label, never from running the extractor.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from extract_helpers import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.extractors.orders import extract_orders

END = datetime(2025, 8, 2)
T0 = datetime(2025, 7, 1)

UNTYPED_DDL = """
create table customers (id, email, first_name, last_name, phone, country, accepts_marketing, created_at,
    updated_at);
create table orders (id, customer_id, email, phone, status, currency, subtotal, discount_total, shipping_total,
    tax_total, total, refunded_total, discount_code, utm_source, utm_medium, utm_campaign, created_at,
    updated_at, cancelled_at);
create table order_items (id, order_id, sku, product_name, category, quantity, unit_price);
create table fx_rates (rate_date, currency, usd_per_unit);
"""
CUSTOMER_COLS = [
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "accepts_marketing",
    "created_at",
    "updated_at",
]
ORDER_COLS = [
    "id",
    "customer_id",
    "email",
    "phone",
    "status",
    "currency",
    "subtotal",
    "discount_total",
    "shipping_total",
    "tax_total",
    "total",
    "refunded_total",
    "discount_code",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "created_at",
    "updated_at",
    "cancelled_at",
]

# text that must land exactly as the source held it: SQL and CSV metacharacters, NULs, other scripts
HOSTILE_TEXT = [
    "'; drop table x; --",
    "Robert'); DROP TABLE raw.shop_orders;--",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    '"quoted", with comma',
    "line\nbreak\r\n",
    "a\x00b",
    "\x00",
    "김민준",
    "สมชาย ใจดี",
    "李伟",
    "\u202eevil",
    "😀",
    "\\",
    "%s %d {0} $1",
    "NULL",
    "null",
    "",
    " ",
    "\t",
]
text_values = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=40),
    st.integers(min_value=10_000, max_value=300_000).map(lambda n: "x" * n),  # huge strings
)
# (stored value, the value it must land as)
good_ts = st.tuples(
    st.integers(0, 30 * 24 * 3600),
    st.sampled_from(
        [
            ("%Y-%m-%dT%H:%M:%SZ", 0),
            ("%Y-%m-%d %H:%M:%S", 0),
            ("%Y-%m-%dT%H:%M:%S+00:00", 0),
            ("%Y-%m-%dT%H:%M:%S.%f+09:00", 9),
        ]
    ),
).map(
    lambda t: (
        (T0 + timedelta(seconds=t[0])).strftime(t[1][0]),
        T0 + timedelta(seconds=t[0]) - timedelta(hours=t[1][1]),
    )
)
money = st.integers(0, 10**9).map(
    lambda c: (c / 100 if c % 3 else c // 100, Decimal(c if c % 3 else c - c % 100) / 100)
)
NOT_UTF8 = st.binary(max_size=12).map(lambda b: b"\xff" + b)  # a BLOB: cast to text, bytes that are not UTF-8

# defect -> (column, strategy of stored values, what the quarantine reason says)
CUSTOMER_DEFECTS = {
    "no_id": ("id", st.just(None), "missing id"),
    "text_id": ("id", st.sampled_from(["abc", "1.5", "0x10", "1e3", "9" * 30, "'; drop table x; --"]), "bad id"),
    "real_id": ("id", st.sampled_from([1.5, 2.25e30]), "bad id"),
    "no_updated_at": ("updated_at", st.just(None), "missing updated_at"),
    "bad_updated_at": (
        "updated_at",
        st.sampled_from(["yesterday", "infinity", "-infinity", "epoch", "31/07/2025", "294247-01-01", "{}", "[]"]),
        "bad updated_at",
    ),
    "int_updated_at": ("updated_at", st.integers(-(10**12), 10**12), "bad updated_at"),
    "bad_created_at": ("created_at", st.sampled_from(["not a time", "2025-13-45T00:00:00Z"]), "bad created_at"),
    "bad_flag": ("accepts_marketing", st.sampled_from(["maybe", 7, "[1]", -1.5]), "bad accepts_marketing"),
    "utf8_email": ("email", NOT_UTF8, "invalid UTF-8 in email"),
    "utf8_updated_at": ("updated_at", NOT_UTF8, "invalid UTF-8 in updated_at"),
}
ORDER_DEFECTS = {
    "no_id": ("id", st.just(None), "missing id"),
    "text_id": ("id", st.sampled_from(["#12", "12.5", "true"]), "bad id"),
    "bad_total": ("total", st.sampled_from(["n/a", "NaN", "1e20", "12,50", "'; --"]), "bad total"),
    "bad_customer": ("customer_id", st.sampled_from(["guest", 3.5]), "bad customer_id"),
    "bad_cancelled_at": ("cancelled_at", st.sampled_from(["never", "infinity"]), "bad cancelled_at"),
    "no_updated_at": ("updated_at", st.just(None), "missing updated_at"),
    "utf8_status": ("status", NOT_UTF8, "invalid UTF-8 in status"),
}


@st.composite
def shops(draw):
    """Rows of customers and orders, each labelled: ("good", row, expected typed values) or
    ("bad", row, reason fragment, location); orders also ("dup", row) and ("conflict", row)."""
    customers = []
    for i in range(draw(st.integers(1, 8))):
        cid = 1000 + i
        ts, ts_expected = draw(good_ts)
        row = {
            "id": cid,
            "email": f"{i}:" + draw(text_values),
            "first_name": draw(text_values),
            "last_name": draw(text_values),
            "phone": draw(text_values),
            "country": draw(text_values),
            "accepts_marketing": draw(st.sampled_from([0, 1])),
            "created_at": "2025-06-01T00:00:00Z",
            "updated_at": ts,
        }
        defect = draw(st.sampled_from([None, None, *CUSTOMER_DEFECTS]))
        if defect is None:
            expected = (
                cid,
                row["email"],
                row["first_name"],
                row["last_name"],
                row["phone"],
                row["country"],
                bool(row["accepts_marketing"]),
                datetime(2025, 6, 1),
                ts_expected,
            )
            customers.append(("good", row, expected))
        else:
            col, values, reason = CUSTOMER_DEFECTS[defect]
            row[col] = draw(values)
            customers.append(("bad", row, reason, None if col == "id" else f"customers:id={cid}"))
    orders = []
    for i in range(draw(st.integers(1, 8))):
        oid = 5000 + i
        ts, ts_expected = draw(good_ts)
        (total, total_expected) = draw(money)
        row = dict.fromkeys(ORDER_COLS)
        row.update(
            id=oid,
            customer_id=draw(st.sampled_from([None, 1000, 77])),
            email=f"{i}:" + draw(text_values),
            status=draw(st.sampled_from(["paid", "refunded", "'; drop table x; --"])),
            currency="USD",
            subtotal=total,
            discount_total=0,
            shipping_total=0,
            tax_total=0,
            total=total,
            refunded_total=0,
            utm_campaign=draw(text_values),
            created_at="2025-06-01 00:00:00",
            updated_at=ts,
        )
        defect = draw(st.sampled_from([None, None, "dup", "conflict", *ORDER_DEFECTS]))
        if defect in (None, "dup", "conflict"):
            orders.append(
                (
                    "good",
                    row,
                    (
                        oid,
                        row["customer_id"],
                        row["email"],
                        row["status"],
                        total_expected,
                        row["utm_campaign"],
                        ts_expected,
                    ),
                )
            )
            if defect == "dup":  # the same version twice (a table that lost its primary key)
                orders.append(("dup", dict(row)))
            elif defect == "conflict":  # same id and updated_at, different content
                orders.append(("conflict", {**row, "status": "cancelled", "total": row["total"] + 1}))
        else:
            col, values, reason = ORDER_DEFECTS[defect]
            row[col] = draw(values)
            orders.append(("bad", row, reason, None if col == "id" else f"orders:id={oid}"))
    return customers, orders  # a duplicate or conflict right after its first version, maybe in the next batch


def _write(db: Path, customers, orders) -> None:
    con = sqlite3.connect(db)
    con.executescript(UNTYPED_DDL)
    for table, cols, rows in (("customers", CUSTOMER_COLS, customers), ("orders", ORDER_COLS, orders)):
        for entry in rows:
            row = entry[1]
            con.execute(f"insert into {table} values ({', '.join('?' * len(cols))})", [row[c] for c in cols])
    # one good item per order id that is an integer, and one bad item; fx rates: two good, two bad
    ids = sorted({e[1]["id"] for e in orders if isinstance(e[1]["id"], int)})
    for n, oid in enumerate(ids):
        con.execute("insert into order_items values (?, ?, 'SKU', 'Tea', 'food', 2, 1.5)", [10 * n, oid])
        con.execute("insert into order_items values (?, ?, 'SKU', 'Tea', 'food', 'two', 1.5)", [10 * n + 1, oid])
    con.executemany(
        "insert into fx_rates values (?, ?, ?)",
        [("2025-08-01", "KRW", 0.00072), ("2025-08-01", "USD", 1), ("infinity", "THB", 0.03), ("2025-08-01", None, 1)],
    )
    con.commit()
    con.close()


@pytest.mark.slow  # ~15 s
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(shops())
def test_hostile_rows_are_quarantined_and_good_rows_land_once(shop):
    customers, orders = shop
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        _write(tmp_path / "shop.db", customers, orders)
        cfg = make_settings(tmp_path, extra={"orders_batch_rows": 3})  # several batches per table
        con = duckdb.connect(config=cfg.duckdb_config())
        try:
            res = extract_orders(con, cfg, run_id="fuzz", interval_end=END)
            _check_customers(con, res.tables["shop_customers"], customers)
            _check_orders(con, res.tables["shop_orders"], orders)
            items = res.tables["shop_order_items"]
            n_ids = len({e[1]["id"] for e in orders if isinstance(e[1]["id"], int)})
            assert (items.rows_read, items.rows_landed, items.rows_quarantined) == (2 * n_ids, n_ids, n_ids)
            fx = res.tables["shop_fx_rates"]
            assert (fx.rows_read, fx.rows_landed, fx.rows_quarantined, fx.rows_duplicate) == (4, 2, 2, 0)
            for counts in res.tables.values():
                assert counts.rows_read == counts.rows_landed + counts.rows_quarantined + counts.rows_duplicate
            # a second run reads the same rows again and changes nothing
            before = _snapshot(con)
            again = extract_orders(con, cfg, run_id="fuzz-again", interval_end=END)
            assert again.rows_landed == again.rows_quarantined == 0
            assert _snapshot(con) == before
        finally:
            con.close()


def _rejects(con, table):
    return con.execute(f"select location, reason, raw from quarantine.{table}_rejects").fetchall()


def _check_rejects(rejects, bad) -> None:
    """Every bad row has its own quarantine row with a reason; traceable ones at their id."""
    assert len(rejects) == len(bad), (rejects, bad)
    assert all(reason for _loc, reason, _raw in rejects)
    pool = list(rejects)
    for entry in bad:
        _kind, _row, fragment, location = entry
        match = next((r for r in pool if fragment in r[1] and (location is None or r[0] == location)), None)
        assert match is not None, (fragment, location, pool)
        pool.remove(match)


def _check_customers(con, counts, customers) -> None:
    good = [e[2] for e in customers if e[0] == "good"]
    bad = [e for e in customers if e[0] == "bad"]
    landed = con.execute(
        "select id, email, first_name, last_name, phone, country, accepts_marketing, created_at, "
        "updated_at from raw.shop_customers"
    ).fetchall()
    assert sorted(landed, key=repr) == sorted(good, key=repr)
    _check_rejects(_rejects(con, "shop_customers"), bad)
    assert (counts.rows_read, counts.rows_landed, counts.rows_quarantined, counts.rows_duplicate) == (
        len(customers),
        len(good),
        len(bad),
        0,
    )


def _check_orders(con, counts, orders) -> None:
    good = [e[2] for e in orders if e[0] == "good"]
    bad = [e for e in orders if e[0] == "bad"]
    conflicts = [e for e in orders if e[0] == "conflict"]
    dups = [e for e in orders if e[0] == "dup"]
    landed = con.execute(
        "select id, customer_id, email, status, total, utm_campaign, updated_at from raw.shop_orders"
    ).fetchall()
    assert sorted(landed, key=repr) == sorted(good, key=repr)  # the first version read of a conflict lands
    rejects = _rejects(con, "shop_orders")
    conflict_rows = [r for r in rejects if r[1].startswith("conflicting version")]
    assert sorted(r[0] for r in conflict_rows) == sorted(f"orders:id={e[1]['id']}" for e in conflicts)
    for _loc, reason, raw in conflict_rows:
        assert reason == (
            "conflicting version: another row has the same id and updated_at and a different status, total"
        )
        assert '"status":"cancelled"' in raw
    _check_rejects([r for r in rejects if r not in conflict_rows], bad)
    assert (counts.rows_read, counts.rows_landed, counts.rows_quarantined, counts.rows_duplicate) == (
        len(orders),
        len(good),
        len(bad) + len(conflicts),
        len(dups),
    )


def _snapshot(con):
    return {
        t: sorted(con.execute(f"select * exclude (_run_id, _extracted_at) from raw.{t}").fetchall(), key=repr)
        for t in ("shop_customers", "shop_orders", "shop_order_items", "shop_fx_rates")
    } | {
        t: sorted(con.execute(f"select location, reason, raw from quarantine.{t}_rejects").fetchall(), key=repr)
        for t in ("shop_customers", "shop_orders")
    }


def test_conflicting_versions_of_an_order_are_quarantined_identical_ones_counted(tmp_path):
    """Two contents under one (id, updated_at): the first read lands, the other is quarantined saying what
    differs, in the same batch or in a later run; an identical copy is only a duplicate."""
    paid = dict.fromkeys(ORDER_COLS) | {
        "id": 1,
        "status": "paid",
        "currency": "USD",
        "subtotal": 10,
        "total": 10,
        "created_at": "2025-08-01T00:00:00Z",
        "updated_at": "2025-08-01T10:00:00Z",
    }
    refunded = paid | {"status": "refunded", "refunded_total": 10}
    _write(tmp_path / "shop.db", [], [("good", paid), ("dup", dict(paid)), ("conflict", refunded)])
    cfg = make_settings(tmp_path)
    con = duckdb.connect(config=cfg.duckdb_config())
    c = extract_orders(con, cfg, run_id="r1", interval_end=END).tables["shop_orders"]
    assert (c.rows_read, c.rows_landed, c.rows_quarantined, c.rows_duplicate) == (3, 1, 1, 1)
    assert con.execute("select id, status from raw.shop_orders").fetchall() == [(1, "paid")]
    reason = "conflicting version: another row has the same id and updated_at and a different status, refunded_total"
    assert con.execute("select location, reason from quarantine.shop_orders_rejects").fetchall() == [
        ("orders:id=1", reason)
    ]
    # later the source rewrites the order without moving updated_at: that version conflicts with the landed one
    shop = sqlite3.connect(tmp_path / "shop.db")
    shop.execute("update orders set status = 'cancelled' where rowid = 1")
    shop.commit()
    shop.close()
    c = extract_orders(con, cfg, run_id="r2", interval_end=END).tables["shop_orders"]
    # read: cancelled (conflict, new), the identical copy of paid (duplicate), refunded (already quarantined)
    assert (c.rows_read, c.rows_landed, c.rows_quarantined, c.rows_duplicate) == (3, 0, 1, 2)
    assert con.execute("select id, status from raw.shop_orders").fetchall() == [(1, "paid")]
    assert sorted(r[0] for r in con.execute("select reason from quarantine.shop_orders_rejects").fetchall()) == [
        "conflicting version: another row has the same id and updated_at and a different status",
        reason,
    ]
    con.close()
