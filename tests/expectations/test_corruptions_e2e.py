"""Corruptions injected into the demo sources, caught by the intended suite with the intended severity.

Every test starts from the session's clean demo warehouse (tests/demo_builds.py: `rapport generate` +
`rapport run`, as processes; built once per test session), copies it, corrupts sources the way a real
source goes wrong, runs `rapport run` again for a later interval, and reads `ops.check_results` of that run.
For `error` checks the run must fail and the published file stay byte-identical; for `warn` checks the run
goes on and publishes.

A second run costs about a minute, so corruptions that cannot mask or cause one another share one copy and
one run; each test then asserts its own (suite, expectation, severity) on that run's `ops.check_results`, the
sample of *its* expectation naming its own culprit, and the run's output. The groups:

- `shop_and_volume`: a reused order id and a negative total (two expectations of raw_shop_orders, each
  sampled on its own rows: the reused id has a positive total, the negative total a fresh id) and a send
  that lost 90% of its delivery webhooks (raw_volume, judged per send on the new campaign alone: no other
  event changes in this copy).
- `esp_records`: an unknown event type and an event a year ahead (two expectations of raw_esp_events, on two
  different events in two different files, neither a delivery webhook of a new send) and a contacts
  snapshot without its `status` column (raw_esp_contacts; the column is optional at extraction, so the
  snapshot lands with nulls instead of failing the extract task and hiding the other checks).
- `rollback_then_orphan`: a customer's changed creation time stops a run (raw_shop_customers); its rows
  must be rolled back so that correcting the source is enough. The corrected run is also where the orphan
  ticket requester (a `warn` of raw_helpdesk_tickets, injected with the correction) must not stop the run:
  that run must publish for both claims, and any `error` in it would fail both.
- the rate above one in a mart stops at the mart gate, after a raw gate that must pass: its own run.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from demo_builds import cli_env, copy_of_demo, demo_warehouse, log_tail, rapport

pytestmark = pytest.mark.slow

SECOND_END = "2026-11-08T00:00:00"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SecondRun:
    """A corrupted copy's run: the process, this run's failed checks, its id, the published file's hash
    before and right after it, and what the corruptions returned (their culprits)."""

    wh: Path
    published_before: str
    published_after: str
    proc: subprocess.CompletedProcess
    failed: list[tuple]
    run_id: str
    culprits: dict[str, object] = field(default_factory=dict)


def _copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return copy_of_demo(tmp_path_factory, tmp_path_factory.mktemp(name) / "warehouse")


def _run_again(wh: Path, interval_end: str = SECOND_END) -> tuple[subprocess.CompletedProcess, list[tuple], str]:
    """Run again for a later interval; (process, this run's failed checks, the run id)."""
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    before = {r[0] for r in con.execute("select run_id from ops.runs").fetchall()}
    con.close()
    proc = rapport(["run", "--interval-end", interval_end], cli_env(wh))
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    (run_id,) = {r[0] for r in con.execute("select run_id from ops.runs").fetchall()} - before
    failed = con.execute(
        "select gate, suite, expectation, severity, observed_value, sample from ops.check_results "
        "where run_id = ? and not success order by gate, suite, expectation",
        [run_id],
    ).fetchall()
    con.close()
    return proc, failed, run_id


def _second_run(wh: Path, culprits: dict[str, object]) -> SecondRun:
    published = _sha(wh / "published" / "rapport.duckdb")
    proc, failed, run_id = _run_again(wh)
    return SecondRun(wh, published, _sha(wh / "published" / "rapport.duckdb"), proc, failed, run_id, culprits)


def _assert_stopped_by(
    run: SecondRun, suite: str, expectation: str, shows: tuple[str, ...], names: tuple[str, ...]
) -> None:
    """The run failed on `suite`/`expectation` (error), says so with a sample showing the culprit (`shows`:
    one of these sample lines), whose key (one of `names`) this expectation's own sample in ops.check_results holds
    (the run may stop on other corruptions of its group too), and published nothing."""
    out = run.proc.stdout + log_tail(run.wh)
    assert run.proc.returncode != 0, out
    mine = [f for f in run.failed if (f[1], f[2], f[3]) == (suite, expectation, "error")]
    assert len(mine) == 1, run.failed
    assert any(n in (mine[0][5] or "") for n in names), mine
    assert f"suite {suite}: {expectation} [error]" in run.proc.stdout, run.proc.stdout
    assert "offending rows" in run.proc.stdout, run.proc.stdout
    assert any(s in run.proc.stdout for s in shows), run.proc.stdout  # the sample names the culprit
    # as the run left it (a later run of the same copy may publish: the rollback test's does)
    assert run.published_after == run.published_before


def test_a_clean_demo_run_passes_every_suite(tmp_path_factory):
    from rapport.expectations.catalog import suites_for

    clean = demo_warehouse(tmp_path_factory)
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


def _reuse_an_order_id(wh: Path) -> int:
    """The shop's table lost its primary key and a second, different order reused an existing id."""
    shop = _shop(wh)
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
    shop.close()
    return victim[0]


def _add_a_negative_total(wh: Path) -> None:
    shop = _shop(wh)
    _insert_order(
        shop,
        id=90000001,
        subtotal=-120.0,
        total=-120.0,
        created_at="2026-11-03T10:00:00Z",
        updated_at="2026-11-03T10:00:00Z",
    )
    shop.commit()
    shop.close()


def _lose_90_percent_of_a_sends_webhooks(wh: Path) -> None:
    """A new campaign goes out, but the webhook receiver keeps only a few percent of its delivery events
    (the demo's sends bring about two per treated recipient: processed and delivered)."""
    esp = wh / "demo" / "esp"
    latest = sorted((esp / "campaigns").glob("campaigns_*.csv"))[-1]
    snapshot = latest.read_text(encoding="utf-8").rstrip("\n")
    snapshot += "\nthin000001,Winter teaser,Something new,2026-11-03T10:00:00Z,all,10,50,USD\n"
    (esp / "campaigns" / "campaigns_20261103.csv").write_text(snapshot, encoding="utf-8")
    biggest = max((esp / "audiences").glob("*.csv"), key=lambda p: p.stat().st_size)
    audience = biggest.read_text(encoding="utf-8")
    (esp / "audiences" / "thin000001.csv").write_text(audience, encoding="utf-8")
    treated = [line.split(",")[0] for line in audience.splitlines()[1:] if line.endswith(",treatment")]
    kept = treated[: max(1, len(treated) // 20)]  # 5% of the recipients, one webhook each
    template = _demo_events(wh)[0]
    _events_file(
        wh,
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


def _rename_an_event_type(wh: Path) -> None:
    template = _demo_events(wh)[0]
    renamed = dict(template, event="opened", sg_event_id="corrupt-renamed-open", timestamp=_unix("2026-11-03T10:15:00"))
    _events_file(wh, "2026-11-03", 10, [renamed])


def _date_an_event_a_year_ahead(wh: Path) -> None:
    template = _demo_events(wh)[0]
    ahead = datetime.now(UTC) + timedelta(days=365)
    late = dict(template, sg_event_id="corrupt-year-ahead", timestamp=int(ahead.timestamp()))
    _events_file(wh, "2026-11-04", 8, [late])


def _drop_the_contacts_status_column(wh: Path) -> list[str]:
    """The ESP changed its export: the next daily snapshot comes without the `status` column; the contact
    ids of that snapshot."""
    contacts = wh / "demo" / "esp" / "contacts"
    latest = sorted(contacts.glob("contacts_*.csv"))[-1]
    rows = duckdb.connect().execute(f"select * exclude (status) from read_csv('{latest}', all_varchar=true)").fetchall()
    header = "contact_id,email,first_name,last_name,created_at,updated_at\n"
    text = header + "".join(",".join(f'"{v}"' if v else "" for v in r) + "\n" for r in rows)
    (contacts / "contacts_20261103.csv").write_text(text, encoding="utf-8")
    return [r[0] for r in rows]


ORPHAN_REQUESTER = 555000000999


def _add_an_orphan_ticket(wh: Path) -> None:
    """A ticket whose requester the helpdesk's users export does not hold."""
    tickets = wh / "demo" / "helpdesk" / "tickets.jsonl.gz"
    with gzip.open(tickets, "rt", encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    orphan = dict(
        items[-1],
        id=987654,
        requester_id=ORPHAN_REQUESTER,
        created_at="2026-11-04T08:00:00Z",
        updated_at="2026-11-04T08:30:00Z",
    )
    with gzip.open(tickets, "wt", encoding="utf-8") as fh:
        for item in [*items, orphan]:
            fh.write(json.dumps(item) + "\n")


# ---------------------------------------------------------------- one run per group (see the module doc)


@pytest.fixture(scope="module")
def shop_and_volume(tmp_path_factory) -> SecondRun:
    wh = _copy(tmp_path_factory, "shop-and-volume")
    victim = _reuse_an_order_id(wh)
    _add_a_negative_total(wh)
    _lose_90_percent_of_a_sends_webhooks(wh)
    return _second_run(wh, {"reused_order_id": victim})


@pytest.fixture(scope="module")
def esp_records(tmp_path_factory) -> SecondRun:
    wh = _copy(tmp_path_factory, "esp-records")
    _rename_an_event_type(wh)
    _date_an_event_a_year_ahead(wh)
    contact_ids = _drop_the_contacts_status_column(wh)
    return _second_run(wh, {"contacts_without_status": contact_ids})


def test_duplicate_order_ids_stop_the_run_before_transformation(shop_and_volume):
    victim = shop_and_volume.culprits["reused_order_id"]
    _assert_stopped_by(
        shop_and_volume,
        "raw_shop_orders",
        "expect_column_values_to_be_between(created_at_variants)",
        (f"{victim} | 2",),
        (str(victim),),
    )


def test_negative_totals_stop_the_run_before_transformation(shop_and_volume):
    _assert_stopped_by(
        shop_and_volume,
        "raw_shop_orders",
        "expect_column_values_to_be_between(total)",
        ("90000001 | -120.0",),
        ("90000001",),
    )


def test_a_90_percent_drop_in_events_stops_the_run_before_transformation(shop_and_volume):
    _assert_stopped_by(
        shop_and_volume, "raw_volume", "volume_ratio drop of 90% or more", ("esp_events",), ("esp_events",)
    )


def test_unknown_event_type_stops_the_run_before_transformation(esp_records):
    _assert_stopped_by(
        esp_records,
        "raw_esp_events",
        "expect_column_values_to_be_in_set(event)",
        ("corrupt-renamed-open | opened",),
        ("corrupt-renamed-open",),
    )


def test_a_missing_column_stops_the_run_before_transformation(esp_records):
    ids = esp_records.culprits["contacts_without_status"]
    _assert_stopped_by(
        esp_records,
        "raw_esp_contacts",
        "expect_column_values_to_not_be_null(status)",
        tuple(f"{i} | null" for i in ids),  # type: ignore[attr-defined]
        tuple(ids),  # type: ignore[arg-type]
    )


def test_timestamps_a_year_ahead_stop_the_run_before_transformation(esp_records):
    _assert_stopped_by(
        esp_records,
        "raw_esp_events",
        "expect_column_values_to_be_between(event_at)",
        ("corrupt-year-ahead",),
        ("corrupt-year-ahead",),
    )


@dataclass
class RollbackThenOrphan:
    """The stopped run, what it left landed, and the run after the correction (with the orphan ticket)."""

    stopped: SecondRun
    landed_by_stopped: dict[str, int]
    customer_id: int
    corrected: subprocess.CompletedProcess
    corrected_failed: list[tuple]
    created_at_versions: int


@pytest.fixture(scope="module")
def rollback_then_orphan(tmp_path_factory) -> RollbackThenOrphan:
    wh = _copy(tmp_path_factory, "rollback-then-orphan")
    shop = _shop(wh)
    cid, created = shop.execute("select id, created_at from customers order by id limit 1").fetchone()
    # a record whose creation time changed
    shop.execute(
        "update customers set created_at = '2026-11-03T09:00:00Z', updated_at = '2026-11-03T09:00:00Z' where id = ?",
        [cid],
    )
    shop.commit()
    stopped = _second_run(wh, {})
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    landed = {
        table: con.execute(f"select count(*) from raw.{table} where _run_id = ?", [stopped.run_id]).fetchone()[0]
        for table in ("shop_customers", "shop_orders", "esp_events")
    }
    con.close()
    # the shop puts the creation time back (a new version, as updates arrive); meanwhile a ticket arrives
    # whose requester the helpdesk does not export
    shop.execute(
        "update customers set created_at = ?, updated_at = '2026-11-04T08:00:00Z' where id = ?", [created, cid]
    )
    shop.commit()
    shop.close()
    _add_an_orphan_ticket(wh)
    corrected, corrected_failed, _ = _run_again(wh, "2026-11-09T00:00:00")
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    (versions,) = con.execute(
        "select count(distinct created_at) from raw.shop_customers where id = ?", [cid]
    ).fetchone()
    con.close()
    return RollbackThenOrphan(stopped, landed, cid, corrected, corrected_failed, versions)


def test_after_a_stopped_run_its_rows_are_rolled_back_and_the_corrected_source_loads(rollback_then_orphan):
    """A record whose creation time changed stops the run; its landed rows are rolled back, so correcting the
    source is enough. Left in place, the bad version would stop every later run (variants never shrink)."""
    r = rollback_then_orphan
    _assert_stopped_by(
        r.stopped,
        "raw_shop_customers",
        "expect_column_values_to_be_between(created_at_variants)",
        (f"{r.customer_id} | 2",),
        (str(r.customer_id),),
    )
    assert "rolled back" in r.stopped.proc.stdout and "run again" in r.stopped.proc.stdout, r.stopped.proc.stdout
    assert r.landed_by_stopped == {"shop_customers": 0, "shop_orders": 0, "esp_events": 0}
    # the corrected source goes through (the orphan ticket added with the correction is only a warning)
    assert r.corrected.returncode == 0, r.corrected.stdout + log_tail(r.stopped.wh)
    assert _sha(r.stopped.wh / "published" / "rapport.duckdb") != r.stopped.published_before
    assert r.created_at_versions == 1


def test_an_orphan_ticket_requester_is_a_warning_and_the_run_publishes(rollback_then_orphan):
    # the run after the correction of the rollback test above: the orphan ticket arrived with it
    r = rollback_then_orphan
    assert r.corrected.returncode == 0, r.corrected.stdout + log_tail(r.stopped.wh)
    assert [f for f in r.corrected_failed if f[3] == "error"] == []
    orphan_warn = [
        f
        for f in r.corrected_failed
        if (f[1], f[2], f[3])
        == ("raw_helpdesk_tickets", "expect_column_values_to_be_null(orphan_requester_id)", "warn")
    ]
    assert len(orphan_warn) == 1, r.corrected_failed
    assert str(ORPHAN_REQUESTER) in orphan_warn[0][5]  # the sample names the missing requester
    # the run went on and published (the stopped run before it published nothing: the file changed here)
    assert _sha(r.stopped.wh / "published" / "rapport.duckdb") != r.stopped.published_before


def test_a_rate_above_one_in_a_mart_stops_publishing(tmp_path_factory):
    wh = _copy(tmp_path_factory, "mart-rate")
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)
    campaign, delivered = con.execute(
        "select campaign_id, delivered from marts.campaign_performance where delivered > 0 "
        "order by delivered, campaign_id limit 1"
    ).fetchall()[0]
    con.close()
    # Delivery webhooks were lost while clicks kept arriving: more clicking recipients than delivered ones.
    template = next(e for e in _demo_events(wh) if e.get("campaign_id") == campaign)
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
    _events_file(wh, "2026-11-03", 11, clicks)
    run = _second_run(wh, {})
    _assert_stopped_by(
        run, "mart_campaign_performance", "expect_column_values_to_be_between(click_rate)", (campaign,), (campaign,)
    )
    assert not [f for f in run.failed if f[0] == "raw" and f[3] == "error"], run.failed
