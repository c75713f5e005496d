"""Change against the previous report: from the report history, or from a previous published file."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest

from rapport.reports.headline import (
    HISTORY_FILE,
    Baseline,
    baseline_from_db,
    baseline_from_history,
    cards,
    load_history,
    record_history,
)


def _entry(run_id: str, as_of: str, revenue: float, rendered_at: str = "2025-01-01T00:00:00+00:00") -> dict:
    return {"run_id": run_id, "as_of": as_of, "rendered_at": rendered_at, "headline": {"revenue_usd": revenue}}


def test_history_baseline_is_the_latest_other_run_not_after_this_one() -> None:
    entries = [
        _entry("a", "2025-05-01", 100.0),
        _entry("b", "2025-06-01", 200.0),
        _entry("c", "2025-06-01", 250.0, rendered_at="2025-06-02T00:00:00+00:00"),
        _entry("later", "2025-07-01", 999.0),
        _entry("me", "2025-06-15", 300.0),
    ]
    base = baseline_from_history(entries, run_id="me", as_of=date(2025, 6, 15))
    assert base is not None
    assert (base.run_id, base.as_of, base.values["revenue_usd"]) == ("c", date(2025, 6, 1), 250.0)
    assert baseline_from_history([_entry("me", "2025-06-15", 1.0)], run_id="me", as_of=date(2025, 6, 15)) is None


def test_record_history_replaces_a_rerun(tmp_path: Path) -> None:
    record_history(tmp_path, [], run_id="r1", as_of=date(2025, 6, 1), values={"revenue_usd": 1.0})
    record_history(tmp_path, load_history(tmp_path), run_id="r2", as_of=date(2025, 6, 2), values={"revenue_usd": 2.0})
    record_history(tmp_path, load_history(tmp_path), run_id="r1", as_of=date(2025, 6, 1), values={"revenue_usd": 3.0})
    entries = load_history(tmp_path)
    assert [(e["run_id"], e["headline"]["revenue_usd"]) for e in entries] == [("r1", 3.0), ("r2", 2.0)]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temporary left behind


def test_damaged_history_costs_only_the_comparison(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / HISTORY_FILE).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rapport.reports"):
        assert load_history(tmp_path) == []
    assert "unreadable" in caplog.text
    good = _entry("ok", "2025-06-01", 1.0)
    junk = [{"no": "keys"}, _entry("bad-date", "June", 1.0), {**good, "headline": {"revenue_usd": "lots"}}, "x"]
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"entries": [*junk, good]}), encoding="utf-8")
    assert load_history(tmp_path) == [good]


def test_baseline_from_previous_published_file(make_published_db, facts) -> None:
    previous = make_published_db("previous.duckdb", people=[p for p in facts.people if p[0] != "c07"])
    base = baseline_from_db(previous)
    assert base is not None and base.source == "previous_db"
    assert base.run_id == "run_cur"  # the latest successful run recorded in that file
    assert base.as_of == facts.as_of
    assert base.values["revenue_usd"] == pytest.approx(8300)
    assert base.values["new_customers"] == 0
    assert base.values["avg_order_value_usd"] == pytest.approx(8300 / 31)


def test_unusable_previous_file_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database")
    with caplog.at_level(logging.WARNING, logger="rapport.reports"):
        assert baseline_from_db(junk) is None
    assert "report history" in caplog.text


def test_card_tones_follow_what_is_good_news() -> None:
    base = Baseline({"revenue_usd": 8300.0, "at_risk_customers": 2.0, "new_customers": 1.0}, "p", None, "history")
    by_key = {
        c.metric.key: c
        for c in cards(
            {"revenue_usd": 8600.0, "at_risk_customers": 3.0, "new_customers": 1.0, "buying_customers": 10.0}, base
        )
    }
    assert by_key["revenue_usd"].tone == "good"
    assert by_key["revenue_usd"].change == pytest.approx(300)
    assert by_key["revenue_usd"].change_ratio == pytest.approx(300 / 8300)
    assert by_key["at_risk_customers"].tone == "bad"  # more customers slipping away is bad news
    assert by_key["new_customers"].tone == "flat"
    assert by_key["buying_customers"].tone == "none"  # no baseline value for it
    assert all(c.tone == "none" for c in cards({"revenue_usd": 1.0}, None))
