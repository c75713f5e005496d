"""The report's lists are read while its charts are drawn (reports/render.py): what they show must land where it
belongs, and a report rendered again in the same process must equal one rendered by a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rapport.reports.render import render_report


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section class="page" id="{section_id}">')
    return html[start : html.index("</section>", start)]


def test_lists_read_beside_the_charts_land_in_their_tables(full_report) -> None:
    actions = _section(full_report.html, "actions")
    slipping, support = actions.split("<h3>")[1:3]
    # conftest: the high-value customer slipping away is c02 (2000 spent); bad support: c02, c04, c06
    assert slipping.count('<td class="email"') == 1
    assert "$2,000" in slipping
    assert support.count('<td class="email"') == 3
    assert re.findall(r'<td class="num">(\$[0-9,]+)</td>', support) == ["$2,000", "$800", "$500"]
    # the audience files, people counted from the files written by conftest (a quoted comma in at_risk.csv)
    files = _section(full_report.html, "audiences")
    rows = re.findall(r'<td class="nowrap" translate="no">([^<]+)</td><td class="num">([^<]+)</td>', files)
    assert rows == [("at_risk.csv", "2"), ("champions.csv", "1")]


def _without_the_time_it_was_made(html: str) -> str:
    # "Report made" is the one clock reading in the report
    return re.sub(r"(Report made</dt><dd>)\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", r"\1<made>", html)


FRESH = """
import sys
from datetime import date
from pathlib import Path
from rapport.reports.render import render_report
render_report(Path(sys.argv[1]), Path(sys.argv[2]), run_id="run_cur", as_of=date(2025, 6, 30),
              audiences_dir=Path(sys.argv[3]), pdf=False)
"""


@pytest.mark.slow
def test_rendered_again_in_one_process_equals_a_fresh_process(full_report, tmp_path: Path, facts) -> None:
    db = full_report.out_dir.parent / "rapport.duckdb"  # conftest's full fixture, rendered once already
    audiences = full_report.audiences_dir
    again = render_report(
        db, tmp_path / "again", run_id="run_cur", as_of=facts.as_of, audiences_dir=audiences, pdf=False
    ).html.read_text(encoding="utf-8")
    subprocess.run([sys.executable, "-c", FRESH, str(db), str(tmp_path / "fresh"), str(audiences)], check=True)
    fresh = (tmp_path / "fresh" / "rapport_report_2025-06-30.html").read_text(encoding="utf-8")
    assert "<made>" in _without_the_time_it_was_made(fresh)
    assert _without_the_time_it_was_made(full_report.html) == _without_the_time_it_was_made(fresh)
    assert _without_the_time_it_was_made(again) == _without_the_time_it_was_made(fresh)
