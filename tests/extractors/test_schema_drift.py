"""Schema drift in every source: a column the contract does not name is kept (in the raw row's `_extra`),
a column it requires going missing stops the extraction before anything of the batch lands, with a message
naming the source, the table or file and the column. Once end to end: `rapport run` fails naming the
column, and the previously published file stays byte-identical."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from demo_builds import cli_env, rapport
from extract_helpers import (
    SHOP_DDL,
    TOKEN,
    PageServer,
    connect,
    export_page,
    make_settings,
    published_demo,
    sha256,
    write_shop,
)

from rapport.demo.helpdesk_server import HelpdeskData, serve_helpdesk
from rapport.extractors.errors import SchemaDriftError
from rapport.extractors.esp import extract_esp
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.orders import extract_orders

END = datetime(2025, 8, 2)
FAST = {"helpdesk_retry_base_s": 0.001, "orders_connect_base_s": 0.001, "esp_root_base_s": 0.001}
# column names a source may use that collide with the extractors' own, or quote SQL
ODD_NAMES = ["tier", "_ord", "_sentinel", "_extra", "v_id", 'x"; drop table raw.shop_customers; --', "Ünïcode 名"]


def _customer(i: int) -> tuple:
    return (i, f"c{i}@x.com", "Min", "Kim", None, "KR", 1, "2025-08-01T00:00:00Z", f"2025-08-01T0{i}:00:00Z")


def _order(i: int) -> tuple:
    return (
        100 + i,
        i,
        None,
        None,
        "paid",
        "USD",
        10,
        0,
        0,
        0,
        10,
        0,
        None,
        None,
        None,
        None,
        "2025-08-01T00:00:00Z",
        f"2025-08-01T0{i}:30:00Z",
        None,
    )


def _counts(con, table: str) -> int:
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


# ---------------------------------------------------------------- extra columns are kept


def test_extra_sqlite_columns_land_in_extra_whatever_their_names(tmp_path):
    db = tmp_path / "shop.db"
    write_shop(
        db,
        customers=[_customer(1), _customer(2)],
        orders=[_order(1)],
        items=[(7, 101, "S", "p", "c", 1, 2.5)],
        fx=[("2025-08-01", "USD", 1)],
    )
    shop = sqlite3.connect(db)
    for name in ODD_NAMES:
        shop.execute(f'alter table customers add column "{name.replace(chr(34), chr(34) * 2)}" text')
    quoted = ['"' + n.replace('"', '""') + '"' for n in ODD_NAMES]
    shop.execute(
        f"update customers set {', '.join(f'{q} = ?' for q in quoted)} where id = 1",
        [f"value of {n}" for n in ODD_NAMES],
    )
    for table in ("orders", "order_items", "fx_rates"):
        shop.execute(f"alter table {table} add column loyalty_points integer")
    shop.execute("update orders set loyalty_points = 12")
    shop.commit()
    shop.close()
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_orders(con, settings, run_id="r1", interval_end=END)
    assert res.rows_quarantined == 0 and res.tables["shop_customers"].rows_landed == 2
    extra = json.loads(con.execute("select _extra from raw.shop_customers where id = 1").fetchall()[0][0])
    assert extra == {n: f"value of {n}" for n in ODD_NAMES}
    # the known columns are untouched by the odd names
    assert con.execute("select email, updated_at from raw.shop_customers where id = 1").fetchall() == [
        ("c1@x.com", datetime(2025, 8, 1, 1))
    ]
    assert json.loads(con.execute("select _extra from raw.shop_orders").fetchall()[0][0]) == {"loyalty_points": "12"}
    assert json.loads(con.execute("select _extra from raw.shop_order_items").fetchall()[0][0]) == {
        "loyalty_points": None
    }
    con.close()


def test_extra_helpdesk_fields_land_in_extra(tmp_path):
    users = [
        {
            "id": 1,
            "name": "Kim",
            "email": None,
            "phone": None,
            "role": "end-user",
            "external_id": None,
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": "2025-08-01T01:00:00Z",
            "user_fields": {"tier": "gold", "tags": [1, 2]},
            "locale": "ko-KR",
        }
    ]
    tickets = [
        {
            "id": 9,
            "requester_id": 1,
            "assignee_id": None,
            "subject": "Hi",
            "status": "open",
            "priority": None,
            "via": {"channel": "web"},
            "tags": [],
            "satisfaction_rating": None,
            "metric_set": None,
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": "2025-08-01T02:00:00Z",
            "custom_fields": [{"id": 5, "value": "x"}],
        }
    ]
    settings = make_settings(tmp_path, extra=FAST)
    con = connect(tmp_path / "wh.duckdb", settings)
    with serve_helpdesk(HelpdeskData(users=users, tickets=tickets), token=TOKEN) as srv:
        res = extract_helpdesk(con, settings, run_id="r1", interval_end=END, base_url=srv.base_url)
    assert res.rows_landed == 2 and res.rows_quarantined == 0
    assert json.loads(con.execute("select _extra from raw.helpdesk_users").fetchall()[0][0]) == {
        "user_fields": {"tier": "gold", "tags": [1, 2]},
        "locale": "ko-KR",
    }
    assert json.loads(con.execute("select _extra from raw.helpdesk_tickets").fetchall()[0][0]) == {
        "custom_fields": [{"id": 5, "value": "x"}]
    }
    con.close()


def _event(eid: str, **kw) -> dict:
    return {"email": "a@x.com", "timestamp": 1754010000, "event": "open", "sg_event_id": eid, "campaign_id": "k1", **kw}


def _write_events(root: Path, name: str, events: list[dict], hour: int = 1) -> None:
    part = root / "events" / "dt=2025-08-01" / f"hour={hour:02d}"
    part.mkdir(parents=True, exist_ok=True)
    (part / name).write_bytes(gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode()))


def test_extra_esp_fields_and_csv_columns_land_in_extra(tmp_path):
    root = tmp_path / "esp"
    _write_events(root, "a.jsonl.gz", [_event("e1", geo={"country": "KR"}, tls=1), _event("e2")])
    for kind, text in {
        "contacts/contacts_20250801.csv": "contact_id,email,first_name,last_name,status,created_at,updated_at,vip\n"
        "c1,a@x.com,A,B,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z,yes\n",
        "campaigns/campaigns_20250801.csv": "campaign_id,name,subject,send_at,target_segment,holdout_pct,cost,"
        "cost_currency,owner,name\n"
        "k1,Sale,Hi,2025-08-01T00:00:00Z,all,10,5,USD,kim,Second name\n",
        "audiences/k1.csv": "email,group,score\na@x.com,treatment,0.7\n",
    }.items():
        (root / kind).parent.mkdir(parents=True, exist_ok=True)
        (root / kind).write_text(text)
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_esp(con, settings, run_id="r1", interval_end=END)
    assert res.rows_quarantined == 0 and res.rows_landed == 5
    extras = {
        t: con.execute(f"select _extra from raw.{t} order by all").fetchall()
        for t in ("esp_events", "esp_contacts", "esp_campaigns", "esp_audiences")
    }
    assert json.loads(extras["esp_events"][0][0]) == {"geo": {"country": "KR"}, "tls": 1}
    assert extras["esp_events"][1] == (None,)
    assert json.loads(extras["esp_contacts"][0][0]) == {"vip": "yes"}
    # a second column of a known name is not dropped: it lands beside the unknown one
    assert json.loads(extras["esp_campaigns"][0][0]) == {"owner": "kim", "name (column 10)": "Second name"}
    assert con.execute("select name from raw.esp_campaigns").fetchall() == [("Sale",)]
    assert json.loads(extras["esp_audiences"][0][0]) == {"score": "0.7"}
    con.close()


# ---------------------------------------------------------------- required columns going missing


@pytest.mark.parametrize(
    "table, drop, column",
    [
        ("orders", "updated_at", "updated_at"),
        ("customers", "id", "id"),
        ("order_items", "order_id", "order_id"),
        ("fx_rates", "currency", "currency"),
        ("order_items", None, "id, order_id"),  # the whole table is gone
    ],
)
def test_a_required_sqlite_column_missing_stops_before_anything_lands(tmp_path, table, drop, column):
    db = tmp_path / "shop.db"
    write_shop(
        db,
        customers=[_customer(1)],
        orders=[_order(1)],
        items=[(7, 101, "S", "p", "c", 1, 2.5)],
        fx=[("2025-08-01", "USD", 1)],
    )
    shop = sqlite3.connect(db)
    if drop:
        shop.execute(f"alter table {table} rename column {drop} to {drop}_renamed")
    else:
        shop.execute(f"drop table {table}")
    shop.commit()
    shop.close()
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SchemaDriftError) as err:
        extract_orders(con, settings, run_id="r1", interval_end=END)
    msg = str(err.value)
    assert msg.startswith("orders: table ") and f"table {table}" in msg and f"has no column {column} " in msg
    assert "stops before transformation" in msg
    for raw in ("shop_customers", "shop_orders", "shop_order_items", "shop_fx_rates"):
        assert _counts(con, f"raw.{raw}") == 0
    assert _counts(con, "ops.extract_state") == 0
    con.close()


def test_an_optional_sqlite_column_missing_lands_nulls_with_a_warning(tmp_path, caplog):
    write_shop(
        tmp_path / "shop.db",
        ddl=SHOP_DDL.replace(" phone text,\n    country text,", " country text,"),
        customers=[(1, "a@x.com", "A", "B", "KR", 1, "2025-08-01T00:00:00Z", "2025-08-01T01:00:00Z")],
    )
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_orders(con, settings, run_id="r1", interval_end=END)
    assert res.tables["shop_customers"].rows_landed == 1
    assert con.execute("select phone, country from raw.shop_customers").fetchall() == [(None, "KR")]
    assert "table customers has no column phone; it lands as NULL" in caplog.text
    con.close()


def test_helpdesk_page_without_a_required_field_stops_and_keeps_the_cursor_before_it(tmp_path):
    def user(i: int, **kw) -> bytes:
        u = {"id": i, "name": "Kim", "created_at": "2025-07-01T00:00:00Z", "updated_at": f"2025-08-01T0{i}:00:00Z"}
        u.update(kw)
        return json.dumps({k: v for k, v in u.items() if v is not None}).encode()

    page0 = export_page("users", [user(1), user(2)], 0, False)
    # the helpdesk renamed updated_at: no item of the next page has it
    page1 = export_page(
        "users",
        [
            user(3, updated_at=None, updatedAt="2025-08-01T03:00:00Z"),
            user(4, updated_at=None, updatedAt="2025-08-01T04:00:00Z"),
        ],
        1,
        True,
    )
    settings = make_settings(tmp_path, extra=FAST)
    con = connect(tmp_path / "wh.duckdb", settings)
    with PageServer({"users": [page0, page1], "tickets": []}) as srv, pytest.raises(SchemaDriftError) as err:
        extract_helpdesk(con, settings, run_id="r1", interval_end=END, base_url=srv.base_url)
    assert str(err.value).startswith(
        "helpdesk: the helpdesk users page at cursor=p1: none of its 2 records has the "
        "field updated_at (required by the helpdesk contract for helpdesk_users)"
    )
    # the first page landed and its cursor is kept; nothing of the drifted page landed or was quarantined
    assert con.execute("select id from raw.helpdesk_users order by id").fetchall() == [(1,), (2,)]
    assert _counts(con, "quarantine.helpdesk_users_rejects") == 0
    assert con.execute("select value from ops.extract_state where key = 'users.cursor'").fetchall() == [("p1",)]
    con.close()


def test_a_single_item_without_a_required_field_is_only_quarantined(tmp_path):
    page = export_page("users", [json.dumps({"id": 1, "name": "no updated_at"}).encode()], 0, True)
    settings = make_settings(tmp_path, extra=FAST)
    con = connect(tmp_path / "wh.duckdb", settings)
    with PageServer({"users": [page], "tickets": []}) as srv:
        res = extract_helpdesk(con, settings, run_id="r1", interval_end=END, base_url=srv.base_url)
    assert res.rows_quarantined == 1
    assert con.execute("select reason from quarantine.helpdesk_users_rejects").fetchall() == [("missing updated_at",)]
    con.close()


CONTACTS = "contact_id,email,first_name,last_name,status,created_at,updated_at\n"


@pytest.mark.parametrize(
    "rel, text, message",
    [
        (
            "contacts/contacts_20250801.csv",
            "email,first_name,last_name,status,created_at,updated_at\n"
            "a@x.com,A,B,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z\n",
            "esp: contacts/contacts_20250801.csv has no column contact_id"
            " (required by the esp contract for esp_contacts)",
        ),
        (
            "audiences/k1.csv",
            "email,grp\na@x.com,treatment\n",
            "esp: audiences/k1.csv has no column group (required by the esp contract for esp_audiences)",
        ),
        (
            "campaigns/campaigns_20250801.csv",
            "name,subject\nSale,Hi\n",
            "esp: campaigns/campaigns_20250801.csv has no column campaign_id (required",
        ),
        (
            "contacts/contacts_20250801.csv",
            b"contact_id,\xffemail\nc1,a@x.com\n",
            "esp: contacts/contacts_20250801.csv: the header line (1) is not valid UTF-8",
        ),
    ],
)
def test_a_csv_export_without_a_required_column_stops_the_extraction(tmp_path, rel, text, message):
    root = tmp_path / "esp"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(text if isinstance(text, bytes) else text.encode())
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SchemaDriftError) as err:
        extract_esp(con, settings, run_id="r1", interval_end=END)
    assert str(err.value).startswith(message)
    assert _counts(con, "ops.esp_manifest") == 0  # the file is read again next run
    con.close()


def test_an_events_file_without_a_required_field_stops_and_is_read_again_once_fixed(tmp_path):
    root = tmp_path / "esp"
    _write_events(root, "a.jsonl.gz", [_event("e1"), _event("e2")], hour=0)
    renamed = [{**{k: v for k, v in _event(f"e{i}").items() if k != "timestamp"}, "ts": 1754010000} for i in (3, 4)]
    _write_events(root, "b.jsonl.gz", renamed, hour=1)
    settings = make_settings(tmp_path, extra={"esp_batch_files": 1})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SchemaDriftError) as err:
        extract_esp(con, settings, run_id="r1", interval_end=END)
    assert str(err.value).startswith(
        "esp: the events file events/dt=2025-08-01/hour=01/b.jsonl.gz: none of its 2 "
        "records has the field timestamp (required by the esp contract for esp_events)"
    )
    assert con.execute("select sg_event_id from raw.esp_events order by 1").fetchall() == [("e1",), ("e2",)]
    assert _counts(con, "quarantine.esp_events_rejects") == 0
    _write_events(root, "b.jsonl.gz", [_event("e3"), _event("e4")], hour=1)  # the ESP fixed its export
    res = extract_esp(con, settings, run_id="r2", interval_end=END)
    assert res.tables["esp_events"].rows_landed == 2
    con.close()


def test_an_optional_csv_column_missing_lands_nulls(tmp_path):
    root = tmp_path / "esp" / "contacts"
    root.mkdir(parents=True)
    (root / "contacts_20250801.csv").write_text("contact_id,email,updated_at\nc1,a@x.com,2025-07-01T00:00:00Z\n")
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_esp(con, settings, run_id="r1", interval_end=END)
    assert res.rows_landed == 1
    assert con.execute("select contact_id, status, first_name from raw.esp_contacts").fetchall() == [("c1", None, None)]
    con.close()


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_rapport_run_stops_on_a_dropped_required_column_and_keeps_the_published_file(tmp_path_factory, tmp_path):
    wh = published_demo(tmp_path_factory, tmp_path / "warehouse")
    published = wh / "published" / "rapport.duckdb"
    before = sha256(published)
    contacts = wh / "demo" / "esp" / "contacts"
    latest = sorted(contacts.glob("contacts_*.csv"))[-1]
    # the ESP renamed contact_id in its next daily snapshot
    text = latest.read_text(encoding="utf-8")
    (contacts / "contacts_20261103.csv").write_text(text.replace("contact_id,", "id,", 1), encoding="utf-8")
    proc = rapport(["run", "--interval-end", "2026-11-04T00:00:00"], cli_env(wh))
    assert proc.returncode != 0, proc.stdout
    assert "SchemaDriftError: esp: contacts/contacts_20261103.csv has no column contact_id" in proc.stdout
    assert sha256(published) == before
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    status = con.execute("select status from ops.runs order by started_at desc limit 1").fetchall()[0][0]
    con.close()
    assert status == "failed"
