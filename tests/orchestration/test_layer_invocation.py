"""What the per-layer dbt tasks of an in-process run skip (issue 16): dbt's artifacts nobody reads, and the
garbage collector's walks over objects that live as long as the process."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rapport.orchestration import local_runner
from rapport.orchestration.dbt_operators import NO_WRITE_JSON, DbtLayerBuildOperator


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (a freeze outlives the code that made it)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Cycle:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _frozen(obj: object) -> bool:
    """Whether `obj` is in the collector's permanent generation (gc.get_objects() lists only the others)."""
    return gc.is_tracked(obj) and id(obj) not in {id(o) for o in gc.get_objects()}


def _run_results(elapsed: float) -> Any:
    from dbt.artifacts.schemas.run import RunExecutionResult

    args = {"vars": {}, "invocation_command": "dbt build"}  # what dbt's artifact writer reads of them
    return RunExecutionResult(results=[], elapsed_time=elapsed, generated_at=datetime(2026, 7, 2), args=args)


class _FakeRunner:
    """dbt's runner as run_dbt_runner sees it: records the arguments, returns a real result object."""

    calls: list[list[str]] = []
    frozen_while_running: list[int] = []

    def __init__(self, manifest: Any = None, callbacks: Any = None) -> None:
        pass

    def invoke(self, args: list[str]) -> Any:
        _FakeRunner.calls.append(list(args))
        _FakeRunner.frozen_while_running.append(gc.get_freeze_count())
        return SimpleNamespace(success=True, exception=None, result=_run_results(4.25))


def _layer_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: type) -> tuple[Any, Path]:
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.delenv("RAPPORT_DBT_LOG_LEVEL", raising=False)
    monkeypatch.setattr("rapport.orchestration.connections.airflow_connection_getter", lambda: lambda conn_id: None)
    monkeypatch.setattr("rapport.transform.manifests.parsed_manifest", lambda *args: None)
    monkeypatch.setattr("dbt.cli.main.dbtRunner", runner)
    cwd = tmp_path / "cosmos-copy"
    cwd.mkdir()
    operator = SimpleNamespace(project_dir=str(tmp_path / "project"), _dbt_runner_callbacks=[])
    command = ["dbt", "build", "--select", "stg_orders"]
    result = DbtLayerBuildOperator.run_dbt_runner(operator, command, {}, str(cwd))  # type: ignore[arg-type]
    return result, cwd


def test_a_layer_asks_dbt_for_no_artifacts_and_writes_the_run_results_it_reads(tmp_path, monkeypatch):
    _FakeRunner.calls = []
    result, cwd = _layer_call(tmp_path, monkeypatch, _FakeRunner)
    logs = str(tmp_path / "wh" / "dbt" / "logs")
    assert _FakeRunner.calls == [
        ["build", "--select", "stg_orders", "--log-path", logs, "--log-level-file", "info", NO_WRITE_JSON]
    ]
    # where cosmos's callback (rapport.orchestration.dbt_tasks.after_dbt) reads it, as dbt writes it
    written = json.loads((cwd / "target" / "run_results.json").read_text())
    assert written["results"] == [] and written["elapsed_time"] == 4.25
    assert written["metadata"]["dbt_schema_version"].endswith("/run-results/v6.json")
    assert result.result.elapsed_time == 4.25
    assert sorted(p.name for p in (cwd / "target").iterdir()) == ["run_results.json"]


def test_a_layer_logs_to_the_warehouse_at_the_level_asked(tmp_path, monkeypatch):
    """dbt's log file goes where rapport's other dbt commands write theirs, not into cosmos's temporary
    project copy (deleted with the task), at RAPPORT_DBT_LOG_LEVEL."""
    _FakeRunner.calls = []
    monkeypatch.setattr("rapport.orchestration.task_context.task_settings", _debug_settings(tmp_path))
    _layer_call(tmp_path, monkeypatch, _FakeRunner)
    [args] = _FakeRunner.calls
    assert args[args.index("--log-level-file") + 1] == "debug"
    assert args[args.index("--log-path") + 1] == str(tmp_path / "wh" / "dbt" / "logs")


def _debug_settings(tmp_path: Path) -> Any:
    from rapport.core.config import load_settings

    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh"), "RAPPORT_DBT_LOG_LEVEL": "DEBUG"})
    return lambda: settings


def test_a_dbt_that_could_not_run_leaves_no_run_results(tmp_path, monkeypatch):
    class Broken(_FakeRunner):
        def invoke(self, args: list[str]) -> Any:
            return SimpleNamespace(success=False, exception=RuntimeError("no profile"), result=None)

    result, cwd = _layer_call(tmp_path, monkeypatch, Broken)
    assert result.exception is not None
    assert not (cwd / "target" / "run_results.json").exists()


def test_a_layer_freezes_what_it_starts_with_and_what_survives_its_collection(tmp_path, monkeypatch):
    _FakeRunner.frozen_while_running = []
    before = [[] for _ in range(2_000)]  # tracked objects that outlive the layer

    class Runner(_FakeRunner):
        def invoke(self, args: list[str]) -> Any:
            result = super().invoke(args)
            garbage = _Cycle()  # made and dropped by the command: for cosmos's cleanup to collect
            Runner.dead = weakref.ref(garbage)
            Runner.made = [[] for _ in range(3_000)]  # made by the command, outlives it
            return result

    _layer_call(tmp_path, monkeypatch, Runner)
    assert _FakeRunner.frozen_while_running[0] >= len(before)
    assert Runner.dead() is None  # collected, not frozen
    assert _frozen(Runner.made) and _frozen(before)


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from rapport.core.config import load_settings

    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr(local_runner, "configure_airflow", lambda settings: tmp_path)
    return load_settings()


def _outcome(run_id: str) -> local_runner.DagOutcome:
    return local_runner.DagOutcome(run_id, "success", {}, 0.0)


def test_a_run_freezes_what_is_loaded_before_its_tasks_and_unfreezes_after(tmp_path, monkeypatch):
    loaded: list[list[int]] = []
    seen: list[int] = []

    def load_dags() -> dict[str, Any]:
        loaded.extend([] for _ in range(5_000))  # what parsing the DAG files leaves alive
        return {}

    def run_pipeline(dags: dict[str, Any], **kwargs: Any) -> local_runner.DagOutcome:
        seen.append(gc.get_freeze_count())
        return _outcome("r")

    monkeypatch.setattr(local_runner, "_load_dags", load_dags)
    monkeypatch.setattr(local_runner, "_run_pipeline", run_pipeline)
    local_runner.run_dag(_settings(tmp_path, monkeypatch), interval_end=datetime(2026, 7, 2))
    assert seen[0] >= len(loaded)
    assert gc.get_freeze_count() == 0  # a later run of this process starts as without the freeze


def test_a_backfill_collects_what_a_day_left_frozen_before_the_next_day(tmp_path, monkeypatch):
    dead: list[weakref.ref] = []
    alive_at_start: list[bool] = []

    def run_pipeline(dags: dict[str, Any], **kwargs: Any) -> local_runner.DagOutcome:
        alive_at_start.append(any(ref() is not None for ref in dead))
        garbage = _Cycle()
        dead.append(weakref.ref(garbage))
        gc.freeze()  # as a dbt layer task does, while the day's objects are still in use
        del garbage  # the day is over: its objects become garbage, frozen
        return _outcome(f"day{len(dead)}")

    monkeypatch.setattr(local_runner, "_load_dags", lambda: {})
    monkeypatch.setattr(local_runner, "_run_pipeline", run_pipeline)
    outcomes = local_runner.backfill(_settings(tmp_path, monkeypatch), date(2026, 7, 1), date(2026, 7, 3))
    assert [o.run_id for o in outcomes] == ["day1", "day2", "day3"]
    assert alive_at_start == [False, False, False]
    assert gc.get_freeze_count() == 0
