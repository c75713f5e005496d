"""Corruptions injected into the demo sources, caught by the intended suite with the intended severity.

A clean demo run is made once (`rapport generate` + `rapport run`, as processes). Each test copies that
warehouse, corrupts one source the way a real source goes wrong, runs `rapport run` again for a later
interval, and reads `ops.check_results` of the second run. For `error` checks the run must fail and the
published file stay byte-identical; for `warn` checks the run goes on and publishes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

RAPPORT = [sys.executable, "-m", "rapport.cli"]
END = "2026-10-31"
FIRST_END = "2026-11-01T00:00:00"
SECOND_END = "2026-11-08T00:00:00"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(RAPPORT + args, env=env, capture_output=True, text=True, timeout=1200)


def _env(wh: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env["RAPPORT_WAREHOUSE_DIR"] = str(wh)
    return env


def _log_tail(wh: Path) -> str:
    logs = sorted((wh / "logs").glob("run-*.log"))
    return logs[-1].read_text(errors="replace")[-5000:] if logs else ""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A warehouse after one clean demo run: every check passed and the marts were published."""
    wh = tmp_path_factory.mktemp("clean") / "warehouse"
    env = _env(wh)
    gen = _run(["generate", "--people", "400", "--seed", "11", "--end", END], env)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    run = _run(["run", "--interval-end", FIRST_END], env)
    assert run.returncode == 0, run.stdout + run.stderr + _log_tail(wh)
    return wh


@pytest.fixture
def copy(clean: Path, tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    shutil.copytree(clean, wh)
    return wh


def _second_run(wh: Path) -> tuple[subprocess.CompletedProcess, list[tuple], str]:
    """Run again for a later interval; (process, this run's failed checks, the run id)."""
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    before = {r[0] for r in con.execute("select run_id from ops.runs").fetchall()}
    con.close()
    proc = _run(["run", "--interval-end", SECOND_END], _env(wh))
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    (run_id,) = {r[0] for r in con.execute("select run_id from ops.runs").fetchall()} - before
    failed = con.execute(
        "select gate, suite, expectation, severity, observed_value, sample from ops.check_results "
        "where run_id = ? and not success order by gate, suite, expectation",
        [run_id],
    ).fetchall()
    con.close()
    return proc, failed, run_id


def _assert_stopped_by(
    wh: Path, published_sha: str, proc, failed, suite: str, expectation: str, shows: tuple[str, ...]
):
    """The run failed on `suite`/`expectation` (error), says so with a sample, and published nothing."""
    out = proc.stdout + _log_tail(wh)
    assert proc.returncode != 0, out
    assert (suite, expectation, "error") in {(f[1], f[2], f[3]) for f in failed}, failed
    assert f"suite {suite}: {expectation} [error]" in proc.stdout, proc.stdout
    assert "offending rows" in proc.stdout, proc.stdout
    assert any(s in proc.stdout for s in shows), proc.stdout  # the sample names the culprit
    assert _sha(wh / "published" / "rapport.duckdb") == published_sha


def test_a_clean_demo_run_passes_every_suite(clean):
    from rapport.expectations.catalog import suites_for

    con = duckdb.connect(str(clean / "work" / "rapport_work.duckdb"), read_only=True)
    rows = con.execute(
        "select gate, count(*), count(*) filter (where success) from ops.check_results group by gate order by gate"
    ).fetchall()
    con.close()
    expected = {g: sum(len(s.expectations) for s in suites_for(g)) for g in ("mart", "raw")}
    assert rows == [("mart", expected["mart"], expected["mart"]), ("raw", expected["raw"], expected["raw"])]
    assert (clean / "data_docs" / "index.html").exists()


# ---------------------------------------------------------------- source helpers


def _shop(wh: Path) -> sqlite3.Connection:
    return sqlite3.connect(wh / "demo" / "shop.db")


ORDER_COLS = (
    "id, customer_id, email, phone, status, currency, subtotal, discount_total, shipping_total, "
    "tax_total, total, refunded_total, discount_code, utm_source, utm_medium, utm_campaign, "
    "created_at, updated_at, cancelled_at"
)


def _insert_order(shop: sqlite3.Connection, **values) -> None:
    row = {
        "customer_id": None,
        "email": "buyer@example.com",
        "phone": None,
        "status": "paid",
        "currency": "USD",
        "subtotal": 10.0,
        "discount_total": 0.0,
        "shipping_total": 0.0,
        "tax_total": 0.0,
        "total": 10.0,
        "refunded_total": 0.0,
        "discount_code": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "cancelled_at": None,
        **values,
    }
    names = ORDER_COLS.split(", ")
    shop.execute(f"insert into orders ({ORDER_COLS}) values ({', '.join('?' * len(names))})", [row[n] for n in names])


def _events_file(wh: Path, day: str, hour: int, events: list[dict], name: str = "part-9000") -> None:
    d = wh / "demo" / "esp" / "events" / f"dt={day}" / f"hour={hour:02d}"
    d.mkdir(parents=True, exist_ok=True)
    with gzip.open(d / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e) + "\n")


def _demo_events(wh: Path) -> list[dict]:
    out = []
    for path in sorted((wh / "demo" / "esp" / "events").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
    return out


def _unix(ts: str) -> int:
    return int(datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp())


# ---------------------------------------------------------------- the corruptions


def test_duplicate_order_ids_stop_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    shop = _shop(copy)
    # The shop's table lost its primary key and a second, different order reused an existing id.
    shop.executescript(
        "create table orders_nopk as select * from orders; drop table orders; alter table orders_nopk rename to orders;"
    )
    victim = shop.execute("select id, customer_id, email from orders order by id limit 1").fetchone()
    _insert_order(
        shop,
        id=victim[0],
        customer_id=None,
        email="someone.else@example.com",
        total=77.0,
        subtotal=77.0,
        created_at="2026-11-03T09:00:00Z",
        updated_at="2026-11-03T09:00:00Z",
    )
    shop.commit()
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_shop_orders",
        "expect_column_values_to_be_between(created_at_variants)",
        (f"{victim[0]} | 2",),
    )


def test_negative_totals_stop_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    shop = _shop(copy)
    _insert_order(
        shop,
        id=90000001,
        subtotal=-120.0,
        total=-120.0,
        created_at="2026-11-03T10:00:00Z",
        updated_at="2026-11-03T10:00:00Z",
    )
    shop.commit()
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_shop_orders",
        "expect_column_values_to_be_between(total)",
        ("90000001 | -120.0",),
    )


def test_after_a_stopped_run_its_rows_are_rolled_back_and_the_corrected_source_loads(copy):
    """A record whose creation time changed stops the run; its landed rows are rolled back, so correcting the
    source is enough. Left in place, the bad version would stop every later run (variants never shrink)."""
    published = _sha(copy / "published" / "rapport.duckdb")
    shop = _shop(copy)
    cid, created = shop.execute("select id, created_at from customers order by id limit 1").fetchone()
    shop.execute(
        "update customers set created_at = '2026-11-03T09:00:00Z', updated_at = '2026-11-03T09:00:00Z' where id = ?",
        [cid],
    )
    shop.commit()
    proc, failed, run_id = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_shop_customers",
        "expect_column_values_to_be_between(created_at_variants)",
        (f"{cid} | 2",),
    )
    assert "rolled back" in proc.stdout and "run again" in proc.stdout, proc.stdout
    con = duckdb.connect(str(copy / "work" / "rapport_work.duckdb"), read_only=True)
    for table in ("shop_customers", "shop_orders", "esp_events"):
        assert con.execute(f"select count(*) from raw.{table} where _run_id = ?", [run_id]).fetchall() == [(0,)]
    con.close()

    # the shop puts the creation time back (a new version, as updates arrive) and the next run goes through
    shop.execute(
        "update customers set created_at = ?, updated_at = '2026-11-04T08:00:00Z' where id = ?", [created, cid]
    )
    shop.commit()
    proc = _run(["run", "--interval-end", "2026-11-09T00:00:00"], _env(copy))
    assert proc.returncode == 0, proc.stdout + _log_tail(copy)
    assert _sha(copy / "published" / "rapport.duckdb") != published
    con = duckdb.connect(str(copy / "work" / "rapport_work.duckdb"), read_only=True)
    assert con.execute("select count(distinct created_at) from raw.shop_customers where id = ?", [cid]).fetchall() == [
        (1,)
    ]
    con.close()


def test_unknown_event_type_stops_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    template = _demo_events(copy)[0]
    renamed = dict(template, event="opened", sg_event_id="corrupt-renamed-open", timestamp=_unix("2026-11-03T10:15:00"))
    _events_file(copy, "2026-11-03", 10, [renamed])
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_esp_events",
        "expect_column_values_to_be_in_set(event)",
        ("corrupt-renamed-open | opened",),
    )


def test_a_missing_column_stops_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    contacts = copy / "demo" / "esp" / "contacts"
    latest = sorted(contacts.glob("contacts_*.csv"))[-1]
    # The ESP changed its export: the next daily snapshot comes without the `status` column.
    rows = duckdb.connect().execute(f"select * exclude (status) from read_csv('{latest}', all_varchar=true)").fetchall()
    header = "contact_id,email,first_name,last_name,created_at,updated_at\n"
    text = header + "".join(",".join(f'"{v}"' if v else "" for v in r) + "\n" for r in rows)
    (contacts / "contacts_20261103.csv").write_text(text, encoding="utf-8")
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_esp_contacts",
        "expect_column_values_to_not_be_null(status)",
        tuple(f"{r[0]} | null" for r in rows),
    )


def test_timestamps_a_year_ahead_stop_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    template = _demo_events(copy)[0]
    ahead = datetime.now(UTC) + timedelta(days=365)
    late = dict(template, sg_event_id="corrupt-year-ahead", timestamp=int(ahead.timestamp()))
    _events_file(copy, "2026-11-04", 8, [late])
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "raw_esp_events",
        "expect_column_values_to_be_between(event_at)",
        ("corrupt-year-ahead",),
    )


def test_a_90_percent_drop_in_events_stops_the_run_before_transformation(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    esp = copy / "demo" / "esp"
    # A new campaign goes out, but the webhook receiver keeps only a few percent of its delivery events
    # (the demo's sends bring about two per treated recipient: processed and delivered).
    latest = sorted((esp / "campaigns").glob("campaigns_*.csv"))[-1]
    snapshot = latest.read_text(encoding="utf-8").rstrip("\n")
    snapshot += "\nthin000001,Winter teaser,Something new,2026-11-03T10:00:00Z,all,10,50,USD\n"
    (esp / "campaigns" / "campaigns_20261103.csv").write_text(snapshot, encoding="utf-8")
    biggest = max((esp / "audiences").glob("*.csv"), key=lambda p: p.stat().st_size)
    audience = biggest.read_text(encoding="utf-8")
    (esp / "audiences" / "thin000001.csv").write_text(audience, encoding="utf-8")
    treated = [line.split(",")[0] for line in audience.splitlines()[1:] if line.endswith(",treatment")]
    kept = treated[: max(1, len(treated) // 20)]  # 5% of the recipients, one webhook each
    template = _demo_events(copy)[0]
    _events_file(
        copy,
        "2026-11-03",
        10,
        [
            dict(
                template,
                email=email,
                event="processed",
                campaign_id="thin000001",
                sg_event_id=f"thin-{i}",
                timestamp=_unix("2026-11-03T10:01:00") + i,
            )
            for i, email in enumerate(kept)
        ],
    )
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(copy, published, proc, failed, "raw_volume", "volume_ratio drop of 90% or more", ("esp_events",))


def test_an_orphan_ticket_requester_is_a_warning_and_the_run_publishes(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    tickets = copy / "demo" / "helpdesk" / "tickets.jsonl.gz"
    with gzip.open(tickets, "rt", encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    orphan = dict(
        items[-1],
        id=987654,
        requester_id=555000000999,
        created_at="2026-11-04T08:00:00Z",
        updated_at="2026-11-04T08:30:00Z",
    )
    with gzip.open(tickets, "wt", encoding="utf-8") as fh:
        for item in [*items, orphan]:
            fh.write(json.dumps(item) + "\n")
    proc, failed, _ = _second_run(copy)
    assert proc.returncode == 0, proc.stdout + _log_tail(copy)
    assert [f for f in failed if f[3] == "error"] == []
    orphan_warn = [
        f
        for f in failed
        if (f[1], f[2], f[3])
        == ("raw_helpdesk_tickets", "expect_column_values_to_be_null(orphan_requester_id)", "warn")
    ]
    assert len(orphan_warn) == 1, failed
    assert "555000000999" in orphan_warn[0][5]  # the sample names the missing requester
    assert _sha(copy / "published" / "rapport.duckdb") != published  # the run went on and published


def test_a_rate_above_one_in_a_mart_stops_publishing(copy):
    published = _sha(copy / "published" / "rapport.duckdb")
    con = duckdb.connect(str(copy / "work" / "rapport_work.duckdb"), read_only=True)
    campaign, delivered = con.execute(
        "select campaign_id, delivered from marts.campaign_performance where delivered > 0 "
        "order by delivered, campaign_id limit 1"
    ).fetchall()[0]
    con.close()
    # Delivery webhooks were lost while clicks kept arriving: more clicking recipients than delivered ones.
    template = next(e for e in _demo_events(copy) if e.get("campaign_id") == campaign)
    clicks = [
        dict(
            template,
            event="click",
            email=f"ghost{i}@example.com",
            sg_event_id=f"ghost-click-{i}",
            url="https://shop.example/sale",
            timestamp=_unix("2026-11-03T11:00:00") + i,
        )
        for i in range(delivered + 3)
    ]
    _events_file(copy, "2026-11-03", 11, clicks)
    proc, failed, _ = _second_run(copy)
    _assert_stopped_by(
        copy,
        published,
        proc,
        failed,
        "mart_campaign_performance",
        "expect_column_values_to_be_between(click_rate)",
        (campaign,),
    )
    assert not [f for f in failed if f[0] == "raw" and f[3] == "error"], failed
