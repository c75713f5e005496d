"""The real profiles.yml keeps working after a model spills to DuckDB's temp directory.

DuckDB refuses `SET temp_directory` once the directory has been used, and dbt-duckdb applies the profile's
`settings` on every new cursor: with temp_directory there, every model after the first spill failed (found by
the 1M-people benchmark). A throwaway dbt project using rapport's profile runs a model that must spill
under a small memory limit, then more models on new cursors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rapport.core.config import load_settings
from rapport.transform.runner import DBT_PROJECT_DIR, dbt_env, environ_set, release_duckdb

pytestmark = pytest.mark.slow  # one small dbt run (~10 s)

SPILL = """{{ config(materialized='table') }}
-- 2M random strings sorted under a 40MB memory limit: DuckDB has to spill the sort to disk
select i, md5(cast(i as varchar)) as s from range(2000000) as t(i) order by s
"""


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: spill_probe\nversion: '1.0'\nconfig-version: 2\nprofile: rapport\nmodel-paths: [models]\n"
    )
    (root / "models" / "a_spill.sql").write_text(SPILL)
    for name in ("b_after", "c_after"):
        (root / "models" / f"{name}.sql").write_text(
            "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('a_spill') }}\n"
        )
    return root


def _dbt_run(project: Path, settings, env: dict[str, str], tmp_path: Path, threads: int):
    """`dbt run` of `project` with rapport's profiles.yml, in this process, with `env` set."""
    from dbt.cli.main import dbtRunner

    with environ_set({**dbt_env(settings), **env}):
        try:
            return dbtRunner().invoke([
                "run", "--project-dir", str(project), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
                "--threads", str(threads),
            ])  # fmt: skip
        finally:
            release_duckdb()


def test_models_after_a_spill_still_run(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh"), "RAPPORT_DUCKDB_MEMORY_LIMIT": "40MB"})
    env = {"RAPPORT_DUCKDB_THREADS": "1", "RAPPORT_DUCKDB_MEMORY_LIMIT": "40MB"}
    res = _dbt_run(project, settings, env, tmp_path, threads=1)
    statuses = {r.node.name: (str(r.status), r.message) for r in res.result.results} if res.result else {}
    assert res.success, (res.exception, statuses)
    assert set(statuses) == {"a_spill", "b_after", "c_after"}

    import duckdb

    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        assert con.execute("select n from main.b_after").fetchall() == [(2_000_000,)]


SETTINGS_PROBE = """{{ config(materialized='table') }}
select current_setting('threads') as threads, current_setting('memory_limit') as memory_limit,
    current_setting('preserve_insertion_order') as preserve_insertion_order
"""


def test_every_node_runs_with_the_profiles_duckdb_limits(tmp_path: Path) -> None:
    """profiles.yml sets DuckDB's threads, memory limit and insertion order once, when dbt opens the database:
    nodes on later cursors of both dbt threads still run with them."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: settings_probe\nversion: '1.0'\nconfig-version: 2\nprofile: rapport\nmodel-paths: [models]\n"
    )
    for i in range(6):
        (project / "models" / f"probe_{i}.sql").write_text(SETTINGS_PROBE)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    env = {"RAPPORT_DUCKDB_THREADS": "1", "RAPPORT_DUCKDB_MEMORY_LIMIT": "300MB"}
    res = _dbt_run(project, settings, env, tmp_path, threads=2)
    assert res.success, res.exception

    import duckdb

    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        rows = {con.execute(f"select * from main.probe_{i}").fetchone() for i in range(6)}
    assert len(rows) == 1
    threads, memory_limit, preserve_insertion_order = rows.pop()
    assert str(threads) == "1" and str(preserve_insertion_order).lower() == "false"
    assert memory_limit.replace(" ", "") in ("286.1MiB", "300.0MB", "300MB")  # DuckDB prints it in its own units
