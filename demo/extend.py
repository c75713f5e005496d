"""Continue a generated demo: the same shop, some days later, without redrawing its history.

`extend(out_dir, end)` takes a demo directory written by `generate` (sources ending on `E1`, recorded in
ground_truth/summary.json) and adds the days [E1, end) one by one, by post-processing the source files:
for day D, activity at times in [D 00:00, D+1 00:00) and the exports dated D+1 (extend_shop,
extend_helpdesk, extend_esp). Records that exist never change their id or created_at; they only move on
(orders settle, tickets get answered, contacts unsubscribe).

Determinism: every random draw of day D comes from `rng_for(seed, "extend:D:<part>")`, rates come from the
base history only (its last RATE_WINDOW_DAYS, fixed when the continuation starts), and each day reads only
the sources and the continuation's own state as the previous day left them. So E1 -> E3 in one call and
E1 -> E2 -> E3 in two give the same sources, and a day interrupted half-way is simply done again.

State, in the demo directory: `continuation.json` (format, base parameters, `continued_to`, rates, next ids,
sizes of the appended files) written last, after each day; `continuation/pending-D.parquet` (scheduled
order steps, ticket versions and late ESP lines due on day D or later) and `continuation/messages.parquet`
(the delivered campaign messages late engagement draws from).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, Period, rng_for, seasonality
from rapport.demo.extend_esp import contacts_day, delivered_messages, late_engagement, read_snapshot, write_events
from rapport.demo.extend_helpdesk import (
    append_versions,
    end_users,
    latest,
    new_tickets,
    read_items,
    schedule_open_tickets,
)
from rapport.demo.extend_people import phone_tails, taken_keys
from rapport.demo.extend_shop import STEP_COLUMNS, schedule_in_flight, shop_day
from rapport.demo.truth import write_parquet, write_summary

FORMAT = 1
STATE_FILE = "continuation.json"
STATE_DIR = "continuation"
RATE_WINDOW_DAYS = 28
DRIFT_SHARE = 0.6  # helpdesk_data: fields the API added without notice from 60% into the base period
TRUTH = "ground_truth/identities.parquet"
TICKETS = "helpdesk/tickets.jsonl.gz"


class ContinuationError(RuntimeError):
    """The demo directory cannot be continued (missing or inconsistent files)."""


@dataclass(frozen=True)
class ExtensionSummary:
    out_dir: Path
    start: date  # the day the base sources ended on
    end: date  # the day the sources now end on
    days: int  # days added by this call
    added: dict[str, int] = field(default_factory=dict)  # by this call
    seconds: float = 0.0


def _ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def read_state(out_dir: Path) -> dict | None:
    path = Path(out_dir) / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_parameters(out_dir: Path) -> dict | None:
    """The base generator's parameters (people, seed, end, months, start), or None if there is no demo."""
    path = Path(out_dir) / "ground_truth" / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("parameters")


def sources_end(out_dir: Path) -> date | None:
    """The day the demo's sources end on (their exports are dated that day; nothing happens on it)."""
    state = read_state(out_dir)
    if state is not None:
        return date.fromisoformat(state["continued_to"])
    params = read_parameters(out_dir)
    return date.fromisoformat(params["end"]) if params else None


def extend(out_dir: Path, end: date, *, progress: Callable[[str], None] | None = None) -> ExtensionSummary:
    """Continue the demo in `out_dir` to `end` (exclusive: the exports are dated `end`)."""
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    params = read_parameters(out_dir)
    if params is None:
        raise ContinuationError(f"{out_dir} holds no generated demo (ground_truth/summary.json is missing)")
    state = read_state(out_dir) or _start(out_dir, params)
    if state.get("format") != FORMAT:
        raise ContinuationError(
            f"{out_dir / STATE_FILE} was written by another version of rapport (format "
            f"{state.get('format')}, this one reads {FORMAT})"
        )
    current = date.fromisoformat(state["continued_to"])
    if end < current:
        raise ContinuationError(f"the demo in {out_dir} already ends on {current}; it cannot go back to {end}")
    added: dict[str, int] = {}
    day = current
    while day < end:
        say(f"continuing the demo shop: {day}")
        for k, v in _day(out_dir, state, day).items():
            added[k] = added.get(k, 0) + v
        day += timedelta(days=1)
    if day > current:
        _write_summary(out_dir, state)
    return ExtensionSummary(
        out_dir=out_dir,
        start=date.fromisoformat(state["base"]["end"]),
        end=end,
        days=(end - current).days,
        added=added,
        seconds=time.perf_counter() - t_start,
    )


def _start(out_dir: Path, params: dict) -> dict:
    """The continuation's initial state: rates of the base's last weeks, next ids, the base's unfinished
    orders and tickets scheduled, the campaign messages late opens come from."""
    e1 = date.fromisoformat(params["end"])
    seed = int(params["seed"])
    t1 = _ts(e1)
    (out_dir / STATE_DIR).mkdir(exist_ok=True)
    base_period = Period(start=date.fromisoformat(params["start"]), end=e1)
    drift_ts = base_period.start_ts + int(DRIFT_SHARE * (base_period.end_ts - base_period.start_ts))
    with closing(sqlite3.connect(out_dir / "shop.db")) as con:
        orders_steps = schedule_in_flight(con, rng_for(seed, "extend:start:orders"), t1)
        ids = dict(
            zip(
                ["customer", "order", "item"],
                con.execute(
                    "select (select max(id) from customers), (select max(id) from orders),"
                    " (select max(id) from order_items)"
                ).fetchone(),
                strict=True,
            )
        )
        rates = _shop_rates(con, e1)
    ticket_steps, max_ticket = schedule_open_tickets(
        out_dir / "helpdesk", rng_for(seed, "extend:start:tickets"), t1, drift_ts
    )
    rates.update(_feed_rates(out_dir, e1, rates))
    truth = pd.read_parquet(out_dir / TRUTH)
    next_ids = {k: int(v or 0) + 1 for k, v in ids.items()}
    next_ids["ticket"] = max_ticket + 1
    next_ids["person"] = max(int(params["people"]), int(truth["person_id"].max()) + 1)
    _write_pending(out_dir, e1, pd.concat([orders_steps, ticket_steps], ignore_index=True))
    write_parquet(delivered_messages(out_dir / "esp", e1), out_dir / STATE_DIR / "messages.parquet")
    state = {
        "format": FORMAT,
        "base": params,
        "continued_to": e1.isoformat(),
        "rates": rates,
        "next": next_ids,
        "first_customer": next_ids["customer"],
        "drift_ts": drift_ts,
        "sizes": {"tickets_bytes": (out_dir / TICKETS).stat().st_size, "truth_rows": len(truth)},
        "added": {},
    }
    _write_state(out_dir, state)
    return state


def _window(e1: date) -> tuple[str, str]:
    return (e1 - timedelta(days=RATE_WINDOW_DAYS)).isoformat(), e1.isoformat()


def _shop_rates(con: sqlite3.Connection, e1: date) -> dict[str, float]:
    """Records a day, on average over the base's last RATE_WINDOW_DAYS."""
    lo, hi = _window(e1)
    norm = RATE_WINDOW_DAYS

    def per_day(sql: str) -> float:
        return con.execute(sql, (lo, hi)).fetchone()[0] / norm

    within = "substr(created_at, 1, 10) >= ? and substr(created_at, 1, 10) < ?"
    return {
        "customers": per_day(f"select count(*) from customers where {within}"),
        "account_orders": per_day(f"select count(*) from orders where customer_id is not null and {within}"),
        "guest_orders": per_day(f"select count(*) from orders where customer_id is null and {within}"),
        "customer_edits": per_day(
            "select count(*) from customers where updated_at <> created_at and "
            "substr(updated_at, 1, 10) >= ? and substr(updated_at, 1, 10) < ?"
        ),
    }


def _feed_rates(out_dir: Path, e1: date, shop: dict[str, float]) -> dict[str, float]:
    lo, hi = _window(e1)
    norm = RATE_WINDOW_DAYS
    tickets = latest(read_items(out_dir / TICKETS)).values()
    n_tickets = sum(lo <= t["created_at"][:10] < hi for t in tickets)
    contacts = read_snapshot(out_dir / "esp" / "contacts" / f"contacts_{e1:%Y%m%d}.csv")
    n_contacts = int(contacts["created_at"].str.slice(0, 10).between(lo, hi, inclusive="left").sum())
    # contacts that are not a new customer's synced address are newsletter sign-ups of new people
    return {"tickets": n_tickets / norm, "newsletter_signups": max(n_contacts / norm - 0.7 * shop["customers"], 0.0)}


def _factor(e1: date, day: date) -> float:
    """Seasonality of `day` over its mean in the rate window (weekends and the holiday peak are busier)."""
    s = seasonality(Period(start=e1 - timedelta(days=RATE_WINDOW_DAYS), end=day + timedelta(days=1)))
    return float(s[-1] / s[:RATE_WINDOW_DAYS].mean())


def _day(out_dir: Path, state: dict, day: date) -> dict[str, int]:
    seed = int(state["base"]["seed"])
    e1 = date.fromisoformat(state["base"]["end"])
    t0 = _ts(day)
    d = day.isoformat()

    def rng(part: str) -> np.random.Generator:
        return rng_for(seed, f"extend:{d}:{part}")

    ids = dict(state["next"])
    rates = state["rates"]
    factor = _factor(e1, day)
    pending = pd.read_parquet(out_dir / STATE_DIR / f"pending-{d}.parquet")
    due = pending[pending["ts"] < t0 + DAY]
    truth = pd.read_parquet(out_dir / TRUTH).iloc[: state["sizes"]["truth_rows"]]
    guest_person = truth[truth["source"] == "orders.guest_order"].set_index(
        truth["source_id"][truth["source"] == "orders.guest_order"].astype("int64")
    )["person_id"]
    taken, tails = _identifiers(out_dir, day)

    con = sqlite3.connect(out_dir / "shop.db")
    try:
        with con:  # one transaction: a day is in shop.db whole or not at all
            shop = shop_day(
                con,
                rng,
                day=d,
                t0=t0,
                rates=rates,
                factor=factor,
                ids=ids,
                first_ext_customer=int(state["first_customer"]),
                guest_person=guest_person,
                due=due[due["kind"] == "order"],
                taken=taken,
                tails=tails,
            )
    finally:
        con.close()

    # helpdesk: drop whatever an interrupted attempt at this day appended, then append the day's versions
    tickets_path = out_dir / TICKETS
    with open(tickets_path, "r+b") as fh:
        fh.truncate(state["sizes"]["tickets_bytes"])
    users = end_users(out_dir / "helpdesk", d)
    r = rng("tickets")
    born = new_tickets(r, users, int(r.poisson(rates["tickets"] * factor)), t0, ids["ticket"], state["drift_ts"])
    ids["ticket"] += int(born["key"].nunique()) if len(born) else 0
    steps = pd.concat([due[due["kind"] == "ticket"], born], ignore_index=True)
    today = steps["ts"].to_numpy() < t0 + DAY
    append_versions(tickets_path, steps[today])

    # esp: late engagement, then the contacts snapshot (with the unsubscribes it caused)
    messages = pd.read_parquet(out_dir / STATE_DIR / "messages.parquet")
    ev = late_engagement(rng("esp-events"), messages, t0)
    held_in = due[due["kind"] == "esp_late"]["payload"].map(json.loads)
    held_frame = pd.DataFrame({"path": [h["path"] for h in held_in], "line": [h["line"] for h in held_in]})
    held_out, lines = write_events(out_dir / "esp", rng("esp-files"), ev, held_frame, day)
    contact_truth, news = contacts_day(
        out_dir / "esp",
        rng("esp-contacts"),
        day,
        t0,
        new_customers=shop.customers,
        newsletter_rate=rates["newsletter_signups"] * factor,
        unsubscribed=ev["email"][ev["event"] == "unsubscribe"],
        first_person=ids["person"],
        taken=taken,
        tails=tails,
    )
    ids["person"] += len(news)

    new_truth = pd.concat([truth, shop.truth, contact_truth], ignore_index=True)
    write_parquet(new_truth, out_dir / TRUTH)
    later = pd.concat(
        [
            pending[pending["ts"] >= t0 + DAY],
            shop.steps,
            steps[~today],
            pd.DataFrame(
                {
                    "kind": "esp_late",
                    "ts": t0 + DAY,
                    "key": 0,
                    "payload": [
                        json.dumps({"path": p, "line": ln}, ensure_ascii=False)
                        for p, ln in zip(held_out["path"], held_out["line"], strict=True)
                    ],
                }
            ),
        ],
        ignore_index=True,
    )
    nxt = day + timedelta(days=1)
    _write_pending(out_dir, nxt, later)
    counts = {
        **shop.counts,
        "helpdesk_tickets": int(born["key"].nunique()) if len(born) else 0,
        "helpdesk_ticket_versions": int(today.sum()),
        "esp_contacts": len(contact_truth),
        "esp_events": len(ev["timestamp"]),
        "esp_event_lines": lines,
        "identity_records": len(new_truth) - len(truth),
    }
    state["next"] = ids
    state["continued_to"] = nxt.isoformat()
    state["sizes"] = {"tickets_bytes": tickets_path.stat().st_size, "truth_rows": len(new_truth)}
    state["added"] = {k: state["added"].get(k, 0) + v for k, v in counts.items()}
    _write_state(out_dir, state)  # the day is done once this is written
    (out_dir / STATE_DIR / f"pending-{d}.parquet").unlink(missing_ok=True)
    return counts


def _identifiers(out_dir: Path, day: date) -> tuple[set[str], set[str]]:
    """Addresses (normalised) and phone tails in the sources before `day`: a new person takes none of them.
    (Only what is older than the day: a day redone after an interrupted attempt sees what the first saw.)"""
    with closing(sqlite3.connect(out_dir / "shop.db")) as con:
        rows = con.execute(
            "select email, phone from customers where substr(created_at, 1, 10) < ? union all "
            "select email, phone from orders where substr(created_at, 1, 10) < ?",
            (day.isoformat(), day.isoformat()),
        ).fetchall()
    users = latest(read_items(out_dir / "helpdesk" / "users.jsonl.gz")).values()
    contacts = read_snapshot(out_dir / "esp" / "contacts" / f"contacts_{day:%Y%m%d}.csv")
    emails = [r[0] for r in rows] + [u.get("email") for u in users] + contacts["email"].tolist()
    phones = [r[1] for r in rows] + [u.get("phone") for u in users]
    return taken_keys(emails), phone_tails(phones)


def _write_pending(out_dir: Path, day: date, steps: pd.DataFrame) -> None:
    steps = (
        steps[STEP_COLUMNS]
        .astype({"ts": "int64", "key": "int64"})
        .sort_values(["ts", "kind", "key"], kind="stable")
        .reset_index(drop=True)
    )
    write_parquet(steps, out_dir / STATE_DIR / f"pending-{day.isoformat()}.parquet")


def _write_state(out_dir: Path, state: dict) -> None:
    tmp = out_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out_dir / STATE_FILE)


def _write_summary(out_dir: Path, state: dict) -> None:
    path = out_dir / "ground_truth" / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["continuation"] = {
        "from": state["base"]["end"],
        "to": state["continued_to"],
        "added": state["added"],
        "notes": "days after `parameters.end` were added by demo/extend.py: new orders, customers, tickets, "
        "contacts and late engagement with earlier campaigns; no new campaigns.",
    }
    write_summary(path, summary)
