"""The incremental day: after a full load, the sources gain `share` (1%) new and `share` changed records, all
stamped inside the next data interval [start, end), the way a real day adds to them:

- orders DB: new customers; changed customers (phone, accepts_marketing, updated_at); new orders (copies of
  random orders with new ids, as paid) with their items; changed orders (paid -> fulfilled, or refunded);
  the day's FX rates;
- helpdesk: new users; new tickets; new versions of random tickets (status moved on). Appended to the
  users/tickets.jsonl.gz files as a second gzip member (the demo server reads every member);
- ESP: the day's webhook events (opens, clicks, deliveries of existing campaigns by existing contacts) in 24
  new hour partitions; a new contacts snapshot dated `end` (the previous one with changed statuses and new
  contacts: snapshots are full lists, by contract); a new campaigns snapshot.

Vectorised: SQL in SQLite and DuckDB, numpy for the picks. The helpdesk samples parse only the lines picked.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np


def _stamps(rng: np.random.Generator, n: int, start: datetime, end: datetime) -> list[str]:
    lo, hi = int(start.timestamp()), int(end.timestamp())
    ts = np.sort(rng.integers(lo, hi, size=n))
    return [s + "Z" for s in np.datetime_as_string(ts.astype("datetime64[s]"), unit="s").tolist()]


def _orders(db: Path, rng: np.random.Generator, share: float, start: datetime, end: datetime) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        ((n_cust, max_cust),) = con.execute("select count(*), max(id) from customers").fetchall()
        ((n_ord, max_ord),) = con.execute("select count(*), max(id) from orders").fetchall()
        ((max_item,),) = con.execute("select max(id) from order_items").fetchall()
        k_c, k_o = max(1, round(n_cust * share)), max(1, round(n_ord * share))
        con.execute("create temp table pick (src integer, new integer, ts text)")

        def pick(rows: np.ndarray, new_ids: np.ndarray | None, k: int) -> None:
            con.execute("delete from pick")
            con.executemany(
                "insert into pick values (?, ?, ?)",
                zip(
                    rows.tolist(),
                    (new_ids if new_ids is not None else rows).tolist(),
                    _stamps(rng, k, start, end),
                    strict=True,
                ),
            )

        cust_ids = np.array([r[0] for r in con.execute("select id from customers")], dtype="int64")
        pick(rng.choice(cust_ids, k_c), np.arange(max_cust + 1, max_cust + 1 + k_c), k_c)
        con.execute("""insert into customers select p.new, 'new.' || p.new || '@example.com', c.first_name, c.last_name,
                       null, c.country, c.accepts_marketing, p.ts, p.ts from customers c join pick p on c.id = p.src""")
        pick(rng.choice(cust_ids, k_c, replace=False), None, k_c)
        con.execute("""update customers set accepts_marketing = 1 - accepts_marketing,
                       updated_at = (select ts from pick where src = customers.id)
                       where id in (select src from pick)""")
        ord_ids = np.array([r[0] for r in con.execute("select id from orders")], dtype="int64")
        pick(rng.choice(ord_ids, k_o), np.arange(max_ord + 1, max_ord + 1 + k_o), k_o)
        con.execute("""insert into orders select p.new, o.customer_id, o.email, o.phone, 'paid', o.currency, o.subtotal,
                       o.discount_total, o.shipping_total, o.tax_total, o.total, 0, o.discount_code, o.utm_source,
                       o.utm_medium, o.utm_campaign, p.ts, p.ts, null from orders o join pick p on o.id = p.src""")
        con.execute(f"""insert into order_items select {max_item} + row_number() over (order by p.new, i.id),
                        p.new, i.sku, i.product_name, i.category, i.quantity, i.unit_price
                        from order_items i join pick p on i.order_id = p.src""")
        new_items = con.execute("select changes()").fetchall()[0][0]
        pick(rng.choice(ord_ids, k_o, replace=False), None, k_o)
        con.execute("""update orders set
                         status = case when status = 'paid' then 'fulfilled' when status = 'fulfilled' then 'refunded'
                                       else status end,
                         refunded_total = case when status = 'fulfilled' then total else refunded_total end,
                         updated_at = (select ts from pick where src = orders.id)
                       where id in (select src from pick)""")
        day = start.date().isoformat()
        con.execute(
            """insert or ignore into fx_rates select ?, currency, usd_per_unit from fx_rates
                       where rate_date = (select max(rate_date) from fx_rates)""",
            [day],
        )
        con.commit()
    finally:
        con.close()
    return {
        "orders.new_customers": k_c,
        "orders.changed_customers": k_c,
        "orders.new_orders": k_o,
        "orders.new_items": new_items,
        "orders.changed_orders": k_o,
    }


def _read_lines(path: Path) -> tuple[list[str], int]:
    """The item lines of a helpdesk file and the largest id among them (every line starts with {"id":N,)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip()]
    return lines, max(int(ln[6 : ln.index(",")]) for ln in lines)


def _helpdesk(hd: Path, rng: np.random.Generator, share: float, start: datetime, end: datetime) -> dict[str, int]:
    lines, max_user = _read_lines(hd / "users.jsonl.gz")
    users = [u for u in map(json.loads, lines) if u.get("role") == "end-user"]
    k_u = max(1, round(len(users) * share))
    # copies of random end-users (external_id kept: a new helpdesk user synced with an existing shop account)
    new_users = [
        dict(
            users[j],
            id=max_user + 1 + i,
            email=f"helpdesk.new.{max_user + 1 + i}@example.com",
            created_at=ts,
            updated_at=ts,
        )
        for i, (j, ts) in enumerate(zip(rng.choice(len(users), k_u), _stamps(rng, k_u, start, end), strict=True))
    ]
    lines, max_ticket = _read_lines(hd / "tickets.jsonl.gz")
    k_t = max(1, round(len(lines) * share))
    picked = [json.loads(lines[i]) for i in rng.choice(len(lines), size=min(2 * k_t, len(lines)), replace=False)]
    stamps = _stamps(rng, len(picked), start, end)
    moves = {"new": "open", "open": "solved", "pending": "solved", "hold": "open", "solved": "closed"}
    changed = [
        dict(t, status=moves.get(t["status"], t["status"]), updated_at=ts)
        for t, ts in zip(picked[:k_t], stamps[:k_t], strict=True)
    ]
    new = [
        dict(t, id=max_ticket + 1 + i, status="new", created_at=ts, updated_at=ts)
        for i, (t, ts) in enumerate(zip(picked[k_t:], stamps[k_t:], strict=True))
    ]
    for name, items in (("users", new_users), ("tickets", changed + new)):
        text = "".join(json.dumps(it, ensure_ascii=False, separators=(",", ":")) + "\n" for it in items)
        with open(hd / f"{name}.jsonl.gz", "ab") as fh:  # a second gzip member
            fh.write(gzip.compress(text.encode(), mtime=0))
    return {
        "helpdesk.new_users": k_u,
        "helpdesk.changed_tickets": len(changed),
        "helpdesk.new_tickets": len(new),
        "helpdesk.ticket_versions_before": len(lines),
    }


def _esp(
    esp: Path, n_events: int, rng: np.random.Generator, share: float, start: datetime, end: datetime
) -> dict[str, int]:
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
    latest = sorted((esp / "contacts").glob("contacts_*.csv"))[-1]
    camp = sorted((esp / "campaigns").glob("campaigns_*.csv"))[-1]
    con.execute(f"create table contacts as select * from read_csv('{latest}', all_varchar = true)")
    con.execute(f"create table campaigns as select * from read_csv('{camp}', all_varchar = true)")
    n_contacts = con.execute("select count(*) from contacts").fetchall()[0][0]
    k_e, k_c = max(24, round(n_events * share)), max(1, round(n_contacts * share))
    lo = int(start.timestamp())
    seed = int(rng.integers(0, 2**31))
    con.execute(f"select setseed({(seed % 1000) / 1000})")
    day = start.date()
    for hour in range(24):
        part = esp / "events" / f"dt={day:%Y-%m-%d}" / f"hour={hour:02d}"
        part.mkdir(parents=True, exist_ok=True)
        per = k_e // 24 + (hour < k_e % 24)
        con.execute(f"""copy (
            select c.email, {lo + hour * 3600} + (i * 37) % 3600 as "timestamp",
                   ['delivered', 'open', 'open', 'click'][1 + i % 4] as event,
                   'inc-{seed}-{hour}-' || i as sg_event_id, 'inc-msg-' || i as sg_message_id,
                   k.campaign_id, case when i % 4 = 3 then 'https://maru-shop.com/pages/sale' end as url,
                   case when i % 4 in (1, 2, 3) then 'Mozilla/5.0' end as useragent,
                   case when i % 4 in (1, 2, 3) then '203.0.113.' || (i % 250) end as ip,
                   case when i % 4 in (1, 2) then i % 8 = 1 end as sg_machine_open
            from range({per}) t(i)
            join (select email, row_number() over () - 1 as rn from contacts) c
              on c.rn = (i * 7919 + {hour * 104729}) % {n_contacts}
            join (select campaign_id, row_number() over () - 1 as rn from campaigns) k
              on k.rn = i % (select count(*) from campaigns)
            ) to '{part}/part-0000.jsonl.gz' (format json, compression gzip)""")
    stamp = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    con.execute(f"""copy (
        select contact_id, email, first_name, last_name,
               case when abs(hash(contact_id || '{seed}')) % {n_contacts} < {k_c}
                    then case status when 'subscribed' then 'unsubscribed' else 'subscribed' end else status end
                   as status, created_at,
               case when abs(hash(contact_id || '{seed}')) % {n_contacts} < {k_c} then '{stamp}'
                    else updated_at end as updated_at
        from contacts
        union all
        select 'inc-{seed}-' || i, 'esp.new.' || i || '@example.com', null, null, 'subscribed', '{stamp}', '{stamp}'
        from range({k_c}) t(i)
        ) to '{esp}/contacts/contacts_{end:%Y%m%d}.csv' (header, delimiter ',')""")
    con.execute(f"copy campaigns to '{esp}/campaigns/campaigns_{end:%Y%m%d}.csv' (header, delimiter ',')")
    con.close()
    return {
        "esp.new_events": k_e,
        "esp.changed_contacts_approx": k_c,
        "esp.new_contacts": k_c,
        "esp.contacts_in_new_snapshot": n_contacts + k_c,
    }


def mutate_sources(src: Path, *, share: float, seed: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Add the incremental day to the generated sources in `src` (written by rapport.demo.generate)."""
    rng = np.random.default_rng([seed, 20_251_123])
    summary = json.loads((src / "ground_truth" / "summary.json").read_text())
    counts = _orders(src / "shop.db", rng, share, start, end)
    counts |= _helpdesk(src / "helpdesk", rng, share, start, end)
    counts |= _esp(src / "esp", summary["counts"]["esp_events"], rng, share, start, end)
    (src / "MUTATED").write_text(json.dumps(counts, indent=1))
    return counts
