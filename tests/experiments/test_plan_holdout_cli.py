"""`rapport plan-holdout` as a user runs it: the given or published baseline, and errors to act on."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rapport.cli import build_parser, main


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAPPORT_WAREHOUSE_DIR", str(tmp_path))
    return tmp_path


def _publish(warehouse: Path, rows: list[tuple[bool, float | None]]) -> Path:
    path = warehouse / "published" / "rapport.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.campaign_performance (has_control_group boolean, control_conversion_rate double)"
        )
        con.executemany("insert into marts.campaign_performance values (?, ?)", rows)
    return path


def test_help_speaks_to_marketers():
    text = build_parser()._subparsers._group_actions[0].choices["plan-holdout"].format_help()
    for phrase in ("control group", "--audience", "--baseline-rate", "--mde", "80% power", "0.02 = 2 percentage"):
        assert phrase in " ".join(text.split()), phrase


def test_given_baseline(warehouse, capsys):
    assert main(["plan-holdout", "--audience", "20000", "--baseline-rate", "0.03", "--mde", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "hold out 13.2% of the audience of 20,000" in out
    assert "2,630" in out and "17,370" in out and "given with --baseline-rate" in out


def test_baseline_from_the_published_campaigns(warehouse, capsys):
    path = _publish(warehouse, [(True, 0.02), (True, 0.03), (True, 0.05), (False, None), (False, 0.9)])
    assert main(["plan-holdout", "--audience", "20000", "--mde", "0.01"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"median control-group conversion rate of 3 published campaign(s) in {path}" in out
    assert "Baseline: 3% of recipients" in out and "2,630" in out  # the median, 0.03
    with duckdb.connect(str(path), read_only=True):  # read-only: others may read it meanwhile
        pass


def test_no_published_file(warehouse, capsys):
    assert main(["plan-holdout", "--audience", "20000"]) == 2
    err = capsys.readouterr().err
    assert "no published marts at" in err and "--baseline-rate" in err and "rapport run" in err


def test_no_campaign_with_a_control_group(warehouse, capsys):
    _publish(warehouse, [(False, None)])
    assert main(["plan-holdout", "--audience", "20000"]) == 2
    assert "no published campaign has a control group" in capsys.readouterr().err


def test_unreachable_lift(warehouse, capsys):
    assert main(["plan-holdout", "--audience", "500", "--baseline-rate", "0.03"]) == 2
    assert "even holding out half of 500 people cannot detect a lift of 2 percentage points" in capsys.readouterr().err
