"""Baselines ("floors") that bench/run.py measures in the same run as rapport's stages, on the same data.

Extraction floors read the same sources the fastest way available here and copy them into DuckDB, untyped,
with no quarantine, no de-duplication, no merge and no state:
- orders: ADBC (adbc-driver-sqlite) -> Arrow -> DuckDB `create table as` (DuckDB's own sqlite reader is an
  extension that would have to be downloaded; pitfalls.md: ADBC is the fastest SQLite reader here);
- ESP: DuckDB `read_json` over the event files (`ignore_errors`: the files hold malformed lines) and
  `read_csv` over contact and campaign snapshots and audience files;
- helpdesk: a bare httpx loop over the same export pages (no parsing beyond the page envelope).

The transformation floor runs bench/floor_transform.sql (see its header) and checks its two tables against
the dbt-built marts.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

import duckdb

from rapport.core.config import Settings

SQL = Path(__file__).resolve().parent / "floor_transform.sql"
ORDERS_TABLES = ("customers", "orders", "order_items", "fx_rates")


def _fresh(db: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    db.parent.mkdir(parents=True, exist_ok=True)
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    return duckdb.connect(str(db), config=settings.duckdb_config())


def floor_orders(settings: Settings, db: Path) -> dict[str, int]:
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    path = settings.orders_db_url.removeprefix("sqlite:///")
    con = _fresh(db, settings)
    rows = {}
    src = adbc_sqlite.connect(f"file:{path}?mode=ro")
    try:
        cur = src.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})  # as the extractor does
        for t in ORDERS_TABLES:
            cur.execute(f"select * from {t}")
            reader = cur.fetch_record_batch()  # noqa: F841 (DuckDB scans it by name)
            con.execute(f"create table {t} as select * from reader")
            rows[t] = con.execute(f"select count(*) from {t}").fetchall()[0][0]
    finally:
        src.close()
        con.close()
    return rows


def floor_esp(settings: Settings, db: Path) -> dict[str, int]:
    root = settings.esp_root
    con = _fresh(db, settings)
    rows = {}
    try:
        con.execute(f"""create table events as select * from read_json('{root}/events/*/*/*.jsonl.gz',
                        format = 'newline_delimited', ignore_errors = true)""")
        for kind in ("contacts", "campaigns", "audiences"):
            con.execute(
                f"create table {kind} as select * from read_csv('{root}/{kind}/*.csv', filename = true, "
                "union_by_name = true, all_varchar = true)"
            )
        for t in ("events", "contacts", "campaigns", "audiences"):
            rows[t] = con.execute(f"select count(*) from {t}").fetchall()[0][0]
    finally:
        con.close()
    return rows


def floor_helpdesk(settings: Settings, db: Path) -> dict[str, int]:
    import httpx

    items = {}
    with httpx.Client(
        base_url=settings.helpdesk_url or "", headers={"Authorization": f"Bearer {settings.helpdesk_token}"}, timeout=60
    ) as c:
        for kind in ("users", "tickets"):
            params, n = {"start_time": "0"}, 0
            while True:
                page = c.get(f"/api/v2/incremental/{kind}/cursor.json", params=params).json()
                n += len(page[kind])
                if page["end_of_stream"]:
                    break
                params = {"cursor": page["after_cursor"]}
            items[kind] = n
    return items


def _sections(sql: str, params: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for block in re.split(r"^-- @section ", sql, flags=re.M)[1:]:
        name, body = block.split("\n", 1)
        body = "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("--"))
        body = re.sub(r"\$\{(\w+)\}", lambda m: str(params[m.group(1)]), body)
        out[name.strip()] = [s.strip() for s in body.split(";") if s.strip()]
    return out


def run_floor_transform(settings: Settings, db: Path, *, compare_with: Path, max_steps: int = 50) -> dict[str, Any]:
    """Run floor_transform.sql on the raw tables of `settings.work_db` into `db`; then (untimed) compare
    floor.customers / floor.campaign_performance with the marts of `compare_with`."""
    import time

    from rapport.transform.udfs import register

    confidence = 0.95
    params = {
        "max_fanout": 5,
        "attribution_hours": 120,
        "holdout_days": 7,
        "z": repr(statistics.NormalDist().inv_cdf(1 - (1.0 - confidence) / 2)),
    }
    sections = _sections(SQL.read_text(), params)
    t0 = time.perf_counter()
    con = _fresh(db, settings)
    register(con)
    con.create_function("erfc", math.erfc, ["DOUBLE"], "DOUBLE", side_effects=False)
    con.execute(f"attach '{settings.work_db}' as w (read_only)")
    timings: dict[str, float] = {}
    steps = 0
    for name, stmts in sections.items():
        t = time.perf_counter()
        if name == "propagate":
            while True:  # min-label propagation until no label changes
                steps += 1
                for s in stmts:
                    con.execute(s)
                changed = con.execute(
                    "select count(*) from labels_next n join labels l using (node) where n.label <> l.label"
                ).fetchall()[0][0]
                con.execute("create or replace temp table labels as select * from labels_next")
                if not changed or steps >= max_steps:
                    break
        else:
            for s in stmts:
                con.execute(s)
        timings[name] = round(time.perf_counter() - t, 2)
    con.execute("checkpoint")
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"floor_seconds": seconds, "sections": timings, "propagation_steps": steps}
    try:
        out["compare"] = compare(con, compare_with, same_as_w=compare_with.resolve() == settings.work_db.resolve())
    except duckdb.Error as exc:  # e.g. dbt failed and there are no marts to compare with
        out["compare_error"] = str(exc).splitlines()[0]
    con.close()
    return out


KEYS = {"customers": "customer_id", "campaign_performance": "campaign_id"}


def compare(con: duckdb.DuckDBPyConnection, marts_db: Path, *, same_as_w: bool = False) -> dict[str, Any]:
    """Row-by-row comparison of the floor's tables with dbt's (every column of the floor's; doubles to 1e-9
    relative). `same_as_w`: the marts are in the database already attached as `w`."""
    m = "w" if same_as_w else "m"
    if not same_as_w:
        con.execute(f"attach '{marts_db}' as m (read_only)")
    res: dict[str, Any] = {}
    try:
        for table, key in KEYS.items():
            cols = [r[0] for r in con.execute(f"describe floor.{table}").fetchall()]
            types = dict(con.execute(f"select column_name, column_type from (describe floor.{table})").fetchall())

            def differs(c: str, types: dict = types) -> str:
                if types[c] in ("DOUBLE", "FLOAT"):
                    return (
                        f"coalesce((f.{c} is null) <> (d.{c} is null) or abs(f.{c} - d.{c}) > "
                        f"1e-9 * greatest(abs(f.{c}), abs(d.{c}), 1e-9), false)"
                    )
                return f"f.{c} is distinct from d.{c}"

            diff = " or ".join(differs(c) for c in cols if c != key)
            n_floor = con.execute(f"select count(*) from floor.{table}").fetchall()[0][0]
            n_dbt = con.execute(f"select count(*) from {m}.marts.{table}").fetchall()[0][0]
            unmatched = con.execute(
                f"select count(*) from floor.{table} f full join {m}.marts.{table} d "
                f"using ({key}) where f.{key} is null or d.{key} is null"
            ).fetchall()[0][0]
            differing = con.execute(
                f"select count(*) from floor.{table} f join {m}.marts.{table} d using ({key}) where {diff}"
            ).fetchall()[0][0]
            bad_cols = []
            if differing:
                for c in cols:
                    if (
                        c != key
                        and con.execute(
                            f"select count(*) from floor.{table} f join {m}.marts.{table} d using ({key}) "
                            f"where {differs(c)}"
                        ).fetchall()[0][0]
                    ):
                        bad_cols.append(c)
            res[table] = {
                "rows_floor": n_floor,
                "rows_dbt": n_dbt,
                "unmatched_keys": unmatched,
                "differing_rows": differing,
                "differing_columns": bad_cols,
                "identical": n_floor == n_dbt and not unmatched and not differing,
            }
    finally:
        if not same_as_w:
            con.execute("detach m")
    return res
