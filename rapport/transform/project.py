"""The dbt project as files: what dbt reads, and a fingerprint of it.

The fingerprint decides when a parsed manifest can be reused, when dbt docs need regenerating and
whether the marts are still those the project would build (rapport.transform.build_state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from rapport.core.config import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# What dbt reads: a change to any of these changes what it builds.
PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests", "seeds", "snapshots", "analyses")


def project_files(project_dir: Path = DBT_PROJECT_DIR) -> Iterable[Path]:
    """Every file dbt reads from the project, in a stable order."""
    for name in PROJECT_INPUTS:
        path = project_dir / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())


def files_fingerprint(paths: Iterable[Path], root: Path) -> str:
    """sha256 over the files' paths (relative to `root`) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """sha256 of the project's files (paths and contents): equal fingerprints, equal manifests."""
    return files_fingerprint(project_files(project_dir), project_dir)
