"""`rapport run` loads Airflow, the DAGs and the execution API with the garbage collector paused, then
collects once: what loading left as garbage is freed, not frozen with what lives on (local_runner)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from rapport.orchestration import local_runner


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    """Each test starts and ends with the collector enabled and nothing frozen."""
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    gc.enable()


class _Cycle:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _run(tmp_path, monkeypatch, load_dags, dead: list[weakref.ref] | None = None) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def run_pipeline(dags: dict[str, Any], **kwargs: Any) -> local_runner.DagOutcome:
        seen.append({"enabled": gc.isenabled(), "dags": dags, "garbage_alive": any(r() for r in dead or [])})
        return local_runner.DagOutcome("r", "success", {}, 0.0)

    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setattr(local_runner, "configure_airflow", lambda settings: tmp_path)
    monkeypatch.setattr(local_runner, "_load_dags", load_dags)
    monkeypatch.setattr(local_runner, "_run_pipeline", run_pipeline)
    from rapport.core.config import load_settings

    local_runner.run_dag(load_settings(), interval_end=datetime(2026, 7, 2))
    return seen


def test_loading_runs_with_the_collector_paused_and_its_garbage_is_collected_before_the_runs(tmp_path, monkeypatch):
    during: list[bool] = []
    dead: list[weakref.ref] = []

    def load_dags() -> dict[str, Any]:
        during.append(gc.isenabled())
        garbage = _Cycle()  # a cycle made and dropped while loading
        dead.append(weakref.ref(garbage))
        del garbage
        for _ in range(50_000):  # enough new container objects to set off collections if the collector ran
            _Cycle()
        return {"loaded": True}

    seen = _run(tmp_path, monkeypatch, load_dags, dead)
    assert during == [False]
    # collected once loading ended, not frozen with what lives on when the run starts
    assert seen == [{"enabled": True, "dags": {"loaded": True}, "garbage_alive": False}]
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled(tmp_path, monkeypatch):
    gc.disable()
    seen = _run(tmp_path, monkeypatch, lambda: {})
    assert seen[0]["enabled"] is False
    assert not gc.isenabled()
