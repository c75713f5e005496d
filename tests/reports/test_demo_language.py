"""End to end: `rapport demo --language th` with RAPPORT_REPORT_LANGUAGE=ko set writes a Thai report (the
option overrides the variable) through the real Airflow DAG; the same published demo data rendered in
Korean. Demo names are Korean, Thai, Chinese and English: none may lack a glyph, no English may remain.

One small demo (120 people, ~2-3 minutes), the session's shared one (tests/shared_demo.py): the forget and
reuse tests copy the same warehouse instead of building their own. Only read here, never changed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from report_fonts import MISSING, gaps
from report_text import in_charts, parse, untranslated_words
from shared_demo import ENV_LANGUAGE, LANGUAGE, shared_demo

from rapport.reports.render import render_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The session's shared demo (tests/shared_demo.py) is exactly this file's run: `rapport demo --people 120
    # ... --language th` with RAPPORT_REPORT_LANGUAGE=ko set. Built here if no other file built it first.
    built = shared_demo(tmp_path_factory)
    assert (LANGUAGE, ENV_LANGUAGE) == ("th", "ko")  # the option (th) must override the variable (ko)
    assert "findfont" not in built.output  # matplotlib's font chatter stays out of the terminal
    return built.warehouse


def _data(wh: Path) -> tuple[list[str], list[str]]:
    with duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True) as con:
        names = [
            r[0] for r in con.execute("select coalesce(name, campaign_id) from marts.campaign_performance").fetchall()
        ]
        people = [
            r[0] for r in con.execute("select full_name from marts.customers where full_name is not null").fetchall()
        ]
    return names, people


def _check(html: str, code: str, campaigns: list[str]) -> None:
    page = parse(html)
    assert page.html_lang == code
    assert untranslated_words(page, in_charts(page, campaigns)) == []
    if not MISSING:  # fonts installed (else test_i18n_fonts says so loudly)
        assert gaps(page) == []


def test_demo_writes_the_report_in_the_language_asked_for(demo: Path) -> None:
    campaigns, people = _data(demo)
    # the demo's customers are named in every script the report must draw
    for script in (r"[\uac00-\ud7a3]", r"[\u0e01-\u0e5b]", r"[\u4e00-\u9fff]", r"[A-Za-z]"):
        assert any(re.search(script, p) for p in people), script
    html = (demo / "reports" / "latest.html").read_text(encoding="utf-8")
    _check(html, "th", campaigns)
    pdf = demo / "reports" / "latest.pdf"
    if pdf.exists():  # without Chromium the run writes no PDF (test_i18n_browser says so loudly)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "ฐานลูกค้า" in text and "ลูกค้าที่ควรดูแลตอนนี้" in text
    # Audience files keep their English column names: the ESP's column mapping expects them.
    header = next((demo / "audiences").glob("*.csv")).read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[:4] == ["email", "first_name", "full_name", "segment"]


def test_same_demo_data_in_korean(demo: Path, tmp_path: Path) -> None:
    campaigns, _ = _data(demo)
    paths = render_report(
        demo / "published" / "rapport.duckdb",
        tmp_path,
        run_id="again",
        as_of=_as_of(demo),
        audiences_dir=demo / "audiences",
        pdf=False,
        language="ko",
    )
    _check(paths.html.read_text(encoding="utf-8"), "ko", campaigns)


def _as_of(wh: Path):
    with duckdb.connect(str(wh / "published" / "rapport.duckdb"), read_only=True) as con:
        return con.execute("select max(as_of_date) from marts.customer_segments").fetchall()[0][0]
