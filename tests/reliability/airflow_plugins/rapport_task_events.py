"""Test-only Airflow listener: tells the test that started `rapport run` when each task instance starts and ends.

Loaded only when a test points AIRFLOW__CORE__PLUGINS_FOLDER at this directory; it writes one line per event
to the pipe whose write end the test passed in RAPPORT_TEST_EVENTS_FD. It only observes: it never changes
what a task does, so the run it watches is the product's own code path.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


def _emit(kind: str, task_instance: Any) -> None:
    fd = os.environ.get("RAPPORT_TEST_EVENTS_FD")
    if not fd:
        return
    line = f"{time.time():.6f} {kind} {task_instance.dag_id} {task_instance.task_id}\n"
    # One short write: atomic on a pipe. If the test stopped listening, never fail the task because of it.
    with contextlib.suppress(OSError):
        os.write(int(fd), line.encode())


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _emit("running", task_instance)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _emit("success", task_instance)


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    _emit("failed", task_instance)


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _emit("skipped", task_instance)


class RapportTestTaskEvents(AirflowPlugin):
    name = "rapport_test_task_events"
    listeners = [sys.modules[__name__]]
