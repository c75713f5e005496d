"""The shop's operational database: customer accounts, fx rates, and writing shop.db (SQLite).

Orders and their items are built in orders.py; this module owns the `customers` and `fx_rates` tables and
the SQLite file layout (sources.md section 1).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, Period, date_str, iso_variants, rng_for
from rapport.demo.contact_points import type_emails, type_phones, typo_emails

CURRENCIES = ["USD", "KRW", "THB", "CNY", "EUR"]
BASE_USD_PER_UNIT = {"USD": 1.0, "KRW": 0.00074, "THB": 0.0285, "CNY": 0.138, "EUR": 1.08}
P_TYPO = 0.004  # records with a misspelt address and no phone: genuinely unlinkable

SCHEMA = """
create table customers (
    id integer primary key, email text, first_name text, last_name text, phone text, country text,
    accepts_marketing integer not null, created_at text not null, updated_at text not null);
create table orders (
    id integer primary key, customer_id integer, email text, phone text, status text not null,
    currency text not null, subtotal real not null, discount_total real not null, shipping_total real not null,
    tax_total real not null, total real not null, refunded_total real not null, discount_code text,
    utm_source text, utm_medium text, utm_campaign text, created_at text not null, updated_at text not null,
    cancelled_at text);
create table order_items (
    id integer primary key, order_id integer not null, sku text not null, product_name text not null,
    category text not null, quantity integer not null, unit_price real not null);
create table fx_rates (
    rate_date text not null, currency text not null, usd_per_unit real not null,
    primary key (rate_date, currency));
create index orders_updated_at on orders (updated_at);
create index customers_updated_at on customers (updated_at);
create index order_items_order_id on order_items (order_id);
"""


def row_styles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Timestamp style per row: mostly `...Z`, some `+00:00`, some with a space separator."""
    return rng.choice(3, size=n, p=[0.94, 0.03, 0.03])


def build_customers(people: pd.DataFrame, seed: int, period: Period, taken: set[str]) -> pd.DataFrame:
    """One account per person with one (created when they became active), a second account for a few
    (under another address, same phone), and colleagues who signed up with a shared company inbox."""
    rng = rng_for(seed, "customers")
    acc = people[people["has_account"]].reset_index(drop=True)
    dup = people[people["dup_account"]].reset_index(drop=True)
    main = pd.DataFrame({"person_id": acc["person_id"], "created_ts": acc["active_from"], "second": False})
    # the second account comes later, under the work address if there is one, else a new personal one
    gap = rng.exponential(120 * DAY, size=len(dup)).astype("int64") + DAY
    second = pd.DataFrame({"person_id": dup["person_id"], "created_ts": dup["active_from"] + gap, "second": True})
    second = second[second["created_ts"] < period.end_ts - DAY]
    c = pd.concat([main, second], ignore_index=True)
    c = c.sort_values(["created_ts", "person_id"], kind="stable").reset_index(drop=True)
    c["id"] = np.arange(1, len(c) + 1, dtype="int64")
    pp = people.set_index("person_id").loc[c["person_id"]].reset_index()
    n = len(c)

    # address: personal; the second account uses email2 (or a new address at another provider)
    local, domain = pp["email_local"].copy(), pp["email_domain"].copy()
    sec = c["second"].to_numpy()
    has2 = pp["email2_local"].notna().to_numpy()
    local[sec & has2], domain[sec & has2] = pp["email2_local"][sec & has2], pp["email2_domain"][sec & has2]
    alt = sec & ~has2
    local[alt] = local[alt] + ".alt"  # e.g. minji.kim.alt@naver.com: a second mailbox of the same person
    email = type_emails(rng, local, domain, p_caps=0.12, p_space=0.04, p_plus=0.05, p_dots=0.03, p_googlemail=0.01)
    shared = pp["shared_address"].notna().to_numpy() & ~sec
    email[shared] = type_emails(
        rng,
        pp["shared_address"][shared].str.split("@").str[0],
        pp["shared_address"][shared].str.split("@").str[1],
        p_caps=0.5,
        p_space=0.1,
        p_plus=0.0,
        p_dots=0.0,
        p_googlemail=0.0,
    ).to_numpy()
    typo = (rng.random(n) < P_TYPO) & ~shared
    email[typo] = typo_emails(rng, local[typo], domain[typo], taken).to_numpy()
    # phone-only accounts exist on some shops
    no_email = (rng.random(n) < 0.01) & ~shared & ~typo & pp["phone_nsn"].notna().to_numpy()
    email[no_email] = None

    country = pp["country"].to_numpy().astype(str)
    has_phone = pp["phone_nsn"].notna().to_numpy() & ((rng.random(n) < 0.8) | sec | no_email) & ~typo
    intl = rng.random(n) < 0.25
    phone = type_phones(rng, country, pp["phone_nsn"].fillna(""), intl)
    phone[~has_phone] = None

    native = ~np.isin(country, ["US", "GB", "DE", "FR"]) & (rng.random(n) < 0.7)
    first = pp["given_roman"].str.capitalize().where(~native, pp["given"])
    last = pp["family_roman"].str.capitalize().where(~native, pp["family"])
    latin = np.isin(country, ["US", "GB", "DE", "FR"])
    first[latin], last[latin] = pp["given"][latin], pp["family"][latin]
    first[rng.random(n) < 0.03] = None
    last[rng.random(n) < 0.05] = None
    ctry = pd.Series(country, dtype="str").where(rng.random(n) >= 0.03, None)

    changed = rng.random(n) < 0.4
    upd = c["created_ts"].to_numpy() + rng.exponential(60 * DAY, size=n).astype("int64")
    upd = np.where(changed & (upd < period.end_ts), upd, c["created_ts"].to_numpy())
    c["email"], c["first_name"], c["last_name"], c["phone"], c["country"] = email, first, last, phone, ctry
    c["accepts_marketing"] = np.where(sec, rng.random(n) < 0.3, pp["accepts_marketing"].to_numpy()).astype("int64")
    c["updated_ts"] = upd
    c["typo"] = typo
    c["style"] = row_styles(rng, n)
    return c


def build_fx(seed: int, period: Period) -> pd.DataFrame:
    """One rate per currency per day (a random walk around today's levels), a few days missing."""
    rng = rng_for(seed, "fx")
    days = period.days
    dates = date_str(period.start_ts + np.arange(days, dtype="int64") * DAY)
    frames = []
    for cur in CURRENCIES:
        if cur == "USD":
            rate = np.ones(days)
        else:
            steps = rng.normal(0, 0.004, size=days)
            rate = BASE_USD_PER_UNIT[cur] * np.exp(np.cumsum(steps) - steps.cumsum().mean())
        keep = np.ones(days, dtype=bool)
        if cur != "USD":
            keep[1:] = rng.random(days - 1) >= 0.015  # day 0 always present: there is always an earlier rate
        frames.append(
            pd.DataFrame({"rate_date": dates[keep], "currency": cur, "usd_per_unit": np.round(rate[keep], 8)})
        )
    return pd.concat(frames, ignore_index=True).sort_values(["rate_date", "currency"], kind="stable", ignore_index=True)


def _nullable(values: pd.Series) -> list:
    arr = values.to_numpy(dtype=object)
    return [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v for v in arr]


def order_rows(o: pd.DataFrame, created: list, updated: list, cancelled: list) -> Iterator[tuple]:
    """The `orders` table's rows, in its column order, from the generator's frame (amounts in cents)."""
    money = [
        (o[k].to_numpy() / 100).tolist()
        for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total", "refunded_total")
    ]
    cust = [None if v < 0 else int(v) for v in o["customer_id"].to_numpy()]
    return zip(
        o["id"].tolist(),
        cust,
        _nullable(o["email"]),
        _nullable(o["phone"]),
        o["status"].tolist(),
        o["currency"].tolist(),
        *money,
        _nullable(o["discount_code"]),
        _nullable(o["utm_source"]),
        _nullable(o["utm_medium"]),
        _nullable(o["utm_campaign"]),
        created,
        updated,
        cancelled,
        strict=True,
    )


def item_rows(items: pd.DataFrame) -> Iterator[tuple]:
    """The `order_items` table's rows, in its column order (unit price in cents in the frame)."""
    return zip(
        items["id"].tolist(),
        items["order_id"].tolist(),
        items["sku"].tolist(),
        items["product_name"].tolist(),
        items["category"].tolist(),
        items["quantity"].tolist(),
        (items["unit_price"].to_numpy() / 100).tolist(),
        strict=True,
    )


def write_shop_db(
    path: Path, customers: pd.DataFrame, orders: pd.DataFrame, items: pd.DataFrame, fx: pd.DataFrame
) -> None:
    """Write shop.db from scratch. Same tables in -> same bytes out (fixed insert order, no wall clock)."""
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.executescript("pragma journal_mode = off; pragma synchronous = off;" + SCHEMA)
        cs = customers["style"].to_numpy()
        con.executemany(
            "insert into customers values (?,?,?,?,?,?,?,?,?)",
            zip(
                customers["id"].tolist(),
                _nullable(customers["email"]),
                _nullable(customers["first_name"]),
                _nullable(customers["last_name"]),
                _nullable(customers["phone"]),
                _nullable(customers["country"]),
                customers["accepts_marketing"].tolist(),
                iso_variants(customers["created_ts"].to_numpy(), cs).tolist(),
                iso_variants(customers["updated_ts"].to_numpy(), cs).tolist(),
                strict=True,
            ),
        )
        os_ = orders["style"].to_numpy()
        cancelled = orders["cancelled_ts"].to_numpy()
        cancelled_s = iso_variants(np.where(cancelled > 0, cancelled, 0), os_)
        cancelled_s[cancelled <= 0] = None
        con.executemany(
            "insert into orders values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            order_rows(
                orders,
                iso_variants(orders["created_ts"].to_numpy(), os_).tolist(),
                iso_variants(orders["updated_ts"].to_numpy(), os_).tolist(),
                cancelled_s.tolist(),
            ),
        )
        con.executemany("insert into order_items values (?,?,?,?,?,?,?)", item_rows(items))
        con.executemany(
            "insert into fx_rates values (?,?,?)",
            zip(fx["rate_date"].tolist(), fx["currency"].tolist(), fx["usd_per_unit"].tolist(), strict=True),
        )
        con.commit()
    finally:
        con.close()
