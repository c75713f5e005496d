"""Progress lines for people watching a run.

`rapport run` sends Airflow's and dbt's own output to a log file and keeps the terminal for these lines:
it passes the terminal's file descriptor in RAPPORT_PROGRESS_FD. Elsewhere (a real Airflow worker) they
go to the task log through the `rapport` logger.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("rapport")


def progress(message: str) -> None:
    fd = os.environ.get("RAPPORT_PROGRESS_FD")
    if fd:
        try:
            os.write(int(fd), f"[rapport {time.strftime('%H:%M:%S')}] {message}\n".encode())
            return
        except OSError:
            pass
    log.info(message)


@contextmanager
def step(name: str) -> Iterator[None]:
    progress(f"{name} ...")
    t0 = time.monotonic()
    try:
        yield
    except BaseException as exc:
        progress(f"{name} FAILED after {time.monotonic() - t0:.1f}s: {type(exc).__name__}: {exc}")
        raise
    progress(f"{name} done in {time.monotonic() - t0:.1f}s")


@contextmanager
def quiet_terminal(log_file: Path) -> Iterator[None]:
    """Send everything written to fd 1 and 2 (Airflow's and dbt's logs) to a file, keeping the terminal for
    rapport's progress lines (RAPPORT_PROGRESS_FD)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    previous = os.environ.get("RAPPORT_PROGRESS_FD")
    os.environ["RAPPORT_PROGRESS_FD"] = str(saved_out)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (target, saved_out, saved_err):
            os.close(fd)
        if previous is None:
            os.environ.pop("RAPPORT_PROGRESS_FD", None)
        else:
            os.environ["RAPPORT_PROGRESS_FD"] = previous
