"""The DAG file imports cleanly and wires the pipeline steps in order (no metadata DB needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "rapport_daily" in dagbag.dag_ids


def test_pipeline_steps_run_in_order(dagbag):
    dag = dagbag.dags["rapport_daily"]
    expected = [
        "start_run", "extract_orders", "extract_helpdesk", "extract_esp", "check_raw",
        "dbt_build", "check_marts", "publish", "report", "finish_run",
    ]
    assert sorted(dag.task_ids) == sorted(expected)
    for upstream, downstream in zip(expected, expected[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_extracts_retry_and_transforms_do_not(dagbag):
    dag = dagbag.dags["rapport_daily"]
    for task in dag.tasks:
        if task.task_id.startswith("extract_"):
            assert task.retries >= 1, task.task_id
        else:
            assert task.retries == 0, task.task_id
        assert task.execution_timeout is not None


def test_dag_file_is_wiring_only():
    """Business logic lives in rapport.pipeline: the DAG file must not touch DuckDB, SQL or HTTP itself."""
    text = (ROOT / "dags" / "rapport_daily.py").read_text()
    for forbidden in ("duckdb", "select ", "httpx", "sqlalchemy"):
        assert forbidden not in text.lower(), forbidden
    assert "from airflow.sdk import" in text
