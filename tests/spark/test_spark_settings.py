"""RAPPORT_ENGINE / RAPPORT_SPARK_MASTER settings, the spark profile's parameters, and the DAG's dbt tasks
with the Spark engine: everything that needs no JVM (tests/spark/test_spark_marts_equal.py builds on Spark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from airflow_fixtures import write_manifest

from rapport.core.config import engine_from, load_settings
from rapport.orchestration.dbt_tasks import dbt_target
from rapport.transform.runner import dbt_env
from rapport.transform.spark import spark_parameters

ROOT = Path(__file__).resolve().parents[2]


def test_engine_defaults_to_duckdb_and_accepts_spark_in_any_case(tmp_path):
    base = {"RAPPORT_WAREHOUSE_DIR": str(tmp_path)}
    assert load_settings(base).engine == "duckdb"
    assert load_settings({**base, "RAPPORT_ENGINE": ""}).engine == "duckdb"
    spark = load_settings({**base, "RAPPORT_ENGINE": " Spark "})
    assert (spark.engine, spark.dbt_target, spark.spark_master) == ("spark", "spark", "local[2]")
    assert load_settings(base).dbt_target == "work"


@pytest.mark.parametrize("value", ["postgres", "duck", "sparkk"])
def test_an_unknown_engine_is_an_error_naming_the_variable_and_the_choices(tmp_path, value):
    with pytest.raises(ValueError, match=r"RAPPORT_ENGINE=.*use one of duckdb, spark"):
        load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_ENGINE": value})
    with pytest.raises(ValueError, match="RAPPORT_ENGINE"):
        engine_from({"RAPPORT_ENGINE": value})


def test_spark_master_from_the_environment(tmp_path):
    env = {"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_ENGINE": "spark", "RAPPORT_SPARK_MASTER": "local[4]"}
    assert load_settings(env).spark_master == "local[4]"
    assert dbt_env(load_settings(env))["RAPPORT_SPARK_MASTER"] == "local[4]"


def test_spark_profile_keeps_warehouse_metastore_and_time_zone_under_the_warehouse(tmp_path):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_SPARK_MASTER": "local[3]"})
    params = spark_parameters(dbt_env(settings))
    spark_dir = tmp_path.resolve() / "spark"
    assert params["spark.master"] == "local[3]"
    assert params["spark.sql.warehouse.dir"] == f"{spark_dir}/warehouse"
    assert params["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        f"jdbc:derby:;databaseName={spark_dir}/metastore_db;create=true"
    )
    assert params["spark.sql.session.timeZone"] == "UTC"
    assert params["spark.sql.parquet.inferTimestampNTZ.enabled"] == "false"
    assert params["spark.driver.bindAddress"] == "127.0.0.1"


def _transform_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("RAPPORT_DBT_MANIFEST", str(write_manifest(tmp_path / "manifest.json")))
    for key in ("RAPPORT_DBT_TASKS", "RAPPORT_AIRFLOW_POOL", "RAPPORT_ENGINE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["rapport_transform"]


def test_with_spark_the_dbt_layers_sit_between_loading_into_and_collecting_from_spark(tmp_path, monkeypatch):
    dag = _transform_dag(tmp_path, monkeypatch, RAPPORT_ENGINE="spark")
    order = ["check_raw", "dbt.spark_load", "dbt.staging", "dbt.intermediate", "dbt.marts", "dbt.spark_collect",
             "predict"]  # fmt: skip
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}, (upstream, downstream)
    assert dag.get_task("dbt.staging").profile_config.target_name == "spark"
    assert dbt_target({"RAPPORT_ENGINE": "spark"}) == "spark"


def test_with_duckdb_there_is_no_spark_task(tmp_path, monkeypatch):
    dag = _transform_dag(tmp_path, monkeypatch)
    assert not [t for t in dag.task_ids if "spark" in t]
    assert dag.get_task("dbt.staging").profile_config.target_name == "work"


def test_spark_with_one_task_per_model_wraps_the_models_too(tmp_path, monkeypatch):
    dag = _transform_dag(tmp_path, monkeypatch, RAPPORT_ENGINE="spark", RAPPORT_DBT_TASKS="model")
    models = [t for t in dag.task_ids if t.startswith("dbt.models.")]
    assert models
    for task_id in models:
        assert "dbt.spark_load" in dag.get_task(task_id).get_flat_relative_ids(upstream=True)
        assert "dbt.spark_collect" in dag.get_task(task_id).get_flat_relative_ids(upstream=False)


def test_without_pyspark_the_error_says_what_to_install(tmp_path, monkeypatch):
    from rapport.transform import spark

    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_ENGINE": "spark"})
    with pytest.raises(spark.SparkUnavailable, match=r"RAPPORT_ENGINE=spark needs pyspark.*requirements-spark\.lock"):
        spark.spark_session(settings, dbt_env(settings))


def test_without_java_the_error_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from rapport.transform import spark

    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path), "RAPPORT_ENGINE": "spark"})
    with pytest.raises(spark.SparkUnavailable, match=r"needs Java 17.*install_java\.sh"):
        spark.spark_session(settings, dbt_env(settings))


def test_great_expectations_imports_beside_pyspark_from_python_c():
    """With the spark extra installed, Great Expectations imports pyspark.sql.connect, which exits the process
    with code 0 ("Skipping doctests") when its connect dependencies are missing and `__main__` has no file:
    `python -c` drivers, pytest-xdist workers. The extra installs pyspark[connect] so that cannot happen."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed (requirements-spark.lock)")
    code = "import great_expectations, pyspark.sql.connect.dataframe; print('imported')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr[-2000:]
