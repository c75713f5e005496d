"""The stage benchmark (bench/run.py) still runs end to end, on a tiny dataset: every stage, baseline, peer and
the incremental day produce a result, every ratio is computed and the RESULTS section is written. This checks
the benchmark's structure and the floor's equality with dbt, never timings (those are in bench/RESULTS.md).

300 people rather than the 10k of `--size small`: the run is dominated by fixed costs (dbt, GX and Airflow
start-up: about 6 minutes here on 2 shared cores even at 300 people), and 10k adds minutes of data work.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from rapport.core.config import PROJECT_ROOT

pytestmark = [pytest.mark.bench, pytest.mark.slow, pytest.mark.timeout(1800)]

PIPELINE = [
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
]
OTHERS = [
    "generate",
    "floor_orders",
    "floor_helpdesk",
    "floor_esp",
    "dbt_subset",
    "floor_transform",
    "dlt_orders",
    "dlt_helpdesk",
    "dlt_esp",
    "dag_manifest",
    "dag",
    "dag_unchanged",
    "mutate",
    "dag_incremental",
]


def _load(name: str):
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "bench" / f"{name.removeprefix('bench_')}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_benchmark_runs_end_to_end_on_a_tiny_dataset(tmp_path):
    run = _load("bench_run")
    results_md = _load("results_md")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## An earlier section\n\nkept as it is\n")
    workdir = tmp_path / "bench-tiny"
    argv = ["--size", "tiny", "--people", "300", "--workdir", str(workdir), "--results", str(results), "--days", "2"]
    code = run.main(argv)

    out = json.loads((workdir / "results.json").read_text())
    stages = out["stages"]
    failed = {k: v["error"][:500] for k, v in stages.items() if "error" in v}
    assert code == 0 and not failed, failed
    expected = OTHERS + ["mutate2"] + PIPELINE + [f"{p}{k}" for p in ("inc_", "inc2_") for k in PIPELINE]
    assert sorted(stages) == sorted(expected)
    for key in expected:
        assert stages[key]["seconds"] > 0 and stages[key]["peak_rss_mb"] > 0, key

    # the hand-written SQL computes the same two marts as dbt, row for row
    compare = stages["floor_transform"]["result"]["compare"]
    assert set(compare) == {"customers", "campaign_performance"}
    assert all(c["identical"] and c["rows_floor"] > 0 for c in compare.values()), compare
    # the incremental day reached every extractor, and only part of what the full load landed is new
    # (and so did the second day's, with records of its own: new keys, not the first day's again)
    for source in ("orders", "helpdesk", "esp"):
        full = stages[f"extract_{source}"]["result"]
        for day in ("inc_", "inc2_"):
            inc = stages[f"{day}extract_{source}"]["result"]
            assert 0 < inc["landed"] < full["landed"], (source, day, full, inc)
            assert inc["duplicate"] < inc["read"], (source, day, inc)
    # the dlt peer loaded rows from every source
    assert all(stages[f"dlt_{s}"]["result"]["rows_total"] > 0 for s in ("orders", "helpdesk", "esp"))

    rows = results_md.ratios(stages)
    ratios = [r for r in rows if not r.get("no_baseline")]
    assert len(ratios) == 15 and all(r["ratio"] is not None and r["met"] in (True, False) for r in ratios), rows
    first_task = [r for r in rows if r.get("no_baseline")]  # time to first task, both runs
    assert len(first_task) == 2 and all(r["num"] > 0 for r in first_task), first_task
    # the second run found nothing new: its dbt tasks were skipped
    states = stages["dag_unchanged"]["result"]["task_states"]
    assert {t for t, v in states.items() if v == "skipped"} == {"dbt.staging", "dbt.intermediate", "dbt.marts"}
    # the 1% day as one `rapport run` on the same warehouse: it found the new rows and built them
    states = stages["dag_incremental"]["result"]["task_states"]
    assert states["dbt.staging"] == states["dbt.marts"] == states["publish"] == "success", states
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\n## An earlier section\n\nkept as it is\n")
    section = text[text.index("<!-- bench/run.py size=tiny -->") : text.index("<!-- /bench/run.py size=tiny -->")]
    for label in (
        "extract orders / floor",
        "extract all three / dlt",
        "hand-written SQL",
        "incremental day",
        "whole DAG in-process",
        "peak RSS of any pipeline stage",
        "sum of the pipeline stages",
        "with nothing new / first run",
        "time to first task",
        "incremental day as one `rapport run`",
        "incremental day 2 (the day after day 1)",
        "sum of the incremental day 2 stages",
    ):
        assert label in section, label
    assert "not run" not in section and "| failed" not in section and "not included" not in section
    # sources and warehouses are removed after the run (they are large at real sizes)
    assert not (workdir / "src").exists() and not (workdir / "wh").exists()
