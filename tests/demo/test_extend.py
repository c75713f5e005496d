"""The demo's continuation (demo/extend.py): later days added to a generated demo without redrawing it.

Expected values come from the base demo's own files (what existed before must not change), from the
source contracts (sources.md) and from the order and ticket life cycles the generator documents; the
continued sources are also extracted with the real extractors.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from rapport.core.config import Settings
from rapport.demo import extend as extend_mod
from rapport.demo.contact_points import normalize_email
from rapport.demo.extend import extend, sources_end
from rapport.demo.generate import generate
from rapport.demo.helpdesk_server import load_helpdesk_data, serve_helpdesk

E1 = date(2026, 11, 1)
DAYS = 3
E2 = E1 + timedelta(days=DAYS)
TABLES = ("customers", "orders", "order_items", "fx_rates")
NEXT = {
    "pending": {"paid", "cancelled"},
    "paid": {"fulfilled"},
    "fulfilled": {"refunded", "partially_refunded"},
}  # the base's life cycle (orders.py)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "demo"
    generate(out, people=1200, seed=3, end=E1, months=8)
    return out


@pytest.fixture(scope="module")
def days(base: Path, tmp_path_factory) -> list[Path]:
    """The base continued one day at a time: days[k] is a copy of the sources ending on E1 + k."""
    root = tmp_path_factory.mktemp("days")
    out = [root / "d0"]
    shutil.copytree(base, out[0])
    for k in range(1, DAYS + 1):
        work = root / f"d{k}"
        shutil.copytree(out[-1], work)
        extend(work, E1 + timedelta(days=k))
        out.append(work)
    return out


def _table(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(f"select * from {table} order by 1, 2").fetchall()


def _content(root: Path) -> dict[str, object]:
    """Every file's content: tables for SQLite and Parquet, decompressed text for gzip, text otherwise."""
    out: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if path.suffix == ".db":
            out[rel] = {t: _table(path, t) for t in TABLES}
        elif path.suffix == ".parquet":
            out[rel] = pd.read_parquet(path).to_dict("list")
        elif path.suffix == ".gz":
            out[rel] = gzip.decompress(path.read_bytes()).decode()
        else:
            out[rel] = path.read_text(encoding="utf-8")
    return out


def test_one_call_or_day_by_day_give_the_same_sources(base: Path, days: list[Path], tmp_path: Path) -> None:
    once = tmp_path / "once"
    shutil.copytree(base, once)
    summary = extend(once, E2)
    assert summary.days == DAYS and summary.added["orders"] > 0
    a, b = _content(once), _content(days[-1])
    assert a.keys() == b.keys()
    for rel in a:
        assert a[rel] == b[rel], rel
    assert sources_end(once) == E2


def test_a_day_interrupted_before_it_was_recorded_is_done_again_the_same(
    base: Path, days: list[Path], tmp_path: Path, monkeypatch
) -> None:
    work = tmp_path / "crash"
    shutil.copytree(days[1], work)
    real = extend_mod._write_state
    calls = []

    def crash_once(out_dir, state):
        calls.append(state["continued_to"])
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed after writing the day's files, before recording it
        real(out_dir, state)

    monkeypatch.setattr(extend_mod, "_write_state", crash_once)
    with pytest.raises(KeyboardInterrupt):
        extend(work, E1 + timedelta(days=2))
    assert sources_end(work) == E1 + timedelta(days=1)
    monkeypatch.setattr(extend_mod, "_write_state", real)
    extend(work, E1 + timedelta(days=2))
    assert _content(work) == _content(days[2])


def test_money_adds_up_on_new_orders(base: Path, days: list[Path]) -> None:
    with sqlite3.connect(base / "shop.db") as b:
        first_new = b.execute("select max(id) from orders").fetchone()[0] + 1
    with sqlite3.connect(days[-1] / "shop.db") as con:
        orders = pd.read_sql_query("select * from orders where id >= ?", con, params=(first_new,))
        items = pd.read_sql_query(
            "select order_id, sum(quantity * unit_price) as s, count(*) as n "
            "from order_items where order_id >= ? group by order_id",
            con,
            params=(first_new,),
        )
    assert len(orders) >= 20
    parts = orders["subtotal"] - orders["discount_total"] + orders["shipping_total"] + orders["tax_total"]
    assert np.allclose(orders["total"], parts, atol=0.005)
    m = orders.merge(items, left_on="id", right_on="order_id", how="left")
    assert m["n"].notna().all() and np.allclose(m["subtotal"], m["s"], atol=0.005)
    assert (orders[["subtotal", "discount_total", "shipping_total", "tax_total", "total"]] >= 0).all().all()
    refunded = orders["status"] == "refunded"
    part = orders["status"] == "partially_refunded"
    assert np.allclose(orders.loc[refunded, "refunded_total"], orders.loc[refunded, "total"])
    back = orders.loc[part, "refunded_total"]
    assert ((back > 0) & (back < orders.loc[part, "total"])).all()
    assert (orders.loc[~refunded & ~part, "refunded_total"] == 0).all()
    assert orders.loc[orders["status"] == "cancelled", "cancelled_at"].notna().all()
    guests = orders[orders["customer_id"].isna()]
    assert len(guests) and guests["email"].notna().all()


def test_existing_records_keep_their_ids_and_created_at(base: Path, days: list[Path]) -> None:
    """Ids are never reused; a record that existed only moves on (status, updated_at), never changes birth."""
    for table in ("customers", "orders", "order_items"):
        before = {r[0]: r for r in _table(base / "shop.db", table)}
        after = {r[0]: r for r in _table(days[-1] / "shop.db", table)}
        assert before.keys() <= after.keys(), table
        new = after.keys() - before.keys()
        assert new and min(new) > max(before), table
        cols = [c[1] for c in sqlite3.connect(base / "shop.db").execute(f"pragma table_info({table})")]
        fixed = [i for i, c in enumerate(cols) if c not in ("status", "updated_at", "cancelled_at", "refunded_total")]
        changed = [k for k in before if [before[k][i] for i in fixed] != [after[k][i] for i in fixed]]
        assert changed == [], (table, changed[:3])
    assert _table(base / "shop.db", "fx_rates") == [
        r for r in _table(days[-1] / "shop.db", "fx_rates") if r[0] < E1.isoformat()
    ]
    with sqlite3.connect(days[-1] / "shop.db") as con:
        per_day = con.execute(
            "select rate_date, count(*) from fx_rates where rate_date >= ? group by 1", (E1.isoformat(),)
        ).fetchall()
    assert [d for d, _ in per_day] == [(E1 + timedelta(days=k)).isoformat() for k in range(DAYS)]
    assert all(3 <= n <= 5 for _, n in per_day)

    base_tickets = {t["id"]: t["created_at"] for t in load_helpdesk_data(base / "helpdesk").tickets}
    after_tickets = load_helpdesk_data(days[-1] / "helpdesk").tickets
    assert all(base_tickets.get(t["id"], t["created_at"]) == t["created_at"] for t in after_tickets)
    new_ids = {t["id"] for t in after_tickets} - base_tickets.keys()
    assert new_ids and min(new_ids) > max(base_tickets)

    snap = lambda d, day: pd.read_csv(d / "esp" / "contacts" / f"contacts_{day:%Y%m%d}.csv", dtype=str)  # noqa: E731
    b, a = snap(base, E1), snap(days[-1], E2)
    assert a["contact_id"].is_unique and set(b["contact_id"]) < set(a["contact_id"])
    m = b.merge(a, on="contact_id", suffixes=("_b", "_a"))
    assert (m["created_at_b"] == m["created_at_a"]).all() and (m["email_b"] == m["email_a"]).all()
    assert (m["updated_at_a"] >= m["updated_at_b"]).all()


def test_orders_move_forward_day_by_day(days: list[Path]) -> None:
    """Each day's orders table against the day before: status changes follow the life cycle, on that day."""
    changed_base = 0
    for k in range(1, DAYS + 1):
        prev = {r[0]: r for r in _table(days[k - 1] / "shop.db", "orders")}
        cur = {r[0]: r for r in _table(days[k] / "shop.db", "orders")}
        day = (E1 + timedelta(days=k - 1)).isoformat()
        for oid, row in cur.items():
            status, updated = row[4], row[17]
            if oid not in prev:
                assert row[16][:10] == day and updated[:10] == day
                continue
            if status != prev[oid][4]:
                assert status in NEXT.get(prev[oid][4], set()) | _skips(prev[oid][4]), (oid, prev[oid][4], status)
                assert updated[:10] == day and updated > prev[oid][17].replace(" ", "T")[:19], oid
                changed_base += k == 1
            elif updated != prev[oid][17]:
                pytest.fail(f"order {oid} changed updated_at without a status change")
    assert changed_base > 0  # the base's orders still in flight at E1 settle too


def _skips(status: str) -> set[str]:
    # two steps can fall on the same day (paid then fulfilled within a day after a late payment, ...)
    reach: set[str] = set()
    todo = [status]
    while todo:
        for n in NEXT.get(todo.pop(), set()):
            if n not in reach:
                reach.add(n)
                todo.append(n)
    return reach


def test_every_new_record_is_in_the_ground_truth(base: Path, days: list[Path]) -> None:
    truth = pd.read_parquet(days[-1] / "ground_truth/identities.parquet")
    base_truth = pd.read_parquet(base / "ground_truth/identities.parquet")
    assert truth.iloc[: len(base_truth)].equals(base_truth)
    assert not truth.duplicated(["source", "source_id"]).any()
    ids = {s: set(g["source_id"]) for s, g in truth.groupby("source")}
    with sqlite3.connect(days[-1] / "shop.db") as con:
        customers = {str(r[0]) for r in con.execute("select id from customers")}
        guests = pd.read_sql_query("select id, email, phone from orders where customer_id is null", con)
    assert customers == ids["orders.customer"]
    assert set(guests["id"].astype(str)) == ids["orders.guest_order"]
    contacts = pd.read_csv(days[-1] / "esp/contacts" / f"contacts_{E2:%Y%m%d}.csv", dtype=str)
    assert set(contacts["contact_id"]) == ids["esp.contact"]

    # a new guest order repeats an earlier guest checkout of the same person: same address and phone
    person = truth[truth["source"] == "orders.guest_order"].set_index("source_id")["person_id"]
    guests["person"] = guests["id"].astype(str).map(person)
    old = guests[guests["id"].astype(str).isin(base_truth["source_id"])]
    new = guests[~guests["id"].astype(str).isin(base_truth["source_id"])]
    assert len(new)
    seen = set(zip(old["email"], old["phone"].fillna(""), old["person"], strict=True))
    assert all(x in seen for x in zip(new["email"], new["phone"].fillna(""), new["person"], strict=True))

    # new people are new persons, with addresses nobody had before
    new_people = set(truth["person_id"].iloc[len(base_truth) :]) - set(base_truth["person_id"])
    assert new_people
    old_keys = {
        normalize_email(e)
        for e in pd.read_csv(base / "esp/contacts" / f"contacts_{E1:%Y%m%d}.csv", dtype=str)["email"].dropna()
    }
    fresh = contacts[~contacts["contact_id"].isin(base_truth["source_id"])]
    assert fresh["email"].map(normalize_email).notna().all()
    assert not set(fresh["email"].map(normalize_email)) & old_keys


def test_helpdesk_versions_move_forward(base: Path, days: list[Path]) -> None:
    items = load_helpdesk_data(days[-1] / "helpdesk").tickets  # every gzip member, as the server reads them
    users = {u["id"] for u in load_helpdesk_data(days[-1] / "helpdesk").users if u["role"] == "end-user"}
    n_base = len(load_helpdesk_data(base / "helpdesk").tickets)
    added = items[n_base:]
    assert added and all(t["updated_at"] >= E1.isoformat() for t in added)
    assert all(t["updated_at"] < E2.isoformat() for t in added)
    by_id: dict[int, list[dict]] = {}
    for t in items:
        by_id.setdefault(t["id"], []).append(t)
    for versions in by_id.values():
        stamps = [v["updated_at"] for v in versions]
        assert stamps == sorted(stamps) and len({v["created_at"] for v in versions}) == 1
        assert versions[-1]["status"] != "deleted" or len(versions) <= 2
    assert {t["requester_id"] for t in added} <= users
    assert all("brand_id" in t and "custom_fields" in t for t in added)  # the drift fields, as in the base
    solved = [t for t in added if t["status"] == "solved"]
    assert all(t["metric_set"]["solved_at"] is not None for t in solved)


def test_late_engagement_lands_in_new_partitions(base: Path, days: list[Path]) -> None:
    messages = pd.read_parquet(days[-1] / "continuation/messages.parquet")
    files = sorted((days[-1] / "esp/events").glob("dt=*/hour=*/part-0100*.jsonl.gz"))
    assert files and not set(files) & set((base / "esp/events").glob("dt=*/hour=*/*"))
    lines = [json.loads(x) for f in files for x in gzip.decompress(f.read_bytes()).decode().splitlines()]
    assert {e["event"] for e in lines} <= {"open", "click", "unsubscribe"} and "open" in {e["event"] for e in lines}
    assert len({e["sg_event_id"] for e in lines}) == len(lines)
    sent = dict(zip(messages["sg_message_id"], messages["email"], strict=True))
    assert all(sent[e["sg_message_id"]] == e["email"] for e in lines)
    t_lo = datetime.fromisoformat(E1.isoformat() + "T00:00:00+00:00").timestamp()
    t_hi = datetime.fromisoformat(E2.isoformat() + "T00:00:00+00:00").timestamp()
    assert all(t_lo <= e["timestamp"] < t_hi for e in lines)


@pytest.mark.slow  # ~10 s: three extractors twice, a helpdesk server
def test_continued_sources_extract_cleanly_on_top_of_the_base(base: Path, days: list[Path], tmp_path: Path) -> None:
    """The real extractors, first on the base, then on the continued sources (the same files, grown), into
    one scratch warehouse: nothing quarantined, and no record's created_at differs between its versions."""
    from rapport.extractors.esp import extract_esp
    from rapport.extractors.helpdesk import extract_helpdesk
    from rapport.extractors.orders import extract_orders

    demo = tmp_path / "demo"
    shutil.copytree(base, demo)
    settings = Settings(
        warehouse_dir=tmp_path / "wh",
        orders_db_url=f"sqlite:///{demo / 'shop.db'}",
        helpdesk_url=None,
        helpdesk_token="t-extend",
        esp_root=demo / "esp",
        as_of=None,
    )
    con = duckdb.connect(str(tmp_path / "scratch.duckdb"), config=settings.duckdb_config())
    try:
        for run, end in (("r1", E1), ("r2", E2)):
            if end == E2:
                shutil.rmtree(demo)
                shutil.copytree(days[-1], demo)
            at = datetime.fromisoformat(end.isoformat())
            extract_orders(con, settings, run_id=run, interval_end=at)
            with serve_helpdesk(demo / "helpdesk", token="t-extend") as srv:
                extract_helpdesk(con, settings, run_id=run, interval_end=at, base_url=srv.base_url)
            extract_esp(con, settings, run_id=run, interval_end=at)
        for table in ("shop_orders", "shop_customers", "helpdesk_tickets", "esp_events", "esp_contacts"):
            assert con.execute(f"select count(*) from raw.{table} where _run_id = 'r2'").fetchone()[0] > 0, table
        rejects = {
            t: con.execute(f"select count(*) from quarantine.{t}_rejects where run_id = 'r2'").fetchone()[0]
            for t in (
                "shop_orders",
                "shop_customers",
                "shop_order_items",
                "helpdesk_tickets",
                "esp_contacts",
                "esp_events",
            )
        }
        assert rejects == dict.fromkeys(rejects, 0)
        for table, key in (
            ("shop_orders", "id"),
            ("shop_customers", "id"),
            ("helpdesk_tickets", "id"),
            ("esp_contacts", "contact_id"),
        ):
            variants = con.execute(
                f"select max(n) from (select count(distinct created_at) as n from raw.{table} group by {key})"
            ).fetchone()[0]
            assert variants == 1, table
    finally:
        con.close()
