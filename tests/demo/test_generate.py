"""The demo generator's output against the source contracts (sources.md), and its dirty cases."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rapport.demo.generate import generate
from rapport.demo.helpdesk_server import serve_helpdesk

PARAMS = {"people": 800, "seed": 11, "end": date(2025, 6, 30), "months": 15}
VALID = {"paid", "fulfilled", "partially_refunded"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(Z|\+00:00)?$")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    generate(d, **PARAMS)
    return d


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def parse_ts(s: str) -> datetime:
    assert TS_RE.match(s), s
    return datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))


def test_same_inputs_same_bytes(out: Path, tmp_path: Path) -> None:
    generate(tmp_path, **PARAMS)
    a, b = tree_digest(out), tree_digest(tmp_path)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_another_seed_and_a_short_period(out: Path, tmp_path: Path) -> None:
    summary = generate(tmp_path, people=150, seed=12, end=date(2025, 6, 30), months=3)
    assert (tmp_path / "shop.db").read_bytes() != (out / "shop.db").read_bytes()
    assert summary.start == date(2025, 3, 31) and summary.counts["orders"] > 0
    assert 0 < summary.counts["campaigns"] < 20  # only as many as fit 8 days apart


# --- orders database -----------------------------------------------------------------------------


def db(out: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"file:{out / 'shop.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    return con


def test_shop_schema(out: Path) -> None:
    con = db(out)
    cols = {
        t: {r["name"]: (r["type"], r["pk"]) for r in con.execute(f"pragma table_info({t})")}
        for t in ("customers", "orders", "order_items", "fx_rates")
    }
    assert set(cols["customers"]) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "country",
        "accepts_marketing",
        "created_at",
        "updated_at",
    }
    assert set(cols["orders"]) == {
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
    }
    assert set(cols["order_items"]) == {"id", "order_id", "sku", "product_name", "category", "quantity", "unit_price"}
    assert set(cols["fx_rates"]) == {"rate_date", "currency", "usd_per_unit"}
    for t in ("customers", "orders", "order_items"):
        assert cols[t]["id"][1] == 1  # primary key
    assert cols["orders"]["total"][0] == "REAL" and cols["customers"]["accepts_marketing"][0] == "INTEGER"
    # stored types: numbers as numbers, booleans 0/1
    assert {r[0] for r in con.execute("select distinct typeof(total) from orders")} == {"real"}
    assert {r[0] for r in con.execute("select distinct accepts_marketing from customers")} == {0, 1}


def test_orders_add_up_and_statuses_are_consistent(out: Path) -> None:
    con = db(out)
    orders = [dict(r) for r in con.execute("select * from orders")]
    assert len(orders) > 300
    statuses = Counter(o["status"] for o in orders)
    assert set(statuses) == {"pending", "paid", "fulfilled", "cancelled", "refunded", "partially_refunded"}
    items: dict[int, int] = {}
    for r in con.execute("select order_id, quantity, unit_price from order_items"):
        items[r[0]] = items.get(r[0], 0) + r[1] * round(r[2] * 100)
    for o in orders:
        c = {
            k: round(o[k] * 100)
            for k in ("subtotal", "discount_total", "shipping_total", "tax_total", "total", "refunded_total")
        }
        assert c["total"] == c["subtotal"] - c["discount_total"] + c["shipping_total"] + c["tax_total"], o
        assert items[o["id"]] == c["subtotal"], o["id"]
        assert min(c.values()) >= 0
        if o["status"] == "refunded":
            assert c["refunded_total"] == c["total"]
        elif o["status"] == "partially_refunded":
            assert 0 < c["refunded_total"] < c["total"]
        else:
            assert c["refunded_total"] == 0
        assert (o["cancelled_at"] is not None) == (o["status"] == "cancelled")
        created, updated = parse_ts(o["created_at"]), parse_ts(o["updated_at"])
        assert updated >= created
        if o["status"] != "pending":
            assert updated > created
        if o["customer_id"] is None:
            assert o["email"], "guests always have an email"
        assert created < datetime(2025, 6, 30, tzinfo=created.tzinfo)
    # all three timestamp spellings occur
    spellings = Counter("space" if " " in o["created_at"] else o["created_at"][19:] for o in orders)
    assert set(spellings) == {"Z", "+00:00", "space"} and spellings["Z"] > 0.85 * len(orders)
    assert sum(o["customer_id"] is None for o in orders) > 0.2 * len(orders)
    assert any(o["discount_code"] for o in orders)


def test_currencies_follow_countries(out: Path) -> None:
    con = db(out)
    rows = con.execute(
        "select c.country, o.currency, o.total from orders o join customers c on c.id = o.customer_id"
        " where c.country is not null"
    ).fetchall()
    allowed = {
        "KR": {"KRW"},
        "TH": {"THB"},
        "CN": {"CNY"},
        "DE": {"EUR"},
        "FR": {"EUR"},
        "US": {"USD"},
        "GB": {"USD", "EUR"},
    }
    for country, cur, _ in rows:
        assert cur in allowed[country]
    krw = sorted(t for _, cur, t in rows if cur == "KRW")
    assert 10_000 <= krw[len(krw) // 2] <= 500_000  # tens of thousands of won
    assert {r[0] for r in con.execute("select distinct currency from orders")} == {"USD", "KRW", "THB", "CNY", "EUR"}


def test_fx_rates_daily_with_a_few_gaps(out: Path) -> None:
    con = db(out)
    rows = con.execute("select rate_date, currency, usd_per_unit from fx_rates").fetchall()
    assert len({(d, c) for d, c, _ in rows}) == len(rows)
    days = (PARAMS["end"] - min(date.fromisoformat(d) for d, _, _ in rows)).days
    for cur in ("USD", "KRW", "THB", "CNY", "EUR"):
        have = {d for d, c, _ in rows if c == cur}
        assert days * 0.95 <= len(have) <= days
    assert 0 < sum(1 for _ in rows) < 5 * days  # some missing
    krw = [v for _, c, v in rows if c == "KRW"]
    assert min(krw) > 0.0005 and max(krw) < 0.001
    order_days = {r[0][:10] for r in con.execute("select created_at from orders")}
    assert min(order_days) >= min(d for d, _, _ in rows)


def test_customers_realistic(out: Path) -> None:
    con = db(out)
    cust = [dict(r) for r in con.execute("select * from customers")]
    assert all(c["email"] or c["phone"] for c in cust)
    emails = [c["email"] for c in cust if c["email"]]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)
    assert any("+" in e for e in emails)
    assert any(re.search(r"[\uac00-\ud7a3]", c["first_name"] or "") for c in cust)  # Korean
    assert any(re.search(r"[\u0e00-\u0e7f]", c["first_name"] or "") for c in cust)  # Thai
    assert any(re.search(r"[\u4e00-\u9fff]", c["first_name"] or "") for c in cust)  # Chinese
    assert any(parse_ts(c["updated_at"]) > parse_ts(c["created_at"]) for c in cust)
    phones = [c["phone"] for c in cust if c["phone"]]
    assert any(p.startswith("+") for p in phones) and any(not p.startswith("+") for p in phones)


# --- helpdesk --------------------------------------------------------------------------------------

USER_FIELDS = {"id", "name", "email", "phone", "role", "external_id", "created_at", "updated_at"}
TICKET_FIELDS = {
    "id",
    "requester_id",
    "assignee_id",
    "subject",
    "status",
    "priority",
    "via",
    "tags",
    "satisfaction_rating",
    "metric_set",
    "created_at",
    "updated_at",
}


def jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_helpdesk_items_follow_the_contract(out: Path) -> None:
    users, tickets = jsonl(out / "helpdesk/users.jsonl.gz"), jsonl(out / "helpdesk/tickets.jsonl.gz")
    iso_z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    customer_ids = {str(r[0]) for r in db(out).execute("select id from customers")}
    for u in users:
        assert set(u) >= USER_FIELDS
        assert u["role"] in {"end-user", "agent", "admin"}
        assert iso_z.match(u["created_at"]) and iso_z.match(u["updated_at"])
        assert u["external_id"] is None or u["external_id"] in customer_ids
        assert u["email"] is not None or u["phone"] is not None
    roles = Counter(u["role"] for u in {u["id"]: u for u in users}.values())
    assert roles["agent"] >= 3 and roles["admin"] >= 1
    end_users = [u for u in users if u["role"] == "end-user"]
    assert 0.4 < sum(u["external_id"] is not None for u in end_users) / len(end_users) < 0.9
    assert any(u["email"] is None for u in end_users)
    assert any(set(u) - USER_FIELDS for u in users)  # undocumented extras
    user_ids = {u["id"] for u in users}
    for t in tickets:
        assert set(t) >= TICKET_FIELDS
        assert t["status"] in {"new", "open", "pending", "hold", "solved", "closed", "deleted"}
        assert t["priority"] in {None, "low", "normal", "high", "urgent"}
        assert t["via"]["channel"] in {"email", "web", "chat", "api", "voice"}
        assert t["satisfaction_rating"]["score"] in {"unoffered", "offered", "good", "bad"}
        assert set(t["metric_set"]) == {
            "reply_time_in_minutes",
            "full_resolution_time_in_minutes",
            "solved_at",
            "reopens",
        }
        assert t["requester_id"] in user_ids and "email" not in t
        assert isinstance(t["tags"], list)
    latest = {t["id"]: t for t in sorted(tickets, key=lambda t: t["updated_at"])}
    statuses = Counter(t["status"] for t in latest.values())
    assert statuses["closed"] > 0 and statuses["deleted"] > 0
    assert any(t["satisfaction_rating"]["score"] == "bad" for t in latest.values())
    assert any(set(t) - TICKET_FIELDS for t in tickets)


def test_helpdesk_versions_move_forward(out: Path) -> None:
    for kind in ("users", "tickets"):
        seen: dict[int, list[str]] = {}
        for it in jsonl(out / f"helpdesk/{kind}.jsonl.gz"):
            seen.setdefault(it["id"], []).append(it["updated_at"])
        versions = list(seen.values())
        assert all(v == sorted(v) and len(set(v)) == len(v) for v in versions)
        assert any(len(v) > 1 for v in versions)
    tickets = jsonl(out / "helpdesk/tickets.jsonl.gz")
    path = {}
    for t in tickets:
        path.setdefault(t["id"], []).append(t["status"])
    assert any(p[:2] == ["new", "open"] and "solved" in p and p[-1] == "closed" for p in path.values())


def test_server_pages_cover_every_generated_item(out: Path) -> None:
    files = {k: jsonl(out / f"helpdesk/{k}.jsonl.gz") for k in ("users", "tickets")}
    with serve_helpdesk(out / "helpdesk", token="tk", page_size=250) as srv, httpx.Client() as c:
        for kind, items in files.items():
            got, url = [], f"{srv.base_url}/api/v2/incremental/{kind}/cursor.json?start_time=0"
            while True:
                page = c.get(url, headers={"Authorization": "Bearer tk"}).json()
                assert len(page[kind]) <= 250
                got += page[kind]
                if page["end_of_stream"]:
                    break
                url = page["after_url"]
            assert sorted(json.dumps(i, sort_keys=True) for i in got) == sorted(
                json.dumps(i, sort_keys=True) for i in items
            )


# --- ESP -------------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_contact_snapshots(out: Path) -> None:
    files = sorted((out / "esp/contacts").glob("contacts_*.csv"))
    dates = [date(int(f.stem[9:13]), int(f.stem[13:15]), int(f.stem[15:17])) for f in files]
    end = PARAMS["end"]
    assert dates[-14:] == [end - timedelta(days=k) for k in range(13, -1, -1)]
    assert all(d.day == 1 for d in dates[:-14]) and len(dates) >= 14 + 12
    history: dict[str, list[tuple[str, str]]] = {}
    for f in files:
        rows = read_csv(f)
        assert f.read_text(encoding="utf-8").splitlines()[0] == (
            "contact_id,email,first_name,last_name,status,created_at,updated_at"
        )
        for r in rows:
            assert r["status"] in {"subscribed", "unsubscribed", "cleaned"}
            history.setdefault(r["contact_id"], []).append((r["status"], r["updated_at"]))
    assert {s for h in history.values() for s, _ in h} == {"subscribed", "unsubscribed", "cleaned"}
    changed = [h for h in history.values() if len({s for s, _ in h}) > 1]
    assert len(changed) > 10
    for h in changed:  # a status change always moves updated_at
        for (s0, u0), (s1, u1) in zip(h, h[1:], strict=False):
            assert u1 >= u0
            if s1 != s0:
                assert u1 > u0
    last = read_csv(files[-1])
    assert len({r["contact_id"] for r in last}) == len(last) == len(history)
    assert any(re.search(r"[\uac00-\ud7a3\u0e00-\u0e7f\u4e00-\u9fff]", r["first_name"]) for r in last)


def campaigns(out: Path) -> list[dict]:
    return read_csv(sorted((out / "esp/campaigns").glob("campaigns_*.csv"))[-1])


def test_campaigns_and_audiences(out: Path) -> None:
    camps = campaigns(out)
    assert list(camps[0]) == [
        "campaign_id",
        "name",
        "subject",
        "send_at",
        "target_segment",
        "holdout_pct",
        "cost",
        "cost_currency",
    ]
    assert 20 <= len(camps) <= 30
    pct = [float(c["holdout_pct"]) for c in camps]
    assert sum(p == 0 for p in pct) >= 2 and sum(5 <= p <= 50 for p in pct) >= len(camps) - 2
    assert sum(p >= 30 for p in pct) >= 3  # larger control groups (campaign decisions' known truth)
    assert {c["cost_currency"] for c in camps} <= {"USD", "EUR"} and all(float(c["cost"]) > 0 for c in camps)
    for c in camps:
        datetime.fromisoformat(c["send_at"].replace("Z", "+00:00"))
        aud = read_csv(out / "esp/audiences" / f"{c['campaign_id']}.csv")
        assert list(aud[0]) == ["email", "group"]
        groups = Counter(a["group"] for a in aud)
        assert set(groups) <= {"treatment", "control"}
        assert len({a["email"] for a in aud}) == len(aud)
        share = groups["control"] / len(aud)
        assert abs(share - float(c["holdout_pct"]) / 100) < 0.01 + 1 / len(aud)


def all_event_lines(out: Path) -> list[tuple[str, int, str]]:
    rows = []
    for f in sorted((out / "esp/events").rglob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh.read().splitlines(), 1):
                rows.append((str(f.relative_to(out / "esp/events")), i, line))
    return rows


EVENT_FIELDS = {
    "processed": set(),
    "dropped": {"reason"},
    "delivered": set(),
    "deferred": set(),
    "bounce": {"type", "reason"},
    "open": {"useragent", "ip", "sg_machine_open"},
    "click": {"url", "useragent", "ip"},
    "spamreport": set(),
    "unsubscribe": set(),
    "group_unsubscribe": {"asm_group_id"},
}


def test_events_fields_and_dirt(out: Path) -> None:
    lines = all_event_lines(out)
    good, bad = [], []
    for f, i, line in lines:
        assert re.match(r"^dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/part-\d{4}(-late)?\.jsonl\.gz$", f)
        try:
            good.append((f, json.loads(line)))
        except json.JSONDecodeError:
            bad.append((f, i, line))
    assert 3 <= len(bad) <= max(3, 0.003 * len(lines))
    by_type = Counter(e["event"] for _, e in good)
    assert set(EVENT_FIELDS) <= set(by_type)
    for _, e in good:
        assert {"email", "timestamp", "event", "sg_event_id", "sg_message_id", "campaign_id"} <= set(e)
        assert EVENT_FIELDS.get(e["event"], set()) <= set(e)
        assert isinstance(e["timestamp"], int)
        if e["event"] == "bounce":
            assert e["type"] in {"bounce", "blocked"}
        if e["event"] != "open":
            assert "sg_machine_open" not in e
    assert {e["type"] for _, e in good if e["event"] == "bounce"} == {"bounce", "blocked"}
    opens = [e for _, e in good if e["event"] == "open"]
    machine = sum(e["sg_machine_open"] for e in opens) / len(opens)
    assert 0.2 <= machine <= 0.5
    # webhook retries: the same sg_event_id in two different files, about 1%
    files_of: dict[str, set[str]] = {}
    for f, e in good:
        files_of.setdefault(e["sg_event_id"], set()).add(f)
    retried = sum(len(v) > 1 for v in files_of.values())
    assert 0.004 <= retried / len(files_of) <= 0.02
    # late files sort after the partition's other files
    late = [f for f, _, _ in lines if f.endswith("-late.jsonl.gz")]
    assert late
    for f in set(late):
        part = sorted(p.name for p in (out / "esp/events" / f).parent.iterdir())
        assert part[-1] == Path(f).name and len(part) >= 2
    # the same person with another letter case across files (events vs audiences)
    aud = {a["email"] for c in campaigns(out) for a in read_csv(out / "esp/audiences" / f"{c['campaign_id']}.csv")}
    ev_emails = {e["email"] for _, e in good}
    assert ev_emails - aud and {e.lower() for e in ev_emails} <= {a.strip().lower() for a in aud}


def test_control_members_get_no_events(out: Path) -> None:
    events = [
        json.loads(line) for _, _, line in all_event_lines(out) if line.startswith('{"email"') and line.endswith("}")
    ]
    by_campaign: dict[str, set[str]] = {}
    for e in events:
        by_campaign.setdefault(e["campaign_id"], set()).add(e["email"].strip().lower())
    checked = 0
    for c in campaigns(out):
        aud = read_csv(out / "esp/audiences" / f"{c['campaign_id']}.csv")
        control = {a["email"].strip().lower() for a in aud if a["group"] == "control"}
        treatment = {a["email"].strip().lower() for a in aud if a["group"] == "treatment"}
        got = by_campaign.get(c["campaign_id"], set())
        assert not (got & control)
        assert got <= treatment and len(got) > 0.9 * len(treatment)
        checked += len(control)
    assert checked > 100
