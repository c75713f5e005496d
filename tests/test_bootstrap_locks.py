"""scripts/bootstrap.sh: which lock files each command installs from.

`uv pip sync` removes every package the given locks do not list, so the demo run in a checkout set up for the
tests must keep the test set, or it uninstalls pytest under a test run going on in the same checkout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    return tmp_path


def _locks(checkout: Path, command: str) -> list[str]:
    out = subprocess.run(
        ["bash", str(checkout / "scripts" / "bootstrap.sh"), "locks", command],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def test_fresh_checkout_demo_installs_the_runtime_lock_only(checkout: Path) -> None:
    assert _locks(checkout, "demo") == ["requirements.lock"]
    assert _locks(checkout, "test") == ["requirements-dev.lock", "requirements-spark.lock"]
    assert _locks(checkout, "setup") == ["requirements-dev.lock"]


def test_demo_keeps_the_test_set_of_a_checkout_set_up_for_tests(checkout: Path) -> None:
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / "rapport-locks").write_text("requirements-dev.lock requirements-spark.lock\n")
    assert _locks(checkout, "demo") == ["requirements-dev.lock", "requirements-spark.lock"]


def test_demo_after_a_demo_setup_stays_on_the_runtime_lock(checkout: Path) -> None:
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / "rapport-locks").write_text("requirements.lock\n")
    assert _locks(checkout, "demo") == ["requirements.lock"]


def test_the_dev_lock_pins_every_runtime_package_alike() -> None:
    """What makes the demo safe on the dev set: it holds the runtime lock's packages at the same versions."""

    def pins(name: str) -> dict[str, str]:
        found = {}
        for line in (ROOT / name).read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                package, version = line.split("==", 1)
                found[package.strip().lower()] = version.split()[0].rstrip("\\").strip()
        return found

    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert runtime, "no pins read from requirements.lock"
    assert {p: dev.get(p) for p in runtime} == runtime
