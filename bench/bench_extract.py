"""Extraction throughput (rows/s per source) on a large generated dataset, against a floor measured in the
same run on the same data:

- orders (SQLite): the extractor vs a bare ADBC -> Arrow -> DuckDB table copy of the same tables (DuckDB has
  no SQLite reader offline here: its sqlite extension would have to be downloaded);
- orders (PostgreSQL, with --pg): the extractor vs DuckDB loading a CSV `COPY ... TO STDOUT` of the same tables;
- ESP events: the extractor vs DuckDB `read_json` over the same .jsonl.gz files; contacts vs `read_csv`;
- helpdesk: the extractor vs fetching the same pages with a bare httpx loop (no typing, no landing).

    .venv/bin/python bench/bench_extract.py --orders 1000000 --events 2000000 --helpdesk 100000 [--pg]
        [--out /tmp/rapport-bench] [--results bench/RESULTS.md (append by hand)]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import numpy as np

from rapport.core.config import Settings
from rapport.demo.helpdesk_server import HelpdeskData, serve_helpdesk
from rapport.extractors.esp import extract_esp
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.orders import extract_orders

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2025, 9, 1)
TOKEN = "bench-token"
T0 = 1754006400  # 2025-08-01T00:00:00Z


def _iso(secs: np.ndarray) -> list[str]:
    return np.datetime_as_string(secs.astype("datetime64[s]"), unit="s").astype(object) + "Z"


def gen_shop(path: Path, n_orders: int, seed: int = 1) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    n_cust = max(1, n_orders // 4)
    con = sqlite3.connect(path)
    con.executescript(
        (ROOT / "tests/extractors/extract_helpers.py").read_text().split('SHOP_DDL = """')[1].split('"""')[0]
    )
    con.execute("pragma journal_mode = off")
    con.execute("pragma synchronous = off")
    chunk = 200_000
    for lo in range(0, n_cust, chunk):
        ids = np.arange(lo + 1, min(n_cust, lo + chunk) + 1)
        upd = _iso(T0 + rng.integers(0, 30 * 86400, len(ids)))
        con.executemany(
            "insert into customers values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            zip(
                ids.tolist(),
                [f" User{i}@Example.com " for i in ids.tolist()],
                ["민준"] * len(ids),
                ["김"] * len(ids),
                ["010-1234-5678"] * len(ids),
                ["KR"] * len(ids),
                (ids % 2).tolist(),
                upd,
                upd,
                strict=True,
            ),
        )
    n_items = 0
    for lo in range(0, n_orders, chunk):
        ids = np.arange(lo + 1, min(n_orders, lo + chunk) + 1)
        k = len(ids)
        upd = _iso(T0 + rng.integers(0, 30 * 86400, k))
        sub = np.round(rng.uniform(5, 500, k), 2)
        con.executemany(
            "insert into orders values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            zip(
                ids.tolist(),
                rng.integers(1, n_cust + 1, k).tolist(),
                [None] * k,
                [None] * k,
                ["paid"] * k,
                ["USD"] * k,
                sub.tolist(),
                [0] * k,
                [5] * k,
                [0] * k,
                (sub + 5).round(2).tolist(),
                [0] * k,
                [None] * k,
                ["esp"] * k,
                ["email"] * k,
                ["cmp_1"] * k,
                upd,
                upd,
                [None] * k,
                strict=True,
            ),
        )
        per = rng.integers(1, 4, k)
        oid = np.repeat(ids, per)
        item_ids = np.arange(n_items + 1, n_items + len(oid) + 1)
        n_items += len(oid)
        con.executemany(
            "insert into order_items values (?, ?, ?, ?, ?, ?, ?)",
            zip(
                item_ids.tolist(),
                oid.tolist(),
                ["SKU-1"] * len(oid),
                ["Tea"] * len(oid),
                ["food"] * len(oid),
                [1] * len(oid),
                [9.99] * len(oid),
                strict=True,
            ),
        )
    con.executemany(
        "insert into fx_rates values (?, ?, ?)", [(f"2025-08-{d:02d}", "KRW", 0.00072) for d in range(1, 32)]
    )
    con.commit()
    con.close()
    return {"customers": n_cust, "orders": n_orders, "order_items": n_items, "fx_rates": 31}


def gen_esp(root: Path, n_events: int, n_contacts: int) -> None:
    """Hourly partitions over 10 days; 0.5% of lines are webhook retries (a repeated sg_event_id)."""
    con = duckdb.connect()
    hours = 240
    per = max(1, n_events // hours)
    for h in range(hours):
        part = root / f"events/dt=2025-08-{1 + h // 24:02d}/hour={h % 24:02d}"
        part.mkdir(parents=True)
        con.execute(f"""copy (
            select 'u' || (i % 50000) || '@example.com' as email, {T0} + {h} * 3600 + i % 3600 as timestamp,
                   case when i % 3 = 0 then 'open' when i % 3 = 1 then 'delivered' else 'click' end as event,
                   'ev-' || case when i % 200 = 0 and {h} > 0 then {h - 1} else {h} end || '-' || i as sg_event_id,
                   'msg-' || i as sg_message_id, 'cmp_' || (i % 20) as campaign_id,
                   case when i % 3 = 2 then 'https://shop.example/p/' || i end as url,
                   case when i % 3 = 0 then 'Mozilla/5.0' end as useragent,
                   case when i % 3 = 0 then (i % 7 = 0) end as sg_machine_open
            from range({per}) t(i)) to '{part}/part-0.jsonl.gz' (format json, compression gzip)""")
    (root / "contacts").mkdir(parents=True)
    con.execute(f"""copy (select 'c' || i as contact_id, 'u' || i || '@example.com' as email, 'A' as first_name,
                        'B' as last_name, 'subscribed' as status, '2025-07-01T00:00:00Z' as created_at,
                        '2025-07-01T00:00:00Z' as updated_at from range({n_contacts}) t(i))
                    to '{root}/contacts/contacts_20250801.csv' (header)""")
    con.close()


def settings_for(base: Path, **kw) -> Settings:
    return Settings(
        warehouse_dir=base / "wh",
        orders_db_url=kw.pop("orders_db_url", f"sqlite:///{base}/shop.db"),
        helpdesk_url=None,
        helpdesk_token=TOKEN,
        esp_root=base / "esp",
        as_of=None,
        **kw,
    )


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def fresh_db(base: Path, name: str, settings: Settings) -> duckdb.DuckDBPyConnection:
    p = base / f"{name}.duckdb"
    p.unlink(missing_ok=True)
    return duckdb.connect(str(p), config=settings.duckdb_config())


def floor_then_full_load(
    base: Path,
    name: str,
    settings: Settings,
    load_settings: Settings,
    floor: Callable[[duckdb.DuckDBPyConnection], None],
    rows: int,
) -> tuple[duckdb.DuckDBPyConnection, float, float]:
    """Time the floor (the plain copy of the orders tables into a fresh DuckDB), then the extractor's full
    load into another; returns the loaded warehouse's connection, the floor's and the load's seconds."""
    con = fresh_db(base, f"floor_{name}", settings)
    _, t_floor = timed(lambda: floor(con))
    con.close()
    con = fresh_db(base, f"orders_{name}", settings)
    res, t_full = timed(lambda: extract_orders(con, load_settings, run_id="b1", interval_end=END))
    assert res.rows_landed == rows, (res, rows)
    return con, t_floor, t_full


def bench_orders_sqlite(base: Path, settings: Settings, rows: int) -> list[tuple]:
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    def floor(con: duckdb.DuckDBPyConnection) -> None:
        src = adbc_sqlite.connect(f"file:{base}/shop.db?mode=ro")
        cur = src.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})  # as the extractor does
        for t in ("customers", "orders", "order_items", "fx_rates"):
            cur.execute(f"select * from {t}")
            reader = cur.fetch_record_batch()  # noqa: F841 (DuckDB scans it by name)
            con.execute(f"create table {t} as select * from reader")
        src.close()

    con, t_floor, t_full = floor_then_full_load(base, "sqlite", settings, settings, floor, rows)
    noop, t_noop = timed(lambda: extract_orders(con, settings, run_id="b2", interval_end=END))
    con.close()
    return [
        ("orders (SQLite, full load)", rows, t_full, "ADBC -> Arrow -> DuckDB copy, untyped", t_floor),
        ("orders (SQLite, rerun, no change: look-back rows re-read)", noop.rows_read, t_noop, "", None),
    ]


def bench_orders_pg(base: Path, settings: Settings, rows: int) -> list[tuple]:
    import psycopg

    pg_dir = Path(tempfile.mkdtemp(prefix="rapport-bench-pg-"))
    script = ROOT / "scripts/start_postgres.sh"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(["bash", str(script), str(pg_dir), str(port)], capture_output=True, text=True)
    if proc.returncode:
        print("PostgreSQL did not start; skipping the PG bench:\n", proc.stderr)
        shutil.rmtree(pg_dir, ignore_errors=True)
        return []
    url = proc.stdout.strip().splitlines()[-1]
    conninfo = url.replace("postgresql+psycopg", "postgresql")
    try:
        lite = sqlite3.connect(base / "shop.db")
        with psycopg.connect(conninfo, autocommit=True) as pg:
            pg.execute(
                (ROOT / "tests/extractors/test_orders_postgres.py").read_text().split('PG_DDL = """')[1].split('"""')[0]
            )
            for t in ("customers", "orders", "order_items", "fx_rates"):
                with pg.cursor().copy(f"copy {t} from stdin") as cp:
                    for row in lite.execute(f"select * from {t}"):
                        cp.write_row(row)
            pg.execute("vacuum analyze")
        lite.close()
        pgs = settings_for(base, orders_db_url=url, extra=settings.extra)

        def floor(con: duckdb.DuckDBPyConnection) -> None:
            with psycopg.connect(conninfo) as pg:
                for t in ("customers", "orders", "order_items", "fx_rates"):
                    path = base / f"{t}.csv"
                    with open(path, "wb") as fh, pg.cursor().copy(f"copy {t} to stdout (format csv)") as cp:
                        for chunk in cp:
                            fh.write(chunk)
                    con.execute(f"create table {t} as select * from read_csv('{path}', header=false)")
                    path.unlink()

        con, t_floor, t_full = floor_then_full_load(base, "pg", settings, pgs, floor, rows)
        con.close()
        return [("orders (PostgreSQL, full load)", rows, t_full, "COPY csv -> DuckDB read_csv", t_floor)]
    finally:
        subprocess.run(["bash", str(script), "stop", str(pg_dir)], capture_output=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


def bench_esp(base: Path, settings: Settings, n_contacts: int) -> list[tuple]:
    con = fresh_db(base, "floor_esp", settings)
    glob = f"{base}/esp/events/*/*/*.jsonl.gz"
    (n_lines,), t_floor = timed(
        lambda: con.execute(
            f"create table ev as select * from read_json('{glob}', format='newline_delimited')"
        ).fetchall()[0]
    )
    _, t_floor_csv = timed(
        lambda: con.execute(f"create table ct as select * from read_csv('{base}/esp/contacts/*.csv')").fetchall()
    )
    con.close()
    con = fresh_db(base, "esp", settings)
    res, t_full = timed(lambda: extract_esp(con, settings, run_id="b1", interval_end=END))
    ev, ct = res.tables["esp_events"], res.tables["esp_contacts"]
    assert ev.rows_read == n_lines and ct.rows_read == n_contacts, res
    noop, t_noop = timed(lambda: extract_esp(con, settings, run_id="b2", interval_end=END))
    assert noop.rows_read == 0, noop
    con.close()
    return [
        (
            f"ESP events ({ev.rows_duplicate} retries skipped)",
            ev.rows_read,
            ev.duration_s,
            "DuckDB read_json (no dedup, no quarantine)",
            t_floor,
        ),
        ("ESP contacts snapshot (CSV)", ct.rows_read, ct.duration_s, "DuckDB read_csv", t_floor_csv),
        ("ESP rerun, no change (every file checksummed, none read)", res.rows_read, t_noop, "", None),
    ]


def bench_helpdesk(base: Path, settings: Settings, n: int) -> list[tuple]:
    users = [
        {
            "id": i,
            "name": f"사용자 {i}",
            "email": f"u{i}@example.com",
            "phone": None,
            "role": "end-user",
            "external_id": str(i),
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": f"2025-08-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        }
        for i in range(n)
    ]
    tickets = [
        {
            "id": i,
            "requester_id": i,
            "assignee_id": None,
            "subject": "Where is my order?",
            "status": "open",
            "priority": "normal",
            "via": {"channel": "email"},
            "tags": ["order"],
            "satisfaction_rating": {"score": "unoffered", "comment": None},
            "metric_set": {"reply_time_in_minutes": {"calendar": 30}, "reopens": 0},
            "created_at": "2025-07-01T00:00:00Z",
            "updated_at": f"2025-08-{1 + i % 28:02d}T00:00:00Z",
        }
        for i in range(n)
    ]
    with serve_helpdesk(HelpdeskData(users, tickets), token=TOKEN, page_size=1000) as srv:

        def floor() -> None:
            with httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                for kind in ("users", "tickets"):
                    params = {"start_time": "0"}
                    while True:
                        page = c.get(f"/api/v2/incremental/{kind}/cursor.json", params=params).json()
                        if page["end_of_stream"]:
                            break
                        params = {"cursor": page["after_cursor"]}

        _, t_floor = timed(floor)
        con = fresh_db(base, "helpdesk", settings)
        res, t_full = timed(
            lambda: extract_helpdesk(con, settings, run_id="b1", interval_end=END, base_url=srv.base_url)
        )
        assert res.rows_landed == 2 * n, res
        con.close()
    return [("helpdesk users + tickets (1000/page)", 2 * n, t_full, "bare httpx page loop (no parsing)", t_floor)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--contacts", type=int, default=200_000)
    ap.add_argument("--helpdesk", type=int, default=50_000)
    ap.add_argument("--pg", action="store_true", help="also bench the PostgreSQL path (starts a local server)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rapport-bench-extract")
    ap.add_argument("--results", type=Path, default=None, help="write a Markdown section here")
    a = ap.parse_args(argv)
    shutil.rmtree(a.out, ignore_errors=True)
    a.out.mkdir(parents=True)
    settings = settings_for(a.out)
    print("generating ...", flush=True)
    counts, t_gen = timed(lambda: gen_shop(a.out / "shop.db", a.orders))
    print(f"  shop.db {counts} in {t_gen:.0f} s", flush=True)
    _, t_gen = timed(lambda: gen_esp(a.out / "esp", a.events, a.contacts))
    print(f"  ESP exports in {t_gen:.0f} s", flush=True)
    rows = sum(counts.values())
    warm = duckdb.connect()
    extract_esp(warm, settings_for(a.out), run_id="warm-up", interval_end=datetime(2025, 8, 1, 2))
    warm.close()
    results = bench_orders_sqlite(a.out, settings, rows)
    if a.pg:
        results += bench_orders_pg(a.out, settings, rows)
    results += bench_esp(a.out, settings, a.contacts)
    results += bench_helpdesk(a.out, settings, a.helpdesk)
    lines = [
        "| source | rows | extractor s | extractor rows/s | floor | floor s | floor rows/s | extractor / floor |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, n, t, floor_name, t_floor in results:
        f = f"{floor_name} | {t_floor:.1f} | {n / t_floor:,.0f} | {t / t_floor:.1f}x" if t_floor else " | | | "
        lines.append(f"| {name} | {n:,} | {t:.1f} | {n / t:,.0f} | {f} |")
    table = "\n".join(lines)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    table += (
        f"\n\nPeak RSS of the bench process: {peak_mb:,.0f} MB (the 200k helpdesk items are held in memory by "
        f"the demo server in the same process). Load average at the end: {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} on {os.cpu_count()} cores."
    )
    print(table)
    if a.results:
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        a.results.write_text(
            "## Extraction throughput (`bench/bench_extract.py`)\n\n"
            f"Run {datetime.now():%Y-%m-%d} on {os.cpu_count()} cores ({cpu}), DuckDB {duckdb.__version__}, "
            f"threads={settings.duckdb_threads}, memory_limit={settings.duckdb_memory_limit}. Command: "
            f"`.venv/bin/python bench/bench_extract.py --orders {a.orders} --events {a.events} "
            f"--contacts {a.contacts} --helpdesk {a.helpdesk}{' --pg' if a.pg else ''}`.\n\n"
            f"Extractor time includes typing, quarantine checks, the merge on natural keys (anti-join against what "
            f"is already landed), state and manifest writes, one transaction per batch. Orders rows = customers + "
            f"orders + items + fx rates ({counts}).\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
