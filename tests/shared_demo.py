"""One small demo warehouse per test session, built by whichever xdist worker asks first; the others wait for
it and read or copy it (tests/shared_builds.py).

The build is what a user types first: `rapport demo --people 120 --seed 5 --end 2026-10-31 --interval-end
2026-11-01T00:00:00 --language th` with RAPPORT_REPORT_LANGUAGE=ko set (the option overrides the variable),
a real `rapport` process running the real DAGs. Each of these files used to make it (or the same
generate + run) for itself:
- tests/reports/test_demo_language.py reads it as it is (the Thai report, the published marts);
- tests/e2e/test_forget_e2e.py erases a person on a copy of it;
- tests/integration/test_reuse_runs.py takes it as its first run and runs again on a copy.
Nobody writes to the shared warehouse itself: a test that changes anything works on `copy_to(...)`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from demo_builds import cli_env as clean_env
from demo_builds import log_tail, rapport
from shared_builds import shared_build

DEMO_ARGS = ["--people", "120", "--seed", "5", "--end", "2026-10-31", "--interval-end", "2026-11-01T00:00:00"]
LANGUAGE = "th"  # --language, over RAPPORT_REPORT_LANGUAGE=ko in the environment
ENV_LANGUAGE = "ko"


@dataclass(frozen=True)
class SharedDemo:
    warehouse: Path  # read only: copy it before changing anything
    output: str  # the demo command's stdout, then its stderr

    def copy_to(self, dest: Path) -> Path:
        """A private copy of the warehouse (file times kept: copytree copies with copy2)."""
        shutil.copytree(self.warehouse, dest)
        return dest

    def task_states(self) -> dict[str, str]:
        """The run's task states as the command printed them (`  task_id   state` lines), in run order."""
        return dict(re.findall(r"^\[rapport [\d:]+\]   ([a-z_.]+) +([a-z_]+)$", self.output, flags=re.M))


def _build(root: Path) -> None:
    wh = root / "warehouse"
    env = {**clean_env(wh), "RAPPORT_REPORT_LANGUAGE": ENV_LANGUAGE}
    run = rapport(["demo", *DEMO_ARGS, "--language", LANGUAGE], env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:] + log_tail(wh, 4000)
    (root / "output.txt").write_text(run.stdout + run.stderr, encoding="utf-8")


def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> SharedDemo:
    """The session's demo warehouse, built on first use (tests/shared_builds.py)."""
    root = shared_build(tmp_path_factory, "rapport-shared-demo", _build)
    return SharedDemo(root / "warehouse", (root / "output.txt").read_text(encoding="utf-8"))
