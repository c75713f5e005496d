"""The dbt project is parsed once, without the vars that change with every run (run_id, as_of, since), and the
parsed manifest is reused by later dbt commands and runs (rapport.transform.manifests); a reused manifest
changes nothing dbt builds: each command still renders the SQL with its own vars, and parsing with or
without those vars records the same graph and configs. Slow: real dbt parses and builds."""

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


def test_one_parse_across_runs_and_a_new_parse_when_another_var_changes(make_warehouse, parses):
    wh = make_warehouse("manifest-reuse")
    build = {"select": ["stg_shop__customers"], "extra_args": ["--indirect-selection", "cautious"]}
    dbt_build(wh.settings, run_id="day-1", as_of=date(2025, 6, 30), **build)
    dbt_build(wh.settings, run_id="day-1", as_of=date(2025, 6, 30), **build)  # a later layer of the same run
    assert parses == ["parse", "build", "build"]
    dbt_build(wh.settings, run_id="day-2", as_of=date(2025, 7, 1), **build)  # the next run (a backfill's day)
    assert parses == ["parse", "build", "build", "build"]
    fanout = {"select": build["select"], "extra_args": [*build["extra_args"], "--vars", '{"max_identifier_fanout": 3}']}
    dbt_build(wh.settings, run_id="day-2", as_of=date(2025, 7, 1), **fanout)
    assert parses == ["parse", "build", "build", "build", "parse", "build"]


def _graph(manifest) -> dict[str, object]:
    """What parsing records of every node: its dependencies, refs, sources and resolved config."""
    return {uid: (sorted(node.depends_on.nodes), sorted(node.depends_on.macros), repr(node.refs),
                  repr(node.sources), node.config.to_dict()) for uid, node in manifest.nodes.items()}  # fmt: skip


def test_parsing_without_the_run_vars_records_the_same_graph(make_warehouse, parses, tmp_path, monkeypatch):
    """Were a ref, source or config to depend on run_id, as_of or since, the parse without them would differ
    from a parse with a run's values (here set to values no default has)."""
    for key, value in dbt_env(make_warehouse("manifest-graph").settings).items():
        monkeypatch.setenv(key, value)
    run_vars = {"as_of": "2031-01-02", "run_id": "run-x", "since": "2031-01-01 00:00:00", "max_identifier_fanout": 3}
    common = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"]
    with_run = dbt_main.dbtRunner().invoke(
        [
            "parse",
            *common,
            "--vars",
            json.dumps(run_vars),
            "--target-path",
            str(tmp_path / "a"),
            "--log-path",
            str(tmp_path),
        ]
    )
    without = manifests.parsed_manifest(
        DBT_PROJECT_DIR, ["build", "--vars", json.dumps(run_vars), *common], tmp_path / "b"
    )
    assert with_run.success and without is not None
    assert len(without.nodes) > 200 and _graph(without) == _graph(with_run.result)


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
