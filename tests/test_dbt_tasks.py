"""How the dbt project becomes Airflow tasks (rapport.orchestration.dbt_tasks and .dbt_retry): layer selections, retry
narrowing, manifest freshness.

Expected selections are read off the hand-written manifest in airflow_fixtures.py (three layers, a source,
a test across layers). The real project's selections are checked against dbt itself in
tests/integration/test_dbt_layers.py.
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow_fixtures import write_manifest

from rapport.orchestration.dbt_retry import retry_selection, run_results_dir
from rapport.orchestration.dbt_tasks import granularity, inject_run_context, layer_selections, manifest_is_current


def test_layers_in_build_order_with_cross_layer_tests_in_the_layer_of_their_last_parent(tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    assert layer_selections(manifest) == [
        # source tests go with the first layer; the singular test over source + staging is named there
        ("staging", "source:* stg_orders assert_stg_matches_source"),
        ("intermediate", "int_orders"),
        # declared next to int_orders, but it also reads customers: only once the marts are built
        ("marts", "customers relationships_int_orders_customer_id__ref_customers_"),
    ]


def _results(*pairs: tuple[str, str]) -> dict:
    return {"results": [{"unique_id": uid, "status": status} for uid, status in pairs]}


def test_retry_selects_what_did_not_succeed_intersected_with_the_layer():
    results = _results(("model.rapport.customers", "error"), ("model.rapport.orders", "success"))
    assert retry_selection(results, "customers orders_check") == (
        "result:error+,customers result:error+,orders_check "
        "1+result:fail+,customers 1+result:fail+,orders_check "
        "result:skipped+,customers result:skipped+,orders_check"
    )


@pytest.mark.parametrize("status", ["fail", "skipped", "error", "runtime error"])
def test_any_unsuccessful_node_makes_a_narrowed_retry(status):
    assert retry_selection(_results(("test.rapport.t", status)), "a") is not None


def test_nothing_to_redo_means_the_whole_layer_again():
    assert retry_selection(_results(("model.rapport.a", "success"), ("test.rapport.t", "pass")), "a b") is None
    assert retry_selection({}, "a b") is None


def test_granularity_from_the_environment():
    assert granularity({}) == "layer"
    assert granularity({"RAPPORT_DBT_TASKS": " Model "}) == "model"
    with pytest.raises(ValueError, match="RAPPORT_DBT_TASKS"):
        granularity({"RAPPORT_DBT_TASKS": "table"})


def test_manifest_is_stale_when_missing_or_older_than_a_project_file(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "a.sql"
    model.write_text("select 1")
    manifest = tmp_path / "manifest.json"
    assert not manifest_is_current(manifest, project)
    manifest.write_text("{}")
    now = time.time()
    os.utime(model, (now - 10, now - 10))
    os.utime(manifest, (now - 5, now - 5))
    assert manifest_is_current(manifest, project)
    os.utime(model, (now, now))  # edited after the manifest was written
    assert not manifest_is_current(manifest, project)
    # dbt's own output under target/ and logs/ is not an input
    (project / "target").mkdir()
    (project / "target" / "run_results.json").write_text("{}")
    os.utime(model, (now - 10, now - 10))
    assert manifest_is_current(manifest, project)


class _Operator(SimpleNamespace):
    pass


def _context(run_id: str, try_number: int, conf: dict) -> dict:
    dag_run = SimpleNamespace(run_id=run_id, conf=conf, run_after=None)
    return {"dag_run": dag_run, "ti": SimpleNamespace(try_number=try_number), "triggering_asset_events": {}}


def test_interceptor_passes_the_runs_vars_and_database_to_dbt(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    op = _Operator(task_id="dbt.marts", vars=None, env=None, layer_select="customers", select="customers",
                   dbt_cmd_flags=[])  # fmt: skip
    conf = {"run_id": "scheduled__2026-10-31", "interval_end": "2026-11-01T00:00:00", "as_of": "2026-10-30"}
    inject_run_context(_context("asset_triggered__x", 1, conf), op)
    # nothing built yet: the build reads everything (since null; rapport.transform.increments)
    assert op.vars == {"as_of": "2026-10-30", "run_id": "scheduled__2026-10-31", "since": None}
    assert op.env["RAPPORT_WORK_DB"] == str(tmp_path / "work" / "rapport_work.duckdb")
    assert op.select == "customers" and op.dbt_cmd_flags == []


def test_interceptor_narrows_a_retry_to_the_failed_nodes(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    from rapport.core.config import load_settings

    run_id = "manual__2026-11-01T00:00:00+00:00"
    state = run_results_dir(load_settings(), run_id, "dbt.marts")
    state.mkdir(parents=True)
    (state / "run_results.json").write_text('{"results": [{"unique_id": "model.rapport.x", "status": "error"}]}')
    op = _Operator(task_id="dbt.marts", vars=None, env=None, layer_select="x", select="x", dbt_cmd_flags=[])
    inject_run_context(_context(run_id, 2, {"interval_end": "2026-11-01T00:00:00"}), op)
    assert op.select == "result:error+,x 1+result:fail+,x result:skipped+,x"
    assert op.dbt_cmd_flags == ["--state", str(state)]
    # another layer task of the run has nothing saved: it builds its whole layer
    op = _Operator(task_id="dbt.staging", vars=None, env=None, layer_select="s", select="s", dbt_cmd_flags=[])
    inject_run_context(_context(run_id, 2, {"interval_end": "2026-11-01T00:00:00"}), op)
    assert op.select == "s" and op.dbt_cmd_flags == []


def test_run_results_live_under_the_warehouse_with_file_safe_names(tmp_path):
    settings = SimpleNamespace(warehouse_dir=tmp_path)
    path = run_results_dir(settings, "manual__2026-11-01T00:00:00+00:00", "dbt.marts")
    assert path == tmp_path / "dbt" / "airflow" / "manual__2026-11-01T00_00_00_00_00" / "dbt.marts"
    assert isinstance(path, Path)


def test_layer_results_are_kept_only_while_a_retry_needs_them(tmp_path, monkeypatch):
    import json

    from rapport.orchestration.dbt_tasks import after_dbt

    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    run_id = "manual__r"
    project = tmp_path / "tmp_project"
    (project / "target").mkdir(parents=True)

    def attempt(try_number: int, *pairs: tuple[str, str], task_id: str = "dbt.marts") -> Path:
        (project / "target" / "run_results.json").write_text(json.dumps(_results(*pairs)))
        select = "a b" if try_number == 1 else "result:error+,a"  # a retry runs narrowed
        ti = SimpleNamespace(try_number=try_number, task_id=task_id,
                             task=SimpleNamespace(layer_select="a b", select=select))  # fmt: skip
        context = _context(run_id, try_number, {"interval_end": "2026-11-01T00:00:00"})
        context["ti"] = ti
        after_dbt(str(project), context=context)
        from rapport.core.config import load_settings

        return run_results_dir(load_settings(), run_id, task_id) / "run_results.json"

    kept = attempt(1, ("model.rapport.a", "success"), ("model.rapport.b", "error"))
    assert {r["unique_id"]: r["status"] for r in json.loads(kept.read_text())["results"]} == {
        "model.rapport.a": "success", "model.rapport.b": "error"}  # fmt: skip
    # the narrowed retry re-ran only b; merged with a's earlier success nothing is left to redo
    kept = attempt(2, ("model.rapport.b", "success"))
    assert not kept.exists() and not kept.parent.parent.exists()
    # a first attempt that succeeds keeps nothing
    assert not attempt(1, ("model.rapport.a", "success")).exists()
    # a full build of one layer drops what another layer kept: that layer's inputs changed
    marts = attempt(1, ("model.rapport.m", "error"))
    assert marts.exists()
    assert attempt(1, ("model.rapport.s", "error"), task_id="dbt.staging").exists()
    assert not marts.exists()


def test_new_raw_data_forgets_every_layers_saved_results(tmp_path):
    from rapport.core.config import load_settings
    from rapport.orchestration.dbt_retry import forget_retry_state

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    for task_id in ("dbt.staging", "dbt.marts"):
        run_results_dir(settings, "run:1", task_id).mkdir(parents=True)
    other_run = run_results_dir(settings, "run:2", "dbt.marts")
    other_run.mkdir(parents=True)
    forget_retry_state(settings, "run:1")
    assert not run_results_dir(settings, "run:1", "dbt.staging").exists()
    assert not run_results_dir(settings, "run:1", "dbt.marts").exists()
    assert other_run.exists()
    forget_retry_state(settings, "run:3")  # nothing saved: nothing to do


def _complete_build(warehouse_dir: Path, run_id: str) -> None:
    """What the pipeline does around `run_id`'s dbt build: rows landed (at 01:00), the build completed."""
    from rapport.core.config import load_settings
    from rapport.core.warehouse import open_warehouse
    from rapport.extractors.landing import ensure_schema
    from rapport.transform import increments

    with open_warehouse(load_settings({"RAPPORT_WAREHOUSE_DIR": str(warehouse_dir)})) as con:
        ensure_schema(con)
        con.execute(
            "insert into raw.shop_orders (id, updated_at, _run_id, _extracted_at) "
            "values (1, '2026-11-01', 'x', '2026-11-01 01:00')"
        )
        con.execute("delete from ops.transform_increments")
        increments.plan(con, run_id=run_id, engine="duckdb")
        assert increments.commit(con, run_id)


def test_interceptor_leaves_unit_tests_out_and_passes_full_refresh_to_build_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    op = _Operator(task_id="dbt.marts", vars=None, env=None, select="x", dbt_cmd_flags=["--x"], base_cmd=["build"])
    refresh = {"interval_end": "2026-11-01T00:00:00", "full_refresh": True}
    inject_run_context(_context("r1", 1, refresh), op)
    inject_run_context(_context("r1", 1, refresh), op)  # in-process runs reuse the operator: no flag twice
    assert op.dbt_cmd_flags == ["--x", "--exclude-resource-type", "unit_test", "--full-refresh"]
    plain = {"interval_end": "2026-11-02T00:00:00"}
    inject_run_context(_context("r2", 1, plain), op)  # r1's build never completed: r2 still reads everything
    assert op.dbt_cmd_flags == ["--x", "--exclude-resource-type", "unit_test", "--full-refresh"]
    _complete_build(tmp_path, "r2")
    inject_run_context(_context("r3", 1, plain), op)  # the next, plain run builds incrementally
    assert op.dbt_cmd_flags == ["--x", "--exclude-resource-type", "unit_test"]
    assert op.vars["since"] == "2026-11-01 01:00:00"
    freshness = _Operator(task_id="dbt.src", vars=None, env=None, select="s", dbt_cmd_flags=[],
                          base_cmd=["source", "freshness"])  # fmt: skip
    inject_run_context(_context("r1", 1, refresh), freshness)
    assert freshness.dbt_cmd_flags == []  # `dbt source freshness` takes neither flag


def _work_db_with_marts_built_by_r0(tmp_path, monkeypatch, fingerprint):
    """A working DuckDB file with the raw tables and marts recorded as built by run r0 from `fingerprint(con)`;
    the warehouse points at it and no Airflow connection is defined. Returns the file's path."""
    import duckdb

    from rapport.core.config import load_settings
    from rapport.extractors.schemas import raw_ddl
    from rapport.transform import build_state

    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    work = load_settings().work_db
    work.parent.mkdir(parents=True)
    with duckdb.connect(str(work)) as con:
        for stmt in raw_ddl():
            con.execute(stmt)
        build_state.record(con, "marts", fingerprint(con), "r0")
    return work


def test_interceptor_skips_dbt_when_nothing_changed_and_forgets_the_marts_otherwise(tmp_path, monkeypatch):
    import duckdb
    from airflow.sdk.exceptions import AirflowSkipException

    from rapport.transform import build_state

    work = _work_db_with_marts_built_by_r0(
        tmp_path, monkeypatch, lambda con: build_state.inputs_fingerprint(con, as_of=date(2026, 10, 31))
    )
    conf = {"interval_end": "2026-11-01T00:00:00", "as_of": "2026-10-31"}
    op = _Operator(task_id="dbt.staging", vars=None, env=None, select="s", dbt_cmd_flags=[], base_cmd=["build"])
    with pytest.raises(AirflowSkipException, match="nothing changed since run r0"):
        inject_run_context(_context("r1", 1, conf), op)
    with duckdb.connect(str(work)) as con:
        assert build_state.recorded(con, "marts") is not None  # skipping changes nothing
    inject_run_context(_context("r1", 1, {**conf, "as_of": "2026-11-01"}), op)  # another as-of date: a build
    with duckdb.connect(str(work)) as con:
        assert build_state.recorded(con, "marts") is None  # forgotten before dbt starts


def test_layer_selections_are_read_once_per_manifest_version(tmp_path, monkeypatch):
    from rapport.orchestration import dbt_tasks

    manifest = write_manifest(tmp_path / "manifest.json")
    calls = []
    real = dbt_tasks.layer_selections
    monkeypatch.setattr(dbt_tasks, "layer_selections", lambda m: calls.append(m) or real(m))
    first = dbt_tasks.cached_layer_selections(manifest)
    assert first == real(manifest) and len(calls) == 1
    dbt_tasks._selections_seen.clear()  # a new process: the sidecar file answers
    assert dbt_tasks.cached_layer_selections(manifest) == first and len(calls) == 1
    manifest.write_text(manifest.read_text().replace("stg_orders", "stg_order_lines"))  # a new manifest
    assert dbt_tasks.cached_layer_selections(manifest) != first and len(calls) == 2


def test_later_dbt_tasks_of_a_dag_run_take_the_first_ones_check_and_plan(tmp_path, monkeypatch):
    import duckdb

    from rapport.core import warehouse
    from rapport.transform import build_state

    work = _work_db_with_marts_built_by_r0(tmp_path, monkeypatch, lambda con: "built before")
    opened: list[str] = []
    real_open = warehouse.open_warehouse

    def open_warehouse(*args, **kwargs):
        opened.append("open")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(warehouse, "open_warehouse", open_warehouse)
    conf = {"interval_end": "2026-11-01T00:00:00", "as_of": "2026-10-31"}
    context = _context("airflow_run_1", 1, conf)
    ops = [_Operator(task_id=f"dbt.{layer}", vars=None, env=None, select=layer, dbt_cmd_flags=[], base_cmd=["build"])
           for layer in ("staging", "intermediate", "marts")]  # fmt: skip
    inject_run_context(context, ops[0])
    first_opens = len(opened)
    assert first_opens == 2  # the reuse check (then the marts are forgotten) and the plan
    with duckdb.connect(str(work)) as con:
        assert build_state.recorded(con, "marts") is None
    for op in ops[1:]:
        inject_run_context(context, op)
    assert len(opened) == first_opens  # the same DAG run's later layers: no second look
    assert ops[2].vars == ops[0].vars == {"as_of": "2026-10-31", "run_id": "airflow_run_1", "since": None}
    assert ops[2].dbt_cmd_flags == ops[0].dbt_cmd_flags == ["--exclude-resource-type", "unit_test", "--full-refresh"]
    # another DAG run (a new attempt of the transform, say) checks again
    inject_run_context(_context("airflow_run_2", 1, {**conf, "run_id": "airflow_run_1"}), ops[1])
    assert len(opened) == first_opens + 2
