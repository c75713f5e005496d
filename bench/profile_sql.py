"""DuckDB profiles (EXPLAIN ANALYZE) of where the benchmark's time goes, on a warehouse kept by bench/run.py --keep.

    .venv/bin/python bench/profile_sql.py /tmp/bench-large/wh [--out bench/profiles/large]

Writes one text file per profile (the operator tree with per-operator time and rows) and prints a summary:
- the slowest dbt staging models (their compiled SQL as dbt ran it), next to the same work as the
  hand-written floor does it (no re-deduplication of raw tables whose natural key is already unique);
- the extractors' per-batch merge probe (`exists (select 1 from raw.<table> where key = ...)`) for one
  helpdesk page (1,000 items) and one ESP events batch (500,000 lines) against the full raw table.
Same settings as the pipeline (threads 2, the memory limit given); spills go to a temporary directory under $TMPDIR.
"""

from __future__ import annotations

import argparse
import atexit
import re
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

MODELS = ("stg_esp__events", "stg_esp__audiences")
FLOOR_EVENTS = """select campaign_id, lower(trim(event)) as event, lower(trim(email)) as recipient_key,
    norm_email(email) as email_normalized, make_timestamp(cast("timestamp" as bigint) * 1000000) as event_at,
    coalesce(sg_machine_open, false) as is_machine_open, email is not null as has_email, sg_event_id
from raw.esp_events"""
PROBES = {
    "merge_probe_helpdesk_page": ("helpdesk_tickets", "id, updated_at", 1_000),
    "merge_probe_esp_events_batch": ("esp_events", "sg_event_id", 500_000),
}


def _profile(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    rows = con.execute(f"explain analyze {sql}").fetchall()
    return time.perf_counter() - t0, "\n".join(r[-1] for r in rows)


def _top_operators(plan: str, n: int = 6) -> list[str]:
    """The operators with the largest time in the rendered tree: each box opens with `╭─ Name ─` and its last
    line ends with the operator's time (`7.59s`, `30.0ms`, `0µs`). Boxes drawn side by side share lines, so a
    small box beside a large one can show the large one's time: read the plan file for the tree."""
    found = []
    for box in re.split(r"╭─ ", plan)[1:]:
        name = box.split(" ─", 1)[0].strip()
        times = re.findall(r"(\d+(?:\.\d+)?)(s|ms|µs) +│", box)
        if name and times and name != "Summary":
            value, unit = times[-1]
            found.append((float(value) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[unit], name))
    return [f"{name} {t:.2f}s" for t, name in sorted(found, reverse=True)[:n]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--memory-limit", default="4GB")
    a = ap.parse_args(argv)
    out = a.out or Path(__file__).resolve().parent / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    db = a.warehouse / "work" / "rapport_work.duckdb"
    # spills go to a scratch directory of our own, never into the (possibly shared, read-only) warehouse
    tmp = Path(tempfile.mkdtemp(prefix="profile_sql-"))
    atexit.register(shutil.rmtree, tmp, True)
    con = duckdb.connect(
        str(db),
        read_only=True,
        config={
            "threads": 2,
            "memory_limit": a.memory_limit,
            "temp_directory": str(tmp),
            "preserve_insertion_order": False,
        },
    )
    con.execute("use rapport_work")
    floor_sql = (Path(__file__).resolve().parent / "floor_transform.sql").read_text()
    setup = floor_sql.split("-- @section setup", 1)[1].split("-- @section staging", 1)[0]
    for stmt in (s for s in setup.split(";") if "macro" in s):
        con.execute(stmt)
    summary = []
    compiled = a.warehouse / "dbt" / "target" / "compiled" / "rapport" / "models" / "staging" / "esp"
    jobs = [(m, (compiled / f"{m}.sql").read_text()) for m in MODELS if (compiled / f"{m}.sql").exists()]
    jobs.append(("floor_esp_events", FLOOR_EVENTS))
    for name, (table, key, n) in PROBES.items():
        con.execute(f"create or replace temp table _cand_{table} as select * from raw.{table} using sample {n} rows")
        jobs.append(
            (
                name,
                f"select count(*) from _cand_{table} c where exists (select 1 from raw.{table} t where "
                + " and ".join(f"c.{k.strip()} = t.{k.strip()}" for k in key.split(","))
                + ")",
            )
        )
    for name, sql in jobs:
        # the full result is counted, not fetched: the profile is of computing it
        body = sql if name.startswith("merge_probe") else f"select count(*) from ({sql})"
        seconds, plan = _profile(con, body)
        (out / f"{name}.txt").write_text(f"-- {name}: {seconds:.1f} s wall\n{plan}\n")
        summary.append(f"{name}: {seconds:.1f} s; top operators: {', '.join(_top_operators(plan))}")
    con.close()
    print("\n".join(summary))
    (out / "summary.txt").write_text("\n".join(summary) + "\n")


if __name__ == "__main__":
    main()
