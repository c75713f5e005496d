"""rapport's stage benchmark (issue 9): every pipeline stage, its baselines and peers, at one size.

    .venv/bin/python bench/run.py --size small|medium|large [--stages generate,pipeline,...]
        [--workdir /tmp/bench-SIZE] [--results bench/RESULTS.md] [--keep] [--days N]

For the size's number of people (tiny 300, small 10k, medium 100k, large 1M; or --people N) it measures, each
stage in its own child process (wall time of the stage and peak resident memory of that process tree):

- generate: the demo sources (`rapport.demo.generate`, same as `rapport generate --people N`);
- pipeline: the DAG's steps run directly, in order: start, extract orders / helpdesk / esp, raw checks,
  dbt build, mart checks, publish (+ dbt docs), report, finish;
- floors: extraction floors (DuckDB read_json/read_csv, ADBC -> DuckDB, bare HTTP page loop; bench/floors.py);
- transform: `dbt build` of marts.customers + marts.campaign_performance and their parents on a copy of the
  freshly extracted warehouse vs bench/floor_transform.sql on the same raw tables (results compared);
- dlt: the same sources loaded with dlt (bench/dlt_peer.py);
- dag: the whole Airflow DAG in-process (`rapport run`'s runner) on a fresh warehouse, then again the same
  day with nothing new (what a rerun or a quiet day costs); for both, the time from process start to the
  first task's code;
- incremental: 1% new and 1% changed records added to the sources (bench/incremental.py), then the pipeline
  stages again on the warehouse of `pipeline`; with `dag`, also the whole DAG again on the warehouse of `dag`
  (the 1% day as a user runs it: one process, compared with the first `rapport run`). With `--days N`, N such
  days in a row (stage keys `inc_`, `inc2_`, ...): the first day after a full run differs from a day after a
  day (what a daily schedule runs) in what the scoped tests and the publish by difference can skip.
The helpdesk is the demo server in its own process (the "remote" API; its memory is not a stage's).
Results go to WORKDIR/results.json and, as one section per size, to --results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from results_md import GROUPS, PIPELINE, day_prefix, render_section, update_results  # noqa: E402

SIZES = {"tiny": 300, "demo": 3_000, "small": 10_000, "medium": 100_000, "large": 1_000_000}
END = date(2026, 6, 30)  # last day of generated history: fixed, so every run measures the same data
T1 = datetime.combine(END + timedelta(days=1), datetime.min.time())  # full load's interval end
T2 = T1 + timedelta(days=1)  # the incremental day's
TOKEN = "bench-token"
SUBSET = ["+customers", "+campaign_performance"]


class Bench:
    def __init__(
        self,
        workdir: Path,
        people: int,
        seed: int,
        memory_limit: str,
        timeout: float,
        profile: set[str] | None = None,
        max_rss_mb: float = 12_288,
    ) -> None:
        self.dir, self.people, self.seed, self.timeout = workdir, people, seed, timeout
        self.max_rss_mb = max_rss_mb
        self.profile = profile or set()
        self.src = workdir / "src"
        self.memory_limit = memory_limit
        self.stages: dict[str, dict[str, Any]] = {}
        self.server: subprocess.Popen | None = None
        self.server_url = ""
        (workdir / "logs").mkdir(parents=True, exist_ok=True)

    def env(self, warehouse: str) -> dict[str, str]:
        return {
            "RAPPORT_WAREHOUSE_DIR": str(self.dir / warehouse),
            "RAPPORT_ORDERS_DB_URL": f"sqlite:///{self.src / 'shop.db'}",
            "RAPPORT_ESP_ROOT": str(self.src / "esp"),
            "RAPPORT_HELPDESK_URL": self.server_url,
            "RAPPORT_HELPDESK_TOKEN": TOKEN,
            "RAPPORT_DUCKDB_THREADS": "2",
            "RAPPORT_DUCKDB_MEMORY_LIMIT": self.memory_limit,
        }

    def run(self, key: str, stage: str, warehouse: str = "wh", **spec: Any) -> dict[str, Any] | None:
        """Run `stage` in a child process; record seconds and peak RSS under `key`."""
        spec_path = self.dir / "logs" / f"{key}.spec.json"
        out_path = self.dir / "logs" / f"{key}.result.json"
        out_path.unlink(missing_ok=True)
        spec_path.write_text(
            json.dumps(
                {"stage": stage, "env": self.env(warehouse), "profile": key in self.profile, **spec}, default=str
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
        env |= {"DO_NOT_TRACK": "1", "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
        print(f"[bench {time.strftime('%H:%M:%S')}] {key} ...", flush=True)
        t0 = time.perf_counter()
        with open(self.dir / "logs" / f"{key}.log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, str(BENCH / "stage_worker.py"), str(spec_path), str(out_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.dir,
            )
            peak, ps, killed = 0, psutil.Process(proc.pid), ""
            while proc.poll() is None:
                try:
                    tree = [ps, *ps.children(recursive=True)]
                    peak = max(peak, sum(p.memory_info().rss for p in tree))
                except psutil.Error:
                    pass
                # the machine is shared: a stage that runs away is stopped before the kernel's OOM killer picks
                # a victim (possibly someone else's process)
                if peak > self.max_rss_mb * 2**20:
                    killed = f" (killed: RSS above the bench's cap of {self.max_rss_mb:,.0f} MB)"
                elif time.perf_counter() - t0 > self.timeout:
                    killed = f" (killed: over the per-stage timeout of {self.timeout:,.0f} s)"
                if killed:
                    for p in [*ps.children(recursive=True), ps]:
                        with contextlib.suppress(psutil.Error):
                            p.kill()
                    proc.wait()
                    break
                time.sleep(0.1)
        wall = time.perf_counter() - t0
        rec: dict[str, Any] = {"stage": stage, "process_seconds": round(wall, 2), "tree_peak_rss_mb": peak / 2**20}
        if proc.returncode == 0 and out_path.exists():
            rec |= json.loads(out_path.read_text())
            rec["peak_rss_mb"] = max(rec["tree_peak_rss_mb"], rec["ru_maxrss_mb"])
            print(f"    {rec['seconds']:.1f} s, peak RSS {rec['peak_rss_mb']:,.0f} MB", flush=True)
        else:
            tail = (self.dir / "logs" / f"{key}.log").read_text(errors="replace")[-3000:]
            rec["error"] = f"exit {proc.returncode}{killed}: {tail}"
            print(f"    FAILED ({rec['error'][:300]}...)", flush=True)
        self.stages[key] = rec
        return rec if "error" not in rec else None

    # the helpdesk API the extractors, floors and peers read: its own process, like a remote server
    def start_server(self) -> None:
        self.stop_server()
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rapport.demo.helpdesk_server",
                "--data",
                str(self.src / "helpdesk"),
                "--port",
                "0",
                "--token",
                TOKEN,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.server_url = self.server.stdout.readline().strip()  # type: ignore[union-attr]
        if not self.server_url.startswith("http"):
            raise RuntimeError("the demo helpdesk server did not start")

    def stop_server(self) -> None:
        if self.server:
            self.server.terminate()
            self.server.wait(30)
            self.server = None

    def pipeline(self, prefix: str, run_id: str, end: datetime) -> None:
        ctx = {"run_id": run_id, "interval_end": end.isoformat(), "as_of": end.date().isoformat()}
        for step in PIPELINE:
            # a failed check or report is recorded and the stages after it are still measured (the DAG would
            # stop at a failed gate; the benchmark wants every stage's figures)
            if not self.run(f"{prefix}{step}", step, **ctx) and step not in ("check_raw", "check_marts", "report"):
                return
            if step == "extract_esp" and not prefix:  # raw only: the transform comparison starts from here
                _copy_warehouse(self.dir / "wh", self.dir / "wh-raw")

    def incremental_day(self, day: int) -> None:
        """Add the day's 1% new + 1% changed records to the sources, then run the pipeline's steps on them.

        The helpdesk server must be stopped (its files change)."""
        start, end = T1 + timedelta(days=day - 1), T1 + timedelta(days=day)
        mutate = "mutate" if day == 1 else f"mutate{day}"
        seed = self.seed + day - 1  # another day's records, not the first day's again
        self.run(
            mutate, "mutate", src=str(self.src), share=0.01, seed=seed, start=start.isoformat(), end=end.isoformat()
        )
        self.start_server()
        self.pipeline(day_prefix(day), "bench-incremental" if day == 1 else f"bench-incremental-{day}", end)

    def transform_comparison(self, repeat: int) -> None:
        """dbt build of the two marts and the hand-written floor, alternately `repeat` times, each dbt build on
        a fresh copy of the raw-only warehouse (no identity state: a first build, as the floor computes)."""
        raw = self.dir / "wh-raw"
        if not raw.exists() and (self.dir / "wh").exists():  # a kept warehouse of an earlier run (--keep)
            _copy_warehouse(self.dir / "wh", raw, raw_only=True)
        if not raw.exists():
            return
        for i in range(1, repeat + 1):
            suffix = "" if i == 1 else f"#{i}"
            _copy_warehouse(raw, self.dir / "wh-dbt")
            self.run(
                f"dbt_subset{suffix}",
                "dbt_subset",
                warehouse="wh-dbt",
                run_id="bench-full",
                as_of=T1.date().isoformat(),
                select=SUBSET,
                extra_args=["--indirect-selection", "cautious"],
            )
            self.run(
                f"floor_transform{suffix}",
                "floor_transform",
                warehouse="wh-dbt",
                db=str(self.dir / "floor" / "t.duckdb"),
                compare_with=str(self.dir / "wh-dbt" / "work" / "rapport_work.duckdb"),
            )
            shutil.rmtree(self.dir / "wh-dbt", ignore_errors=True)
        shutil.rmtree(raw, ignore_errors=True)


def _copy_warehouse(src: Path, dst: Path, raw_only: bool = False) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "work").mkdir(parents=True)
    shutil.copy2(src / "work" / "rapport_work.duckdb", dst / "work" / "rapport_work.duckdb")
    if raw_only:  # what dbt built goes: the copy is as the extractors left it
        import duckdb

        with duckdb.connect(str(dst / "work" / "rapport_work.duckdb")) as con:
            for schema in ("staging", "intermediate", "marts"):
                con.execute(f"drop schema if exists {schema} cascade")
            con.execute("checkpoint")


def du_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


def run_bench(
    size: str,
    people: int,
    groups: list[str],
    workdir: Path,
    *,
    seed: int = 7,
    memory_limit: str = "4GB",
    timeout: float = 4 * 3600,
    keep: bool = False,
    profile: set[str] | None = None,
    max_rss_mb: float = 12_288,
    repeat: int = 1,
    days: int = 1,
) -> dict[str, Any]:
    b = Bench(workdir, people, seed, memory_limit, timeout, profile, max_rss_mb)
    meta: dict[str, Any] = {
        "size": size,
        "people": people,
        "seed": seed,
        "groups": groups,
        "end": END.isoformat(),
        "memory_limit": memory_limit,
        "days": days,
        "started": datetime.now().isoformat(timespec="seconds"),
        "load_start": os.getloadavg(),
    }
    # sources are needed unless only the transform comparison runs, on a warehouse kept by an earlier run
    needs_src = bool(set(groups) - {"transform"}) or not (workdir / "wh").exists()
    fresh = (b.src / "ground_truth" / "summary.json").exists() and not (b.src / "MUTATED").exists()
    if "generate" in groups or (needs_src and not fresh):
        shutil.rmtree(b.src, ignore_errors=True)
        b.run("generate", "generate", out=str(b.src), people=people, seed=seed, end=END.isoformat())
    meta["source_mb"] = {p.name: round(du_mb(p), 1) for p in sorted(b.src.iterdir())} if b.src.exists() else {}
    summary = b.src / "ground_truth" / "summary.json"
    meta["counts"] = json.loads(summary.read_text())["counts"] if summary.exists() else {}
    if needs_src:
        b.start_server()
    try:
        for wh in ("wh-raw", "wh-dbt", "wh-dag", "floor", "dlt"):
            shutil.rmtree(workdir / wh, ignore_errors=True)
        if {"pipeline", "incremental"} & set(groups) or ("transform" in groups and not (workdir / "wh").exists()):
            shutil.rmtree(workdir / "wh", ignore_errors=True)
            b.pipeline("", "bench-full", T1)
        if "floors" in groups:
            for s in ("orders", "helpdesk", "esp"):
                b.run(f"floor_{s}", f"floor_{s}", db=str(workdir / "floor" / f"{s}.duckdb"))
        if "transform" in groups:
            b.transform_comparison(repeat)
        shutil.rmtree(workdir / "wh-raw", ignore_errors=True)
        if "dlt" in groups:
            for s in ("orders", "helpdesk", "esp"):
                b.run(f"dlt_{s}", f"dlt_{s}", dir=str(workdir / "dlt"))
            shutil.rmtree(workdir / "dlt", ignore_errors=True)
        if "dag" in groups:
            log = str(workdir / "logs" / "dag-airflow.log")
            # setup writes the manifest the DAG renders its dbt tasks from (so would the first run after a
            # change to the dbt project): timed apart from the first run
            b.run("dag_manifest", "dag_manifest")
            if b.run(
                "dag", "dag", warehouse="wh-dag", interval_end=T1.isoformat(), as_of=T1.date().isoformat(), log_file=log
            ):
                # the same day again, nothing new at the sources (a rerun, or a quiet day)
                b.run(
                    "dag_unchanged",
                    "dag",
                    warehouse="wh-dag",
                    interval_end=(T1 + timedelta(hours=1)).isoformat(),
                    as_of=T1.date().isoformat(),
                    log_file=log,
                )
        if "incremental" in groups and "error" not in b.stages.get("transform", {"error": 1}):
            b.stop_server()
            b.incremental_day(1)
            if "error" not in b.stages.get("dag_unchanged", {"error": 1}):
                # the same day as a user runs it: one `rapport run` process, every task in-process (imports,
                # dbt's parse and Great Expectations' context paid once, as in the first run it is compared with)
                b.run(
                    "dag_incremental",
                    "dag",
                    warehouse="wh-dag",
                    interval_end=T2.isoformat(),
                    as_of=T2.date().isoformat(),
                    log_file=str(workdir / "logs" / "dag-airflow.log"),
                )
            # the days after it: a day after a day is what a daily schedule runs (the first day after a full
            # run is the only one whose `since` is the full build's)
            for day in range(2, days + 1):
                if any("error" in b.stages.get(f"{day_prefix(day - 1)}{k}", {"error": 1}) for k in PIPELINE):
                    break
                b.stop_server()
                b.incremental_day(day)
        shutil.rmtree(workdir / "wh-dag", ignore_errors=True)
    finally:
        b.stop_server()
        meta["load_end"] = os.getloadavg()
        meta["finished"] = datetime.now().isoformat(timespec="seconds")
        meta["warehouse_mb"] = round(du_mb(workdir / "wh"), 1)
        if not keep:
            for d in ("wh", "wh-raw", "wh-dbt", "wh-dag", "floor", "dlt", "src"):
                shutil.rmtree(workdir / d, ignore_errors=True)
    out = {"meta": meta, "stages": b.stages}
    (workdir / "results.json").write_text(json.dumps(out, indent=1, default=str))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--people", type=int, default=None, help="override the size's number of people")
    ap.add_argument("--stages", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}")
    ap.add_argument("--workdir", type=Path, default=None, help="default /tmp/bench-SIZE")
    ap.add_argument("--results", type=Path, default=BENCH / "RESULTS.md", help="Markdown file to update")
    ap.add_argument("--memory-limit", default="4GB", help="RAPPORT_DUCKDB_MEMORY_LIMIT for every stage")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="per stage, seconds")
    ap.add_argument(
        "--max-rss-mb",
        type=float,
        default=12_288,
        help="a stage whose process tree grows beyond this is killed and recorded as failed",
    )
    ap.add_argument("--note", default="", help="free text added to the section (what was not run and why)")
    ap.add_argument("--keep", action="store_true", help="keep sources and warehouses (default: removed)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the dbt-vs-floor comparison this many times, alternating (ratios use the fastest)",
    )
    ap.add_argument(
        "--days",
        type=int,
        default=1,
        help="with the incremental stages: this many 1%% days in a row (each with its own new records)",
    )
    ap.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only re-render the section from a results.json of an earlier run (with --note)",
    )
    ap.add_argument("--profile", default="", help="stage keys to run under cProfile (WORKDIR/logs/KEY.result.prof)")
    a = ap.parse_args(argv)
    groups = [g.strip() for g in a.stages.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        ap.error(f"unknown stages {sorted(unknown)}; choose from {GROUPS}")
    if a.render:
        out = json.loads(a.render.read_text())
        out["meta"]["note"] = a.note or out["meta"].get("note", "")
        update_results(a.results, out["meta"]["size"], render_section(out))
        return 0
    people = a.people or SIZES[a.size]
    workdir = (a.workdir or Path(f"/tmp/bench-{a.size}")).resolve()
    out = run_bench(
        a.size,
        people,
        groups,
        workdir,
        memory_limit=a.memory_limit,
        timeout=a.timeout,
        keep=a.keep,
        profile={k.strip() for k in a.profile.split(",") if k.strip()},
        max_rss_mb=a.max_rss_mb,
        repeat=a.repeat,
        days=a.days,
    )
    out["meta"]["note"] = a.note
    (workdir / "results.json").write_text(json.dumps(out, indent=1, default=str))
    section = render_section(out)
    print(section)
    update_results(a.results, a.size, section)
    failed = [k for k, v in out["stages"].items() if "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
