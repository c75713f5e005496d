"""rapport on a real Airflow 3 stack: PostgreSQL metadata DB, scheduler (LocalExecutor), dag-processor and
api-server as processes on loopback, driven through the REST API v2 like a user would.

Nothing is installed by hand: scripts/start_postgres.sh provides PostgreSQL from Debian's packages (the test
skips, loudly, only when it cannot), Airflow comes from the project's environment. Every process the test
starts is stopped at the end, also when it fails, and the last test checks that none is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from rapport.orchestration.airflow_stack import AirflowStack, StackError, _alive, descendants, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT.parent / "shared" / "tools" / "check_published.py"
DAILY, TRANSFORM = "rapport_daily", "rapport_transform"
# The run under test is the one a scheduler would make today: the interval of yesterday (UTC). Triggering it
# before unpausing means the scheduler finds that interval taken and adds no run of its own. Set when the
# stack starts (_settle_clock), not at collection: a module that crossed midnight UTC in between had the
# scheduler add the new day's run, and a second transform.
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)
MIDNIGHT_MARGIN = timedelta(minutes=20)  # longer than this module runs once the DAGs are unpaused


def _settle_clock() -> None:
    """Fix TODAY/YESTERDAY for the module; close to midnight UTC, wait for the new day first."""
    global TODAY, YESTERDAY
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    if midnight - now < MIDNIGHT_MARGIN:
        warnings.warn(f"real-Airflow test waits {(midnight - now).seconds} s for midnight UTC", stacklevel=1)
        time.sleep((midnight - now).total_seconds() + 5)
    TODAY = datetime.now(UTC).date()
    YESTERDAY = TODAY - timedelta(days=1)


TOKEN = "tok-" + secrets.token_hex(12)


def _iso(day) -> str:
    return f"{day.isoformat()}T00:00:00Z"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _settle_clock()
    base = tmp_path_factory.mktemp("real_airflow")
    warehouse = base / "warehouse"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    env.update({"RAPPORT_WAREHOUSE_DIR": str(warehouse), "DO_NOT_TRACK": "1"})
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapport.cli",
            "generate",
            "--people",
            "200",
            "--seed",
            "3",
            "--end",
            YESTERDAY.isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert gen.returncode == 0, gen.stdout + gen.stderr
    # the manifest the dag-processor renders the dbt tasks from
    manifest = subprocess.run([sys.executable, "-m", "rapport.orchestration.dbt_tasks", "--if-stale"], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    assert manifest.returncode == 0, manifest.stderr[-3000:]
    # The sources are configured as Airflow connections only: the orders DB and the ESP exports are moved
    # away from the demo defaults, so the run can only find them through rapport_orders_db and rapport_esp;
    # the helpdesk token comes from rapport_helpdesk (the demo helpdesk is served with it).
    sources = base / "sources"
    sources.mkdir()
    shutil.move(warehouse / "demo" / "shop.db", sources / "shop.db")
    shutil.move(warehouse / "demo" / "esp", sources / "esp")
    extra = {
        "RAPPORT_START_DATE": (YESTERDAY - timedelta(days=3)).isoformat(),
        "RAPPORT_CATCHUP": "false",
        "AIRFLOW_CONN_RAPPORT_ORDERS_DB": json.dumps(
            {"conn_type": "sqlite", "extra": {"sqlalchemy_url": f"sqlite:///{sources / 'shop.db'}"}}),
        "AIRFLOW_CONN_RAPPORT_ESP": json.dumps({"conn_type": "fs", "extra": {"root": str(sources / "esp")}}),
        "AIRFLOW_CONN_RAPPORT_HELPDESK": json.dumps({"conn_type": "http", "password": TOKEN}),
    }  # fmt: skip
    # not under pytest's tmp dir: the server runs as the `postgres` user, who cannot enter it
    pg_dir = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
    try:
        started = start_stack(base / "airflow", warehouse, pg_dir=pg_dir, extra_env=extra,
                              pools={"rapport_warehouse": 1})  # fmt: skip
    except StackError as exc:
        shutil.rmtree(pg_dir, ignore_errors=True)
        if "PostgreSQL could not start" in str(exc):
            reason = f"real-Airflow test SKIPPED: {exc}"
            warnings.warn(reason, stacklevel=1)
            pytest.skip(reason)
        raise
    started.warehouse = warehouse  # type: ignore[attr-defined]
    try:
        started.client().wait_for_dags([DAILY, TRANSFORM], started)
        yield started
    finally:
        started.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def _diagnose(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """Task states of a run and the log tail of each task that did not succeed."""
    client = stack.client()
    lines = [f"{dag_id} {run_id}"]
    for task_id, state in client.task_states(dag_id, run_id).items():
        lines.append(f"  {task_id}: {state}")
        if state not in ("success", None):
            for log in sorted(stack.home.glob(f"logs/dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log")):
                lines.append(log.read_text(errors="replace")[-3000:])
    lines.append(stack.log_tail("scheduler", 2000))
    return "\n".join(lines)


def _published_runs(stack) -> list[tuple]:
    con = duckdb.connect(str(stack.warehouse / "published" / "rapport.duckdb"), read_only=True)
    try:
        return con.execute("select run_id, status, data_interval_start, data_interval_end, as_of_date "
                           "from ops.runs order by data_interval_end").fetchall()  # fmt: skip
    finally:
        con.close()


@pytest.fixture(scope="module")
def triggered(stack):
    client = stack.client()
    run_id = client.trigger(DAILY, logical_date=_iso(YESTERDAY), data_interval=(_iso(YESTERDAY), _iso(TODAY)))
    client.unpause(DAILY)
    client.unpause(TRANSFORM)
    t0 = time.monotonic()
    [run] = client.wait_for_runs(DAILY, 1, stack, timeout=900, run_ids=[run_id])
    assert run["state"] == "success", _diagnose(stack, DAILY, run_id)
    return run_id, time.monotonic() - t0


def test_triggered_daily_run_extracts_then_the_asset_triggered_transform_publishes(stack, triggered):
    run_id, seconds = triggered
    client = stack.client()
    assert set(client.task_states(DAILY, run_id).values()) == {"success"}
    transforms = client.runs(TRANSFORM)
    assert [r["run_type"] for r in transforms] == ["asset_triggered"]
    assert transforms[0]["state"] == "success", _diagnose(stack, TRANSFORM, transforms[0]["dag_run_id"])
    states = client.task_states(TRANSFORM, transforms[0]["dag_run_id"])
    assert {"dbt.staging", "dbt.intermediate", "dbt.marts", "publish"} <= set(states)
    assert set(states.values()) == {"success"}
    print(f"pipeline run through the real scheduler: {seconds:.0f} s")


def test_extract_tasks_updated_the_source_assets_with_the_run(stack, triggered):
    run_id, _ = triggered
    events = stack.client().request("GET", "/assets/events", params={"source_dag_id": DAILY, "limit": 100})
    by_uri = {e["uri"]: e for e in events["asset_events"] if e["source_run_id"] == run_id}
    assert set(by_uri) == {"rapport://sources/orders", "rapport://sources/helpdesk", "rapport://sources/esp"}
    for event in by_uri.values():
        assert event["extra"]["run_id"] == run_id
        assert event["extra"]["interval_end"] == f"{TODAY.isoformat()}T00:00:00"
    published = stack.client().request("GET", "/assets/events", params={"source_dag_id": TRANSFORM})
    assert [e["uri"] for e in published["asset_events"]] == ["rapport://marts/published"]
    assert published["asset_events"][0]["extra"]["run_id"] == run_id


def test_the_helpdesk_token_from_the_connection_is_never_logged(stack, triggered):
    logs = [p for p in stack.home.rglob("*.log")]
    assert any("extract_helpdesk" in str(p) for p in logs)
    leaked = [str(p) for p in logs if TOKEN in p.read_text(errors="replace")]
    leaked += [str(p) for p in (stack.warehouse / "logs").rglob("*") if p.is_file()
               and TOKEN in p.read_text(errors="replace")]  # fmt: skip
    assert leaked == []


def test_published_marts_meet_the_contract_and_record_the_run(stack, triggered):
    run_id, _ = triggered
    published = stack.warehouse / "published" / "rapport.duckdb"
    out = subprocess.run([sys.executable, str(CHECKER), "--all", str(published)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    [(rid, status, start, end, as_of)] = _published_runs(stack)
    # the published copy records its own run as successful (publishing is the run's last gated step)
    assert (rid, status) == (run_id, "success")
    assert (start, end, as_of) == (datetime.combine(YESTERDAY, datetime.min.time()),
                                   datetime.combine(TODAY, datetime.min.time()), TODAY)  # fmt: skip
    con = duckdb.connect(str(published), read_only=True)
    assert con.execute("select count(*) from marts.customers").fetchone()[0] > 0
    # the dbt tasks got the pipeline's run id and as-of date as vars (not the transform's own Airflow run)
    assert con.execute("select distinct run_id, as_of_date from marts.segment_history").fetchall() == [
        (run_id, TODAY)]  # fmt: skip


def test_airflow_backfill_create_runs_an_earlier_day_through_both_dags(stack, triggered):
    day = YESTERDAY - timedelta(days=1)
    stack.airflow("backfill", "create", "--dag-id", DAILY, "--from-date", day.isoformat(), "--to-date",
                  day.isoformat(), "--max-active-runs", "1")  # fmt: skip
    client = stack.client()
    deadline = time.monotonic() + 900
    backfill_runs = []
    while time.monotonic() < deadline:
        stack.check_alive()
        backfill_runs = [r for r in client.runs(DAILY) if r["run_type"] == "backfill"]
        if backfill_runs and all(r["state"] in ("success", "failed") for r in backfill_runs):
            break
        time.sleep(5)
    assert len(backfill_runs) == 1, client.runs(DAILY)
    run = backfill_runs[0]
    assert run["state"] == "success", _diagnose(stack, DAILY, run["dag_run_id"])
    assert run["data_interval_start"].startswith(day.isoformat())
    transforms = client.wait_for_runs(TRANSFORM, 2, stack, timeout=300)
    assert [r["state"] for r in transforms] == ["success", "success"]
    runs = _published_runs(stack)
    assert [(r[0], r[3].date()) for r in runs] == [(run["dag_run_id"], YESTERDAY), (triggered[0], TODAY)]


def test_stopping_the_stack_leaves_no_process_behind(stack):
    pids = [p.pid for p in stack.procs.values()]
    pids += [d for p in list(pids) for d in descendants(p)]
    assert pids
    stack.stop()
    time.sleep(0.5)
    assert [p for p in pids if _alive(p)] == []
    pg_pid_file = Path(stack.pg_dir) / "data" / "postmaster.pid"
    assert not pg_pid_file.exists()
    print(json.dumps({"stopped_pids": len(pids)}))
