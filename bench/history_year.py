"""A year of segment history on a copy of a benchmark warehouse, and what it costs a day's run (issue 16).

    .venv/bin/python bench/history_year.py synth WH [--days 365] [--share 0.09] [--gone 0.01]
    .venv/bin/python bench/history_year.py check WH
    .venv/bin/python bench/history_year.py verify WH
    .venv/bin/python bench/history_year.py stage WH {dbt,publish,report} [--project DIR] [--old-code DIR]
    .venv/bin/python bench/history_year.py measure OUT.json --warehouse NAME=WH ... [--rounds 3]

`synth` gives `marts.segment_history` of a warehouse after a benchmark's full run and its 1% days (its first
recorded date F has a row for every customer) `--days` earlier as-of dates, F-days .. F-1, as a valid change log that
leaves every customer's latest rows as they were: on the first synthetic date every customer of F enters, on
each later one a pseudo-random `--share` of them changes (monetary_usd differs by a cent per date, a segment
drawn from the eleven), and `--gone` as many other ids enter on one date and leave on a later one (merged
away). F's rows become 'changed' rows (their customers were there before); the registry
(segment_history_dates), its kept copy and the state table (the log's latest rows before the state date, its
gone ids' 'left' rows included) get the same dates. The table is rewritten in date order (as a year of daily
inserts leaves it). Then the published file is written afresh from it (its state removed first), so the next
publish compares with a file that holds the year.

`check` verifies that: the state table equals each customer's latest log rows (before and at the state date)
recomputed from the whole log, the kept registry equals the registry, and no customer has two consecutive
rows with the same state.

`verify` compares the published log and its Parquet copy with the working log, row for row.

`stage` runs one measured step in this process (the caller's child): `dbt` builds segment_history_dates,
segment_history, segment_migrations and their tests (`dbt build`, the committed ledger's `since` and
`written_after`, a fixed run id), with `--project` (default: this tree's dbt project); `publish` publishes the
marts (rapport.publishing.publish, not the dbt docs) with, given `--old-code`, that tree's publish_diff.py;
`report` renders the marketer report from the published file. `measure` runs each stage for each warehouse in
a fresh process, with the old tree's code (`--old-tree`, e.g. a `git archive` of the base commit) and with this
tree's in alternation, and records CPU seconds (user + system of the child and its children).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
STATE_COLUMNS = ("rfm_segment", "lifecycle_stage", "value_tier", "engagement_tier", "support_health", "r_score",
                 "f_score", "m_score", "frequency", "monetary_usd", "last_order_date")  # fmt: skip
SEGMENTS = ("Champions", "Loyal Customers", "Potential Loyalists", "New Customers", "Promising", "Need Attention",
            "About to Sleep", "At Risk", "Cannot Lose Them", "Hibernating", "No Purchases")  # fmt: skip
HISTORY = "marts.segment_history"
REGISTRY = "marts.segment_history_dates"
STATE = "intermediate.segment_history__state"
KEPT_DATES = "intermediate.segment_history__state_dates"
SELECT = ["segment_history_dates", "segment_history", "segment_migrations"]
RUN_ID = "histyear-day"


def _connect(wh: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(wh / "work" / "rapport_work.duckdb"))
    con.execute("set threads = 2")
    con.execute("set memory_limit = '4GB'")
    con.execute(f"set temp_directory = '{wh / 'work' / 'tmp'}'")
    return con


def synth(wh: Path, days: int, share: float, gone: float) -> dict[str, Any]:
    con = _connect(wh)
    [(first, synthetic)] = con.execute(
        f"select min(as_of_date), count(*) filter (where run_id like 'synthetic-%') from {HISTORY}"
    ).fetchall()
    if synthetic:
        raise SystemExit(f"{HISTORY} already has synthetic rows: synthesise on a fresh copy")
    state = ", ".join(STATE_COLUMNS)
    segments = "[" + ", ".join(f"'{s}'" for s in SEGMENTS) + "]"
    per_mille = round(share * 1000)
    # (no explicit transaction: DuckDB 2.0 lost the later inserts of one that had renamed the table; a copy)
    # every customer of the first date with its state there (they all 'entered' then)
    con.execute(f"""create temp table base as
        select row_number() over (order by customer_id) as n, customer_id, {state}
        from {HISTORY} where as_of_date = date '{first}' and change = 'entered'""")
    [(customers,)] = con.execute("select count(*) from base").fetchall()
    n_gone = round(gone * customers)
    con.execute(f"create table {HISTORY}__year as select * from {HISTORY} limit 0")
    # (date index i: 1 .. days, date = first - days - 1 + i)
    row_state = ", ".join(
        f"{segments}[1 + cast(hash(customer_id, i, 's') % 11 as integer)] as rfm_segment" if c == "rfm_segment"
        else "cast(monetary_usd + i / 100 as double) as monetary_usd" if c == "monetary_usd"
        else c
        for c in STATE_COLUMNS
    )  # fmt: skip
    # the gone ids: the state of base customer n, entering on date a and leaving on date b (1 <= a < b <= days)
    con.execute(f"""create temp table gone_ids as
        select 'hist-gone-' || n as customer_id, n,
               1 + hash(n, 'a') % (({days} - 1) // 2) as entered_on,
               ({days} + 1) // 2 + hash(n, 'b') % ({days} // 2) as left_on
        from range(1, {n_gone} + 1) as t(n)""")
    chunk = 30
    for start in range(1, days + 1, chunk):
        stop = min(start + chunk - 1, days)
        con.execute(f"""insert into {HISTORY}__year by name
            with day as (
                select i, date '{first}' - {days} - 1 + cast(i as integer) as as_of_date
                from range({start}, {stop} + 1) as t(i)
            ),
            customer_rows as (
                select
                    day.as_of_date, base.customer_id,
                    case when day.i = 1 then 'entered' else 'changed' end as change,
                       {row_state}
                from day cross join base
                where day.i = 1 or hash(base.customer_id, day.i) % 1000 < {per_mille}
            ),
            gone_rows as (
                select day.as_of_date, g.customer_id,
                       case when day.i = g.entered_on then 'entered' else 'left' end as change,
                       {", ".join(f"case when day.i = g.entered_on then base.{c} end as {c}" for c in STATE_COLUMNS)}
                from day
                inner join gone_ids as g on day.i in (g.entered_on, g.left_on)
                inner join base on base.n = g.n
            )
            select
                *, 'synthetic-' || as_of_date as run_id,
                cast(as_of_date as timestamp) + interval 6 hour as recorded_at
            from (select * from customer_rows union all select * from gone_rows)
            order by as_of_date, customer_id""")
    # the first real date: its customers were there before, so their rows there are changes
    con.execute(f"insert into {HISTORY}__year by name select * replace (case when change = 'entered' and "
                f"customer_id in (select customer_id from base) then 'changed' else change end as change) "
                f"from {HISTORY} order by as_of_date, customer_id")  # fmt: skip
    con.execute(f"update {STATE} set change = 'changed' where as_of_date = date '{first}' and change = 'entered' "
                "and customer_id in (select customer_id from base)")  # fmt: skip
    con.execute(f"insert into {STATE} by name select as_of_date, customer_id, change, {state} "
                f"from {HISTORY}__year where customer_id like 'hist-gone-%' and change = 'left'")  # fmt: skip
    con.execute(f"drop table {HISTORY}")
    con.execute(f"alter table {HISTORY}__year rename to segment_history")
    registry = f"""select distinct as_of_date, 'synthetic-' || as_of_date as run_id,
            cast(as_of_date as timestamp) + interval 6 hour as recorded_at
        from {HISTORY} where as_of_date < date '{first}'"""
    # customers at a date: those whose latest row up to it is not 'left' (each 'entered' adds one, each 'left'
    # takes one away, as `rapport forget` recounts them)
    con.execute(f"""insert into {REGISTRY} by name
        with dates as ({registry}),
        net_per_date as (
            select as_of_date, sum(case change when 'entered' then 1 when 'left' then -1 else 0 end) as net
            from {HISTORY} where as_of_date < date '{first}' group by as_of_date
        )
        select dates.*, cast(sum(net_per_date.net) over (order by dates.as_of_date) as bigint) as customers
        from dates inner join net_per_date on net_per_date.as_of_date = dates.as_of_date""")
    con.execute(f"insert into {KEPT_DATES} by name {registry}")
    con.execute("checkpoint")
    [(rows, dates)] = con.execute(f"select count(*), count(distinct as_of_date) from {HISTORY}").fetchall()
    con.close()
    return {"customers": customers, "gone_ids": n_gone, "rows": rows, "dates": dates}


def check(wh: Path) -> dict[str, Any]:
    con = _connect(wh)
    cols = "as_of_date, customer_id, change, " + ", ".join(STATE_COLUMNS)
    expected_state = f"""
        with state_date as (select max(as_of_date) as d from {KEPT_DATES})
        (select {cols} from {HISTORY} where as_of_date < (select d from state_date)
         qualify row_number() over (partition by customer_id order by as_of_date desc) = 1)
        union all
        (select {cols} from {HISTORY} where as_of_date = (select d from state_date))"""
    found = {
        "state_minus_log": f"select count(*) from (select {cols} from {STATE} except all ({expected_state}))",
        "log_minus_state": f"select count(*) from (({expected_state}) except all select {cols} from {STATE})",
        "registry_vs_kept": f"""select count(*) from (
            (select as_of_date, run_id, recorded_at from {REGISTRY}
             except select as_of_date, run_id, recorded_at from {KEPT_DATES})
            union all
            (select as_of_date, run_id, recorded_at from {KEPT_DATES}
             except select as_of_date, run_id, recorded_at from {REGISTRY}))""",
        "repeated_states": f"""select count(*) from (
            select change, lag(change) over w as previous_change,
                   {", ".join(f"{c}, lag({c}) over w as previous_{c}" for c in STATE_COLUMNS)}
            from {HISTORY} window w as (partition by customer_id order by as_of_date))
            where previous_change is not null and change <> 'left' and previous_change <> 'left'
              and {" and ".join(f"{c} is not distinct from previous_{c}" for c in STATE_COLUMNS)}""",
        "log_dates_not_registered": f"select count(distinct as_of_date) from {HISTORY} "
        f"where as_of_date not in (select as_of_date from {REGISTRY})",
    }
    out = {name: con.execute(sql).fetchall()[0][0] for name, sql in found.items()}
    con.close()
    return out


def verify(wh: Path) -> dict[str, Any]:
    """The published log and its Parquet copy against the working log: rows of each not in the other."""
    settings = _settings(wh)
    con = _connect(wh)
    con.execute(f"attach '{settings.published_db}' as published (read_only)")
    parquet = settings.published_dir / "parquet" / "marts.segment_history.parquet"
    out = {}
    for name, other in (("published", f"published.{HISTORY}"), ("parquet", f"read_parquet('{parquet}')")):
        for a, b in ((HISTORY, other), (other, HISTORY)):
            out[f"{name}: {a.split('(')[0]} minus"] = con.execute(
                f"select count(*) from (select * from {a} except all select * from {b})"
            ).fetchall()[0][0]
    con.close()
    return out


def _settings(wh: Path):  # type: ignore[no-untyped-def]
    os.environ["RAPPORT_WAREHOUSE_DIR"] = str(wh)
    os.environ.setdefault("RAPPORT_DUCKDB_THREADS", "2")
    os.environ.setdefault("RAPPORT_DUCKDB_MEMORY_LIMIT", "4GB")
    from rapport.core.config import load_settings

    return load_settings()


def stage_dbt(wh: Path, project: Path) -> dict[str, Any]:
    """`dbt build` of the three models and their tests with the vars of a day after the committed build."""
    from rapport.transform.dbt_invocation import dbt_env

    settings = _settings(wh)
    con = duckdb.connect(str(settings.work_db), read_only=True)
    ledger = {c for (c,) in con.execute("select column_name from information_schema.columns "
                                        "where table_name = 'transform_increments'").fetchall()}  # fmt: skip
    through = "written_through" if "written_through" in ledger else "null"  # a ledger of the earlier layout
    [(since, written_after, as_of)] = con.execute(
        f"select (select batch_at from ops.transform_increments where state = 'committed'), "
        f"(select {through} from ops.transform_increments where state = 'committed'), "
        "(select as_of_date from intermediate.int_segment_scopes where scope_id = 'as_of')"
    ).fetchall()
    con.close()
    dbt_vars = {"as_of": str(as_of), "run_id": RUN_ID, "since": str(since)}
    if written_after is not None:
        dbt_vars["written_after"] = str(written_after)
    side = "old" if project.resolve() != (ROOT / "dbt_project").resolve() else "new"
    target = wh / "dbt" / f"target-histyear-{side}"
    args = ["build", "--vars", json.dumps(dbt_vars), "--select", *SELECT, "--indirect-selection", "cautious",
            "--exclude-resource-type", "unit_test", "--project-dir", str(project), "--profiles-dir", str(project),
            "--target", "work", "--target-path", str(target), "--log-path", str(target / "logs"),
            "--no-use-colors"]  # fmt: skip
    env = {**os.environ, **dbt_env(settings)}
    done = subprocess.run([str(Path(sys.executable).parent / "dbt"), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    results = json.loads((target / "run_results.json").read_text())["results"]
    con = duckdb.connect(str(settings.work_db), read_only=True)
    [migrations] = con.execute(  # the mart's rows, to compare old and new (the same for both)
        "select count(*), sum(hash(from_date, to_date, from_segment, to_segment, customers)) "
        "from marts.segment_migrations"
    ).fetchall()
    con.close()
    return {
        "nodes": {r["unique_id"].split(".")[2]: round(r["execution_time"], 3) for r in results},
        "migrations": [int(v) for v in migrations],
    }


def stage_publish(wh: Path, old_code: Path | None) -> dict[str, Any]:
    settings = _settings(wh)
    from rapport.core.warehouse import open_warehouse
    from rapport.publishing import publish as publishing

    if old_code is not None:  # that tree's difference, beside this tree's publish (which calls it by name)
        spec = importlib.util.spec_from_file_location(
            "publish_diff_old", old_code / "rapport/publishing/publish_diff.py"
        )
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["publish_diff_old"] = module  # (its dataclasses look their module up)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        publishing.build_from_previous = module.build_from_previous  # type: ignore[attr-defined]
    with open_warehouse(settings) as con:
        result = publishing.publish(con, settings, run_id=RUN_ID)
    return {"how": {t: h for t, h in result.how.items() if "segment" in t or h not in ("kept",)}}


def stage_report(wh: Path) -> dict[str, Any]:
    settings = _settings(wh)
    from rapport.reports.render import render_report

    render_report(settings.published_db, settings.reports_dir, run_id=RUN_ID, as_of=date.today(),
                  audiences_dir=settings.audiences_dir, language=settings.report_language)  # fmt: skip
    return {}


def _child(argv: list[str]) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv}: {done.stdout[-2000:]}{done.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return {"cpu": round(cpu, 2), "wall": round(wall, 2), "load": os.getloadavg()[0],
            **(json.loads(lines[-1]) if lines else {})}  # fmt: skip


def measure(out: Path, warehouses: list[str], rounds: int, stages: list[str], old_tree: Path) -> None:
    """For each NAME=WH: each stage with the old tree's code and with this tree's, on the same warehouse (both
    give the same rows: a re-run of its latest day), the two in alternation (old first in even rounds)."""
    results: list[dict[str, Any]] = json.loads(out.read_text()) if out.exists() else []
    for r in range(rounds):
        for named in warehouses:
            name, wh = named.split("=", 1)
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                for stage in stages:
                    argv = ["stage", wh, stage]
                    if side == "old" and stage == "dbt":
                        argv += ["--project", str(old_tree / "dbt_project")]
                    if side == "old" and stage == "publish":
                        argv += ["--old-code", str(old_tree)]
                    row = {"warehouse": name, "side": side, "stage": stage, "round": r, **_child(argv)}
                    print(json.dumps(row), flush=True)
                    results.append(row)
                    out.write_text(json.dumps(results, indent=1))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synth")
    s.add_argument("wh", type=Path)
    s.add_argument("--days", type=int, default=365)
    s.add_argument("--share", type=float, default=0.09)
    s.add_argument("--gone", type=float, default=0.01)
    c = sub.add_parser("check")
    c.add_argument("wh", type=Path)
    v = sub.add_parser("verify")
    v.add_argument("wh", type=Path)
    st = sub.add_parser("stage")
    st.add_argument("wh", type=Path)
    st.add_argument("stage", choices=("dbt", "publish", "report"))
    st.add_argument("--project", type=Path, default=ROOT / "dbt_project")
    st.add_argument("--old-code", type=Path, default=None)
    m = sub.add_parser("measure")
    m.add_argument("out", type=Path)
    m.add_argument("--warehouse", action="append", required=True, help="NAME=WH")
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--stages", default="dbt,publish,report")
    m.add_argument("--old-tree", type=Path, default=Path("/tmp/histyear-base"))
    args = ap.parse_args(argv)
    if args.command == "synth":
        print(json.dumps(synth(args.wh, args.days, args.share, args.gone)))
    elif args.command == "check":
        print(json.dumps(check(args.wh)))
    elif args.command == "verify":
        print(json.dumps(verify(args.wh)))
    elif args.command == "stage":
        fn = {
            "dbt": lambda: stage_dbt(args.wh, args.project),
            "publish": lambda: stage_publish(args.wh, args.old_code),
            "report": lambda: stage_report(args.wh),
        }[args.stage]
        print(json.dumps(fn()))
    else:
        measure(args.out, args.warehouse, args.rounds, args.stages.split(","), args.old_tree)


if __name__ == "__main__":
    main(sys.argv[1:])
