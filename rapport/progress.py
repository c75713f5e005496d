"""Progress lines for people watching a run.

`rapport run` sends Airflow's and dbt's own output to a log file and keeps the terminal for these lines:
it passes the terminal's file descriptor in RAPPORT_PROGRESS_FD. Elsewhere (a real Airflow worker) they
go to the task log through the `rapport` logger.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
