"""A failed dbt model fails its layer task, and clearing that task rebuilds only what failed.

On a copy of the dbt project (the test edits it), one mart is broken: the pipeline runs in-process, and
`dbt.marts` fails while the other layers succeed. The model is then repaired and only the failed task is
run again for the same pipeline run (the tasks before it are marked done, as Airflow's "clear only failed"
leaves them; `dag.test` makes a new Airflow run for it, the pipeline run is the same): its second attempt
must build that one model and nothing else, and the run must then publish.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "value_concentration"

DRIVER = """
import json, os, sys
from datetime import UTC, datetime
from pathlib import Path

import rapport.orchestration.dbt_tasks as dbt_tasks

project, model_file = Path(sys.argv[1]), Path(sys.argv[2])
dbt_tasks.DBT_PROJECT_DIR = project  # the edited copy, for rendering and for the cosmos operators
os.environ["RAPPORT_DBT_MANIFEST"] = str(project / "target" / "airflow" / "manifest.json")

from rapport.orchestration import local_runner as airflow_runner
from rapport.core.config import load_settings

settings = load_settings()
airflow_runner.configure_airflow(settings)
dags = airflow_runner._load_dags()
daily, transform = dags["rapport_daily"], dags["rapport_transform"]
end = datetime(2026, 11, 1, tzinfo=UTC)
daily_run = daily.test(logical_date=end, run_conf={"interval_end": end.isoformat()},
                       mark_success_pattern="await_transform")
conf = airflow_runner._run_context_of(daily_run)
first = transform.test(logical_date=end, run_conf=conf)
states = {"first": {ti.task_id: str(ti.state) for ti in first.get_task_instances()}}
model_file.write_text(model_file.with_suffix(".orig").read_text())  # the fix
print("=== RETRY ===", flush=True)
second = transform.test(logical_date=end, run_conf=conf,
                        mark_success_pattern=r"resolve_run|check_raw|dbt\\.staging|dbt\\.intermediate")
states["second"] = {ti.task_id: [str(ti.state), ti.try_number] for ti in second.get_task_instances()}
print("STATES " + json.dumps(states), flush=True)
"""


@pytest.fixture(scope="module")
def retried(tmp_path_factory):
    base = tmp_path_factory.mktemp("dbt_retry")
    project = base / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    [model_file] = project.glob(f"models/marts/**/{BROKEN}.sql")
    shutil.copy(model_file, model_file.with_suffix(".orig"))
    model_file.write_text("select error('injected failure') as as_of_date")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env.update({"RAPPORT_WAREHOUSE_DIR": str(base / "warehouse"), "DO_NOT_TRACK": "1"})
    gen = subprocess.run([sys.executable, "-m", "rapport.cli", "generate", "--people", "100", "--end",
                          "2026-10-31"], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(project), str(model_file)], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    out = proc.stdout + proc.stderr
    marker = [line for line in out.splitlines() if line.startswith("STATES ")]
    assert proc.returncode == 0 and marker, out[-6000:]
    return json.loads(marker[-1][len("STATES ") :]), out.split("=== RETRY ===", 1)[1], base / "warehouse"


def test_the_broken_model_fails_the_marts_task_only(retried):
    states, _, _ = retried
    first = states["first"]
    assert first["dbt.staging"] == first["dbt.intermediate"] == "success"
    assert first["dbt.marts"] == "failed"
    assert first["check_marts"] == first["publish"] == "upstream_failed"


def test_clearing_the_failed_task_rebuilds_only_the_failed_model_then_publishes(retried):
    states, retry_log, warehouse = retried
    second = states["second"]
    assert second["dbt.marts"][0] == "success"
    assert all(state == "success" for state, _ in second.values()), second
    built = set(re.findall(r"START sql \w+ model (\w+\.\w+)", retry_log))
    assert built == {f"marts.{BROKEN}"}
    assert "retry of dbt.marts: rebuilding only what did not succeed last time" in retry_log
    assert (warehouse / "published" / "rapport.duckdb").exists()
