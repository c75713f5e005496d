"""End to end as a user runs it: `rapport generate` + `rapport run` as processes, on a small demo.

Row counts must reconcile from each source, to raw, to staging; a rerun must not duplicate anything; a run
that fails half-way must leave the previously published file byte-identical.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from demo_builds import DEMO_INTERVAL_END, DemoRun, cli_env, copy_of_demo, demo_first_run, log_tail, rapport

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INTERVAL_END = DEMO_INTERVAL_END


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return rapport(args, env, timeout=900)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, str], DemoRun]:
    """A private copy of the session's demo warehouse (tests/demo_builds.py: `rapport generate` and one clean
    `rapport run`, as processes), its environment and what that first run printed. The tests below run on
    it in file order, each after the previous one's run (the rerun test counts the runs)."""
    wh = copy_of_demo(tmp_path_factory, tmp_path_factory.mktemp("e2e") / "warehouse")
    return wh, cli_env(wh), demo_first_run(tmp_path_factory)


def _work(wh: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(wh / "work" / "rapport_work.duckdb"), read_only=True)


def _one(con, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def test_run_prints_where_the_outputs_are(demo):
    wh, _env, first = demo
    # the first run's output names the published file of the warehouse it ran on (the shared build's
    # directory, renamed since; `wh` is a copy of it)
    assert str(first.warehouse / "published" / "rapport.duckdb") in first.stdout
    assert "report" in first.stdout
    assert (wh / "published" / "rapport.duckdb").exists()


def test_published_file_meets_the_marts_contract(demo):
    wh, _env, _ = demo
    checker = ROOT.parent / "shared" / "tools" / "check_published.py"
    if not checker.exists():
        pytest.fail(f"the contract checker is missing at {checker}")
    out = subprocess.run(
        [sys.executable, str(checker), "--all", str(wh / "published" / "rapport.duckdb")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_orders_reconcile_source_raw_staging(demo):
    wh, _env, _ = demo
    shop = sqlite3.connect(wh / "demo" / "shop.db")
    con = _work(wh)
    for table, raw, stg in [
        ("customers", "raw.shop_customers", "staging.stg_shop__customers"),
        ("orders", "raw.shop_orders", "staging.stg_shop__orders"),
        ("order_items", "raw.shop_order_items", "staging.stg_shop__order_items"),
    ]:
        n_source = shop.execute(f"select count(*) from {table}").fetchone()[0]
        assert n_source > 0
        assert _one(con, f"select count(distinct id) from {raw}") == n_source, table
        assert _one(con, f"select count(*) from {stg}") == n_source, table
    n_fx = shop.execute("select count(*) from fx_rates").fetchone()[0]
    assert _one(con, "select count(*) from staging.stg_shop__fx_rates") == n_fx
    # every valid order's revenue reaches exactly one customer
    valid = shop.execute(
        "select count(*) from orders where status in ('paid', 'fulfilled', 'partially_refunded')"
    ).fetchone()[0]
    assert _one(con, "select sum(order_count) from marts.customers") == valid


def _jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_helpdesk_reconciles_source_raw_staging(demo):
    wh, _env, _ = demo
    con = _work(wh)
    for kind, raw, stg in [
        ("users", "raw.helpdesk_users", "staging.stg_helpdesk__users"),
        ("tickets", "raw.helpdesk_tickets", "staging.stg_helpdesk__tickets"),
    ]:
        items = _jsonl_gz(wh / "demo" / "helpdesk" / f"{kind}.jsonl.gz")
        versions = {(i["id"], i["updated_at"]) for i in items}
        ids = {i["id"] for i in items}
        assert _one(con, f"select count(*) from {raw}") == len(versions), kind
        assert _one(con, f"select count(*) from {stg}") == len(ids), kind


def test_esp_events_reconcile_lines_to_landed_quarantined_duplicates(demo):
    wh, _env, _ = demo
    con = _work(wh)
    lines = good = 0
    event_ids: set[str] = set()
    for path in sorted((wh / "demo" / "esp" / "events").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                lines += 1
                try:
                    event = json.loads(line)
                    event_ids.add(event["sg_event_id"])
                    good += 1
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass
    landed = _one(con, "select count(*) from raw.esp_events")
    quarantined = _one(con, "select count(*) from quarantine.esp_events_rejects")
    assert landed == len(event_ids)
    assert quarantined == lines - good
    assert quarantined > 0  # the demo carries malformed lines by contract
    assert _one(con, "select count(*) from staging.stg_esp__events") == landed
    logged = con.execute(
        "select sum(rows_read), sum(rows_landed), sum(rows_quarantined), sum(rows_duplicate) "
        "from ops.extraction_log where \"table\" = 'esp_events'"
    ).fetchone()
    assert logged[0] == logged[1] + logged[2] + logged[3]


def test_esp_contacts_and_audiences_reconcile(demo):
    wh, _env, _ = demo
    con = _work(wh)
    esp = wh / "demo" / "esp"
    contact_ids = set(
        duckdb.connect()
        .execute(f"select distinct contact_id::varchar from read_csv('{esp}/contacts/*.csv', all_varchar=true)")
        .fetchall()
    )
    assert _one(con, "select count(*) from staging.stg_esp__contacts") == len(contact_ids)
    audience_rows = (
        duckdb.connect()
        .execute(f"select count(*) from read_csv('{esp}/audiences/*.csv', all_varchar=true)")
        .fetchone()[0]
    )
    assert _one(con, "select count(*) from raw.esp_audiences") == audience_rows


def test_rerun_of_the_same_interval_adds_no_rows(demo):
    wh, env, _ = demo
    tables = [
        "raw.shop_customers",
        "raw.shop_orders",
        "raw.helpdesk_tickets",
        "raw.esp_events",
        "raw.esp_contacts",
        "marts.customers",
        "marts.customer_identities",
    ]
    con = _work(wh)
    before = {t: _one(con, f"select count(*) from {t}") for t in tables}
    con.close()
    again = _run(["run", "--interval-end", INTERVAL_END], env)
    assert again.returncode == 0, again.stdout + log_tail(wh)
    con = _work(wh)
    after = {t: _one(con, f"select count(*) from {t}") for t in tables}
    assert after == before
    runs = con.execute("select count(*), count(*) filter (status = 'success') from ops.runs").fetchone()
    assert runs == (2, 2)


READER = """
import json, sys, time
from pathlib import Path
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

db, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
# A BI tool's connection: SQLAlchemy through duckdb-engine, read-only, a fresh connection per query.
engine = create_engine(f"duckdb:///{db}", connect_args={"read_only": True}, poolclass=NullPool)
sig = text(
    "select (select string_agg(run_id, ',' order by run_id) from ops.runs where status = 'success'), "
    "(select count(*) from marts.customers), (select sum(order_count) from marts.customers), "
    "(select count(*) from marts.customer_identities), (select count(*) from marts.campaign_performance)"
)
with out.open("w") as fh:
    while not stop.exists():
        try:
            with engine.connect() as con:
                row = con.execute(sig).one()
            fh.write(json.dumps({"ok": [str(v) for v in row]}) + "\\n")
        except Exception as exc:
            fh.write(json.dumps({"error": repr(exc)}) + "\\n")
        fh.flush()
        time.sleep(0.05)
"""


def _signature(db: Path) -> list[str]:
    code = READER.split("with out.open")[0] + (
        "\nwith engine.connect() as con: print(json.dumps([str(v) for v in con.execute(sig).one()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db), "/dev/null", "/dev/null"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_bi_reader_sees_complete_old_or_new_marts_during_a_run(demo, tmp_path):
    wh, env, _ = demo
    published = wh / "published" / "rapport.duckdb"
    old = _signature(published)
    # New data at the source, so the next run publishes different marts.
    shop = sqlite3.connect(wh / "demo" / "shop.db")
    shop.execute(
        "insert into orders (id, customer_id, email, status, currency, subtotal, discount_total, shipping_total, "
        "tax_total, total, refunded_total, created_at, updated_at) values "
        "(99999990, null, 'new.buyer@example.com', 'paid', 'USD', 10, 0, 0, 0, 10, 0, "
        "'2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z')"
    )
    shop.commit()
    shop.close()
    out, stop = tmp_path / "reads.jsonl", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(published), str(out), str(stop)])
    try:
        run = _run(["run", "--interval-end", "2026-11-01T12:00:00"], env)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    assert run.returncode == 0, run.stdout + log_tail(wh)
    new = _signature(published)
    assert new != old
    reads = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [r["error"] for r in reads if "error" in r]
    assert errors == []
    seen = [r["ok"] for r in reads]
    assert len(seen) > 10
    assert all(s in (old, new) for s in seen), {tuple(s) for s in seen} - {tuple(old), tuple(new)}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_failed_run_leaves_published_file_byte_identical(demo):
    wh, env, _ = demo
    published = wh / "published" / "rapport.duckdb"
    before = _sha(published)
    # The helpdesk is down: extraction of orders succeeds, then the run stops at the helpdesk.
    # No Airflow retry of the extract task (`rapport run` retries a failed source once, after 5-10 s): the
    # retry would wait out the helpdesk client's own backoff (8 attempts, ~30 s) a second time and end the
    # same way; what this test protects is the published file once the run has failed.
    bad = dict(env, RAPPORT_HELPDESK_URL=f"http://127.0.0.1:{_closed_port()}", RAPPORT_EXTRACT_RETRIES="0")
    failed = _run(["run", "--interval-end", "2026-11-02T00:00:00"], bad)
    assert failed.returncode != 0
    assert "helpdesk" in failed.stdout.lower()
    assert _sha(published) == before
    con = _work(wh)
    status = con.execute("select status from ops.runs order by started_at desc limit 1").fetchone()[0]
    assert status == "failed"


def test_failed_transform_leaves_published_file_byte_identical(demo):
    wh, env, _ = demo
    published = wh / "published" / "rapport.duckdb"
    before = _sha(published)
    # A source change that breaks the data contract after extraction: an order with an unknown status.
    shop = sqlite3.connect(wh / "demo" / "shop.db")
    shop.execute(
        "insert into orders (id, customer_id, email, status, currency, subtotal, discount_total, shipping_total, "
        "tax_total, total, refunded_total, created_at, updated_at) values "
        "(99999999, null, 'x@example.com', 'teleported', 'USD', 1, 0, 0, 0, 1, 0, "
        "'2026-11-02T10:00:00Z', '2026-11-02T10:00:00Z')"
    )
    shop.commit()
    shop.close()
    failed = _run(["run", "--interval-end", "2026-11-03T00:00:00"], env)
    assert failed.returncode != 0, failed.stdout
    assert _sha(published) == before


def _browser_harness():
    """The DevTools client and pixel checks of tests/reports/test_browser.py, reused on the demo's report."""
    import importlib.util

    path = ROOT / "tests" / "reports" / "test_browser.py"
    spec = importlib.util.spec_from_file_location("rapport_browser_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_report_renders_in_headless_chromium(demo, tmp_path):
    wh, _env, _ = demo
    harness = _browser_harness()
    if harness.CHROMIUM is None:
        pytest.skip("!!! Chromium is NOT installed (scripts/install_chromium.sh): the demo report was not opened !!!")
    html = wh / "reports" / "latest.html"
    browser = harness.Browser()
    try:
        browser.open(html.as_uri())
        charts = browser.evaluate(harness.CHARTS_JS)
        images = browser.evaluate(harness.IMAGES_JS)
        text = browser.evaluate("document.body.innerText")
        png = browser.screenshot()
        problems = browser.problems()
    finally:
        browser.close()
    (tmp_path / "demo_report.png").write_bytes(png)
    assert problems == []
    # Movement charts need two as-of dates in the segment history; every run here is as of 2026-11-01.
    assert {c["name"] for c in charts} == harness.EXPECTED_CHARTS - {"migrations", "segment_history"}
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 60 and chart["shapes"] > 5, chart
    assert all(i["ok"] for i in images), images
    stddev, inked = harness.ink(png)
    assert stddev > 20 and inked > 0.05
    # Email addresses are masked in the report: none of the demo's customer addresses appear in full.
    pub = duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True)
    emails = [
        r[0] for r in pub.execute("select primary_email from marts.customers where primary_email like '%@%'").fetchall()
    ]
    pub.close()
    assert emails and not [e for e in emails if e.strip() in text]


def test_demo_report_pdf_has_every_section_with_text(demo):
    from pypdf import PdfReader

    wh, _env, _ = demo
    pdf = wh / "reports" / "latest.pdf"
    if not pdf.exists():
        harness = _browser_harness()
        assert harness.CHROMIUM is None, "Chromium is installed but the run wrote no PDF"
        pytest.skip("!!! Chromium is NOT installed: the run wrote no PDF !!!")
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    headings = _browser_harness().PAGE_HEADINGS
    assert len(pages) >= len(headings)
    everything = "\n".join(pages)
    for heading in headings:
        assert heading in everything
    assert all(len(p.strip()) > 50 for p in pages)
