"""SIGKILL each extractor mid-run (before and after a batch commit), rerun, and get exactly the rows of an
uninterrupted run. The child process stops at a failpoint (state.FAILPOINT_ENV) so the kill lands at a
known place instead of a timing guess."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from extract_helpers import TOKEN, connect, make_settings, run_and_kill, warehouse_state, write_shop

from rapport.demo.helpdesk_server import HelpdeskData, serve_helpdesk
from rapport.extractors.esp import extract_esp
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.orders import extract_orders

pytestmark = pytest.mark.slow

END = datetime(2025, 8, 3)
EXTRA = {"orders_batch_rows": 8, "esp_batch_files": 1, "helpdesk_retry_base_s": 0.01}


def _shop(path: Path) -> None:
    customers = [
        (
            i,
            f"c{i}@x.com",
            "이름",
            None,
            None,
            "KR",
            i % 2,
            "2025-08-01T00:00:00Z",
            f"2025-08-0{1 + i % 2}T{i % 24:02d}:{i % 60:02d}:00Z",
        )
        for i in range(1, 31)
    ]
    orders = [
        (
            1000 + i,
            i % 30 + 1,
            None,
            None,
            "paid",
            "USD",
            i,
            0,
            0,
            0,
            "bad" if i == 17 else i,
            0,
            None,
            None,
            None,
            None,
            "2025-08-01T00:00:00Z",
            f"2025-08-0{1 + i % 2}T{i % 24:02d}:30:00Z",
            None,
        )
        for i in range(1, 51)
    ]
    items = [(10 * o[0] + k, o[0], f"S{k}", "p", "c", 1, 1.5) for o in orders for k in range(1 + o[0] % 3)]
    write_shop(path, customers=customers, orders=orders, items=items, fx=[("2025-08-01", "USD", 1)])


def _esp(root: Path) -> None:
    (root / "contacts").mkdir(parents=True)
    for day in (1, 2):
        (root / "contacts" / f"contacts_2025080{day}.csv").write_text(
            "contact_id,email,first_name,last_name,status,created_at,updated_at\n"
            + "".join(
                f"c{i},c{i}@x.com,A,B,{'unsubscribed' if day == 2 and i % 3 == 0 else 'subscribed'},"
                f"2025-07-01T00:00:00Z,2025-0{7 + (day == 2 and i % 3 == 0)}-01T00:00:00Z\n"
                for i in range(20)
            )
        )
    for hour in range(6):
        part = root / f"events/dt=2025-08-01/hour={hour:02d}/part-0.jsonl.gz"
        part.parent.mkdir(parents=True)
        lines = [
            json.dumps(
                {
                    "email": "a@x.com",
                    "timestamp": 1754006400 + n,
                    "event": "open",
                    "sg_event_id": f"e{hour}-{n}" if n % 4 else f"e{max(hour - 1, 0)}-{n}",
                }
            )
            for n in range(12)
        ] + ['{"broken":']
        part.write_bytes(gzip.compress("\n".join(lines).encode()))


def _helpdesk_data() -> HelpdeskData:
    users = [
        {
            "id": i,
            "name": f"u{i}",
            "email": None,
            "phone": None,
            "role": "end-user",
            "external_id": None,
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": f"2025-08-01T{i % 24:02d}:{i:02d}:00Z",
        }
        for i in range(1, 41)
    ]
    tickets = [
        {
            "id": 100 + i,
            "requester_id": i,
            "status": "open",
            "via": {"channel": "web"},
            "tags": [],
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": f"2025-08-02T{i:02d}:00:00Z",
        }
        for i in range(1, 24)
    ]
    return HelpdeskData(users=users, tickets=tickets)


def _run(source: str, con, settings, base_url: str | None) -> None:
    if source == "orders":
        extract_orders(con, settings, run_id="rerun", interval_end=END)
    elif source == "helpdesk":
        extract_helpdesk(con, settings, run_id="rerun", interval_end=END, base_url=base_url or "")
    else:
        extract_esp(con, settings, run_id="rerun", interval_end=END)


def _raw_count(db: Path, tables: list[str]) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sum(con.execute(f"select count(*) from raw.{t}").fetchall()[0][0] for t in tables)
    finally:
        con.close()


CASES = [
    ("orders", "after_commit:2"),  # customers partly landed
    ("orders", "before_commit:7"),  # in the middle of orders, inside an open transaction
    ("orders", "after_commit:12"),  # orders landed, items partly: the orders watermark is not yet written
    ("helpdesk", "after_commit:3"),
    ("helpdesk", "before_commit:11"),  # tickets export, mid transaction
    ("esp", "after_commit:1"),
    ("esp", "before_commit:5"),
]
TABLES = {
    "orders": ["shop_customers", "shop_orders", "shop_order_items"],
    "helpdesk": ["helpdesk_users", "helpdesk_tickets"],
    "esp": ["esp_contacts", "esp_events"],
}


@pytest.mark.parametrize("source, failpoint", CASES)
def test_killed_run_then_rerun_equals_uninterrupted_run(tmp_path, source, failpoint):
    _shop(tmp_path / "shop.db")
    _esp(tmp_path / "esp")
    settings = make_settings(tmp_path, extra=EXTRA)
    with serve_helpdesk(_helpdesk_data(), token=TOKEN, page_size=5) as srv:
        # the reference: one uninterrupted run
        ref = connect(tmp_path / "ref.duckdb", settings)
        _run(source, ref, settings, srv.base_url)
        expected = warehouse_state(ref, keep_meta=False)
        total = sum(len(expected[f"raw.{t}"]) for t in TABLES[source])
        ref.close()

        db = tmp_path / "killed.duckdb"
        args = {
            "source": source,
            "db": str(db),
            "wh": str(settings.warehouse_dir),
            "esp_root": str(settings.esp_root),
            "orders_db_url": settings.orders_db_url,
            "token": TOKEN,
            "extra": {k: str(v) for k, v in EXTRA.items()},
            "interval_end": END.isoformat(),
            "run_id": "killed",
            "base_url": srv.base_url,
        }
        run_and_kill(args, failpoint=failpoint, marker=tmp_path / "reached")
        partial = _raw_count(db, TABLES[source])
        assert 0 < partial < total, f"the kill should land mid-run ({partial} of {total} rows)"

        con = connect(db, settings)
        _run(source, con, settings, srv.base_url)
        assert warehouse_state(con, keep_meta=False) == expected
        con.close()
