"""The dbt project is parsed once per run's vars and the parsed manifest is reused by the run's later dbt
commands (rapport.transform.manifests), and a reused manifest changes nothing dbt builds: each command
still renders the SQL with its own vars. Slow: real dbt parses and builds."""

from __future__ import annotations

import json
from datetime import date

import pytest
from dbt.cli import main as dbt_main

from rapport.transform import manifests
from rapport.transform.project import DBT_PROJECT_DIR
from rapport.transform.runner import dbt_build, dbt_dirs, dbt_env

pytestmark = pytest.mark.slow


@pytest.fixture
def parses(monkeypatch):
    """The dbt commands run in this process, in order (first argument of each)."""
    commands: list[str] = []
    real = dbt_main.dbtRunner.invoke

    def invoke(self, args, **kwargs):
        commands.append(args[0])
        return real(self, args, **kwargs)

    monkeypatch.setattr(dbt_main.dbtRunner, "invoke", invoke)
    manifests.clear()
    yield commands
    manifests.clear()


def test_one_parse_per_run_and_a_new_parse_when_the_vars_change(make_warehouse, parses):
    wh = make_warehouse("manifest-reuse")
    build = {"select": ["stg_shop__customers"], "extra_args": ["--indirect-selection", "cautious"]}
    dbt_build(wh.settings, run_id="day-1", as_of=date(2025, 6, 30), **build)
    dbt_build(wh.settings, run_id="day-1", as_of=date(2025, 6, 30), **build)  # a later layer of the same run
    assert parses == ["parse", "build", "build"]
    dbt_build(wh.settings, run_id="day-2", as_of=date(2025, 7, 1), **build)
    assert parses == ["parse", "build", "build", "parse", "build"]


def test_a_reused_manifest_renders_each_commands_own_vars(make_warehouse, parses, monkeypatch):
    wh = make_warehouse("manifest-vars")
    target, env = dbt_dirs(wh.settings)[0], dbt_env(wh.settings)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    common = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
              "--target-path", str(target), "--log-path", str(target.parent / "logs")]  # fmt: skip
    first = ["--vars", json.dumps({"as_of": "2025-06-30", "run_id": "a"})]
    manifest = manifests.parsed_manifest(DBT_PROJECT_DIR, ["compile", *first], target.parent / "parse")
    assert manifests.parsed_manifest(DBT_PROJECT_DIR, ["build", *first], target.parent / "parse") is manifest
    later = ["--vars", json.dumps({"as_of": "2031-01-02", "run_id": "b"})]
    result = dbt_main.dbtRunner(manifest=manifest).invoke(
        ["compile", "--select", "int_segment_scopes", *later, *common]
    )
    assert result.success, result.exception
    compiled = next(target.rglob("compiled/**/int_segment_scopes.sql")).read_text()
    assert "2031-01-02" in compiled and "2025-06-30" not in compiled
