"""Right to erasure end to end: `rapport forget` on a demo warehouse, then later runs, as processes.

A person with records in all three sources is chosen from the demo's ground truth; their emails, phones,
names and ids are read from the sources themselves (not from anything rapport wrote). After `forget`, and
after two more runs (sources unchanged; then the person's records changed at the sources so the
incremental extracts land them again), no table of any DuckDB file, no Parquet file and no other file under
the warehouse directory may hold any of them, while everybody else's rows are unchanged: for every raw and
quarantine table, rows before minus the person's rows (counted here from the ground-truth ids) equal rows
after, and every other customer keeps their customer_id and figures.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import phonenumbers
import pytest
import yaml
from shared_demo import clean_env, shared_demo

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RAPPORT = [sys.executable, "-m", "rapport.cli"]
LATER_END = "2026-11-02T00:00:00"
PLUS_DOMAINS = set(
    yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]["plus_address_domains"]
)


def _run(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(RAPPORT + args, env=env, capture_output=True, text=True, timeout=timeout)


def norm_email(raw: str | None) -> str | None:
    """The contract's normalised email (marts.md), written again here so the test does not trust the code."""
    if raw is None:
        return None
    e = raw.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", e):
        return None
    local, domain = e.split("@")
    if domain in PLUS_DOMAINS:
        local = local.split("+")[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def phone_forms(raw: str | None, country: str | None) -> set[str]:
    """The number as typed, and its E.164 form and national digits when it parses."""
    if not raw or not raw.strip():
        return set()
    forms = {raw.strip()}
    try:
        n = phonenumbers.parse(raw, country)
        forms |= {
            phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.national_significant_number(n),
        }
    except phonenumbers.NumberParseException:
        pass
    return {f for f in forms if len(re.sub(r"\D", "", f)) >= 7}


@dataclass
class Person:
    person_id: int
    shop_ids: set[int] = field(default_factory=set)
    order_ids: set[int] = field(default_factory=set)  # guest orders and the shop customer's orders
    user_ids: set[int] = field(default_factory=set)
    contact_ids: set[str] = field(default_factory=set)
    audience_ids: set[str] = field(default_factory=set)  # campaign_id:email
    emails: set[str] = field(default_factory=set)  # as typed, lower-cased
    phones: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    customer_ids: set[str] = field(default_factory=set)  # stitched ids, read from the marts before forget

    @property
    def normalised(self) -> set[str]:
        return {n for e in self.emails if (n := norm_email(e))}

    def text_needles(self) -> set[str]:
        ids = {str(u) for u in self.user_ids} | self.contact_ids | self.customer_ids
        return {x.lower() for x in self.emails | self.normalised | self.phones | self.names | ids}


def _jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_jsonl_gz(path: Path, items: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item) + "\n")


def _people(demo: Path) -> dict[int, Person]:
    """Every person's records and contact points, read from the sources by the ground truth's ids."""
    con = duckdb.connect()
    truth = con.execute(f"select source, source_id, person_id from '{demo}/ground_truth/identities.parquet'").fetchall()
    people: dict[int, Person] = {}
    for source, sid, pid in truth:
        p = people.setdefault(pid, Person(pid))
        if source == "orders.customer":
            p.shop_ids.add(int(sid))
        elif source == "orders.guest_order":
            p.order_ids.add(int(sid))
        elif source == "helpdesk.user":
            p.user_ids.add(int(sid))
        elif source == "esp.contact":
            p.contact_ids.add(sid)
        else:
            p.audience_ids.add(sid)
            p.emails.add(sid.split(":", 1)[1].strip().lower())
    by_shop = {i: p for p in people.values() for i in p.shop_ids}
    by_order = {i: p for p in people.values() for i in p.order_ids}
    by_user = {i: p for p in people.values() for i in p.user_ids}
    by_contact = {i: p for p in people.values() for i in p.contact_ids}
    shop = sqlite3.connect(demo / "shop.db")
    for cid, email, first, last, phone, country in shop.execute(
        "select id, email, first_name, last_name, phone, country from customers"
    ):
        p = by_shop[cid]
        p.emails |= {email.strip().lower()} if email else set()
        p.phones |= phone_forms(phone, country)
        p.names |= {f"{first or ''} {last or ''}".strip()} - {""}
    for oid, cust, email, phone in shop.execute("select id, customer_id, email, phone from orders"):
        p = by_shop.get(cust) if cust is not None else by_order.get(oid)
        if p is None:
            continue
        p.order_ids.add(oid)
        if cust is None:  # a customer's checkout contacts are not their identifiers, but still theirs
            p.emails |= {email.strip().lower()} if email else set()
        p.phones |= phone_forms(phone, None)
    for u in _jsonl_gz(demo / "helpdesk" / "users.jsonl.gz"):
        if (p := by_user.get(u["id"])) is not None:
            p.emails |= {u["email"].strip().lower()} if u.get("email") else set()
            p.phones |= phone_forms(u.get("phone"), None)
            p.names |= {u["name"].strip()} if (u.get("name") or "").strip() else set()
    contacts = con.execute(
        f"select contact_id, email, first_name, last_name from read_csv('{demo}/esp/contacts/*.csv', all_varchar=true)"
    ).fetchall()
    for cid, email, first, last in contacts:
        if (p := by_contact.get(cid)) is not None:
            p.emails |= {email.strip().lower()} if email else set()
            p.names |= {f"{first or ''} {last or ''}".strip()} - {""}
    return people


def _choose(people: dict[int, Person]) -> Person:
    """A person in all three sources whose emails, phones and names no one else shares (so a hit is theirs)."""
    for p in sorted(people.values(), key=lambda p: -len(p.order_ids) - len(p.audience_ids)):
        if not (p.shop_ids and p.user_ids and p.contact_ids and p.audience_ids and p.phones):
            continue
        mine = {x.lower() for x in p.normalised | p.emails | p.names} | {re.sub(r"\D", "", x) for x in p.phones}
        others = set()
        for q in people.values():
            if q is not p:
                others |= {x.lower() for x in q.normalised | q.emails | q.names}
                others |= {re.sub(r"\D", "", x) for x in q.phones}
        if not any(m in o or o in m for m in mine for o in others if len(o) > 3):
            return p
    raise AssertionError("no person in the demo fits")


# ---- scanning ---------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation_hits(con: duckdb.DuckDBPyConnection, rel: str, cols: list[tuple[str, str]], p: Person) -> int:
    """Rows of `rel` holding any needle of p as text, or any of p's numeric ids in an id column."""
    needles = "|".join(re.escape(n) for n in sorted(p.text_needles(), key=len, reverse=True))
    text = "lower(concat_ws(chr(31), " + ", ".join(f"cast({_q(c)} as varchar)" for c, _ in cols) + "))"
    tests = [f"regexp_matches({text}, ?)"]
    names = {c for c, _ in cols}
    for c, dtype in cols:
        integer = dtype.upper() in ("BIGINT", "INTEGER", "HUGEINT")
        if c in ("customer_id", "shop_customer_id") and integer and p.shop_ids:
            tests.append(f"{_q(c)} in ({', '.join(map(str, p.shop_ids))})")
        if c == "order_id" and integer:
            tests.append(f"{_q(c)} in ({', '.join(map(str, p.order_ids))})")
    if rel.endswith(("shop_customers", "shop_customers_rejects")) and "id" in names:
        tests.append(f"id in ({', '.join(map(str, p.shop_ids))})")
    if rel.endswith("shop_orders") and "id" in names:
        tests.append(f"id in ({', '.join(map(str, p.order_ids))})")
    if "source" in names and "source_id" in names:
        records = [f"orders.customer:{i}" for i in p.shop_ids] + [f"orders.guest_order:{i}" for i in p.order_ids]
        tests.append("source || ':' || source_id in (" + ", ".join(f"'{r}'" for r in records) + ")")
    return con.execute(f"select count(*) from {rel} where {' or '.join(tests)}", [needles]).fetchall()[0][0]


def scan(wh: Path, p: Person) -> list[str]:
    """Every place under the warehouse directory (the source systems in demo/ aside) holding a trace of p."""
    found: list[str] = []
    files = [f for f in sorted(wh.rglob("*")) if f.is_file() and "demo" not in f.relative_to(wh).parts]
    for f in files:
        if f.suffix == ".duckdb":
            con = duckdb.connect(str(f), read_only=True)
            try:
                for schema, table in con.execute(
                    "select table_schema, table_name from information_schema.tables "
                    "where table_catalog = current_database()"
                ).fetchall():
                    cols = con.execute(
                        "select column_name, data_type from information_schema.columns where "
                        "table_catalog = current_database() and table_schema = ? and table_name = ?",
                        [schema, table],
                    ).fetchall()
                    if n := _relation_hits(con, f"{_q(schema)}.{_q(table)}", cols, p):
                        found.append(f"{f.relative_to(wh)}: {schema}.{table}: {n} rows")
            finally:
                con.close()
        elif f.suffix == ".parquet":
            con = duckdb.connect()
            cols = con.execute(f"describe select * from read_parquet('{f}')").fetchall()
            if n := _relation_hits(con, f"read_parquet('{f}')", [(c[0], c[1]) for c in cols], p):
                found.append(f"{f.relative_to(wh)}: {n} rows")
        data = f.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        lowered = data.lower()
        # every file, binary ones included, for emails and phones; text files for names and ids as well
        needles = {e.lower() for e in p.emails | p.normalised} | {x.lower() for x in p.phones}
        if f.suffix not in (".duckdb", ".db", ".parquet", ".pdf", ".png", ".msgpack", ".gpickle"):
            needles = p.text_needles()
        hits = sorted(n for n in needles if n.encode() in lowered)
        if hits:
            found.append(f"{f.relative_to(wh)}: bytes {hits}")
    return found


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def _in(values) -> str:
    vals = sorted(values)
    return "(" + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in vals) + ")" if vals else "(null)"


def person_rows(wh: Path, p: Person) -> dict[str, int]:
    """The person's rows per raw and quarantine table, counted from the ground-truth ids and the contract's
    normalisation (not by rapport's matching)."""
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    con.create_function("norm_email", norm_email, ["VARCHAR"], "VARCHAR", null_handling="special")
    emails = _in(p.normalised)
    try:
        rows = {
            "raw.shop_customers": f"id in {_in(p.shop_ids)}",
            "raw.shop_orders": f"id in {_in(p.order_ids)}",
            "raw.shop_order_items": f"order_id in {_in(p.order_ids)}",
            "raw.helpdesk_users": f"id in {_in(p.user_ids)}",
            "raw.helpdesk_tickets": f"requester_id in {_in(p.user_ids)}",
            "raw.esp_contacts": f"contact_id in {_in(p.contact_ids)}",
            "raw.esp_audiences": f"norm_email(email) in {emails}",
            "raw.esp_events": f"norm_email(email) in {emails}",
        }
        out = {t: _count(con, f"select count(*) from {t} where {w}") for t, w in rows.items()}
        for (q,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'quarantine'"
        ).fetchall():
            tokens = "regexp_extract_all(raw, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+')"
            normalised = f"list_transform({tokens}, lambda x: norm_email(x))"
            out[f"quarantine.{q}"] = _count(
                con, f"select count(*) from quarantine.{q} where list_has_any({normalised}, [{emails[1:-1]}])"
            )
        return out
    finally:
        con.close()


def totals(wh: Path) -> dict[str, int]:
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('raw', 'quarantine')"
        ).fetchall()
        return {t: _count(con, f"select count(*) from {t}") for (t,) in tables}
    finally:
        con.close()


def customers(wh: Path) -> dict[str, tuple]:
    con = duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True)
    try:
        return {
            r[0]: r[1:]
            for r in con.execute(
                "select customer_id, primary_email, full_name, order_count, ticket_count, email_status "
                "from marts.customers"
            ).fetchall()
        }
    finally:
        con.close()


# ---- the scenario -----------------------------------------------------------------------------------------


def _leave_spark_copies(wh: Path) -> list[Path]:
    """What a RAPPORT_ENGINE=spark build leaves under {warehouse}/spark (rapport.transform.spark_exchange):
    Spark's managed Parquet tables of raw and of the models, the exchange Parquet and its state file. Written
    here from the DuckDB build's tables (the Spark path itself is tested in tests/spark/)."""
    spark = wh / "spark"
    tables = spark / "warehouse"
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    written = []
    try:
        for table, path in (
            ("raw.shop_customers", spark / "exchange" / "raw" / "shop_customers.parquet"),
            ("raw.shop_customers", tables / "raw.db" / "shop_customers" / "part-0.parquet"),
            ("marts.customers", tables / "marts.db" / "customers" / "part-0.parquet"),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"copy (select * from {table}) to '{path}' (format parquet)")
            written.append(path)
    finally:
        con.close()
    (spark / "state.json").write_text("{}")
    return written


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    # A copy of the session's shared demo (tests/shared_demo.py): `rapport demo` for 120 people ending 2026-10-31,
    # one run whose interval ends 2026-11-01, as a process; the same as `generate` then `run`. The claims are
    # about one person's records and everybody else's rows, so the demo's size does not matter as long as it
    # holds a person in all three sources (`_choose` fails the test if none fits).
    wh = shared_demo(tmp_path_factory).copy_to(tmp_path_factory.mktemp("forget") / "warehouse")
    env = clean_env(wh)
    person = _choose(_people(wh / "demo"))
    before_customers = customers(wh)
    pub = duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True)
    person.customer_ids = {
        r[0]
        for r in pub.execute(
            f"select distinct customer_id from marts.customer_identities where source = 'orders.customer' "
            f"and source_id in {_in({str(i) for i in person.shop_ids})}"
        ).fetchall()
    }
    pub.close()
    assert len(person.customer_ids) == 1
    spark_copies = _leave_spark_copies(wh)
    hits = scan(wh, person)
    assert any("spark/" not in hit for hit in hits), "the scan finds nothing even before forget: it would prove nothing"
    assert any("spark/" in hit for hit in hits), "the Spark copies hold nothing of the person"
    state = {
        "wh": wh,
        "env": env,
        "person": person,
        "before": totals(wh),
        "mine": person_rows(wh, person),
        "customers": before_customers,
        "spark_copies": spark_copies,
    }
    # one of the person's addresses, typed differently from every source
    address = sorted(person.emails)[0].upper()
    out = _run(["forget", "--email", address], env)
    state["forget"] = out
    state["address"] = address
    return state


def test_forget_prints_rows_removed_and_records_only_a_hash(scenario):
    out, wh, person = scenario["forget"], scenario["wh"], scenario["person"]
    assert out.returncode == 0, out.stdout + out.stderr
    assert "raw.shop_customers" in out.stdout and "marts.customers" in out.stdout
    assert "republished" in out.stdout
    # identity labels hold record keys (hashes), matched by no column rule: dropped, and labelled in full again
    assert re.search(r"intermediate\.int_identity_edges_filtered__before +dropped \(rebuilt in full\)", out.stdout)
    assert re.search(r"intermediate\.int_identity_labels +dropped \(rebuilt in full\)", out.stdout)
    # dropped, not also emptied row by row first: each table is named once
    assert len(re.findall(r"intermediate\.int_identity_edges_filtered__before ", out.stdout)) == 1
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    rows = con.execute("select email_hash, status, rows_removed from ops.erasures").fetchall()
    assert len(rows) == 1
    email_hash, status, removed = rows[0]
    assert status == "erased" and re.fullmatch(r"[0-9a-f]{64}", email_hash)
    assert json.loads(removed)["raw.shop_customers"] == scenario["mine"]["raw.shop_customers"]
    kinds = dict(con.execute("select kind, count(*) from ops.erasure_identifiers group by kind").fetchall())
    assert kinds["shop_customer"] == len(person.shop_ids) and kinds["helpdesk_user"] == len(person.user_ids)


def test_no_trace_after_forget(scenario):
    assert scan(scenario["wh"], scenario["person"]) == []


def test_spark_copies_are_deleted_and_said_so(scenario):
    assert not any(p.exists() for p in scenario["spark_copies"])
    assert not (scenario["wh"] / "spark").exists()
    assert "deleted Spark's copies of the warehouse (4 files" in scenario["forget"].stdout + scenario["forget"].stderr


def _assert_others_unchanged(scenario) -> None:
    wh, before, mine = scenario["wh"], scenario["before"], scenario["mine"]
    after = totals(wh)
    assert {t: before[t] - mine.get(t, 0) for t in before} == after
    assert sum(mine.values()) > 0
    others = {c: v for c, v in scenario["customers"].items() if c not in scenario["person"].customer_ids}
    now = customers(wh)
    assert set(now) == set(others)  # everybody else keeps their customer_id, nobody new appears
    assert {c: now[c][:4] for c in others} == {c: v[:4] for c, v in others.items()}


def test_everybody_else_is_unchanged_after_forget(scenario):
    _assert_others_unchanged(scenario)


def test_changed_source_records_of_the_person_stay_out(scenario):
    wh, p = scenario["wh"], scenario["person"]
    demo = wh / "demo"
    shop = sqlite3.connect(demo / "shop.db")
    shop.execute(
        f"update customers set accepts_marketing = 1 - accepts_marketing, "
        f"updated_at = '2026-11-01T08:00:00Z' where id in {_in(p.shop_ids)}"
    )
    local, domain = sorted(p.normalised)[0].split("@")
    shop.execute(  # a new guest order under a plus-tagged, upper-case spelling of their address
        "insert into orders (id, customer_id, email, status, currency, subtotal, discount_total, shipping_total, "
        "tax_total, total, refunded_total, created_at, updated_at) values (?, null, ?, 'paid', 'USD', 10, 0, 0, 0, "
        "10, 0, '2026-11-01T09:00:00Z', '2026-11-01T09:00:00Z')",
        [99990001, f"{local.upper()}+new@{domain}" if domain in PLUS_DOMAINS else f"{local.upper()}@{domain}"],
    )
    shop.commit()
    shop.close()
    users = _jsonl_gz(demo / "helpdesk" / "users.jsonl.gz")
    mine = [u for u in users if u["id"] in p.user_ids]
    users.append({**mine[-1], "updated_at": "2026-11-01T08:30:00Z"})
    _write_jsonl_gz(demo / "helpdesk" / "users.jsonl.gz", users)
    tickets = _jsonl_gz(demo / "helpdesk" / "tickets.jsonl.gz")
    template = next(t for t in tickets if t["requester_id"] in p.user_ids)
    tickets.append(
        {
            **template,
            "id": 99990002,
            "status": "new",
            "created_at": "2026-11-01T08:40:00Z",
            "updated_at": "2026-11-01T08:40:00Z",
        }
    )
    _write_jsonl_gz(demo / "helpdesk" / "tickets.jsonl.gz", tickets)
    esp = demo / "esp"
    latest = sorted((esp / "contacts").glob("contacts_*.csv"))[-1]
    text = latest.read_text(encoding="utf-8").splitlines()
    changed = [
        re.sub(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ$", "2026-11-01T07:00:00Z", line)
        if line.split(",")[0] in p.contact_ids
        else line
        for line in text
    ]
    assert changed != text
    (esp / "contacts" / "contacts_20261101.csv").write_text("\n".join(changed) + "\n", encoding="utf-8")
    events = esp / "events" / "dt=2026-11-01" / "hour=06"
    events.mkdir(parents=True)
    campaign = sorted(p.audience_ids)[0].split(":")[0]
    _write_jsonl_gz(
        events / "part-9999.jsonl.gz",
        [
            {  # an open at 2026-11-01T06:00:00Z
                "email": sorted(p.emails)[0],
                "timestamp": 1793512800,
                "event": "open",
                "sg_event_id": "forget-test-1",
                "sg_message_id": "m-forget-test",
                "campaign_id": campaign,
                "sg_machine_open": False,
            }
        ],
    )

    # One run covers both cases: the changed records above, and the person's unchanged ones that the run reads
    # again (audience files are reloaded every run; the orders look-back and the helpdesk cursor page re-read).
    run = _run(["run", "--interval-end", LATER_END], scenario["env"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert scan(wh, p) == []
    _assert_others_unchanged(scenario)
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    purged = dict(con.execute('select "table", sum(rows_removed) from ops.erasure_purges group by 1').fetchall())
    # the changed rows landed and were taken out again by the run itself
    for table in (
        "raw.shop_customers",
        "raw.shop_orders",
        "raw.helpdesk_users",
        "raw.helpdesk_tickets",
        "raw.esp_contacts",
        "raw.esp_events",
    ):
        assert purged.get(table, 0) >= 1, (table, purged)
    shutil.rmtree(wh / "work" / "tmp", ignore_errors=True)
