"""Atomic file replacement for everything the report writes (HTML, PDF, latest.*, history.json)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, then rename over it: a reader sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(src: Path, dst: Path) -> None:
    write_atomic(dst, src.read_bytes())


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete `.NAME.*.tmp` files a killed writer left behind (they can hold full copies of what it wrote,
    e.g. audience emails). Only one run writes a warehouse at a time (the run lock), so none is in use."""
    removed = []
    for tmp in directory.glob(".*.tmp") if directory.is_dir() else ():
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
