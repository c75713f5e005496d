"""The DAG files import cleanly and wire the pipeline as documented (no metadata DB needed).

They are parsed three ways: with a dbt manifest and layer tasks (the default), with a manifest and one
task per model, and without a manifest (one dbt_build task). The manifest is the hand-written one in
airflow_fixtures.py, so the expected dbt tasks are known by hand.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow_fixtures import write_manifest

ROOT = Path(__file__).resolve().parent.parent
DAILY, TRANSFORM = "rapport_daily", "rapport_transform"


def _parse(env: dict[str, str]):
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        for key in (
            "RAPPORT_CATCHUP",
            "RAPPORT_START_DATE",
            "RAPPORT_AIRFLOW_POOL",
            "RAPPORT_DBT_TASKS",
            "RAPPORT_EXTRACT_RETRIES",
            "RAPPORT_EXTRACT_RETRY_DELAY",
        ):
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("manifest") / "manifest.json")


@pytest.fixture(scope="module")
def layer_bag(manifest):
    return _parse({"RAPPORT_DBT_MANIFEST": str(manifest)})


@pytest.fixture(scope="module")
def model_bag(manifest):
    return _parse({"RAPPORT_DBT_MANIFEST": str(manifest), "RAPPORT_DBT_TASKS": "model"})


@pytest.fixture(scope="module")
def fallback_bag(tmp_path_factory):
    missing = tmp_path_factory.mktemp("nomanifest") / "manifest.json"
    return _parse({"RAPPORT_DBT_MANIFEST": str(missing)})


def _chain(dag, ids):
    for upstream, downstream in zip(ids, ids[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}, (upstream, downstream)


def test_dag_files_import_without_errors(layer_bag, model_bag, fallback_bag):
    for bag in (layer_bag, model_bag, fallback_bag):
        assert bag.import_errors == {}
        assert {DAILY, TRANSFORM} <= set(bag.dag_ids)


def test_daily_registers_the_run_extracts_each_source_then_awaits_the_transform(layer_bag):
    dag = layer_bag.dags[DAILY]
    assert sorted(dag.task_ids) == ["await_transform", "extract_esp", "extract_helpdesk", "extract_orders",
                                    "start_run"]  # fmt: skip
    extracts = {"extract_orders", "extract_helpdesk", "extract_esp"}
    for task_id in extracts:
        assert dag.get_task(task_id).upstream_task_ids == {"start_run"}
    assert dag.get_task("await_transform").upstream_task_ids == extracts
    assert dag.max_active_runs == 1 and dag.max_active_tasks == 1


def test_daily_has_one_day_data_intervals_and_catchup_from_the_environment(layer_bag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = layer_bag.dags[DAILY]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.catchup is False
    caught_up = _parse({"RAPPORT_CATCHUP": "true", "RAPPORT_START_DATE": "2026-10-01",
                        "RAPPORT_DBT_MANIFEST": "/nonexistent/manifest.json"})  # fmt: skip
    dag = caught_up.dags[DAILY]
    assert dag.catchup is True
    assert dag.start_date.isoformat() == "2026-10-01T00:00:00+00:00"


def test_extract_tasks_update_the_source_assets_and_publish_the_marts_asset(layer_bag):
    daily, transform = layer_bag.dags[DAILY], layer_bag.dags[TRANSFORM]
    for source in ("orders", "helpdesk", "esp"):
        assert [a.uri for a in daily.get_task(f"extract_{source}").outlets] == [f"rapport://sources/{source}"]
    assert [a.uri for a in transform.get_task("publish").outlets] == ["rapport://marts/published"]
    # the transform runs when all three sources were updated
    assert {a.uri for a in transform.timetable.asset_condition.objects} == {
        "rapport://sources/orders", "rapport://sources/helpdesk", "rapport://sources/esp"}  # fmt: skip


def test_transform_runs_checks_dbt_layers_publish_and_report_in_order(layer_bag):
    dag = layer_bag.dags[TRANSFORM]
    _chain(dag, ["resolve_run", "check_raw", "dbt.staging", "dbt.intermediate", "dbt.marts", "predict",
                 "check_marts", "publish", "report", "finish_run"])  # fmt: skip
    assert len(dag.task_ids) == 10
    assert dag.get_task("dbt.marts").select.split() == [
        "customers",
        "relationships_int_orders_customer_id__ref_customers_",
    ]
    # dbt tasks skip themselves when nothing changed since the marts were checked: the tasks after them still
    # run (and a failure upstream still stops them)
    rules = {t: dag.get_task(t).trigger_rule for t in dag.task_ids}
    after_dbt = {t for t in rules if t.startswith("dbt.")} | {"predict", "check_marts"}
    assert {t: r for t, r in rules.items() if r != "all_success"} == dict.fromkeys(after_dbt, "none_failed")


def test_model_granularity_has_one_task_per_model_and_cross_model_tests_after_both(model_bag):
    dag = model_bag.dags[TRANSFORM]
    dbt = {t for t in dag.task_ids if t.startswith("dbt.")}
    models = {t for t in dbt if "_model_" in t or t.endswith("_build")}
    for name in ("stg_orders", "int_orders", "customers"):
        assert sum(t.startswith(f"dbt.{name}_") for t in models) == 1, (name, sorted(dbt))
    [cross] = [t for t in dbt if t.startswith("dbt.relationships_int_orders")]
    upstream = dag.get_task(cross).upstream_task_ids
    assert {t.split(".", 1)[1].split("_model")[0] for t in upstream} >= {"int_orders", "customers"}, upstream
    # everything dbt happens between the raw and the mart checks
    for task_id in dbt:
        assert "check_raw" in dag.get_task(task_id).get_flat_relative_ids(upstream=True)
        assert "predict" in dag.get_task(task_id).get_flat_relative_ids(upstream=False)
        assert "check_marts" in dag.get_task(task_id).get_flat_relative_ids(upstream=False)


def test_without_a_manifest_the_dag_still_imports_with_one_dbt_build_task(fallback_bag):
    dag = fallback_bag.dags[TRANSFORM]
    _chain(dag, ["resolve_run", "check_raw", "dbt_build", "predict", "check_marts", "publish", "report",
                 "finish_run"])  # fmt: skip


def test_extracts_retry_with_backoff_and_nothing_else_retries(layer_bag, model_bag):
    for bag in (layer_bag, model_bag):
        for dag in (bag.dags[DAILY], bag.dags[TRANSFORM]):
            for task in dag.tasks:
                if task.task_id.startswith("extract_"):
                    assert task.retries == 3, task.task_id
                    assert task.retry_delay == timedelta(seconds=30)
                    # Airflow 3: a multiplier (True would be 1.0, a constant delay)
                    assert task.retry_exponential_backoff >= 2, task.task_id
                    assert task.max_retry_delay <= timedelta(minutes=10)
                else:
                    assert task.retries == 0, task.task_id
                assert task.execution_timeout is not None, task.task_id
                assert task.on_failure_callback, task.task_id


def test_extract_retry_policy_from_the_environment():
    bag = _parse({"RAPPORT_EXTRACT_RETRIES": "5", "RAPPORT_EXTRACT_RETRY_DELAY": "4",
                  "RAPPORT_DBT_MANIFEST": "/nonexistent/manifest.json"})  # fmt: skip
    task = bag.dags[DAILY].get_task("extract_esp")
    assert (task.retries, task.retry_delay) == (5, timedelta(seconds=4))


def test_warehouse_writers_share_a_one_slot_pool_and_the_sensor_stays_out_of_it(layer_bag, model_bag):
    for bag in (layer_bag, model_bag):
        for dag in (bag.dags[DAILY], bag.dags[TRANSFORM]):
            for task in dag.tasks:
                expected = "default_pool" if task.task_id == "await_transform" else "rapport_warehouse"
                assert task.pool == expected, task.task_id
    unpooled = _parse({"RAPPORT_AIRFLOW_POOL": "", "RAPPORT_DBT_MANIFEST": "/nonexistent/manifest.json"})
    assert {t.pool for t in unpooled.dags[TRANSFORM].tasks} == {"default_pool"}


def test_dag_files_are_wiring_only():
    """Business logic lives in rapport.*: the DAG files must not touch DuckDB, SQL or HTTP themselves."""
    for name in ("rapport_daily.py", "rapport_transform.py"):
        text = (ROOT / "dags" / name).read_text()
        for forbidden in ("duckdb", "select ", "httpx", "sqlalchemy", "import os"):
            assert forbidden not in text.lower(), (name, forbidden)
        assert "from airflow.sdk import" in text
    assert not list((ROOT / "dags").glob("dbt_*.py"))  # dbt's plugin discovery would import them
