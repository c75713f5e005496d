"""Orders extractor against a real PostgreSQL server (scripts/start_postgres.sh): same rows as SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from extract_helpers import connect, make_settings, raw_rows, write_shop

from rapport.extractors.orders import extract_orders

pytestmark = pytest.mark.postgres

PG_DDL = """
create table customers (id bigint primary key, email text, first_name text, last_name text, phone text,
    country text, accepts_marketing boolean not null, created_at timestamptz, updated_at timestamptz not null);
create table orders (id bigint primary key, customer_id bigint, email text, phone text, status text,
    currency text, subtotal numeric(14,2), discount_total numeric(14,2), shipping_total numeric(14,2),
    tax_total numeric(14,2), total numeric(14,2), refunded_total numeric(14,2), discount_code text,
    utm_source text, utm_medium text, utm_campaign text, created_at timestamptz, updated_at timestamptz not null,
    cancelled_at timestamptz);
create index orders_updated_at on orders (updated_at);
create table order_items (id bigint primary key, order_id bigint not null, sku text, product_name text,
    category text, quantity integer, unit_price numeric(14,2));
create table fx_rates (rate_date date, currency text, usd_per_unit numeric(18,8), primary key (rate_date, currency));
"""

T0 = datetime(2025, 8, 1, tzinfo=UTC)
FORMATS = ["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f+00:00"]


def _dataset():
    """The same shop in Python values; timestamps carry microseconds, text has non-Latin names."""
    names = [("민준", "김"), ("สมชาย", "ใจดี"), ("伟", "李"), ("Zoë", "O'Brien"), (None, None)]
    customers = []
    for i in range(1, 41):
        first, last = names[i % len(names)]
        upd = T0 + timedelta(minutes=37 * i, microseconds=123457 * i % 1_000_000)
        customers.append(
            (
                i,
                f" User{i}@Example.com " if i % 3 else "",
                first,
                last,
                "+82 10 1234 5678" if i % 4 == 0 else None,
                "KR",
                i % 2 == 0,
                T0,
                upd,
            )
        )
    orders, items = [], []
    for i in range(1, 61):
        sub = Decimal(f"{i * 7}.{i % 100:02d}")
        upd = T0 + timedelta(minutes=23 * i, microseconds=7 * i)
        orders.append(
            (
                1000 + i,
                None if i % 5 == 0 else (i % 40) + 1,
                "g@x.com" if i % 5 == 0 else None,
                None,
                "refunded" if i % 7 == 0 else "paid",
                ["USD", "KRW", "THB"][i % 3],
                sub,
                Decimal("0.00"),
                Decimal("2.50"),
                Decimal("0.10"),
                sub + Decimal("2.60"),
                sub if i % 7 == 0 else Decimal("0.00"),
                "WELCOME" if i % 6 == 0 else None,
                "esp",
                "email",
                f"cmp_{i % 4}",
                T0,
                upd,
                upd if i % 11 == 0 else None,
            )
        )
        for k in range(i % 3 + 1):
            items.append(
                (100_000 + i * 10 + k, 1000 + i, f"SKU-{k}", f"Item {k}", "home", k + 1, Decimal(f"{k + 1}.99"))
            )
    fx = [
        (date(2025, 8, 1) + timedelta(days=d), c, Decimal(r))
        for d in range(3)
        for c, r in (("KRW", "0.00072000"), ("THB", "0.02812345"), ("USD", "1"))
    ]
    return customers, orders, items, fx


def _sqlite_value(v, i):
    if isinstance(v, datetime):
        return v.strftime(FORMATS[i % len(FORMATS)])
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)  # SQLite stores numerics as REAL (or INTEGER)
    if isinstance(v, bool):
        return int(v)
    return v


@pytest.fixture
def pg_db(postgres_url):
    name = f"shop_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"create database {name}"))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f"drop database {name} with (force)"))
    admin.dispose()


def _fill_pg(url, customers, orders, items, fx):
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.exec_driver_sql(PG_DDL)
        for table, rows in (("customers", customers), ("orders", orders), ("order_items", items), ("fx_rates", fx)):
            if rows:
                marks = ", ".join(["%s"] * len(rows[0]))
                c.exec_driver_sql(f"insert into {table} values ({marks}) on conflict do nothing", rows)
    eng.dispose()


def test_postgres_gives_the_same_raw_rows_as_sqlite(tmp_path, pg_db):
    customers, orders, items, fx = _dataset()
    _fill_pg(pg_db, customers, orders, items, fx)
    write_shop(
        tmp_path / "shop.db",
        customers=[tuple(_sqlite_value(v, i) for v in r) for i, r in enumerate(customers)],
        orders=[tuple(_sqlite_value(v, i) for v in r) for i, r in enumerate(orders)],
        items=[tuple(_sqlite_value(v, i) for v in r) for i, r in enumerate(items)],
        fx=[tuple(_sqlite_value(v, i) for v in r) for i, r in enumerate(fx)],
    )
    end = datetime(2025, 8, 1, 18)  # cuts through both customers and orders
    lite = make_settings(tmp_path, extra={"orders_batch_rows": 16})
    pg = make_settings(tmp_path, orders_db_url=pg_db, extra={"orders_batch_rows": 16})
    con_lite = connect(tmp_path / "lite.duckdb", lite)
    con_pg = connect(tmp_path / "pg.duckdb", pg)
    r_lite = extract_orders(con_lite, lite, run_id="r", interval_end=end)
    r_pg = extract_orders(con_pg, pg, run_id="r", interval_end=end)
    # hand-computed: customer i is updated at 37*i minutes (+<1 s): i <= 29 within 18:00; order i at 23*i
    # minutes: i <= 46; items: sum over i <= 46 of (i % 3 + 1); all 9 fx rates are dated by 2025-08-01..03 and
    # only those up to the 1st count
    n_items = sum(i % 3 + 1 for i in range(1, 47))
    expected = {"shop_customers": 29, "shop_orders": 46, "shop_order_items": n_items, "shop_fx_rates": 3}
    assert {t: c.rows_landed for t, c in r_pg.tables.items()} == expected
    assert {t: c.rows_landed for t, c in r_lite.tables.items()} == expected
    for table in expected:
        assert raw_rows(con_pg, table) == raw_rows(con_lite, table), table
    # spot check the typed values themselves
    assert con_pg.execute(
        "select first_name, updated_at, accepts_marketing from raw.shop_customers where id = 2"
    ).fetchall() == [("伟", datetime(2025, 8, 1, 1, 14, 0, 246914), True)]
    assert con_pg.execute("select total, customer_id from raw.shop_orders where id = 1005").fetchall() == [
        (Decimal("37.65"), None)
    ]
    assert con_pg.execute("select email from raw.shop_customers where id = 3").fetchall() == [("",)]

    # incremental on PostgreSQL: the next interval reads only what changed, and a re-run adds nothing
    eng = sa.create_engine(pg_db)
    with eng.begin() as c:
        c.exec_driver_sql(
            "update orders set status = 'cancelled', updated_at = '2025-08-01 17:30:00+00' where id = 1001"
        )  # committed late: 8 min before the watermark (17:38)
    eng.dispose()
    r2 = extract_orders(con_pg, pg, run_id="r2", interval_end=datetime(2025, 8, 2))
    assert r2.tables["shop_orders"].rows_landed == 60 - 46 + 1
    assert con_pg.execute("select status from raw.shop_orders where id = 1001 order by updated_at").fetchall() == [
        ("paid",),
        ("cancelled",),
    ]
    r3 = extract_orders(con_pg, pg, run_id="r3", interval_end=datetime(2025, 8, 2))
    assert r3.rows_landed == 0
    con_lite.close()
    con_pg.close()
