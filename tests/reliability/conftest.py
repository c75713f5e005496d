"""Fixtures of the reliability tests: one uninterrupted reference run per test session, and tmpfs mounts."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_checks import held_locks, published_fingerprints, raw_duplicates, raw_fingerprints
from reliability_runs import DEMO_ARGS, INTERVAL_END, RAPPORT, clean_env, log_tail, run_to_end
from shared_builds import shared_build


@dataclass(frozen=True)
class Reference:
    """An uninterrupted `rapport run` of the tiny demo: what every crashed-and-rerun warehouse must equal."""

    warehouse: Path
    published: dict[str, dict[str, Any]]  # published_fingerprints
    raw: dict[str, dict[str, Any]]  # raw_fingerprints
    durations: dict[str, float]  # task id -> seconds, from the task events
    tasks_run: list[str]  # task ids in the order they started

    @property
    def demo_dir(self) -> Path:
        return self.warehouse / "demo"

    def new_warehouse(self, parent: Path, *, published: bool = False) -> Path:
        """A fresh warehouse on the same demo sources (copied), optionally holding the reference's published
        file as a previous run's output."""
        wh = parent / "warehouse"
        shutil.copytree(self.demo_dir, wh / "demo")
        if published:
            shutil.copytree(self.warehouse / "published", wh / "published")
        return wh


def _build_reference(root: Path) -> None:
    wh = root / "warehouse"
    env = clean_env(wh)
    gen = subprocess.run([*RAPPORT, "generate", *DEMO_ARGS], env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    run = run_to_end(["run", "--interval-end", INTERVAL_END], env)
    assert run.proc.returncode == 0, run.stdout + log_tail(wh)
    assert not held_locks(wh)
    work = wh / "work" / "rapport_work.duckdb"
    assert raw_duplicates(work) == {}
    data = {
        "published": published_fingerprints(wh / "published" / "rapport.duckdb"),
        "raw": raw_fingerprints(work),
        "durations": run.durations(),
        "tasks_run": [e.task_id for e in run.events if e.kind == "running"],
        "seconds": run.seconds,
    }
    (root / "reference.json").write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """Built once per session, whichever xdist worker asks first; the others wait for it and reuse it."""
    root = shared_build(tmp_path_factory, "rapport-reference", _build_reference)
    data = json.loads((root / "reference.json").read_text())
    return Reference(root / "warehouse", data["published"], data["raw"], data["durations"], data["tasks_run"])


# --- tmpfs ----------------------------------------------------------------------------------------------


def _mount_tmpfs(path: Path, size_bytes: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    kib = max(64, size_bytes // 1024)
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0755", "tmpfs", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        error = (proc.stderr.strip() or f"exit status {proc.returncode}") if proc.returncode else ""
    except OSError as exc:  # no mount(8) at all
        error = str(exc)
    if error:
        reason = (
            f"!!! cannot mount a tmpfs here ({error}; needs root or CAP_SYS_ADMIN): the disk-full tests did NOT run !!!"
        )
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)


@pytest.fixture()
def tmpfs() -> Iterator[Any]:
    """`tmpfs(path, size_bytes)` mounts a small tmpfs on `path` (skips loudly if mounting is not permitted);
    every mount is undone at teardown."""
    mounted: list[Path] = []

    def mount(path: Path, size_bytes: int) -> Path:
        _mount_tmpfs(path, size_bytes)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach it anyway
