"""The Markdown section bench/run.py writes per size into bench/RESULTS.md (between markers, so a rerun of a
size replaces its own section and leaves every other section of the file alone)."""

from __future__ import annotations

import contextlib
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEADING = "# Pipeline stages by size (`bench/run.py`, issue 9)"
# the stage groups of bench/run.py and the pipeline steps in order (bench/run.py and bench/stage_worker.py use these)
GROUPS = ("generate", "pipeline", "floors", "transform", "dlt", "dag", "incremental")
PIPELINE = (
    "start_run",
    "extract_orders",
    "extract_helpdesk",
    "extract_esp",
    "check_raw",
    "transform",
    "predict",
    "check_marts",
    "publish",
    "report",
    "finish_run",
)
LABELS = {
    "generate": "generate sources (`rapport generate --people N`)",
    "start_run": "start run",
    "extract_orders": "extract orders (SQLite)",
    "extract_helpdesk": "extract helpdesk (HTTP export)",
    "extract_esp": "extract ESP (files)",
    "check_raw": "raw checks (GX)",
    "transform": "dbt build (whole project)",
    "predict": "customer predictions (Pareto/NBD + Gamma-Gamma fit)",
    "check_marts": "mart checks (GX)",
    "publish": "publish (+ Parquet, dbt docs)",
    "report": "report (HTML + PDF) and audience files",
    "finish_run": "finish run",
    "floor_orders": "floor: ADBC -> Arrow -> DuckDB",
    "floor_helpdesk": "floor: bare httpx page loop",
    "floor_esp": "floor: DuckDB read_json + read_csv",
    "dbt_subset": "dbt build customers + campaign_performance",
    "floor_transform": "floor: hand-written SQL (bench/floor_transform.sql)",
    "dlt_orders": "dlt sql_database",
    "dlt_helpdesk": "dlt rest_api",
    "dlt_esp": "dlt filesystem",
    "dag_manifest": "dbt manifest for the DAG's tasks (setup; again after a change to the dbt project)",
    "dag": "whole DAG, in-process Airflow runner",
    "dag_unchanged": "whole DAG again, same day, nothing new at the sources",
    "mutate": "add 1% new + 1% changed records (not timed as pipeline)",
    "dag_incremental": "whole DAG, the 1% day (after `whole DAG` and its rerun)",
}
# the incremental days' stage keys: `inc_` for the first day after the full run, `inc2_`, `inc3_`... for the
# days after it (bench/run.py --days)
DAY_PREFIX = re.compile(r"^inc(\d*)_")


def day_prefix(day: int) -> str:
    return "inc_" if day == 1 else f"inc{day}_"


def days_run(stages: dict[str, Any]) -> list[int]:
    """The incremental days with at least one stage recorded, in order."""
    found = {int(m.group(1) or 1) for k in stages if (m := DAY_PREFIX.match(k))}
    return sorted(found)


def _stage_of(key: str) -> str:
    """The pipeline step of a stage key, without its day prefix."""
    return DAY_PREFIX.sub("", key)


KEY_COUNTS = (
    "customers",
    "orders",
    "order_items",
    "helpdesk_user_versions",
    "helpdesk_ticket_versions",
    "esp_contacts",
    "esp_contact_snapshots",
    "audience_rows",
    "esp_event_lines",
    "esp_event_files",
    "identity_records",
)


def _versions() -> str:
    names = ("duckdb", "dbt-core", "dbt-duckdb", "apache-airflow", "great-expectations", "dlt", "pandas", "pyarrow")
    out = [f"Python {platform.python_version()}"]
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{n} {metadata.version(n)}")
    return ", ".join(out)


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "unknown"


def _machine() -> str:
    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    import os

    import psutil

    return f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GB RAM, {platform.system()}"


def _s(rec: dict[str, Any] | None, field: str = "seconds") -> float | None:
    if not rec or "error" in rec:
        return None
    if field == "floor_seconds":
        return rec.get("result", {}).get("floor_seconds")
    return rec.get(field)


def _fmt(x: float | None, unit: str = "") -> str:
    return "not run" if x is None else f"{x:,.1f}{unit}"


def ratios(stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """(name, numerator s, denominator s, ratio, goal text, met) for every goal the run measured."""
    g = stages.get
    rows: list[dict[str, Any]] = []

    def add(name: str, num: float | None, den: float | None, goal: str, limit: float, strict: bool = False) -> None:
        r = num / den if num is not None and den else None
        met = None if r is None else (r < limit if strict else r <= limit)
        rows.append({"name": name, "num": num, "den": den, "ratio": r, "goal": goal, "met": met})

    ex = {s: _s(g(f"extract_{s}")) for s in ("orders", "helpdesk", "esp")}
    fl = {s: _s(g(f"floor_{s}")) for s in ("orders", "helpdesk", "esp")}
    dl = {s: _s(g(f"dlt_{s}")) for s in ("orders", "helpdesk", "esp")}
    for s in ("orders", "helpdesk", "esp"):
        add(f"extract {s} / floor", ex[s], fl[s], "<= 2x", 2.0)

    def total(d: dict[str, float | None]) -> float | None:
        return sum(v for v in d.values() if v is not None) if all(v is not None for v in d.values()) else None

    add("extract all three / floors", total(ex), total(fl), "<= 2x", 2.0)
    for s in ("orders", "helpdesk", "esp"):
        add(f"extract {s} / dlt", ex[s], dl[s], "< 1 (faster than dlt)", 1.0, strict=True)
    add("extract all three / dlt", total(ex), total(dl), "< 1 (faster than dlt)", 1.0, strict=True)
    # with --repeat, the fastest of the repeats of each side (the least disturbed by other work on the machine)
    dbt = [_s(r) for k, r in stages.items() if k.split("#")[0] == "dbt_subset" and _s(r) is not None]
    floor = [
        _s(r, "floor_seconds")
        for k, r in stages.items()
        if k.split("#")[0] == "floor_transform" and _s(r, "floor_seconds") is not None
    ]
    add(
        "dbt build customers + campaign_performance / hand-written SQL",
        min(dbt) if dbt else None,
        min(floor) if floor else None,
        "<= 1.5x" + (f" (fastest of {len(dbt)} runs each)" if len(dbt) > 1 else ""),
        1.5,
    )
    full = [_s(g(k)) for k in PIPELINE]
    full_sum = sum(full) if all(v is not None for v in full) else None
    for day in days_run(stages) or [1]:
        inc = [_s(g(f"{day_prefix(day)}{k}")) for k in PIPELINE]
        inc_sum = sum(inc) if all(v is not None for v in inc) else None
        what = "incremental day" if day == 1 else f"incremental day {day} (the day after day {day - 1})"
        add(f"{what} (1% new + 1% changed) / full run", inc_sum, full_sum, "< 0.10", 0.10, strict=True)
    add(
        "incremental day as one `rapport run` / first `rapport run` (whole processes)",
        _s(g("dag_incremental"), "process_seconds"),
        _s(g("dag"), "process_seconds"),
        "< 0.10",
        0.10,
        strict=True,
    )
    add("whole DAG in-process / sum of its stages run directly", _s(g("dag")), full_sum, "<= 1.25x", 1.25)
    # what a user waits: the whole `rapport run` process, interpreter start and imports included
    add(
        "`rapport run` with nothing new / first run (whole process)",
        _s(g("dag_unchanged"), "process_seconds"),
        _s(g("dag"), "process_seconds"),
        "< 0.25",
        0.25,
        strict=True,
    )
    add(
        "the same in CPU time (what waiting for a core on a shared machine leaves out)",
        _s(g("dag_unchanged"), "cpu_seconds"),
        _s(g("dag"), "cpu_seconds"),
        "< 0.25",
        0.25,
        strict=True,
    )
    for key, what in (("dag", "first run"), ("dag_unchanged", "run with nothing new")):
        first = ((g(key) or {}).get("result") or {}).get("first_task_seconds") if _s(g(key)) is not None else None
        rows.append(
            {
                "name": f"time to first task, {what} (process start to start_run's code)",
                "num": first,
                "den": None,
                "ratio": None,
                "goal": "< 10 s",
                "met": None if first is None else first < 10,
                "no_baseline": True,
            }
        )
    return rows


def render_section(out: dict[str, Any]) -> str:
    meta, stages = out["meta"], out["stages"]
    size = meta["size"]
    partial = len(meta["groups"]) < len(GROUPS)  # run with --stages
    lines = [
        f"<!-- bench/run.py size={size} -->",
        f"## {size}: {meta['people']:,} people",
        "",
        f"Run {meta['started']} to {meta['finished']} on {_machine()}; {_versions()}; commit {_commit()}. "
        f"DuckDB threads=2, memory_limit={meta['memory_limit']}, temp_directory under each warehouse. "
        f"Load average (1/5/15 min) at the start {_load(meta['load_start'])}, at the end "
        f"{_load(meta['load_end'])}: the machine is shared with other work, so compare the ratios (measured "
        f"in the same run) rather than absolute times across runs. Command: `.venv/bin/python bench/run.py "
        f"--size {size}{' --stages ' + ','.join(meta['groups']) if partial else ''}"
        f"{' --days ' + str(meta['days']) if meta.get('days', 1) > 1 else ''}`.",
        "",
    ]
    c = meta.get("counts", {})
    if c:
        lines += [
            "Data (generator seed {}, history to {}): ".format(meta["seed"], meta["end"])
            + ", ".join(f"{k} {c[k]:,}" for k in KEY_COUNTS if k in c)
            + ". On disk (MB): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in meta.get("source_mb", {}).items())
            + f"; working warehouse after the runs {meta.get('warehouse_mb', 0):,.0f} MB.",
            "",
        ]
    if meta.get("note"):
        lines += [meta["note"], ""]
    lines += ["| stage | seconds | peak RSS MB | notes |", "|---|---:|---:|---|"]
    repeats = sorted(k for k in stages if "#" in k)
    order = [
        "generate",
        *PIPELINE,
        "floor_orders",
        "floor_helpdesk",
        "floor_esp",
        "dbt_subset",
        "floor_transform",
        *repeats,
        "dlt_orders",
        "dlt_helpdesk",
        "dlt_esp",
        "dag_manifest",
        "dag",
        "dag_unchanged",
        "mutate",
        *[f"inc_{k}" for k in PIPELINE],
        "dag_incremental",
        *[k for day in days_run(stages)[1:] for k in (f"mutate{day}", *[f"{day_prefix(day)}{s}" for s in PIPELINE])],
    ]
    for key in order:
        rec = stages.get(key)
        base, _, n = key.partition("#")
        label = LABELS.get(base) or _day_label(base)
        label += (f" (repeat {n})" if n else "") + (" (earlier run)" if rec and rec.get("from_earlier_run") else "")
        if rec is None:
            continue
        if "error" in rec:
            lines.append(
                f"| {label} | failed after {rec.get('process_seconds', 0):,.0f} s | "
                f"{rec.get('tree_peak_rss_mb', 0):,.0f} | {rec['error'].splitlines()[0][:160]} |"
            )
            continue
        note = _note(base, rec)
        secs = rec["result"]["floor_seconds"] if base == "floor_transform" else rec["seconds"]
        lines.append(f"| {label} | {secs:,.1f} | {rec['peak_rss_mb']:,.0f} | {note} |")
    sums = [("pipeline", ""), *[(_day_name(d), day_prefix(d)) for d in days_run(stages)]]
    for name, prefix in sums:
        recs = [stages[f"{prefix}{k}"] for k in PIPELINE if f"{prefix}{k}" in stages]
        done = [r for r in recs if "error" not in r]
        if done:
            missing = len(PIPELINE) - len(done)
            gap = f" ({missing} failed or not run: not included)" if missing else ""
            lines.append(
                f"| **sum of the {name} stages**{gap} | **{sum(r['seconds'] for r in done):,.1f}** | "
                f"**{max(r['peak_rss_mb'] for r in done):,.0f}** (max) | |"
            )
    lines += ["", "| ratio | measured | baseline | ratio | goal | met |", "|---|---:|---:|---:|---|---|"]
    for r in ratios(stages):
        if r["num"] is None and r["den"] is None and partial:
            continue  # a partial run (--stages) lists only the goals it measured something for
        met = {None: "not measured", True: "yes", False: "**no**"}[r["met"]]
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        baseline = "" if r.get("no_baseline") else _fmt(r["den"], " s")
        lines.append(f"| {r['name']} | {_fmt(r['num'], ' s')} | {baseline} | {ratio} | {r['goal']} | {met} |")
    peaks = [r["peak_rss_mb"] for k, r in stages.items() if "error" not in r and (k in PIPELINE or k == "dag")]
    if peaks:
        lines.append(
            f"| peak RSS of any pipeline stage (or the DAG run) | {max(peaks):,.0f} MB | 8,192 MB | "
            f"{max(peaks) / 8192:.2f} | < 8 GB | {'yes' if max(peaks) < 8192 else '**no**'} |"
        )
    for key in ("transform", "dbt_subset", *[f"{day_prefix(d)}transform" for d in days_run(stages)]):
        res = (stages.get(key) or {}).get("result") or {}
        if res.get("dbt_slowest"):
            by_type = ", ".join(f"{k} {v:,.1f} s" for k, v in sorted(res["dbt_seconds_by_type"].items()))
            slow = ", ".join(f"{n} {t:,.1f}" for n, t in res["dbt_slowest"][:8])
            m = DAY_PREFIX.match(key)
            label = LABELS.get(_stage_of(key), key) + (f" ({_day_name(int(m.group(1) or 1))})" if m else "")
            lines.append(
                f"\n{label}: {res['dbt_nodes']} nodes; time by node type: {by_type}; slowest nodes (s): {slow}."
            )
    lines.append(f"<!-- /bench/run.py size={size} -->")
    return "\n".join(lines) + "\n"


def _day_name(day: int) -> str:
    return "incremental" if day == 1 else f"incremental day {day}"


def _day_label(key: str) -> str:
    """A stage row's label for an incremental day's key (`inc_extract_esp`, `mutate2`, `inc2_publish`)."""
    if key.startswith("mutate"):
        return f"{_day_name(int(key.removeprefix('mutate')))}: {LABELS['mutate']}"
    m = DAY_PREFIX.match(key)
    day = int(m.group(1) or 1) if m else 1
    return f"{_day_name(day)}: {LABELS.get(_stage_of(key), key)}"


def _load(v: Any) -> str:
    return " / ".join(f"{x:.1f}" for x in v) if v else "?"


def _note(key: str, rec: dict[str, Any]) -> str:
    res = rec.get("result") or {}
    key = _stage_of(key)
    if key.startswith("extract_"):
        tables = "; ".join(
            f"{t} {v['read']:,} read, {v['landing_s']:,.1f} s landing"
            for t, v in (res.get("tables") or {}).items()
            if v["read"]
        )
        return (
            f"read {res.get('read', 0):,}, landed {res.get('landed', 0):,}, quarantined "
            f"{res.get('quarantined', 0):,}, duplicates {res.get('duplicate', 0):,}"
            + (f" ({tables})" if tables else "")
        )
    if key.startswith("floor_") and key != "floor_transform":
        return "rows " + ", ".join(f"{k} {v:,}" for k, v in res.items())
    if key.startswith("dlt_"):
        return f"rows {res.get('rows_total', 0):,}"
    if key == "floor_transform":
        if res.get("compare_error"):
            return f"not compared with dbt ({res['compare_error'][:100]}); {res.get('propagation_steps')} steps"
        cmp_ = res.get("compare", {})
        same = all(v.get("identical") for v in cmp_.values()) if cmp_ else False
        detail = "; ".join(
            f"{t}: {v['rows_floor']:,} rows"
            + (
                ""
                if v["identical"]
                else f", {v['differing_rows']} differ in {v['differing_columns']}, {v['unmatched_keys']} unmatched"
            )
            for t, v in cmp_.items()
        )
        return (
            f"{'same rows as dbt' if same else 'DIFFERS from dbt'} ({detail}); "
            f"{res.get('propagation_steps')} propagation steps"
        )
    if key == "dag_manifest":
        return "written" if res.get("regenerated") else "current: not written"
    if key in ("dag", "dag_unchanged", "dag_incremental"):
        states = res.get("task_states", {})
        skipped = [t for t, v in states.items() if v == "skipped"]
        first, cpu = res.get("first_task_seconds"), res.get("first_task_cpu_seconds") or 0
        return (
            f"process {rec.get('process_seconds', 0):,.1f} s, runner {res.get('runner_seconds', 0):,.1f} s, "
            f"{len(states)} tasks"
            + (f" ({len(skipped)} skipped: {', '.join(skipped)})" if skipped else "")
            + (
                f"; first task's code {first:,.1f} s after process start ({cpu:,.1f} s of CPU)"
                if first is not None
                else ""
            )
        )
    if key in ("check_raw", "check_marts"):
        return ", ".join(f"{k} {v}" for k, v in res.items() if k in ("evaluated", "failed", "passed", "warnings"))
    return ""


def update_results(path: Path, size: str, section: str) -> None:
    """Replace this size's section in `path` (or add it under the heading), keeping everything else."""
    text = path.read_text() if path.exists() else ""
    start, end = f"<!-- bench/run.py size={size} -->", f"<!-- /bench/run.py size={size} -->"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + section.rstrip("\n") + text[b:]
    else:
        if HEADING not in text:
            text = text.rstrip("\n") + f"\n\n{HEADING}\n\n"
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n")
