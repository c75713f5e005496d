"""Helpers shared by the extractor tests: settings, hand-made sources, warehouse comparisons, kill runs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.extractors.schemas import RAW_TABLES

TOKEN = "tok-3f9a-extractor-tests"
LOAD_META = {"_run_id", "_extracted_at"}

SHOP_DDL = """
create table customers (id integer primary key, email text, first_name text, last_name text, phone text,
    country text, accepts_marketing integer, created_at text, updated_at text);
create table orders (id integer primary key, customer_id integer, email text, phone text, status text,
    currency text, subtotal numeric, discount_total numeric, shipping_total numeric, tax_total numeric,
    total numeric, refunded_total numeric, discount_code text, utm_source text, utm_medium text,
    utm_campaign text, created_at text, updated_at text, cancelled_at text);
create table order_items (id integer primary key, order_id integer, sku text, product_name text,
    category text, quantity integer, unit_price numeric);
create table fx_rates (rate_date text, currency text, usd_per_unit numeric);
"""


def make_settings(tmp: Path, **kw: object) -> Settings:
    extra = {str(k): str(v) for k, v in dict(kw.pop("extra", {}) or {}).items()}  # type: ignore[call-overload]
    base = dict(
        warehouse_dir=tmp / "wh",
        orders_db_url=f"sqlite:///{tmp / 'shop.db'}",
        helpdesk_url=None,
        helpdesk_token=TOKEN,
        esp_root=tmp / "esp",
        as_of=None,
        extra=extra,
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def connect(path: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), config=settings.duckdb_config())


def write_shop(path: Path, *, customers=(), orders=(), items=(), fx=(), ddl: str = SHOP_DDL) -> None:
    """Create (if needed) and fill a SQLite shop database; rows are tuples in column order."""
    con = sqlite3.connect(path)
    if not con.execute("select 1 from sqlite_master where name = 'orders'").fetchall():
        con.executescript(ddl)
    for table, rows in (("customers", customers), ("orders", orders), ("order_items", items), ("fx_rates", fx)):
        for row in rows:
            marks = ", ".join("?" * len(row))
            con.execute(f"insert or replace into {table} values ({marks})", row)
    con.commit()
    con.close()


def raw_rows(con: duckdb.DuckDBPyConnection, table: str, *, keep_meta: bool = False) -> list[tuple]:
    """All rows of raw.<table>, sorted, without the load metadata that legitimately differs between runs."""
    cols = [r[0] for r in con.execute(f"describe raw.{table}").fetchall()]
    if not keep_meta:
        cols = [c for c in cols if c not in LOAD_META]
    sel = ", ".join(f'"{c}"' for c in cols)
    return sorted(con.execute(f"select {sel} from raw.{table}").fetchall(), key=repr)


def warehouse_state(con: duckdb.DuckDBPyConnection, *, keep_meta: bool) -> dict[str, list[tuple]]:
    """Every raw, quarantine and state table (not the extraction log, which records each run)."""
    out = {}
    for name in RAW_TABLES:
        out[f"raw.{name}"] = raw_rows(con, name, keep_meta=keep_meta)
        q = "*" if keep_meta else "source, raw, reason, location"
        out[f"quarantine.{name}_rejects"] = sorted(
            con.execute(f"select {q} from quarantine.{name}_rejects").fetchall(), key=repr
        )
    q = "*" if keep_meta else "source, key, value"
    out["ops.extract_state"] = sorted(con.execute(f"select {q} from ops.extract_state").fetchall(), key=repr)
    q = "*" if keep_meta else "path, size, sha256, rows_read"
    out["ops.esp_manifest"] = sorted(con.execute(f"select {q} from ops.esp_manifest").fetchall(), key=repr)
    return out


def checksums(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """md5 over the sorted text of every row, metadata included: any change to any table shows."""
    out = {}
    tables = [f"raw.{n}" for n in RAW_TABLES] + [f"quarantine.{n}_rejects" for n in RAW_TABLES]
    for t in [*tables, "ops.extract_state", "ops.esp_manifest"]:
        out[t] = con.execute(
            f"select count(*) || ':' || coalesce(md5(string_agg(x, chr(10) order by x)), '') "
            f"from (select t::varchar as x from {t} t)"
        ).fetchall()[0][0]
    return out


EXTRACT_SCRIPT = textwrap.dedent("""
    import json, sys
    from datetime import datetime
    from pathlib import Path
    import duckdb
    from rapport.core.config import Settings
    args = json.loads(sys.argv[1])
    settings = Settings(warehouse_dir=Path(args["wh"]), orders_db_url=args["orders_db_url"], helpdesk_url=None,
                        helpdesk_token=args["token"], esp_root=Path(args["esp_root"]), as_of=None,
                        extra=args["extra"])
    con = duckdb.connect(args["db"], config=settings.duckdb_config())
    end = datetime.fromisoformat(args["interval_end"])
    if args["source"] == "orders":
        from rapport.extractors.orders import extract_orders as f
        f(con, settings, run_id=args["run_id"], interval_end=end)
    elif args["source"] == "helpdesk":
        from rapport.extractors.helpdesk import extract_helpdesk as f
        f(con, settings, run_id=args["run_id"], interval_end=end, base_url=args["base_url"])
    else:
        from rapport.extractors.esp import extract_esp as f
        f(con, settings, run_id=args["run_id"], interval_end=end)
    con.close()
""")


def run_and_kill(args: dict, *, failpoint: str, marker: Path, timeout: float = 120.0) -> None:
    """Run one extractor in a child process, SIGKILL it when it reaches `failpoint`; fail if it never does."""
    import json

    env = dict(os.environ, RAPPORT_EXTRACT_FAILPOINT=failpoint, RAPPORT_EXTRACT_FAILPOINT_FILE=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-c", EXTRACT_SCRIPT, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"extractor exited ({proc.returncode}) before {failpoint}:\n{err.decode()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"extractor did not reach {failpoint} within {timeout} s")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


# ---------------------------------------------------------------- hostile sources and a demo to break


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageServer:
    """A real HTTP server on loopback serving fixed response bodies: the helpdesk export as hostile
    as a test wants it. `pages[kind][i]` (bytes) answers the start request (i = 0) and `?cursor=p<i>`;
    `status` answers every request with that status instead (503 forever). Requests are logged.
    The items of a page are given as JSON bytes (`export_page`), so they can hold anything."""

    def __init__(self, pages: dict[str, list[bytes]] | None = None, *, status: int | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, self.headers.get("Authorization")))
                url = urlsplit(self.path)
                kind = url.path.rsplit("/", 2)[-2]
                cursor = parse_qs(url.query).get("cursor", ["p0"])[0]
                if status is not None:
                    body, code = b'{"error": "ServiceUnavailable"}', status
                else:
                    served = pages.get(kind, [])  # type: ignore[union-attr]
                    i = int(cursor[1:])
                    # past the last page: an empty one at the same cursor (a rerun resuming at the end)
                    body = served[i] if i < len(served) else export_page(kind, [], i - 1, True)
                    code = 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def export_page(kind: str, items_json: list[bytes], index: int, last: bool) -> bytes:
    """One page of a Zendesk-style export whose items are given as raw JSON bytes (which may hold bytes
    that are not UTF-8: the body is assembled as bytes)."""
    tail = b'"after_cursor": "p%d", "before_cursor": null, "end_of_stream": %s}' % (
        index + 1,
        b"true" if last else b"false",
    )
    return b'{"' + kind.encode() + b'": [' + b", ".join(items_json) + b"], " + tail


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_demo(tmp_path_factory, dest: Path) -> Path:
    """A copy, at `dest`, of the small demo warehouse of tests/demo_builds.py (`rapport generate --people 400
    --seed 11` and one clean `rapport run`), built once per test session: a published file to protect."""
    from demo_builds import copy_of_demo

    wh = copy_of_demo(tmp_path_factory, dest)
    assert (wh / "published" / "rapport.duckdb").exists()
    return wh
