"""tests/shared_builds.py: a build shared by test processes is made once, and a failed one is not kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from shared_builds import build_once

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from shared_builds import build_once

    def build(d: Path) -> None:
        with open({log!r}, "a") as fh:  # one line per build actually made
            fh.write("built\\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        (d / "result.txt").write_text("made once")

    print(build_once(Path({root!r}), "demo", build))
    """
)


def test_two_processes_asking_at_once_get_one_build(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    code = WORKER.format(tests=str(Path(__file__).parent), log=str(log), root=str(tmp_path / "root"))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert log.read_text() == "built\n"
    assert outs[0] == outs[1] == str(tmp_path / "root" / "demo")
    assert (tmp_path / "root" / "demo" / "result.txt").read_text() == "made once"


def test_a_failed_build_leaves_nothing_and_the_next_caller_builds_again(tmp_path: Path) -> None:
    def broken(d: Path) -> None:
        (d / "half.txt").write_text("half")
        raise RuntimeError("generate failed")

    with pytest.raises(RuntimeError, match="generate failed"):
        build_once(tmp_path, "demo", broken)
    assert not (tmp_path / "demo").exists()

    calls: list[Path] = []

    def good(d: Path) -> None:
        calls.append(d)
        (d / "whole.txt").write_text("whole")

    built = build_once(tmp_path, "demo", good)
    assert sorted(p.name for p in built.iterdir()) == ["whole.txt"]  # nothing of the failed attempt
    assert build_once(tmp_path, "demo", good) == built and len(calls) == 1  # kept: not built twice
