"""The charts' memoised font lookup (reports/fonts.py `memoised_font_lookup`, issue 16) changes nothing drawn:
every chart's SVG, in every report language, with Korean, Thai, Chinese and Latin labels in regular and bold
type, is the SVG matplotlib draws without it (its own lookup, the reference)."""

from __future__ import annotations

import contextlib
from datetime import date, datetime

import pytest

from rapport.reports import charts, fonts
from rapport.reports.data import Campaign, SegmentLift
from rapport.reports.formatting import formats
from rapport.reports.migrations import Migrations, SegmentHistory


def _campaign(cid: str, name: str, lift: float, significant_gap: float) -> Campaign:
    return Campaign(
        campaign_id=cid, name=name, send_at=datetime(2025, 6, 1), treatment_size=1000, control_size=100,
        open_rate=0.41, click_rate=0.12, conversion_rate=0.05, control_conversion_rate=0.03,
        attributed_revenue_usd=300.0, lift_abs=lift, lift_ci_low=lift - significant_gap,
        lift_ci_high=lift + significant_gap, incremental_revenue_usd=None, cost_usd=None, roi=None,
    )


# names in every script the report's fonts cover: the lookup's fallbacks past the first family are exercised
CAMPAIGNS = [
    _campaign("a", "봄 세일 캠페인", 0.04, 0.01),
    _campaign("b", "โปรโมชั่นฤดูร้อน", -0.03, 0.05),
    _campaign("c", "春季促销 Spring", 0.01, 0.02),
    _campaign("d", "Winback $5 off → ▲", 0.02, 0.005),
]
# a confident cell (bold text) and a faded one per campaign
LIFTS = [
    SegmentLift(campaign_id=c.campaign_id, rfm_segment=segment, lift_abs=lift, lift_ci_low=low, lift_ci_high=high)
    for c in CAMPAIGNS
    for segment, lift, low, high in (("Champions", 0.05, 0.01, 0.09), ("At Risk", -0.01, -0.04, 0.02))
]


def _draw(code: str) -> list[str]:
    fmt = formats(code)
    made = [
        charts.segments_chart([{"rfm_segment": "Champions", "customers": 1200, "revenue_share": 0.61},
                               {"rfm_segment": "At Risk", "customers": 340, "revenue_share": 0.29},
                               {"rfm_segment": "Hibernating", "customers": 5100, "revenue_share": 0.10}], fmt),
        charts.concentration_chart(0.58, fmt),
        charts.lifecycle_chart([("new", 10), ("active", 40), ("at_risk", 7)], fmt),
        charts.migrations_chart(Migrations(flows=[], net=[("Champions", 12), ("At Risk", -5)], moved=17, stayed=90,
                                           arrived=3, left=2, source="snapshots"), fmt),
        charts.segment_history_chart(SegmentHistory(dates=[date(2025, 5, 31), date(2025, 6, 30)],
                                                    series={"Champions": [10, 12], "At Risk": [9, 5]}), fmt),
        charts.campaign_rates_chart(CAMPAIGNS, fmt),
        charts.lift_chart(CAMPAIGNS, fmt),
        charts.segment_lift_chart(LIFTS, CAMPAIGNS, fmt),
    ]
    assert all(chart is not None for chart in made)
    return [str(chart.svg) for chart in made]  # type: ignore[union-attr]


@pytest.mark.parametrize("code", ["en", "ko", "th"])
def test_charts_are_what_matplotlibs_own_lookup_draws(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    memoised = _draw(code)
    monkeypatch.setattr(charts, "memoised_font_lookup", contextlib.nullcontext)
    assert _draw(code) == memoised


def test_the_lookup_is_memoised_only_inside_the_block() -> None:
    from matplotlib import font_manager
    from matplotlib.font_manager import FontProperties

    manager = font_manager.fontManager
    regular = FontProperties(family=list(fonts.font_stack("ko")), size=9)
    bold = FontProperties(family=list(fonts.font_stack("ko")), size=9, weight="bold")
    expected_regular, expected_bold = manager._find_fonts_by_props(regular), manager._find_fonts_by_props(bold)
    with pytest.raises(RuntimeError), fonts.memoised_font_lookup():
        assert "_find_fonts_by_props" in vars(manager)
        # same properties, another object: one answer; other properties (weight), their own answer
        assert manager._find_fonts_by_props(regular) == expected_regular
        assert manager._find_fonts_by_props(regular.copy()) == expected_regular
        assert manager._find_fonts_by_props(bold) == expected_bold
        raise RuntimeError  # the block's end restores matplotlib's lookup whatever happened inside
    assert "_find_fonts_by_props" not in vars(manager)
