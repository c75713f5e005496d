"""The source checks' warnings of a run (ops.runs `<source>_warnings`, issue #17) in the report's run section."""

from __future__ import annotations

from datetime import date

import duckdb

from rapport.reports.render import render_report

WARNING = "no new data for 3.0 days: the newest record is from 2025-06-27 01:00 UTC (RAPPORT_FRESHNESS_WARN_HOURS=72)"


def test_warnings_of_the_run_are_listed_escaped_and_masked(make_published_db, tmp_path):
    db = make_published_db()
    with duckdb.connect(str(db)) as con:
        con.execute("alter table ops.runs add column esp_warnings varchar")
        con.execute("alter table ops.runs add column helpdesk_warnings varchar")
        con.execute(
            "update ops.runs set esp_warnings = ?, helpdesk_warnings = ? where run_id = 'run_cur'",
            [f"{WARNING}\n<b>2 files</b> of ops@shop.example gone", None],
        )
        con.execute("update ops.runs set helpdesk_warnings = 'an old warning' where run_id = 'run_prev'")
    html = render_report(db, tmp_path / "r", run_id="run_cur", as_of=date(2025, 6, 30), pdf=False).html.read_text()
    assert "Source warnings" in html
    assert f"<li>esp: {WARNING}</li>" in html
    assert "<li>esp: &lt;b&gt;2 files&lt;/b&gt; of o***@shop.example gone</li>" in html
    assert "an old warning" not in html  # only this run's


def test_no_warnings_no_section(make_published_db, tmp_path):
    html = render_report(
        make_published_db(), tmp_path / "r", run_id="run_cur", as_of=date(2025, 6, 30), pdf=False
    ).html.read_text()
    assert "Source warnings" not in html
