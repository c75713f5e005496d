"""No missing-glyph boxes: the fonts each rendered report names (its CSS stacks, the charts' SVG font lists,
the printed footer's font) cover every character it shows, customer names in Korean, Thai and Chinese
included. Fonts are located with fontconfig (fc-match) and read with fontTools.

Needs the fonts that scripts/install_chromium.sh installs; without them these tests are skipped with a
reason that says so (like the browser tests).
"""

from __future__ import annotations

import pytest
from report_fonts import MISSING, footer_texts, gaps, uncovered
from report_text import parse

from rapport.reports.fonts import FONT_STACKS

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"!!! fonts NOT installed ({', '.join(MISSING)}): the glyph coverage of the reports was not checked. "
    "Run scripts/install_chromium.sh (CI does this before pytest). !!!",
)


@pytest.mark.parametrize("code", ["ko", "th", "en"])
def test_named_fonts_cover_every_character_of_the_report(intl_reports, code: str) -> None:
    page = parse(intl_reports[code].html)
    shown = "".join(p.text for p in page.pieces)
    for sample in ("박지훈", "สมศรี มีสุข", "陈静", "双十一大促", "→"):
        assert sample in shown, sample  # the names whose glyphs matter are on the page
    assert any(p.in_svg and "双十一大促" in p.text for p in page.pieces)  # and in the charts
    assert gaps(page) == []
    assert len(footer_texts(page.css)) >= 2  # the footer was looked at


def test_the_check_sees_a_character_no_font_has() -> None:
    """A hieroglyph is in none of the report's fonts; Hangul is missing from the Thai font alone."""
    assert uncovered("고객 \N{EGYPTIAN HIEROGLYPH A001}", list(FONT_STACKS["ko"])) == {"\N{EGYPTIAN HIEROGLYPH A001}"}
    assert uncovered("고객", ["Noto Sans Thai"]) == {"고", "객"}
    assert uncovered("ลูกค้า 고객 陈静 ▲", list(FONT_STACKS["th"])) == set()


def test_charts_register_fonts_matplotlib_has_not_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """A matplotlib font cache made before the fonts were installed: the charts add them from fontconfig."""
    from matplotlib import font_manager

    from rapport.reports.fonts import matplotlib_families

    without = [f for f in font_manager.fontManager.ttflist if f.name != "NanumGothic"]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", without)
    matplotlib_families.cache_clear()
    try:
        assert matplotlib_families("ko")[0] == "NanumGothic"
        assert "NanumGothic" in {f.name for f in font_manager.fontManager.ttflist}
    finally:
        matplotlib_families.cache_clear()
