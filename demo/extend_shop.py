"""One continued day of the shop's database (shop.db): the day's fx rates, new customers, new orders with
their items, status changes of orders in flight, and a few customer edits.

Orders follow the base generator's shapes (orders.py): who checks out (account holders who bought before,
guests who checked out as guests before, with the same address and phone, first orders of new
customers), money that adds up, destinies and step delays drawn as the base draws them. An order's later
steps (paid, fulfilled, refunded, cancelled) are scheduled when it is created and applied on their day;
`schedule_in_flight` does the same, conditionally on what already happened, for the base's orders still
settling when the continuation starts.

Everything read from shop.db is what was created before the day, so rerunning a day after a crash gives
the same rows (they are written with `insert or replace` under ids handed out by the caller).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, iso_variants
from rapport.demo.extend_people import new_people, typed_identity
from rapport.demo.orders import (
    CANCEL_AFTER,
    CANCELLED,
    CUR_INDEX,
    CURRENCY_OF,
    DESTINY_P,
    FULFIL_AFTER,
    MINOR,
    OK,
    PARTIAL,
    PAY_AFTER,
    PENDING,
    REFUND_AFTER,
    REFUNDED,
    SHOP_PHONE_NSN,
    _money,
    _round_minor,
    _utm,
    settle_times,
)
from rapport.demo.shop import BASE_USD_PER_UNIT, CURRENCIES, _nullable, item_rows, order_rows, row_styles

P_FIRST_ORDER_SAME_DAY = 0.3  # a new customer's first order on the day they sign up
P_ACCOUNT_EMAIL = 0.9  # account orders mostly carry the account's address (as in the base)
P_FX_MISSING = 0.015
COUNTRY_OF_CURRENCY = {"USD": "US", "KRW": "KR", "THB": "TH", "CNY": "CN", "EUR": "DE"}  # tax of guest orders
STEP_COLUMNS = ["kind", "ts", "key", "payload"]

Rng = Callable[[str], np.random.Generator]


@dataclass
class ShopDay:
    customers: pd.DataFrame  # new customers: id, person_id, email, first_name, last_name, accepts_marketing, ...
    truth: pd.DataFrame  # source, source_id, person_id of every new identity record
    steps: pd.DataFrame  # order steps due on later days (STEP_COLUMNS)
    counts: dict[str, int]


def styles_of(text: pd.Series) -> np.ndarray:
    """The timestamp style a row was written in (0 `Z`, 1 `+00:00`, 2 space): kept when the row changes."""
    s = text.astype("str")
    return np.where(s.str.endswith("+00:00"), 1, np.where(s.str.contains(" "), 2, 0))


def order_steps(
    order_id: np.ndarray,
    destiny: np.ndarray,
    paid: np.ndarray,
    fulfilled: np.ndarray,
    refund: np.ndarray,
    cancel: np.ndarray,
    refund_cents: np.ndarray,
) -> pd.DataFrame:
    """Status changes as step rows; a time of -1 is a step that already happened (or never will)."""
    settles = destiny <= REFUNDED
    parts = [
        (settles & (paid >= 0), paid, "paid", None),
        (settles & (fulfilled >= 0), fulfilled, "fulfilled", None),
        ((destiny == PARTIAL) & (refund >= 0), refund, "partially_refunded", refund_cents),
        ((destiny == REFUNDED) & (refund >= 0), refund, "refunded", refund_cents),
        ((destiny == CANCELLED) & (cancel >= 0), cancel, "cancelled", None),
    ]
    frames = []
    for m, ts, status, cents in parts:
        payload = [
            json.dumps(
                {"status": status, "refunded": None if cents is None else int(c), "cancelled": status == "cancelled"},
                sort_keys=True,
            )
            for c in (cents[m] if cents is not None else np.zeros(int(m.sum())))
        ]
        frames.append(
            pd.DataFrame(
                {
                    "kind": "order",
                    "ts": ts[m].astype("int64"),
                    "key": order_id[m].astype("int64"),
                    "payload": pd.Series(payload, dtype=object),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[STEP_COLUMNS]


def _refund_cents(rng: np.random.Generator, total: np.ndarray, currency: np.ndarray, destiny: np.ndarray) -> np.ndarray:
    """What a refund gives back: everything, or 10-60% (rounded as the base rounds; `_money` in orders.py)."""
    step = MINOR[pd.Series(currency, dtype="str").map(CUR_INDEX).to_numpy().astype("int64")]
    part = _round_minor(total * rng.uniform(0.1, 0.6, size=len(total)), step)
    part = np.clip(part, step, np.maximum(total - step, step))
    return np.where(destiny == REFUNDED, total, part).astype("int64")


def _uniform_after(rng: np.random.Generator, start: np.ndarray, bounds: tuple[int, int], age: np.ndarray) -> np.ndarray:
    """start + a delay drawn from `bounds`, given that it is longer than `age` (the step has not happened yet)."""
    lo = np.maximum(bounds[0], age + 1)
    hi = np.maximum(bounds[1], lo + 1)
    return start + rng.integers(lo, hi)


def schedule_in_flight(con: sqlite3.Connection, rng: np.random.Generator, start_ts: int) -> pd.DataFrame:
    """Later steps of the base's orders still settling at `start_ts`, drawn from the base's model given their
    status and how long they have had it (e.g. a pending order older than the longest payment delay is
    cancelled later or stays pending)."""
    o = pd.read_sql_query(
        "select id, status, currency, total, created_at, updated_at from orders "
        "where status in ('pending', 'paid', 'fulfilled')",
        con,
    )
    if o.empty:
        return pd.DataFrame(columns=STEP_COLUMNS)
    status = o["status"].to_numpy()
    since = _unix(o["updated_at"])
    age = start_ts - since
    n = len(o)
    u = rng.random(n)
    p_settle = DESTINY_P[OK] + DESTINY_P[PARTIAL] + DESTINY_P[REFUNDED]
    # pending: still able to be paid, or cancelled, or stuck pending for good (weights by what can still happen)
    w_pay = p_settle * np.clip((PAY_AFTER[1] - np.maximum(age, PAY_AFTER[0])) / (PAY_AFTER[1] - PAY_AFTER[0]), 0, 1)
    w_cancel = DESTINY_P[CANCELLED] * np.clip(
        (CANCEL_AFTER[1] - np.maximum(age, CANCEL_AFTER[0])) / (CANCEL_AFTER[1] - CANCEL_AFTER[0]), 0, 1
    )
    w_stuck = 1 - p_settle - DESTINY_P[CANCELLED]
    total_w = w_pay + w_cancel + w_stuck
    pend = status == "pending"
    # fulfilled: a refund may still come within REFUND_AFTER
    w_refund = np.clip((REFUND_AFTER[1] - np.maximum(age, REFUND_AFTER[0])) / (REFUND_AFTER[1] - REFUND_AFTER[0]), 0, 1)
    ok_share = DESTINY_P[OK] / p_settle
    destiny = np.full(n, PENDING)
    destiny[pend] = np.where(
        u[pend] < w_pay[pend] / total_w[pend],
        OK,
        np.where(u[pend] < (w_pay[pend] + w_cancel[pend]) / total_w[pend], CANCELLED, PENDING),
    )
    sub = rng.random(n)  # settling orders: OK, partially refunded or refunded, in the base's proportions
    settle_kind = np.where(sub < ok_share, OK, np.where(sub < ok_share + (1 - ok_share) / 2, PARTIAL, REFUNDED))
    destiny = np.where((destiny == OK) | (status == "paid"), settle_kind, destiny)
    fulf = status == "fulfilled"
    refund_w = (DESTINY_P[PARTIAL] + DESTINY_P[REFUNDED]) * w_refund
    refund_later = fulf & (rng.random(n) < refund_w / (refund_w + DESTINY_P[OK]))
    destiny[fulf] = np.where(refund_later[fulf], np.where(rng.random(int(fulf.sum())) < 0.5, PARTIAL, REFUNDED), OK)

    paid = np.where(pend, _uniform_after(rng, since, PAY_AFTER, age), -1)
    f_from = np.where(pend, paid, since)
    fulfilled = np.where(
        pend | (status == "paid"), _uniform_after(rng, f_from, FULFIL_AFTER, np.where(pend, 0, age)), -1
    )
    r_from = np.where(fulf, since, fulfilled)
    refund = _uniform_after(rng, r_from, REFUND_AFTER, np.where(fulf, age, 0))
    cancel = np.where(pend, _uniform_after(rng, since, CANCEL_AFTER, age), -1)
    total = np.round(o["total"].to_numpy() * 100).astype("int64")
    cents = _refund_cents(rng, total, o["currency"].to_numpy(), destiny)
    return order_steps(o["id"].to_numpy(), destiny, paid, fulfilled, refund, cancel, cents)


def _unix(text: pd.Series) -> np.ndarray:
    parsed = pd.to_datetime(text.astype("str").str.slice(0, 19), format="ISO8601")
    return parsed.to_numpy().astype("datetime64[s]").astype("int64")


def apply_order_steps(con: sqlite3.Connection, steps: pd.DataFrame) -> int:
    """Write due status changes (in time order), each in the timestamp style of its row."""
    if steps.empty:
        return 0
    steps = steps.sort_values(["ts", "key"], kind="stable")
    keys = sorted(set(steps["key"].tolist()))
    created = dict(con.execute(f"select id, created_at from orders where id in ({','.join(map(str, keys))})"))
    style = styles_of(pd.Series([created[k] for k in steps["key"]]))
    when = iso_variants(steps["ts"].to_numpy(), style)
    rows = []
    for (key, payload), at in zip(steps[["key", "payload"]].itertuples(index=False), when, strict=True):
        p = json.loads(payload)
        rows.append(
            (
                p["status"],
                at,
                at if p["cancelled"] else None,
                None if p["refunded"] is None else p["refunded"] / 100,
                int(key),
            )
        )
    con.executemany(
        "update orders set status = ?, updated_at = ?, cancelled_at = coalesce(?, cancelled_at), "
        "refunded_total = coalesce(?, refunded_total) where id = ?",
        rows,
    )
    return len(rows)


def fx_day(con: sqlite3.Connection, rng: np.random.Generator, day: str) -> int:
    """The day's rates: each currency's last rate walked one step (a few days missing, as in the base)."""
    last = dict(
        con.execute(
            "select currency, usd_per_unit from fx_rates f where rate_date = (select max(rate_date) "
            "from fx_rates g where g.currency = f.currency and g.rate_date < ?)",
            (day,),
        )
    )
    steps = rng.normal(0, 0.004, size=len(CURRENCIES))
    missing = rng.random(len(CURRENCIES)) < P_FX_MISSING
    rows = []
    for cur, step, miss in zip(CURRENCIES, steps, missing, strict=True):
        if cur == "USD":
            rows.append((day, cur, 1.0))
        elif not miss:
            rows.append((day, cur, round(float(last.get(cur, BASE_USD_PER_UNIT[cur])) * float(np.exp(step)), 8)))
    con.executemany("insert or replace into fx_rates values (?, ?, ?)", rows)
    return len(rows)


def shop_day(
    con: sqlite3.Connection,
    rng: Rng,
    *,
    day: str,
    t0: int,
    rates: dict[str, float],
    factor: float,
    ids: dict[str, int],
    first_ext_customer: int,
    guest_person: pd.Series,
    due: pd.DataFrame,
    taken: set[str],
    tails: set[str],
) -> ShopDay:
    """Write day [t0, t0 + 1 day) into shop.db (one transaction is the caller's); `ids` is advanced."""
    t1 = t0 + DAY
    fx = fx_day(con, rng("fx"), day)
    cust = pd.read_sql_query(
        "select id, email, phone, country, created_at from customers where substr(created_at, 1, 10) < ?",
        con,
        params=(day,),
    )
    orders = pd.read_sql_query(
        "select id, customer_id, email, phone, currency from orders where substr(created_at, 1, 10) < ? order by id",
        con,
        params=(day,),
    )

    # new customers: new people who sign up today
    r = rng("customers")
    k_new = int(r.poisson(rates["customers"] * factor))
    people = new_people(r, k_new, ids["person"], taken, tails)
    typed = typed_identity(r, people, p_phone=0.8, p_native=0.7)
    new_c = pd.DataFrame(
        {
            "id": np.arange(ids["customer"], ids["customer"] + k_new, dtype="int64"),
            "person_id": people["person_id"].to_numpy(),
            **{k: typed[k] for k in typed.columns},
            "country": people["country"].to_numpy(),
            "accepts_marketing": (r.random(k_new) < 0.7).astype("int64"),
            "created_ts": np.sort(t0 + r.integers(0, DAY - 2 * 3600, size=k_new)),
            "style": row_styles(r, k_new),
        }
    )
    new_c["email_local"], new_c["email_domain"] = people["email_local"], people["email_domain"]
    ids["person"] += k_new
    ids["customer"] += k_new
    created_s = iso_variants(new_c["created_ts"].to_numpy(), new_c["style"].to_numpy())
    con.executemany(
        "insert or replace into customers values (?,?,?,?,?,?,?,?,?)",
        zip(
            new_c["id"].tolist(),
            _nullable(new_c["email"]),
            _nullable(new_c["first_name"]),
            _nullable(new_c["last_name"]),
            _nullable(new_c["phone"]),
            new_c["country"].tolist(),
            new_c["accepts_marketing"].tolist(),
            list(created_s),
            list(created_s),
            strict=True,
        ),
    )

    o = _new_orders(rng("orders"), rates, factor, t0, cust, orders, new_c, first_ext_customer, guest_person)
    o["id"] = np.arange(ids["order"], ids["order"] + len(o), dtype="int64")
    ids["order"] += len(o)
    r = rng("order-money")
    country = o["country"].to_numpy().astype(str)
    o["campaign_id"], o["utm"], o["status"] = None, False, "pending"
    _utm(r, o, pd.DataFrame(), country)
    items = _money(r, o, country)
    items["id"] += ids["item"] - 1
    ids["item"] += len(items)
    _insert_orders(con, o, items)

    # each new order's fate, as the base draws it; today's steps are applied now, later ones wait
    r = rng("order-fate")
    destiny = r.choice(len(DESTINY_P), size=len(o), p=DESTINY_P)
    paid, fulfilled, refund, cancel = settle_times(r, o["created_ts"].to_numpy())
    cents = _refund_cents(r, o["total"].to_numpy(), o["currency"].to_numpy(), destiny)
    steps = pd.concat(
        [due, order_steps(o["id"].to_numpy(), destiny, paid, fulfilled, refund, cancel, cents)], ignore_index=True
    )
    now = steps["ts"].to_numpy() < t1
    changed = apply_order_steps(con, steps[now])

    # a few customers edit their profile (only updated_at moves, as in the base)
    r = rng("customer-edits")
    k_edit = min(int(r.poisson(rates["customer_edits"] * factor)), len(cust))
    edit = cust.iloc[np.sort(r.choice(len(cust), size=k_edit, replace=False))] if k_edit else cust.iloc[:0]
    at = iso_variants(np.sort(t0 + r.integers(0, DAY, size=k_edit)), styles_of(edit["created_at"]))
    con.executemany("update customers set updated_at = ? where id = ?", zip(list(at), edit["id"].tolist(), strict=True))

    guest = o["customer_id"].to_numpy() < 0
    truth = pd.concat(
        [
            pd.DataFrame(
                {"source": "orders.customer", "source_id": new_c["id"].astype(str), "person_id": new_c["person_id"]}
            ),
            pd.DataFrame(
                {
                    "source": "orders.guest_order",
                    "source_id": o["id"][guest].astype(str),
                    "person_id": o["person_id"][guest].astype("int64"),
                }
            ),
        ],
        ignore_index=True,
    )
    counts = {
        "customers": k_new,
        "orders": len(o),
        "guest_orders": int(guest.sum()),
        "order_items": len(items),
        "order_status_changes": changed,
        "customer_edits": k_edit,
        "fx_rates": fx,
    }
    return ShopDay(customers=new_c, truth=truth, steps=steps[~now].reset_index(drop=True), counts=counts)


def _new_orders(
    r: np.random.Generator,
    rates: dict[str, float],
    factor: float,
    t0: int,
    cust: pd.DataFrame,
    orders: pd.DataFrame,
    new_c: pd.DataFrame,
    first_ext_customer: int,
    guest_person: pd.Series,
) -> pd.DataFrame:
    """Who orders today and with which address, phone and currency."""
    t1 = t0 + DAY
    # account holders who bought before (weighted by how often), and customers the continuation signed up
    on_acc = orders[orders["customer_id"].notna()]
    n_orders = on_acc["customer_id"].astype("int64").value_counts()
    weight = cust["id"].map(n_orders).fillna(0).to_numpy() + (cust["id"].to_numpy() >= first_ext_customer)
    k_acc = int(r.poisson(rates["account_orders"] * factor)) if weight.sum() > 0 else 0
    acc = cust.iloc[r.choice(len(cust), size=k_acc, p=weight / weight.sum())] if k_acc else cust.iloc[:0]
    last = on_acc.assign(customer_id=on_acc["customer_id"].astype("int64")).drop_duplicates("customer_id", keep="last")
    last = last.set_index("customer_id").reindex(acc["id"].to_numpy())
    use_acc_email = r.random(k_acc) < P_ACCOUNT_EMAIL
    acc_rows = pd.DataFrame(
        {
            "customer_id": acc["id"].to_numpy(),
            "person_id": -1,
            "email": np.where(
                use_acc_email | last["email"].isna().to_numpy(),
                acc["email"].to_numpy(dtype=object),
                last["email"].to_numpy(dtype=object),
            ),
            "phone": last["phone"].where(last["phone"].notna(), acc["phone"].to_numpy()).to_numpy(dtype=object),
            "currency": last["currency"]
            .where(last["currency"].notna(), acc["country"].map(CURRENCY_OF).fillna("USD").to_numpy())
            .to_numpy(dtype=object),
            "country": acc["country"].fillna("US").to_numpy(dtype=object),
            "created_ts": t0 + r.integers(0, DAY, size=k_acc),
        }
    )
    # guests who checked out as guests before: same address and phone as one of their earlier orders
    guests = orders[orders["customer_id"].isna() & orders["id"].isin(guest_person.index)]
    k_guest = int(r.poisson(rates["guest_orders"] * factor)) if len(guests) else 0
    g = guests.iloc[r.integers(0, len(guests), size=k_guest)] if k_guest else guests.iloc[:0]
    guest_rows = pd.DataFrame(
        {
            "customer_id": -1,
            "person_id": guest_person.reindex(g["id"].to_numpy()).to_numpy(),
            "email": g["email"].to_numpy(dtype=object),
            "phone": g["phone"].to_numpy(dtype=object),
            "currency": g["currency"].to_numpy(dtype=object),
            "country": g["currency"].map(COUNTRY_OF_CURRENCY).fillna("US").to_numpy(dtype=object),
            "created_ts": t0 + r.integers(0, DAY, size=k_guest),
        }
    )
    # first orders of today's new customers, some time after they signed up
    first = new_c[r.random(len(new_c)) < P_FIRST_ORDER_SAME_DAY]
    first_rows = pd.DataFrame(
        {
            "customer_id": first["id"].to_numpy(),
            "person_id": first["person_id"].to_numpy(),
            "email": first["email"].to_numpy(dtype=object),
            "phone": first["phone"].to_numpy(dtype=object),
            "currency": first["country"].map(CURRENCY_OF).to_numpy(dtype=object),
            "country": first["country"].to_numpy(dtype=object),
            "created_ts": first["created_ts"].to_numpy() + r.integers(600, 3_600, size=len(first)),
        }
    )
    o = pd.concat([acc_rows, guest_rows, first_rows], ignore_index=True)
    o["created_ts"] = np.minimum(o["created_ts"].to_numpy().astype("int64"), t1 - 1)
    o["customer_id"] = o["customer_id"].astype("int64")
    o["person_id"] = o["person_id"].astype("int64")
    o = o.sort_values(["created_ts", "customer_id"], kind="stable").reset_index(drop=True)
    digits = o["phone"].astype("str").str.replace(r"\D", "", regex=True)
    o["phone_order"] = digits.str.endswith(SHOP_PHONE_NSN).to_numpy()  # guests who called the shop again
    o["style"] = row_styles(r, len(o))
    return o


def _insert_orders(con: sqlite3.Connection, o: pd.DataFrame, items: pd.DataFrame) -> None:
    created = iso_variants(o["created_ts"].to_numpy(), o["style"].to_numpy())
    con.executemany(
        "insert or replace into orders values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        order_rows(o, list(created), list(created), [None] * len(o)),
    )
    con.executemany("insert or replace into order_items values (?,?,?,?,?,?,?)", item_rows(items))
