"""No silent data loss (issue #17), end to end: `rapport run` on copies of the reliability reference warehouse
(the tiny demo after one clean run), with its sources broken the way a hostile user broke them.

Three runs, each on its own copy of the reference:
- the three sources emptied at once (an unmounted ESP folder, an emptied orders table, a helpdesk that returns
  nothing): the run stops, naming each source, what was expected and the setting; nothing published changes;
- the orders database file missing: the run stops at once, without retries, naming RAPPORT_ORDERS_DB_URL;
- hostile but loadable input in one run (it must publish): an order dated 2099 (quarantined, counted, the
  watermark does not move), an order committed older than the look-back (found by the reconciliation, loaded,
  counted), an address that is a spreadsheet formula (no identifier, never in an audience file, counted), a
  valid address starting with `-` (kept intact in the audience file), ESP files written with a BOM and CRLF
  (every record lands), and a freshness window of one hour (warnings in the terminal, ops.runs and report).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pytest
from reliability_runs import RAPPORT, clean_env, log_tail

pytestmark = pytest.mark.slow

SECOND_END = "2026-11-02T00:00:00"
HOSTILE = '=HYPERLINK("http://evil.example","x")@example.com'
DASHED = "-dash.lee@example.com"  # valid (RFC 5322 atext), and a formula to a spreadsheet


def _run(wh: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RAPPORT, "run", "--interval-end", SECOND_END],
        env=clean_env(wh, **env),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _outputs(wh: Path) -> dict[str, str]:
    """sha256 of every published file, report and audience file."""
    out = {}
    for top in ("published", "reports", "audiences"):
        for path in sorted((wh / top).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(wh))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def copy(reference, tmp_path) -> Path:
    wh = tmp_path / "warehouse"
    shutil.copytree(reference.warehouse, wh)
    return wh


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _last_run(wh: Path, columns: str) -> tuple:
    return _query(
        wh / "work" / "rapport_work.duckdb", f"select {columns} from ops.runs order by started_at desc limit 1"
    )[0]


# ---------------------------------------------------------------- sources that lost their data


def test_emptied_sources_stop_the_run_naming_each_source_and_the_setting(copy):
    before = _outputs(copy)
    demo = copy / "demo"
    # the ESP export folder is an empty mount point; the shop's orders table was emptied; the helpdesk
    # answers every request, with nothing in it
    work = copy / "work" / "rapport_work.duckdb"
    (n_files,) = _query(work, "select count(*) from ops.esp_manifest")[0]
    (n_orders,) = _query(work, "select count(distinct id) from raw.shop_orders")[0]
    esp = demo / "esp"
    shutil.rmtree(esp)
    esp.mkdir()
    shop = sqlite3.connect(demo / "shop.db")
    shop.execute("delete from orders")
    shop.commit()
    shop.close()
    for kind in ("users", "tickets"):
        with gzip.open(demo / "helpdesk" / f"{kind}.jsonl.gz", "wt", encoding="utf-8"):
            pass

    proc = _run(copy)
    out = proc.stdout
    assert proc.returncode != 0, out + log_tail(copy)
    assert _outputs(copy) == before  # nothing published, no report, no audience file changed
    assert f"esp: RAPPORT_ESP_ROOT ({esp}) holds 0 of the {n_files} export files" in out, out + log_tail(copy)
    assert f"orders: table orders holds 0 rows, {n_orders} were landed before" in out, out
    assert "helpdesk: the export of users since " in out and "returned none of the " in out, out
    for source in ("extract_esp", "extract_orders", "extract_helpdesk"):
        assert any(line.split()[-2:] == [source, "failed"] for line in out.splitlines()), out
    assert out.count("RAPPORT_VOLUME_DROP_ERROR_PCT") >= 3, out
    status, error = _last_run(copy, "status, error")
    assert status == "failed" and "RAPPORT_VOLUME_DROP_ERROR_PCT" in error


def test_a_missing_orders_database_fails_at_once_naming_the_setting(copy):
    before = _outputs(copy)
    gone = copy / "moved" / "shop.db"
    proc = _run(copy, RAPPORT_ORDERS_DB_URL=f"sqlite:///{gone}")
    out = proc.stdout + log_tail(copy, 200_000)
    assert proc.returncode != 0, out
    assert f"orders database not found: {gone}" in proc.stdout, out
    assert "RAPPORT_ORDERS_DB_URL" in proc.stdout, out
    assert "attempt 1/" not in out  # no retry inside the extractor ("...; attempt 1/4, retrying") ...
    assert "extract_orders (try 1) failed" in out and "(try 2)" not in out  # ... nor by Airflow
    assert _outputs(copy) == before


# ---------------------------------------------------------------- hostile records that must be kept


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    """A CSV as a Windows tool writes it: UTF-8 with a byte-order mark, CRLF line ends."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(rows)


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _an_event(esp: Path) -> dict:
    for line in gzip.decompress(next((esp / "events").rglob("*.jsonl.gz")).read_bytes()).splitlines():
        try:
            return json.loads(line)
        except ValueError:  # the demo writes a few malformed lines on purpose
            continue
    raise AssertionError("no event to copy")


def _insert_order(shop: sqlite3.Connection, order_id: int, created: str, updated: str, email: str) -> None:
    shop.execute(
        "insert into orders (id, customer_id, email, phone, status, currency, subtotal, discount_total, "
        "shipping_total, tax_total, total, refunded_total, discount_code, utm_source, utm_medium, utm_campaign, "
        "created_at, updated_at, cancelled_at) values (?, null, ?, null, 'paid', 'USD', 20, 0, 0, 0, 20, 0, "
        "null, null, null, null, ?, ?, null)",
        [order_id, email, created, updated],
    )


def test_hostile_records_are_quarantined_or_loaded_and_counted(copy, reference):
    demo = copy / "demo"
    work = copy / "work" / "rapport_work.duckdb"
    (watermark,) = _query(work, "select value from ops.extract_state where key = 'orders.updated_at'")[0]
    backdated = f"{watermark[:10]}T00:00:00Z"  # the day of the watermark: hours older than the look-back
    assert backdated.replace("T", " ")[:19] < watermark

    shop = sqlite3.connect(demo / "shop.db")
    _insert_order(shop, 990001, "2026-11-01T10:00:00Z", "2099-01-01T00:00:00Z", "future@example.com")
    _insert_order(shop, 990002, backdated, backdated, "late.commit@example.com")
    shop.execute(
        "insert into customers values (990003, ?, 'Eve', 'Il', null, 'US', 1, '2026-11-01T09:00:00Z', "
        "'2026-11-01T09:00:00Z')",
        [HOSTILE],
    )
    shop.commit()
    shop.close()

    esp = demo / "esp"
    contacts = _read_csv(sorted((esp / "contacts").glob("contacts_*.csv"))[-1])
    contacts += [
        ["c-hostile", HOSTILE, "Eve", "Il", "subscribed", "2026-11-01T08:00:00Z", "2026-11-01T08:00:00Z"],
        ["c-dashed", DASHED, "Dash", "Lee", "subscribed", "2026-11-01T08:00:00Z", "2026-11-01T08:00:00Z"],
    ]
    _write_csv(esp / "contacts" / "contacts_20261101.csv", contacts)
    _write_csv(
        esp / "campaigns" / "campaigns_20261101.csv", _read_csv(sorted((esp / "campaigns").glob("campaigns_*.csv"))[-1])
    )
    template = _an_event(esp)
    events = [dict(template, sg_event_id=f"bom-{i}", timestamp=1793523600 + i) for i in range(2)]  # 11-01 09:00
    part = esp / "events" / "dt=2026-11-01" / "hour=09"
    part.mkdir(parents=True)
    (part / "part-0000.jsonl").write_bytes(b"\xef\xbb\xbf" + b"".join(json.dumps(e).encode() + b"\r\n" for e in events))

    proc = _run(copy, RAPPORT_FRESHNESS_WARN_HOURS="1")
    assert proc.returncode == 0, proc.stdout + log_tail(copy)

    # the 2099 order: quarantined with the reason, counted, and the watermark did not jump to 2099
    rejects = _query(work, "select reason from quarantine.shop_orders_rejects where location = 'orders:id=990001'")
    assert len(rejects) == 1 and "in the future" in rejects[0][0] and "RAPPORT_CLOCK_SKEW_MINUTES" in rejects[0][0]
    assert _query(work, "select count(*) from raw.shop_orders where id = 990001") == [(0,)]
    (new_mark,) = _query(work, "select value from ops.extract_state where key = 'orders.updated_at'")[0]
    assert new_mark < "2027"
    # the late commit: loaded by the reconciliation and counted
    assert _query(work, "select count(*) from raw.shop_orders where id = 990002") == [(1,)]
    published = copy / "published" / "rapport.duckdb"
    run = _query(
        published,
        "select orders_future_dated, orders_reconciled, orders_quarantined, orders_warnings, "
        "helpdesk_warnings, esp_warnings from ops.runs order by started_at desc limit 1",
    )[0]
    assert run[:2] == (1, 1) and run[2] >= 1, run
    assert (
        "; 1 dated in the future (quarantined); 1 committed after the look-back (found by the reconciliation)"
    ) in proc.stdout

    # BOM and CRLF: every event and every contact of the new files landed, nothing from them was quarantined
    assert _query(work, "select count(*) from raw.esp_events where sg_event_id like 'bom-%'") == [(2,)]
    assert _query(work, "select count(*) from raw.esp_contacts where contact_id in ('c-hostile', 'c-dashed')") == [(2,)]
    for table in ("esp_events", "esp_contacts", "esp_campaigns"):
        assert (
            _query(
                work,
                f"select location, reason from quarantine.{table}_rejects where location like "
                "'%20261101%' or location like '%2026-11-01%'",
            )
            == []
        ), table

    # the formula address: no identifier (the shop customer and the ESP contact stay apart), never exported,
    # counted once per source in the quality mart; the valid dashed address is exported unchanged
    ids = dict(
        _query(
            published,
            "select source_id, customer_id from marts.customer_identities where source_id in ('990003', 'c-hostile')",
        )
    )
    assert len(ids) == 2 and ids["990003"] != ids["c-hostile"], ids
    cells = [cell for path in (copy / "audiences").glob("*.csv") for row in _read_csv(path) for cell in row]
    assert not [c for c in cells if "HYPERLINK" in c.upper()]
    assert DASHED in cells
    quality = "select source, invalid_emails from marts.email_address_quality order by source"
    before, after = (
        dict(_query(reference.warehouse / "published" / "rapport.duckdb", quality)),
        dict(_query(published, quality)),
    )
    assert {s: after[s] - before.get(s, 0) for s in after if after[s] != before.get(s, 0)} == {
        "esp.contact": 1,
        "orders.customer": 1,
    }

    # the stale sources (one hour allowed): a warning in the terminal, in ops.runs and in the report
    for source, warning in zip(("orders", "helpdesk", "esp"), run[3:], strict=True):
        assert warning and "RAPPORT_FRESHNESS_WARN_HOURS" in warning, (source, run)
        assert f"{source}: {warning.splitlines()[0]}" in proc.stdout, proc.stdout
    report = (copy / "reports" / "latest.html").read_text(encoding="utf-8")
    assert "RAPPORT_FRESHNESS_WARN_HOURS" in report
