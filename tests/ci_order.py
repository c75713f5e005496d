"""The order test files start in: the longest first, so that two xdist workers finish together.

CI runs `pytest -n 2 --dist loadfile --no-loadscope-reorder` (scripts/bootstrap.sh): each worker takes the
next whole file in collection order when it is down to its last two tests. xdist's default order (files with
the most tests first) starts the files with few tests last, and several of the longest have few tests (the
backfill: 3 tests, 258 s; the benchmark smoke test: 1 test, 156 s): a long file that starts late can leave
the other worker idle at the end. Longest first (the longest-processing-time rule) leaves only short files
for the end, where the workers' finishing times even out.

The seconds come from tests/ci_durations.txt (per file: setup + call + teardown of all its tests). A run with
--durations (CI's) prints the current figures at its end ("seconds per test file", tests/conftest.py): after
a CI run on a fresh clone, copy that section over the list when the order has drifted. A file that is not
listed counts as UNLISTED_SLOW_SECONDS if any of its tests is marked slow, spark, postgres or bench (a new
slow file then still starts before the quick ones), else as 0 s. Ties keep collection order, and each file's
tests keep their own order and stay together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

DURATIONS_FILE = Path(__file__).resolve().parent / "ci_durations.txt"
SLOW_MARKERS = frozenset({"slow", "spark", "postgres", "bench"})
# a guess for a slow file nobody has timed yet: about the median of the listed slow files
UNLISTED_SLOW_SECONDS = 20.0
# files that keep both cores busy by themselves (Spark's JVM beside dbt; the backfill's two Airflow processes):
# two of them at once slowed each other by 160-190 s each in CI (2026-12-07), so they never start together
BOTH_CORES = frozenset({"tests/spark/test_spark_marts_equal.py", "tests/integration/test_backfill.py"})


class Marker(Protocol):
    name: str


class Item(Protocol):
    nodeid: str

    def iter_markers(self) -> Iterable[Marker]: ...


def read_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """`seconds path` per line (test file paths relative to the repository root); `#` starts a comment."""
    durations: dict[str, float] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            seconds, file = line.split()
            durations[file] = float(seconds)
    return durations


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_files_first(items: Sequence[Item], durations: dict[str, float]) -> list[Item]:
    """The items reordered file by file, the files in decreasing expected seconds (ties: collection order)."""
    seconds: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        file = file_of(item.nodeid)
        first_seen.setdefault(file, index)
        if file in durations:
            seconds[file] = durations[file]
        elif any(m.name in SLOW_MARKERS for m in item.iter_markers()):
            seconds[file] = max(seconds.get(file, 0.0), UNLISTED_SLOW_SECONDS)
        else:
            seconds.setdefault(file, 0.0)
    files = sorted(seconds, key=lambda f: (-seconds[f], first_seen[f]))
    position = {f: i for i, f in enumerate(keep_apart(files, seconds, BOTH_CORES))}
    # sorted() is stable: within a file the items keep their collection order
    return sorted(items, key=lambda item: position[file_of(item.nodeid)])


def keep_apart(files: list[str], seconds: dict[str, float], heavy: frozenset[str]) -> list[str]:
    """`files` (longest first) with each of the `heavy` ones placed after other files adding up to at least
    the previous heavy one's seconds: with two workers, the other worker is then still busy with those when
    the first heavy file ends, so the next heavy file starts on the worker it frees, after it."""
    queue = [f for f in files if f in heavy]
    out: list[str] = []
    needed = gap = 0.0
    for f in (f for f in files if f not in heavy):
        if queue and gap >= needed:
            out.append(queue.pop(0))
            needed, gap = seconds[out[-1]], 0.0
        out.append(f)
        gap += seconds[f]
    return out + queue


def seconds_per_file(reports: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(nodeid, seconds) of every setup, call and teardown -> seconds per test file, the longest first."""
    totals: defaultdict[str, float] = defaultdict(float)
    for nodeid, seconds in reports:
        totals[file_of(nodeid)] += seconds
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def durations_lines(totals: dict[str, float], at_least: float) -> list[str]:
    """The lines of ci_durations.txt for the files that took at least `at_least` seconds."""
    return [f"{seconds:.0f} {file}" for file, seconds in totals.items() if seconds >= at_least]
