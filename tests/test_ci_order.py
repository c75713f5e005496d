"""The test files start longest first (tests/ci_order.py), which is what keeps CI's two workers busy together."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from ci_order import (
    DURATIONS_FILE,
    UNLISTED_SLOW_SECONDS,
    durations_lines,
    keep_apart,
    longest_files_first,
    read_durations,
    seconds_per_file,
)

ROOT = Path(__file__).resolve().parent.parent


def _item(nodeid: str, *markers: str) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, iter_markers=lambda: [SimpleNamespace(name=m) for m in markers])


def test_files_in_decreasing_seconds_each_file_whole_and_in_its_own_order():
    items = [
        _item("tests/a.py::one"),
        _item("tests/d.py::only"),  # unlisted, not slow: 0 s, after everything timed
        _item("tests/a.py::two"),  # a's tests stay together, in this order
        _item("tests/c.py::x", "parametrize"),
        _item("tests/c.py::y", "slow"),  # unlisted but slow: UNLISTED_SLOW_SECONDS (20 s)
        _item("tests/b.py::one"),
        _item("tests/e.py::only"),  # unlisted, not slow: after d (collection order breaks the tie)
    ]
    assert UNLISTED_SLOW_SECONDS == 20.0
    ordered = longest_files_first(items, {"tests/a.py": 5.0, "tests/b.py": 30.0})
    assert [i.nodeid for i in ordered] == [
        "tests/b.py::one",
        "tests/c.py::x",
        "tests/c.py::y",
        "tests/a.py::one",
        "tests/a.py::two",
        "tests/d.py::only",
        "tests/e.py::only",
    ]


def test_the_durations_list_names_existing_test_files_longest_first():
    durations = read_durations()
    assert len(durations) >= 20
    missing = [f for f in durations if not (ROOT / f).is_file() or not Path(f).name.startswith("test_")]
    assert not missing, f"{DURATIONS_FILE.name} names files that are not test files: {missing}"
    # kept sorted so that a reader sees at once where CI's time goes
    assert list(durations.values()) == sorted(durations.values(), reverse=True)


def test_ci_keeps_collection_order_of_whole_files():
    # without --no-loadscope-reorder xdist re-sorts the files by test count and the order above is lost
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    [default_args] = re.findall(r"set -- (-n 2 .*?);", bootstrap)
    assert "--dist loadfile" in default_args and "--no-loadscope-reorder" in default_args


def test_the_printed_list_sums_every_phase_per_file_longest_first():
    phases = [
        ("tests/a.py::one", 2.0),  # setup
        ("tests/a.py::one", 3.5),  # call
        ("tests/b.py::x[1]", 4.0),
        ("tests/a.py::two", 0.5),
        ("tests/b.py::x[2]", 6.0),
        ("tests/c.py::only", 4.9),
    ]
    totals = seconds_per_file(phases)
    assert totals == {"tests/b.py": 10.0, "tests/a.py": 6.0, "tests/c.py": 4.9}
    assert list(totals) == ["tests/b.py", "tests/a.py", "tests/c.py"]
    # the format read_durations reads; c (under 5 s) left out
    assert durations_lines(totals, 5.0) == ["10 tests/b.py", "6 tests/a.py"]


def test_files_that_use_both_cores_never_start_together():
    seconds = {"h1": 300.0, "a": 331.0, "h2": 170.0, "b": 240.0, "c": 100.0, "d": 5.0}
    files = sorted(seconds, key=lambda f: -seconds[f])  # a, h1, b, h2, c, d
    order = keep_apart(files, seconds, frozenset({"h1", "h2"}))
    # h1 first; h2 only after other files that outlast h1 (a: 331 >= 300), the rest longest first
    assert order == ["h1", "a", "h2", "b", "c", "d"]
    # a heavy file whose gap can never be filled goes last rather than beside the first
    assert keep_apart(["h1", "h2", "d"], {"h1": 300.0, "h2": 170.0, "d": 5.0}, frozenset({"h1", "h2"})) == [
        "h1",
        "d",
        "h2",
    ]
