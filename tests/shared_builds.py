"""Builds several test files need, made once per test session even when xdist runs two workers.

CI runs the files on two xdist workers (scripts/bootstrap.sh), each its own process: a module fixture or a
per-process cache builds the same demo warehouse once per file or per worker. `shared_build` builds it once
for the whole session: the first caller builds under a file lock in the session's temporary directory (the
one both workers' directories live in), later callers (either worker) wait for the lock and reuse it. The
result is shared: never write into it; copy it (`copy_of`) and work on the copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary directory of this test session, the same for every xdist worker."""
    base = tmp_path_factory.getbasetemp()
    # an xdist worker's base is <session>/popen-gwN; without xdist the base is the session's own directory
    # (its parent holds earlier sessions' directories: never share builds across sessions)
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`root/name`, built by `build(directory)` unless a caller in any process already built it.

    `build` fills an empty directory; it is renamed to `root/name` only when `build` returned, so a failed
    build leaves nothing behind and the next caller builds again (and reports its own failure).
    """
    root.mkdir(parents=True, exist_ok=True)
    done = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            partial = root / f"{name}.partial"
            if partial.exists():
                shutil.rmtree(partial)
            partial.mkdir()
            build(partial)
            partial.rename(done)
    return done


def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The session's build `name` (see `build_once`): read it, or `copy_of` it to change it."""
    return build_once(session_dir(tmp_path_factory) / "shared-builds", name, build)


def copy_of(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None], dest: Path) -> Path:
    """A private copy at `dest` of the session's build `name`."""
    shutil.copytree(shared_build(tmp_path_factory, name, build), dest)
    return dest
