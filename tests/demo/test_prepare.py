"""What `rapport demo` does with existing demo sources (demo/prepare.py): generate, continue, leave alone,
or stop before touching anything with what the user can do."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from rapport.demo.extend import read_parameters, sources_end
from rapport.demo.prepare import DemoConflict, prepare_demo

END = date(2026, 11, 1)
SMALL = {"people": 200, "seed": 4, "months": 3}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    out, work_db = tmp_path / "wh" / "demo", tmp_path / "wh" / "work" / "rapport_work.duckdb"
    assert prepare_demo(out, **SMALL, end=END, work_db=work_db) == "generated"
    return out, work_db


def test_a_new_demo_is_generated_with_the_defaults_for_what_is_not_given(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert prepare_demo(out, people=150, months=2, end=END, work_db=tmp_path / "none.duckdb") == "generated"
    assert read_parameters(out) == {
        "people": 150,
        "seed": 7,
        "months": 2,
        "end": END.isoformat(),
        "start": read_parameters(out)["start"],
        "large_holdout_share": 0.3,
    }
    assert sources_end(out) == END


def test_same_end_changes_nothing_and_a_later_end_continues(demo: tuple[Path, Path]) -> None:
    out, work_db = demo
    before = _digest(out)
    said: list[str] = []
    assert prepare_demo(out, end=END, work_db=work_db, progress=said.append) == "unchanged"
    assert _digest(out) == before and "nothing to generate" in said[-1]
    later = END + timedelta(days=2)
    assert prepare_demo(out, people=SMALL["people"], end=later, work_db=work_db, progress=said.append) == "continued"
    assert sources_end(out) == later and read_parameters(out)["end"] == END.isoformat()
    assert any("continuing the demo shop's history from 2026-11-01 to 2026-11-03" in s for s in said)
    summary = json.loads((out / "ground_truth" / "summary.json").read_text())
    assert summary["continuation"]["to"] == later.isoformat()


@pytest.mark.parametrize("change", [{"end": END - timedelta(days=1)}, {"people": 201}, {"seed": 5}])
def test_another_history_stops_when_a_warehouse_holds_this_one(demo: tuple[Path, Path], change: dict) -> None:
    out, work_db = demo
    work_db.parent.mkdir(parents=True)
    work_db.write_bytes(b"a working warehouse")
    before = _digest(out)
    args = {"end": END, **change}
    with pytest.raises(DemoConflict) as err:
        prepare_demo(out, work_db=work_db, **args)
    msg = str(err.value)
    assert _digest(out) == before
    assert "RAPPORT_WAREHOUSE_DIR" in msg and str(work_db.parent / "erasure.key") in msg and str(out) in msg
    assert "--people 200 --seed 4 --months 3" in msg and "2026-11-01" in msg
    name = next(iter(change))
    assert (f"--{name} {change[name]}" in msg) if name != "end" else "before the day its sources already end" in msg


def test_another_history_is_generated_afresh_when_no_warehouse_holds_one(demo: tuple[Path, Path]) -> None:
    out, work_db = demo
    prepare_demo(out, end=END + timedelta(days=1), work_db=work_db)  # continued: state beside the sources
    assert (out / "continuation.json").exists()
    earlier = END - timedelta(days=3)
    assert prepare_demo(out, end=earlier, work_db=work_db) == "generated"
    assert sources_end(out) == earlier and not (out / "continuation.json").exists()
    assert not (out / "continuation").exists()
    assert read_parameters(out)["people"] == SMALL["people"]  # what was not given stays as recorded
