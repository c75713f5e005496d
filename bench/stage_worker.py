"""Run one benchmark stage in this process (a child of bench/run.py) and report its time and memory.

    python bench/stage_worker.py SPEC.json RESULT.json

SPEC holds `stage` (a key of STAGES), `env` (RAPPORT_* variables, set before anything reads them) and the
stage's arguments. RESULT gets `seconds` (the stage function alone: interpreter start and module imports
at the top of this file are not counted; imports a pipeline step makes inside itself are, as they are in a
DAG task), `ru_maxrss_mb` of this process and of its own children, `cpu_seconds` (user + system, this process
and its children, from its start), and what the stage returned.
Each stage runs in its own process so that peak RSS is per stage (DuckDB's memory is in-process).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from results_md import PIPELINE  # noqa: E402

Spec = dict[str, Any]


def _settings():  # type: ignore[no-untyped-def]
    from rapport.core.config import load_settings

    return load_settings()


def _ctx(spec: Spec):  # type: ignore[no-untyped-def]
    from rapport.core.run_context import RunContext

    return RunContext.create(
        spec["run_id"],
        interval_end=datetime.fromisoformat(spec["interval_end"]),
        as_of=date.fromisoformat(spec["as_of"]),
    )


def generate(spec: Spec) -> dict[str, Any]:
    from rapport.demo.generate import generate as gen

    s = gen(Path(spec["out"]), people=spec["people"], seed=spec["seed"], end=date.fromisoformat(spec["end"]))
    return {"counts": s.counts}


def pipeline_step(name: str) -> Callable[[Spec], Any]:
    def run(spec: Spec) -> Any:
        from rapport.pipeline import steps as pipeline

        settings, ctx = _settings(), _ctx(spec)
        if name.startswith("extract_"):
            source = name.removeprefix("extract_")
            counts = pipeline.extract(settings, ctx, source)
            return counts | {"tables": extraction_log(settings, ctx.run_id, source)}
        if name == "publish":
            return {"path": pipeline.publish(settings, ctx)}
        fn = {
            "start_run": pipeline.start_run,
            "check_raw": pipeline.check_raw,
            "transform": pipeline.transform,
            "predict": pipeline.predict,
            "check_marts": pipeline.check_marts,
            "report": pipeline.write_outputs,
            "finish_run": pipeline.finish_run,
        }[name]
        out = fn(settings, ctx)
        if name == "transform":
            return dbt_profile(settings)
        return out if isinstance(out, dict) else None

    return run


def extraction_log(settings, run_id: str, source: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Per raw table: rows read and landed, and the seconds spent landing (typing, merge, commit: the
    extractor's Timer; reading and decoding the source is the rest of the stage's time)."""
    import duckdb

    con = duckdb.connect(str(settings.work_db), read_only=True)
    try:
        rows = con.execute(
            'select "table", rows_read, rows_landed, duration_s from ops.extraction_log '
            "where run_id = ? and source = ?",
            [run_id, source],
        ).fetchall()
    finally:
        con.close()
    return {t: {"read": r, "landed": landed, "landing_s": d} for t, r, landed, d in rows}


def dag(spec: Spec) -> dict[str, Any]:
    """The whole DAG in-process, as `rapport run` runs it; also the time from this process's start to the
    start of the first task's own code (start_run), what a user waits before the pipeline does anything."""
    import psutil

    from rapport.orchestration.local_runner import run_dag
    from rapport.pipeline import steps

    started: list[tuple[float, float]] = []  # (wall clock, CPU seconds of this process) when start_run began
    real_start_run = steps.start_run

    def start_run(*args: Any, **kwargs: Any) -> Any:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started.append((time.time(), usage.ru_utime + usage.ru_stime))
        return real_start_run(*args, **kwargs)

    steps.start_run = start_run  # the DAG file calls it through the module: this is what runs
    settings = _settings()
    outcome = run_dag(
        settings,
        interval_end=datetime.fromisoformat(spec["interval_end"]),
        as_of=spec["as_of"],
        log_file=Path(spec["log_file"]),
        full_refresh=spec.get("full_refresh", False),
    )
    if not outcome.ok:
        raise RuntimeError(f"DAG run failed: {outcome.task_states}")
    first = started[0][0] - psutil.Process().create_time() if started else None
    # CPU time to the first task: what the start-up costs whatever else the machine is doing (wall time on a
    # shared machine also counts waiting for a core)
    return {
        "task_states": outcome.task_states,
        "runner_seconds": outcome.seconds,
        "first_task_seconds": first,
        "first_task_cpu_seconds": started[0][1] if started else None,
    }


def dag_manifest(spec: Spec) -> dict[str, Any]:  # noqa: ARG001 (every stage takes its spec)
    """What `scripts/bootstrap.sh` does after installing, and the first `rapport run` after a change to the dbt
    project: (re)write the dbt manifest the DAG renders its dbt tasks from, if it is older than the project."""
    from rapport.orchestration.dbt_tasks import ensure_manifest, manifest_is_current

    current = manifest_is_current()
    ensure_manifest()
    return {"regenerated": not current}


def dbt_subset(spec: Spec) -> dict[str, Any]:
    from rapport.transform.runner import dbt_build

    settings = _settings()
    dbt_build(
        settings,
        run_id=spec["run_id"],
        as_of=date.fromisoformat(spec["as_of"]),
        select=spec["select"],
        extra_args=spec.get("extra_args"),
    )
    return {"select": spec["select"], **dbt_profile(settings)}


def dbt_profile(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Where dbt's time went, from its run_results.json: seconds per node type and the slowest nodes."""
    from rapport.transform.runner import dbt_dirs

    path = dbt_dirs(settings)[0] / "run_results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text()).get("results", [])
    by_type: dict[str, float] = {}
    nodes = []
    for r in results:
        kind = r["unique_id"].split(".")[0]
        by_type[kind] = round(by_type.get(kind, 0.0) + r.get("execution_time", 0.0), 2)
        nodes.append((r.get("execution_time", 0.0), r["unique_id"]))
    nodes.sort(reverse=True)
    return {
        "dbt_seconds_by_type": by_type,
        "dbt_nodes": len(results),
        "dbt_slowest": [[uid.split(".", 2)[-1], round(t, 2)] for t, uid in nodes[:15]],
    }


def floor_transform(spec: Spec) -> dict[str, Any]:
    from floors import run_floor_transform

    return run_floor_transform(_settings(), Path(spec["db"]), compare_with=Path(spec["compare_with"]))


def floor_extract(source: str) -> Callable[[Spec], Any]:
    def run(spec: Spec) -> Any:
        import floors

        return getattr(floors, f"floor_{source}")(_settings(), Path(spec["db"]))

    return run


def dlt_source(source: str) -> Callable[[Spec], Any]:
    def run(spec: Spec) -> Any:
        import dlt_peer

        return dlt_peer.load(source, _settings(), Path(spec["dir"]))

    return run


def mutate(spec: Spec) -> dict[str, Any]:
    from incremental import mutate_sources

    return mutate_sources(
        Path(spec["src"]),
        share=spec["share"],
        seed=spec["seed"],
        start=datetime.fromisoformat(spec["start"]),
        end=datetime.fromisoformat(spec["end"]),
    )


STAGES: dict[str, Callable[[Spec], Any]] = {
    "generate": generate,
    "dag_manifest": dag_manifest,
    "dag": dag,
    "dbt_subset": dbt_subset,
    "floor_transform": floor_transform,
    "mutate": mutate,
    **{name: pipeline_step(name) for name in PIPELINE},
    **{f"floor_{s}": floor_extract(s) for s in ("orders", "helpdesk", "esp")},
    **{f"dlt_{s}": dlt_source(s) for s in ("orders", "helpdesk", "esp")},
}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    os.environ.update(spec.get("env", {}))
    fn = STAGES[spec["stage"]]
    profiler = None
    if spec.get("profile"):  # cProfile of the stage (bench/run.py --profile STAGE,...): logs/<key>.prof
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    out = fn(spec)
    seconds = time.perf_counter() - t0
    if profiler:
        profiler.disable()
        profiler.dump_stats(Path(argv[1]).with_suffix(".prof"))
    result = {
        "seconds": seconds,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # CPU of the whole process (interpreter start and imports included) and its children: unlike wall
        # time, it does not grow when other work on the machine keeps this process waiting for a core
        "cpu_seconds": sum(
            getattr(resource.getrusage(who), f)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for f in ("ru_utime", "ru_stime")
        ),
        "children_ru_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "result": json.loads(json.dumps(out, default=str)),
    }
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter teardown (GC of big frames, atexit hooks): it is not the stage's work
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
