"""The SVG charts: self-contained, collision-free ids, untrusted labels escaped and taken literally."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from rapport.reports import charts
from rapport.reports.data import Campaign, SegmentLift


def _campaign(cid: str, name: str, lift: float | None, lo: float | None, hi: float | None) -> Campaign:
    return Campaign(
        campaign_id=cid,
        name=name,
        send_at=datetime(2025, 6, 1),
        treatment_size=100,
        control_size=10 if lift is not None else 0,
        open_rate=0.4,
        click_rate=0.1,
        conversion_rate=0.05,
        control_conversion_rate=0.03 if lift is not None else None,
        attributed_revenue_usd=300.0,
        lift_abs=lift,
        lift_ci_low=lo,
        lift_ci_high=hi,
        incremental_revenue_usd=None,
        cost_usd=None,
        roi=None,
    )


CAMPAIGNS = [
    _campaign("a", "<script>alert(1)</script>", 0.01, -0.05, 0.04),
    _campaign("b", "Winback $5 off, save $$", -0.03, -0.055, -0.004),
    _campaign("c", "No control group", None, None, None),
]


def _ids_and_refs(svg: str) -> tuple[list[str], set[str]]:
    ids = re.findall(r'\bid="([^"]+)"', svg)
    refs = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
    return ids, refs


def test_every_chart_is_inline_svg_with_prefixed_resolvable_ids() -> None:
    made = [
        charts.segments_chart(
            [
                {"rfm_segment": "Champions", "customers": 3, "revenue_share": 0.6},
                {"rfm_segment": "Hibernating", "customers": 5, "revenue_share": 0.4},
            ]
        ),
        charts.concentration_chart(0.58),
        charts.lifecycle_chart([("new", 1), ("active", 4)]),
        charts.campaign_rates_chart(CAMPAIGNS),
        charts.lift_chart(CAMPAIGNS),
    ]
    all_ids: list[str] = []
    for chart in made:
        assert chart is not None
        svg = str(chart.svg)
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata" not in svg
        assert "<image" not in svg  # vector only: nothing that could fail to load
        assert ">*{" not in svg  # its stylesheet must not style the rest of the page
        ids, refs = _ids_and_refs(svg)
        assert ids and all(i.startswith(chart.name + "-") for i in ids)
        assert refs <= set(ids), f"{chart.name}: dangling references {refs - set(ids)}"
        all_ids += ids
    assert len(all_ids) == len(set(all_ids))  # several charts can share one HTML page


def test_untrusted_names_are_escaped_and_not_math_text() -> None:
    svg = str(charts.lift_chart(CAMPAIGNS).svg)  # type: ignore[union-attr]
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "Winback $5 off, save $$" in svg  # a `$` pair is not parsed as math


def test_lift_chart_draws_only_campaigns_with_a_holdout_and_says_each_verdict() -> None:
    svg = str(charts.lift_chart(CAMPAIGNS).svg)  # type: ignore[union-attr]
    assert "No control group" not in svg
    # "a" straddles 0 and has no MDE (a file published before verdicts): too small to tell
    assert "too small to tell" in svg and "decreased sales" in svg and "increased sales" not in svg
    assert charts.VERDICT_COLORS["decreased"] in svg and charts.VERDICT_COLORS["too_small"] in svg
    assert charts.lift_chart([CAMPAIGNS[2]]) is None


def test_segment_lift_marks_confident_cells() -> None:
    lifts = [
        SegmentLift("a", "Champions", 0.05, 0.01, 0.09),
        SegmentLift("a", "At Risk", 0.01, -0.06, 0.05),
        SegmentLift("c", "Champions", None, None, None),
    ]
    svg = str(charts.segment_lift_chart(lifts, CAMPAIGNS).svg)  # type: ignore[union-attr]
    assert "+5.0*" in svg and "+1.0<" in svg and "+1.0*" not in svg
    assert "No control group" not in svg  # a campaign without any measured lift gets no row
    assert charts.segment_lift_chart(lifts[2:], CAMPAIGNS) is None


def test_nothing_to_draw_gives_no_chart() -> None:
    assert charts.segments_chart([]) is None
    assert charts.concentration_chart(None) is None
    assert charts.lifecycle_chart([("new", 0), ("active", 0)]) is None
    assert charts.campaign_rates_chart([]) is None


def test_campaigns_sharing_a_name_keep_separate_bars() -> None:
    twins = [
        _campaign("x1", "2026-09 Autumn Edit", 0.01, -0.02, 0.04),
        _campaign("x2", "2026-09 Autumn Edit", 0.02, -0.01, 0.05),
        _campaign("x3", "Spring", 0.02, -0.01, 0.05),
    ]
    twins[1] = replace(twins[1], send_at=datetime(2026, 9, 20))
    assert charts.campaign_labels(twins) == ["2026-09 Autumn Edit (1 Jun)", "2026-09 Autumn Edit (20 Sep)", "Spring"]
    svg = str(charts.campaign_rates_chart(twins).svg)  # type: ignore[union-attr]
    assert "2026-09 Autumn Edit (1 Jun)" in svg and "2026-09 Autumn Edit (20 Sep)" in svg
    assert svg.count("40.0%") == 3  # one open-rate bar per campaign, none merged
