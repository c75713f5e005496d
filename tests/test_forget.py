"""Right to erasure on small hand-built warehouses: matching, the raw purge, derived tables, mentions, files,
the command line, and the pipeline hook that keeps erased people out of later extracts.

The fixture: person P (shop customer 1, helpdesk user 100, ESP contact c-p, an old contact version with a
second address, a guest order, tickets, audience rows, events, quarantined lines) and two other people.
Expected counts are counted by hand from the rows below.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from pathlib import Path

import duckdb
import pytest
from macro_render import render_macro

from rapport import cli
from rapport.core.config import load_settings
from rapport.core.warehouse import RunInProgress
from rapport.extractors.landing import ensure_schema
from rapport.orchestration.forget import ForgetError, forget, recount_segment_history_dates, regenerated_files
from rapport.privacy import database
from rapport.privacy.database import Person, delete_derived, patterns, sweep
from rapport.privacy.files import scrub_files
from rapport.privacy.keep import keep_erased
from rapport.privacy.match import (
    email_pattern,
    install,
    keyed_hash,
    norm_email_macro_sql,
    normalize_emails,
    phone_pattern,
    python_pattern,
    redact_text,
)
from rapport.privacy.purge import purge_raw
from rapport.privacy.store import KEY_ENV, ErasureKeyError, ensure_tables, key_id
from rapport.publishing.audiences import PREDICTED_AUDIENCES, audience_paths
from rapport.transform.udfs import register

KEY = "0" * 64
P_EMAIL = "leo.nguyen@gmail.com"
P_PHONE = "+17188434512"


# ---- matching --------------------------------------------------------------------------------------------


def test_normalisation_by_hand():
    got = normalize_emails(
        [" Leo.Nguyen+news@GoogleMail.com ", "Jane+x@outlook.com", "Bob+x@example.com", "a@b", "", "two@@x.com"]
    )
    assert got == ["leonguyen@gmail.com", "jane@outlook.com", "bob+x@example.com", None, None, None]


def test_normalisation_is_the_dbt_macro():
    """The port in rapport.privacy.match gives what dbt_project/macros/normalized_email.sql gives."""
    dbt_sql = render_macro("normalized_email.sql", "normalized_email('x')")
    cases = [
        "A.B.C+d@gmail.com",
        "x@googlemail.com",
        " MiXeD@Example.org\t",
        "p+q@proton.me",
        "p+q@example.com",
        "@gmail.com",
        "+tag@gmail.com",
        "no-at-sign",
        "a@b",
        "a@b.c",
        "a@@b.com",
        "a b@c.com",
        None,
        "ö.ü+x@icloud.com",
        "...@gmail.com",
        '=HYPERLINK("http://evil","x")@example.com',
        "a..b@example.com",
    ]
    con = duckdb.connect()
    register(con)  # the macro asks the UDF is_valid_email
    con.execute(norm_email_macro_sql())
    for case in cases:
        dbt_value = con.execute(f"select {dbt_sql} from (select ?::varchar as x)", [case]).fetchall()[0][0]
        ours = con.execute("select erasure_norm_email(?)", [case]).fetchall()[0][0]
        assert ours == dbt_value, case


def test_email_spellings():
    pat = python_pattern(email_pattern("leonguyen@gmail.com"))
    for text in ["L.e.o.Nguyen+tag@GOOGLEMAIL.com", "<leo.nguyen@gmail.com>", "x leonguyen@gmail.com."]:
        assert pat.search(text), text
    for text in ["theleonguyen@gmail.com", "leonguyen@gmail.co", "leonguyen@gmail.community", "leo@gmail.com"]:
        assert not pat.search(text), text
    # plus-tags only count for providers that have them
    plain = python_pattern(email_pattern("bob@example.com"))
    assert plain.search("BOB@example.com") and not plain.search("bob+x@example.com")


def test_phone_spellings():
    us = python_pattern(phone_pattern(P_PHONE))
    for text in ["(718) 843-4512", "+1 718-843-4512", "001 718 843 4512", "718.843.4512", "tel:+17188434512"]:
        assert us.search(text), text
    for text in ["27188434512", "718-843-45123", "718-843-4513"]:
        assert not us.search(text), text
    kr = python_pattern(phone_pattern("+821012345678"))
    assert kr.search("010-1234-5678") and kr.search("+82 10 1234 5678")


def test_redaction_catches_adjacent_spellings():
    pats = [python_pattern(email_pattern("leonguyen@gmail.com")), python_pattern(phone_pattern(P_PHONE))]
    text, n = redact_text("to: leo.nguyen@gmail.com,LeoNguyen@gmail.com call (718) 843-4512 x", pats)
    assert text == "to: [erased],[erased] call [erased] x" and n == 3


def test_keyed_hash_is_the_same_in_python_and_sql():
    con = duckdb.connect()
    install(con, KEY)
    sql = con.execute("select erasure_hash('email', erasure_norm_email(' Leo.Nguyen@GMAIL.com'))").fetchall()[0][0]
    assert sql == keyed_hash(KEY, "email", "leonguyen@gmail.com")
    assert keyed_hash(KEY, "email", "leonguyen@gmail.com") != keyed_hash("1" * 64, "email", "leonguyen@gmail.com")


# ---- a hand-built raw layer ------------------------------------------------------------------------------

RAW_ROWS = {
    "shop_customers": (
        "id, email, first_name, last_name, phone, country, updated_at",
        [
            (1, "Leo.Nguyen@gmail.com", "Leo", "Nguyen", "(718) 843-4512", "US", "2026-01-01"),
            (2, "ana@example.com", "Ana", "Silva", "+44 20 7946 0001", "GB", "2026-01-01"),
        ],
    ),
    "shop_orders": (
        "id, customer_id, email, phone, status, updated_at",
        [
            (10, 1, "leo.nguyen@gmail.com", None, "paid", "2026-01-02"),  # P's own order
            (11, None, "leonguyen+x@gmail.com", None, "paid", "2026-01-03"),  # P's guest order
            (12, 2, "LEO.NGUYEN@gmail.com", "+1 718 843 4512", "paid", "2026-01-04"),  # Ana's, P's contacts on it
            (13, 2, "ana@example.com", None, "paid", "2026-01-05"),
            *[(20 + i, 2, f"a{i}@example.com", "+44 20 7946 0000", "paid", "2026-01-06") for i in range(6)],
        ],
    ),
    "shop_order_items": ("id, order_id", [(100, 10), (101, 10), (102, 11), (103, 12), (104, 13)]),
    "helpdesk_users": (
        "id, name, email, phone, role, external_id, updated_at",
        [
            # P's helpdesk phone is the shop's own, typed on six of Ana's orders: it identifies nobody
            (500, "Leo N", "leo.nguyen@gmail.com", "+44 20 7946 0000", "end-user", "1", "2026-01-01"),
            (501, "Agent", "agent@shop.example", None, "agent", None, "2026-01-01"),
        ],
    ),
    "helpdesk_tickets": (
        "id, requester_id, subject, updated_at",
        [
            (900, 500, "refund", "2026-01-01"),
            (900, 500, "refund", "2026-01-02"),
            (901, 501, "internal", "2026-01-01"),
        ],
    ),
    "esp_contacts": (
        "contact_id, email, first_name, last_name, status, updated_at, snapshot_date",
        [
            ("c-p", "leo.old@example.net", "Leo", "Nguyen", "subscribed", "2025-06-01", "2025-06-01"),
            ("c-p", "Leo.Nguyen@gmail.com", "Leo", "Nguyen", "subscribed", "2026-01-01", "2026-01-01"),
            ("c-o", "ana@example.com", "Ana", "Silva", "subscribed", "2026-01-01", "2026-01-01"),
        ],
    ),
    "esp_audiences": (
        'campaign_id, email, "group"',
        [
            ("k1", "Leo.Nguyen@gmail.com", "treatment"),
            ("k1", "ana@example.com", "control"),
        ],
    ),
    "esp_events": (
        "sg_event_id, email, event",
        [
            ("e1", "leo.nguyen@gmail.com", "open"),
            ("e2", "ana@example.com", "open"),
            ("e3", "LEO.OLD@example.net", "click"),  # P's old address: found once it is learnt from the contact
        ],
    ),
}
QUARANTINE_ROWS = {
    "esp_events_rejects": ['{"email": "LEO.NGUYEN@gmail.com", "event": "op', '{"email": "ana@example.com", "ev'],
    "shop_customers_rejects": ['{"id": "1", "email": "not an email"}', '{"id": "2", "email": null}'],
}


def _raw_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    ensure_schema(con)
    ensure_tables(con)
    for table, (cols, rows) in RAW_ROWS.items():
        marks = ", ".join("?" for _ in cols.split(","))
        con.executemany(f"insert into raw.{table} ({cols}, _run_id, _extracted_at) values ({marks}, 'r1', now())", rows)
    for table, raws in QUARANTINE_ROWS.items():
        con.executemany(
            f"insert into quarantine.{table} values ('t', ?, 'bad', 'x:1', 'r1', now())", [(r,) for r in raws]
        )
    return con


def _seed(con: duckdb.DuckDBPyConnection, kind: str, value: str, key: str = KEY) -> None:
    con.execute(
        "insert into ops.erasure_identifiers values (?, ?, ?, 'e1', now(), 'test')",
        [kind, keyed_hash(key, kind, value), key_id(key)],
    )


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = [f"raw.{t}" for t in RAW_ROWS] + [f"quarantine.{t}" for t in QUARANTINE_ROWS]
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in tables}


def test_purge_removes_the_person_from_every_raw_table_and_only_them(tmp_path):
    con = _raw_warehouse(tmp_path / "w.duckdb")
    install(con, KEY)
    _seed(con, "email", "leonguyen@gmail.com")
    before = _counts(con)
    result = purge_raw(con, key_id=key_id(KEY), added_by="test")
    expected = {
        "raw.shop_customers": 1,
        "raw.shop_orders": 2,
        "raw.shop_order_items": 3,
        "raw.helpdesk_users": 1,
        "raw.helpdesk_tickets": 2,
        "raw.esp_contacts": 2,
        "raw.esp_audiences": 1,
        "raw.esp_events": 2,
        "quarantine.esp_events_rejects": 1,
        "quarantine.shop_customers_rejects": 1,
    }
    assert result.removed == expected
    assert _counts(con) == {t: before[t] - expected.get(t, 0) for t in before}
    # Ana's order keeps its row, without P's checkout email and phone
    assert con.execute("select id, email, phone from raw.shop_orders where id < 20 order by id").fetchall() == [
        (12, None, None),
        (13, "ana@example.com", None),
    ]
    assert result.redacted == {"raw.shop_orders": 2}
    assert con.execute("select list(email order by email) from raw.esp_events").fetchall()[0][0] == ["ana@example.com"]
    assert result.ids["shop_customer"] == {"1"} and result.ids["order"] == {"10", "11"}
    assert result.ids["ticket"] == {"900"} and result.ids["event"] == {"e1", "e3"}
    # learnt: ids, P's phone and old address; not the shop's phone on P's helpdesk user
    learnt = {(k, h) for k, h in con.execute("select kind, hash from ops.erasure_identifiers").fetchall()}
    assert ("phone", keyed_hash(KEY, "phone", P_PHONE)) in learnt
    assert ("email", keyed_hash(KEY, "email", "leo.old@example.net")) in learnt
    assert ("phone", keyed_hash(KEY, "phone", "+442079460000")) not in learnt
    assert ("helpdesk_user", keyed_hash(KEY, "helpdesk_user", "500")) in learnt
    stored = " ".join(str(v) for row in con.execute("select * from ops.erasure_identifiers").fetchall() for v in row)
    assert "leo" not in stored.lower() and "7188434512" not in stored


def test_later_landings_of_the_person_are_removed_again(tmp_path):
    con = _raw_warehouse(tmp_path / "w.duckdb")
    install(con, KEY)
    _seed(con, "email", "leonguyen@gmail.com")
    purge_raw(con, key_id=key_id(KEY), added_by="forget")
    before = _counts(con)
    # the sources still hold P: changed versions and new records re-land
    con.execute(
        "insert into raw.shop_customers (id, email, updated_at, _run_id, _extracted_at) "
        "values (1, 'new.address@example.org', '2026-02-01', 'r2', now())"
    )  # found by id alone
    con.execute(
        "insert into raw.shop_orders (id, customer_id, email, status, updated_at, _run_id, _extracted_at) "
        "values (14, null, 'L.E.O.NGUYEN+sale@googlemail.com', 'paid', '2026-02-02', 'r2', now())"
    )
    con.execute("insert into raw.shop_order_items (id, order_id, _run_id, _extracted_at) values (105, 14, 'r2', now())")
    con.execute(
        "insert into raw.helpdesk_tickets (id, requester_id, updated_at, _run_id, _extracted_at) "
        "values (902, 500, '2026-02-03', 'r2', now())"
    )  # P's helpdesk user did not re-land
    con.execute(
        "insert into raw.esp_events (sg_event_id, email, _run_id, _extracted_at) "
        "values ('e4', 'leo.old@example.net', 'r2', now())"
    )
    result = purge_raw(con, key_id=key_id(KEY), added_by="r2")
    assert result.removed == {
        "raw.shop_customers": 1,
        "raw.shop_orders": 1,
        "raw.shop_order_items": 1,
        "raw.helpdesk_tickets": 1,
        "raw.esp_events": 1,
    }
    assert _counts(con) == before


def test_keep_erased_does_nothing_without_erasures_and_refuses_without_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    settings.work_db.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.work_db))
    ensure_schema(con)
    assert keep_erased(con, settings, run_id="r") == {}
    assert (
        con.execute("select count(*) from information_schema.tables where table_name like 'erasure%'").fetchall()[0][0]
        == 0
    )
    ensure_tables(con)
    _seed(con, "email", "leonguyen@gmail.com", key="k" * 64)
    with pytest.raises(ErasureKeyError, match="missing"):
        keep_erased(con, settings, run_id="r")
    monkeypatch.setenv(KEY_ENV, "another key")
    with pytest.raises(ErasureKeyError, match="not the one"):
        keep_erased(con, settings, run_id="r")
    monkeypatch.setenv(KEY_ENV, "k" * 64)
    con.execute(
        "insert into raw.esp_events (sg_event_id, email, _run_id, _extracted_at) "
        "values ('e9', 'LeoNguyen@gmail.com', 'r', now()), ('e8', 'x@example.com', 'r', now())"
    )
    assert keep_erased(con, settings, run_id="r") == {"raw.esp_events": 1}
    assert con.execute('select run_id, "table", rows_removed from ops.erasure_purges').fetchall() == [
        ("r", "raw.esp_events", 1)
    ]


# ---- derived tables and mentions -------------------------------------------------------------------------


def test_delete_derived_uses_the_id_columns_and_keeps_everyone_else():
    con = duckdb.connect()
    con.execute("create schema marts; create schema staging; create schema intermediate; create schema ops")
    con.execute("create table marts.customers as select * from (values ('cP', 'Leo'), ('cA', 'Ana')) t(customer_id, n)")
    con.execute(
        "create table marts.segment_history as select * from (values ('cP', 1), ('cA', 1), ('cOld', 1)) "
        "t(customer_id, x)"
    )
    con.execute(
        "create table marts.customer_identities as select * from (values ('orders.customer', '1', 'cP'), "
        "('orders.customer', '2', 'cA')) t(source, source_id, customer_id)"
    )
    con.execute(
        "create table staging.stg_shop__orders as select * from (values (10::bigint, 1::bigint), "
        "(12::bigint, 2::bigint)) t(order_id, customer_id)"
    )
    con.execute(
        "create table intermediate.int_identity_fanout_measured as select * from (values "
        "('email', 'leonguyen@gmail.com'), ('phone', '+17188434512'), ('email', 'ana@example.com')) "
        "t(identifier_type, identifier_value)"
    )
    con.execute("create table ops.runs as select 'cP' as customer_id")  # ops is not derived: left to the sweep
    person = Person()
    person.add("customer", ["cP", "cOld"])
    person.add("record", ["orders.customer:1"])
    person.add("shop_customer", ["1"])
    person.add("order", ["10"])
    person.add("email", ["leonguyen@gmail.com"])
    person.add("phone", [P_PHONE])
    removed = delete_derived(con, person)
    assert removed == {
        "marts.customers": 1,
        "marts.segment_history": 2,
        "marts.customer_identities": 1,
        "staging.stg_shop__orders": 1,
        "intermediate.int_identity_fanout_measured": 2,
    }
    assert con.execute("select customer_id from marts.segment_history").fetchall() == [("cA",)]
    assert con.execute("select count(*) from ops.runs").fetchall()[0][0] == 1


def test_segment_history_dates_are_recounted_without_the_forgotten_person():
    """cP and cB entered on 01-01, cX too (merged into cB on 01-03: left), cA entered on 01-02; the snapshots
    held 3, 4, 3 customers. cP's rows are deleted: they held 2, 3, 2 without cP."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.segment_history as select cast(d as date) as as_of_date, c as customer_id, "
        "ch as change from (values ('2025-01-01', 'cP', 'entered'), ('2025-01-01', 'cB', 'entered'), "
        "('2025-01-01', 'cX', 'entered'), ('2025-01-02', 'cA', 'entered'), ('2025-01-03', 'cX', 'left')) "
        "t(d, c, ch)"
    )
    con.execute(
        "create table marts.segment_history_dates as select cast(d as date) as as_of_date, n as customers "
        "from (values ('2025-01-01', 3), ('2025-01-02', 4), ('2025-01-03', 3)) t(d, n)"
    )
    person = Person()
    person.add("customer", ["cP"])
    delete_derived(con, person)
    recount_segment_history_dates(con)
    assert con.execute("select customers from marts.segment_history_dates order by as_of_date").fetchall() == [
        (2,), (3,), (2,)]  # fmt: skip


def test_sweep_redacts_mentions_in_text_and_json_columns():
    con = duckdb.connect()
    con.execute("create schema ops; create schema raw")
    con.execute("create table ops.check_results (sample varchar, n integer)")
    con.execute(
        'insert into ops.check_results values (\'[{"email": "Leo.Nguyen+x@gmail.com", "name": '
        '"Leo Nguyen", "phone": "(718) 843-4512"}]\', 1), (\'ana@example.com\', 2)'
    )
    con.execute("create table raw.t (extra json, note varchar)")
    con.execute("""insert into raw.t values ('{"cc": "leonguyen@gmail.com"}', 'Leo Nguyen is a namesake here')""")
    con.execute("create table ops.erasures (email_hash varchar)")
    con.execute("insert into ops.erasures values ('leonguyen@gmail.com')")  # never swept: not a mention
    person = Person(names={"Leo Nguyen"})
    person.add("email", ["leonguyen@gmail.com"])
    person.add("phone", [P_PHONE])
    redacted = sweep(con, patterns(person), person.names)
    assert con.execute("select sample from ops.check_results order by n").fetchall() == [
        ('[{"email": "[erased]", "name": "[erased]", "phone": "[erased]"}]',),
        ("ana@example.com",),
    ]
    extra, note = con.execute("select extra, note from raw.t").fetchall()[0]
    assert json.loads(extra) == {"cc": "[erased]"} and note == "Leo Nguyen is a namesake here"
    assert con.execute("select email_hash from ops.erasures").fetchall() == [("leonguyen@gmail.com",)]
    assert redacted == {"ops.check_results": 3, "raw.t": 1}


def test_scrub_files_redacts_copies_and_leaves_the_sources_alone(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    wh = settings.warehouse_dir
    files = {
        "logs/run-1.log": "dbt forget --email LEO.NGUYEN@gmail.com; phone 718-843-4512; cAAAA ok; ana@example.com",
        "reports/rapport_report_2026-10-01.html": "<td>Leo Nguyen</td><td>cAAAA</td><td>Leonora Nguyenova</td>",
        "reports/rapport_report_2026-10-01.pdf": "%PDF binary",
        "reports/rapport_report_2026-11-01.html": "<td>Leo Nguyen</td>",  # regenerated by this forget: kept
        "demo/esp/contacts/contacts_20261031.csv": "c-p,leo.nguyen@gmail.com,Leo,Nguyen",  # a source
        "gx/uncommitted/validations/x.json": '{"partial_unexpected_list": ["ana@example.com"]}',
    }
    for rel, text in files.items():
        (wh / rel).parent.mkdir(parents=True, exist_ok=True)
        (wh / rel).write_text(text)
    changes = scrub_files(
        settings,
        {"leonguyen@gmail.com"},
        {P_PHONE},
        {"Leo Nguyen", "cAAAA"},
        keep={wh / "reports/rapport_report_2026-11-01.html"},
    )
    assert sorted(str(p.relative_to(wh)) for p in changes.redacted) == [
        "logs/run-1.log",
        "reports/rapport_report_2026-10-01.html",
    ]
    assert [str(p.relative_to(wh)) for p in changes.deleted] == ["reports/rapport_report_2026-10-01.pdf"]
    assert (wh / "logs/run-1.log").read_text() == (
        "dbt forget --email [erased]; phone [erased]; [erased] ok; ana@example.com"
    )
    assert (wh / "reports/rapport_report_2026-10-01.html").read_text() == (
        "<td>[erased]</td><td>[erased]</td><td>Leonora Nguyenova</td>"
    )
    for rel in (
        "reports/rapport_report_2026-11-01.html",
        "demo/esp/contacts/contacts_20261031.csv",
        "gx/uncommitted/validations/x.json",
    ):
        assert (wh / rel).read_text() == files[rel]
    assert not (wh / "reports/rapport_report_2026-10-01.pdf").exists()


def test_regenerated_files_are_every_audience_file_and_nothing_else(tmp_path):
    """What a republish rewrites is left to it; a copy someone saved beside the audience files is scrubbed."""
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    audiences = settings.audiences_dir
    audiences.mkdir(parents=True)
    written = audience_paths(audiences)
    for path in [*written, audiences / "champions-october.csv"]:
        path.write_text("email,full_name\nleo.nguyen@gmail.com,Leo Nguyen\n")
    report = settings.reports_dir / "rapport_report_2026-11-01.html"
    regenerated = regenerated_files(settings, {"html": str(report), "pdf": None})
    assert {audiences / f"{a.slug}.csv" for a in PREDICTED_AUDIENCES} <= regenerated  # the prediction files too
    assert set(written) <= regenerated and audiences / "champions-october.csv" not in regenerated
    assert report in regenerated
    changes = scrub_files(settings, {"leonguyen@gmail.com"}, set(), {"Leo Nguyen"}, keep=regenerated)
    assert [p.name for p in changes.redacted] == ["champions-october.csv"]
    assert (audiences / "likely-to-buy-again.csv").read_text().count("leo.nguyen@gmail.com") == 1


# ---- forget as a whole, and the command line -------------------------------------------------------------


@pytest.fixture()
def raw_only(tmp_path, monkeypatch):
    """A warehouse whose raw layer was landed but never built (no models, nothing published)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path / "wh"))
    settings = load_settings()
    _raw_warehouse(settings.work_db).close()
    return settings


def test_forget_on_a_raw_only_warehouse(raw_only):
    result = forget(raw_only, ["Leo.Nguyen@GMAIL.com", "nobody@example.org"])
    assert result.status == {"Leo.Nguyen@GMAIL.com": "erased", "nobody@example.org": "unmatched"}
    assert result.removed["raw.shop_customers"] == 1 and result.removed["raw.esp_events"] == 2
    con = duckdb.connect(str(raw_only.work_db), read_only=True)
    rows = con.execute("select email_hash, status, rows_removed from ops.erasures order by status").fetchall()
    key = (raw_only.work_db.parent / "erasure.key").read_text().strip()
    assert [(h, s) for h, s, _ in rows] == [
        (keyed_hash(key, "email", "leonguyen@gmail.com"), "erased"),
        (keyed_hash(key, "email", "nobody@example.org"), "unmatched"),
    ]
    assert json.loads(rows[0][2])["raw.helpdesk_tickets"] == 2
    assert oct((raw_only.work_db.parent / "erasure.key").stat().st_mode & 0o777) == "0o600"
    assert con.execute("select count(*) from raw.shop_customers").fetchall()[0][0] == 1
    con.close()
    again = forget(raw_only, ["leonguyen@googlemail.com"])  # the same person, another spelling
    assert again.status == {"leonguyen@googlemail.com": "already erased"} and again.removed == {}


def test_dry_run_changes_nothing(raw_only):
    before = raw_only.work_db.read_bytes()
    result = forget(raw_only, ["leo.nguyen@gmail.com"], dry_run=True)
    assert result.removed["raw.shop_customers"] == 1
    assert raw_only.work_db.read_bytes() == before
    assert not (raw_only.work_db.parent / "erasure.key").exists()


def test_cli_exit_codes(raw_only, capsys):
    assert cli.main(["forget", "--email", "not-an-address"]) == 2
    assert "not an email address" in capsys.readouterr().err
    assert cli.main(["forget", "--email", "nobody@example.org"]) == 4
    assert "matched NOBODY" in capsys.readouterr().out
    lock = raw_only.warehouse_dir / "work" / "run.lock"
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert cli.main(["forget", "--email", "leo.nguyen@gmail.com"]) == 3
        assert "another rapport run is active" in capsys.readouterr().out
        with pytest.raises(RunInProgress):
            forget(raw_only, ["leo.nguyen@gmail.com"])
    assert cli.main(["forget", "--email", "leo.nguyen@gmail.com"]) == 0
    out = capsys.readouterr().out
    assert "raw.shop_customers" in out and "recorded in ops.erasures" in out


def test_a_rewrite_that_differs_says_what_differed_and_a_rerun_retries_it(raw_only, monkeypatch, capsys):
    real_copy = database._copy_database

    def copy_that_differs(con, original, copy):  # type: ignore[no-untyped-def]
        real_copy(con, original, copy)
        con.execute(f"delete from {copy}.raw.esp_events")  # ana@example.com's, the one left after P's 2
        for n in range(4):  # four tables the original lacks: five differences in all
            con.execute(f"create table {copy}.raw.extra_{n} (x int)")

    monkeypatch.setattr(database, "_copy_database", copy_that_differs)
    before = raw_only.work_db.stat().st_ino
    assert cli.main(["forget", "--email", "leo.nguyen@gmail.com"]) == 1
    out = capsys.readouterr().out
    problem = (
        f"PROBLEM: the working file {raw_only.work_db} was not rewritten: its rewritten copy differed from it "
        "(table raw.esp_events: 1 row, 0 in the copy; table raw.extra_0 not in the original; table raw.extra_1 "
        "not in the original; 2 more in the logged warning) and was thrown away. The erased rows are deleted, "
        "but their bytes may linger in the file's free space until DuckDB reuses it. Run the same `rapport "
        "forget` again to retry the rewrite; if the copy differs again, report it with this message."
    )
    assert problem in " ".join(out.split())  # the terminal's lines joined
    assert raw_only.work_db.stat().st_ino == before  # the file was kept
    monkeypatch.setattr(database, "_copy_database", real_copy)
    again = forget(raw_only, ["leo.nguyen@gmail.com"])
    assert again.status == {"leo.nguyen@gmail.com": "already erased"} and again.problems == []
    assert raw_only.work_db.stat().st_ino != before  # rewritten this time


def test_forget_refuses_an_address_that_is_not_an_email(raw_only):
    with pytest.raises(ForgetError):
        forget(raw_only, ["leo.nguyen"])


# ---- the pipeline hook -----------------------------------------------------------------------------------


def _shop_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript("""
        create table customers (id integer primary key, email text, first_name text, last_name text, phone text,
            country text, accepts_marketing integer, created_at text, updated_at text);
        create table orders (id integer primary key, customer_id integer, email text, phone text, status text,
            currency text, subtotal real, discount_total real, shipping_total real, tax_total real, total real,
            refunded_total real, discount_code text, utm_source text, utm_medium text, utm_campaign text,
            created_at text, updated_at text, cancelled_at text);
        create table order_items (id integer primary key, order_id integer, sku text, product_name text,
            category text, quantity integer, unit_price real);
        create table fx_rates (rate_date text, currency text, usd_per_unit real);
        insert into customers values (1, 'Leo.Nguyen@gmail.com', 'Leo', 'Nguyen', null, 'US', 1,
            '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
        insert into customers values (2, 'ana@example.com', 'Ana', 'Silva', null, 'GB', 1,
            '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
        insert into orders values (10, 1, 'leo.nguyen@gmail.com', null, 'paid', 'USD', 10, 0, 0, 0, 10, 0, null,
            null, null, null, '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z', null);
        insert into orders values (11, 2, 'ana@example.com', null, 'paid', 'USD', 10, 0, 0, 0, 10, 0, null,
            null, null, null, '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z', null);
        insert into order_items values (100, 10, 's', 'p', 'c', 1, 10), (101, 11, 's', 'p', 'c', 1, 10);
        insert into fx_rates values ('2026-01-01', 'USD', 1);
    """)
    db.commit()
    db.close()


def test_pipeline_extract_keeps_an_erased_person_out(tmp_path, monkeypatch):
    from rapport.pipeline import steps as pipeline

    monkeypatch.delenv(KEY_ENV, raising=False)
    shop = tmp_path / "shop.db"
    _shop_db(shop)
    # the shop's data is from January and the interval ends now: not what this test is about
    env = {
        "RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh"),
        "RAPPORT_ORDERS_DB_URL": f"sqlite:///{shop}",
        "RAPPORT_FRESHNESS_ERROR_HOURS": "0",
    }
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", env["RAPPORT_WAREHOUSE_DIR"])
    settings = load_settings(env)
    ctx = pipeline.RunContext.create("run-1", interval_end=None)
    pipeline.start_run(settings, ctx)
    # erased before the first load: a never-seen address is still recorded and kept out
    result = forget(settings, ["LEO.NGUYEN@gmail.com"])
    assert result.status == {"LEO.NGUYEN@gmail.com": "unmatched"}
    pipeline.extract(settings, ctx, "orders")
    con = duckdb.connect(str(settings.work_db), read_only=True)
    assert con.execute("select id from raw.shop_customers").fetchall() == [(2,)]
    assert con.execute("select id from raw.shop_orders").fetchall() == [(11,)]
    assert con.execute("select id from raw.shop_order_items").fetchall() == [(101,)]
    assert con.execute('select "table", rows_removed from ops.erasure_purges order by 1').fetchall() == [
        ("raw.shop_customers", 1),
        ("raw.shop_order_items", 1),
        ("raw.shop_orders", 1),
    ]
