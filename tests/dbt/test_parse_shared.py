"""A fresh warehouse's first build starts from the parse of another warehouse (rapport.transform.manifests):
dbt parses with the profile's placeholders, so the state fits every warehouse of the checkout, and the parse
records the same graph as one in the warehouse's own environment. Slow: real dbt parses and builds."""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from dbt.cli.main import dbtRunner

from rapport.transform import manifests
from rapport.transform.project import DBT_PROJECT_DIR
from rapport.transform.runner import dbt_build, dbt_dirs, dbt_env

pytestmark = pytest.mark.slow

FULL_PARSE = "Unable to do partial parsing"
BUILD = {"select": ["stg_shop__customers"], "extra_args": ["--indirect-selection", "cautious"]}


def _parse_log(wh) -> str:
    return (dbt_dirs(wh.settings)[0].parent / "parse-work" / "logs" / "dbt.log").read_text()


def test_a_fresh_warehouse_reuses_another_warehouses_parse(make_warehouse, monkeypatch):
    manifests.clear()
    first = make_warehouse("parse-shared-a")
    dbt_build(first.settings, run_id="a", as_of=date(2025, 6, 30), **BUILD)
    manifests.clear()  # another process, as a new `rapport run` would be
    monkeypatch.setenv("RAPPORT_DUCKDB_MEMORY_LIMIT", "3GB")  # another connection setting too
    second = make_warehouse("parse-shared-b")
    dbt_build(second.settings, run_id="b", as_of=date(2025, 6, 30), **BUILD)
    manifests.clear()
    log = _parse_log(second)
    assert FULL_PARSE not in log, log[log.find(FULL_PARSE) :][:300]
    assert "Partial parsing enabled" in log or "Nothing changed, skipping partial parsing" in log


def _relations(manifest) -> dict[str, object]:
    """What a build takes from the parse for every node: where it lives, what it reads, its config."""
    return {uid: (node.database, node.schema, node.alias, node.relation_name, sorted(node.depends_on.nodes),
                  node.config.to_dict()) for uid, node in manifest.nodes.items()}  # fmt: skip


def test_the_placeholder_parse_records_what_the_warehouses_own_parse_does(make_warehouse, tmp_path, monkeypatch):
    wh = make_warehouse("parse-placeholders")
    for key, value in dbt_env(wh.settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAPPORT_DUCKDB_THREADS", "1")
    common = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet",
              "--log-path", str(tmp_path)]  # fmt: skip
    own = dbtRunner().invoke(["parse", *common, "--target-path", str(tmp_path / "own")])
    manifests.clear()
    shared = manifests.parsed_manifest(DBT_PROJECT_DIR, ["build", *common], tmp_path / "shared")
    manifests.clear()
    assert own.success and shared is not None
    assert {n.database for n in shared.nodes.values() if n.resource_type == "model"} == {"rapport_work"}
    assert len(shared.nodes) > 200 and _relations(shared) == _relations(own.result)


def test_a_project_reading_a_profile_variable_is_parsed_with_its_real_value(make_warehouse, tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "marts" / "zz_limit.sql").write_text(
        "{{ config(alias='zz_' ~ env_var('RAPPORT_DUCKDB_MEMORY_LIMIT', 'none') | lower) }}\nselect 1 as x\n"
    )
    wh = make_warehouse("parse-profile-var")
    for key, value in dbt_env(wh.settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAPPORT_DUCKDB_MEMORY_LIMIT", "3GB")
    manifests.clear()
    manifest = manifests.parsed_manifest(project, ["build", "--profiles-dir", str(project)], tmp_path / "scratch")
    manifests.clear()
    assert manifest.nodes["model.rapport.zz_limit"].alias == "zz_3gb"  # not the placeholder's default
    assert not (project / "target" / "parse-state").exists()  # a placeholder parse would not fit: none shared
