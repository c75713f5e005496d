"""The process's SparkSession for RAPPORT_ENGINE=spark (dbt-spark, `method: session`).

dbt-spark's session method calls `SparkSession.builder.getOrCreate()` for every statement: a session created
here first, with rapport's UDFs registered, is the one it picks up. Starting the JVM costs tens of seconds,
so there is one session per process, reused by every dbt call in it (`rapport run` runs all its tasks in
one process). Its parameters are the `spark` target's `server_side_parameters` in profiles.yml, applied
before the JVM starts (master, driver memory, warehouse and Derby metastore under
`$RAPPORT_WAREHOUSE_DIR/spark/` only take effect then).

pyspark is imported inside the functions: with the default engine (duckdb) nothing here runs.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined

from rapport.core.config import PROJECT_ROOT, Settings
from rapport.transform.udfs import UDFS

PROFILES_YML = PROJECT_ROOT / "dbt_project" / "profiles.yml"
SPARK_TARGET = "spark"
INSTALL_HINT = (
    "install the spark extra (`.venv/bin/uv pip install -r requirements-spark.lock`, which "
    "`bash scripts/bootstrap.sh test` does) and Java 17 (`bash scripts/install_java.sh`)"
)

_session: Any = None
_session_dir: Path | None = None


class SparkUnavailable(RuntimeError):
    """RAPPORT_ENGINE=spark but pyspark or Java is missing, or the process's session belongs elsewhere."""


def spark_parameters(env: dict[str, str], profiles_yml: Path = PROFILES_YML) -> dict[str, str]:
    """The `spark` target's server_side_parameters, rendered as dbt renders them (`env_var()`)."""
    target = yaml.safe_load(profiles_yml.read_text())["rapport"]["outputs"][SPARK_TARGET]

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise SparkUnavailable(f"profiles.yml's spark target needs the environment variable {name}")
        return default

    jinja = Environment(undefined=StrictUndefined)
    return {
        key: jinja.from_string(str(value)).render(env_var=env_var)
        for key, value in (target.get("server_side_parameters") or {}).items()
    }


def java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (java_home and (Path(java_home) / "bin" / "java").exists()))


def spark_session(settings: Settings, env: dict[str, str]) -> Any:
    """The process's SparkSession with rapport's UDFs, created on first use; `env` renders profiles.yml.

    Raises SparkUnavailable (naming what to install) without pyspark or Java, and when this process's session
    was created for another warehouse (its metastore and warehouse directory cannot change in a running JVM).
    """
    global _session, _session_dir
    if _session is not None and _session_dir == settings.spark_dir:
        return _session
    if _session is not None:
        raise SparkUnavailable(
            f"this process already runs a Spark session for {_session_dir}; a Spark session's warehouse cannot "
            f"change, so {settings.spark_dir} needs its own process (one RAPPORT_WAREHOUSE_DIR per process)"
        )
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable(f"RAPPORT_ENGINE=spark needs pyspark and dbt-spark: {INSTALL_HINT}") from exc
    if not java_available():
        raise SparkUnavailable(f"RAPPORT_ENGINE=spark needs Java 17 (no `java` on PATH, no JAVA_HOME): {INSTALL_HINT}")
    # Spark's launcher reads these from the environment: loopback only, and workers that run the UDFs
    # with this interpreter (the venv's, where rapport and phonenumbers are installed).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_parameters(env).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    register_udfs(session)
    _session, _session_dir = session, settings.spark_dir
    return session


def register_udfs(session: Any) -> None:
    """Register every function of rapport.transform.udfs.UDFS on a SparkSession (scalar Python UDFs)."""
    from pyspark.sql import types

    spark_types = {
        "varchar": types.StringType(),
        "double": types.DoubleType(),
        "boolean": types.BooleanType(),
        "bigint": types.LongType(),
    }
    for udf in UDFS:
        session.udf.register(udf.name, udf.function, spark_types[udf.returns])


def stop_session() -> None:
    """Stop the process's session (tests; a process that ends stops it anyway)."""
    global _session, _session_dir
    if _session is not None:
        _session.stop()
    _session, _session_dir = None, None
