"""docker-compose.yml cannot run here (no Docker engine); check what can be checked: it parses, has the
official Airflow 3 service layout, and its image pins agree with the lock file."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _lock_version(package: str) -> str:
    text = (ROOT / "requirements.lock").read_text()
    match = re.search(rf"^{re.escape(package)}==([^\s\\]+)", text, re.M)
    assert match, f"{package} not in requirements.lock"
    return match.group(1)


def test_compose_has_the_airflow_3_services():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in (
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert name in services, name
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    # the simple auth manager makes everyone admin: the UI must only be reachable from this machine
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    # LocalExecutor runs tasks in the scheduler container: it needs the project and warehouse mounted.
    assert any(v.endswith(":/opt/rapport") for v in services["airflow-scheduler"]["volumes"])
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/rapport/dags"
    # Airflow 3.3's async engine would otherwise need asyncpg, which is not in the lock file
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # task tokens signed by the scheduler are checked by the api-server: one secret for all services
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
    for name in ("airflow-apiserver", "airflow-dag-processor", "airflow-triggerer", "airflow-init"):
        assert services[name]["environment"] == env, name


def test_init_prepares_what_the_dags_need():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "airflow pools set rapport_warehouse 1" in script  # tasks in a missing pool never run
    assert "python -m rapport.orchestration.dbt_tasks" in script  # the manifest the dbt tasks are rendered from


def test_image_pins_match_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)", dockerfile, re.M).group(1)
    airflow_version, python_tag = base.split("-python")
    assert airflow_version == _lock_version("apache-airflow")
    assert python_tag == "3.11"
    assert "requirements.lock" in dockerfile and "--require-hashes" in dockerfile
    uv_pin = re.search(r"uv==(\S+)", dockerfile).group(1)
    assert uv_pin in (ROOT / "scripts" / "bootstrap.sh").read_text()


def test_postgres_image_is_pinned():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["postgres"]["image"]
    assert re.fullmatch(r"postgres:\d+\.\d+", image), image


def _celery_services() -> dict[str, dict]:
    """docker-compose.yml overridden by docker-compose.celery.yml, merged the way Compose merges them
    (mappings key by key, scalars replaced) with `extends` resolved."""
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    override = yaml.safe_load((ROOT / "docker-compose.celery.yml").read_text())["services"]

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    merged = {
        name: merge(base.get(name, {}), svc)
        for name, svc in {**base, **override}.items()
        if name in override or name in base
    }
    for name, svc in override.items():
        if "extends" in svc:
            assert svc["extends"]["file"] == "docker-compose.yml"
            parent = base[svc["extends"]["service"]]
            merged[name] = merge(merge(parent, base.get(name, {})), {k: v for k, v in svc.items() if k != "extends"})
    return merged


def test_celery_layout_runs_every_airflow_service_on_the_celery_executor():
    services = _celery_services()
    airflow = [n for n in services if n.startswith("airflow-")]
    assert {"airflow-worker", "airflow-scheduler", "airflow-apiserver", "airflow-init"} <= set(airflow)
    for name in airflow:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://"), name
        # everything else of the base environment is kept (the DAGs folder, the JWT secret, the warehouse)
        assert env["RAPPORT_WAREHOUSE_DIR"] == "/opt/rapport/warehouse", name
        assert services[name]["build"]["args"]["RAPPORT_LOCK"] == "requirements-celery.lock", name
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    # the worker runs the tasks: it needs the project and the warehouse, like the scheduler does with LocalExecutor
    assert any(v.endswith(":/opt/rapport") for v in worker["volumes"])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+", services["redis"]["image"]), services["redis"]["image"]
    # one writer of the working DuckDB file, however many workers: the one-slot pool is still created
    script = "\n".join(services["airflow-init"]["command"])
    assert "airflow pools set rapport_warehouse 1" in script


def test_celery_lock_is_the_runtime_lock_plus_the_celery_provider():
    def pins(name: str) -> dict[str, str]:
        return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", (ROOT / name).read_text(), re.M))

    runtime, celery = pins("requirements.lock"), pins("requirements-celery.lock")
    assert {k: celery.get(k) for k in runtime} == runtime  # nothing the pipeline runs on moves
    assert "apache-airflow-providers-celery" in celery and "redis" in celery
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG RAPPORT_LOCK=requirements\.lock$", dockerfile, re.M)
    assert '-r "/opt/rapport/${RAPPORT_LOCK}"' in dockerfile and "requirements-celery.lock" in dockerfile
