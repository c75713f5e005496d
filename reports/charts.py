"""The report's charts: matplotlib figures rendered to SVG and inlined in the HTML.

matplotlib is imported inside the functions (it costs about a second) and used through `Figure` objects
only, never pyplot, so no global figure state or GUI backend is involved. SVG text stays text
(`svg.fonttype: none`): it is searchable in the HTML and extractable from the PDF, and the browser's font
fonts named in the SVG are the report language's stack (fonts.py), which matplotlib also measures the
labels with, so text is laid out at the width the browser draws it. Every word comes from the message
catalogs through `fmt` (the language's Formats); the default is English. Labels from the data (campaign
names) are untrusted: matplotlib XML-escapes them, and math-text parsing is off so a `$` in a name is just a
dollar sign.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from rapport.reports.fonts import matplotlib_families
from rapport.reports.formatting import Formats, formats, truncate
from rapport.reports.glossary import VERDICT_LABELS, segment_name
from rapport.reports.i18n import N_

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rapport.reports.data import Campaign, SegmentLift
    from rapport.reports.migrations import Migrations, SegmentHistory

WIDTH_IN = 7.2  # the printable width of an A4 page with the report's margins
MAX_CAMPAIGNS = 12
GOOD, BAD, NEUTRAL, ACCENT, MUTED = "#1a7f4b", "#c0392b", "#8a8f98", "#2f6db5", "#d9dde3"

SEGMENT_ORDER = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Cannot Lose Them",
    "Hibernating",
    "No Purchases",
)
SEGMENT_COLORS = {
    "Champions": "#1a7f4b",
    "Loyal Customers": "#4caf7a",
    "Potential Loyalists": "#9fd4a9",
    "New Customers": "#2f6db5",
    "Promising": "#8fb8e6",
    "Need Attention": "#f2c14e",
    "About to Sleep": "#e89b3c",
    "At Risk": "#d9653b",
    "Cannot Lose Them": "#a8322b",
    "Hibernating": "#8a8f98",
    "No Purchases": "#c9cdd3",
}
# Translators: chart labels under narrow bars; keep them short, line breaks (\n) included.
STAGE_LABELS = {
    "prospect": N_("Prospects\n(never ordered)"),
    "new": N_("New\n(first order\n≤ 30 days ago)"),
    "active": N_("Active\n(ordered\n≤ 90 days ago)"),
    "reactivated": N_("Reactivated\n(back after\n180+ days)"),
    "at_risk": N_("Slipping away\n(last order\n91–180 days ago)"),
    "churned": N_("Lapsed\n(last order\n180+ days ago)"),
}
STAGE_COLORS = {
    "prospect": "#c9cdd3",
    "new": "#2f6db5",
    "active": "#1a7f4b",
    "reactivated": "#4caf7a",
    "at_risk": "#e89b3c",
    "churned": "#a8322b",
}
# too small to tell is paler than no detectable effect: it says nothing either way
VERDICT_COLORS = {"increased": GOOD, "decreased": BAD, "no_effect": NEUTRAL, "too_small": "#b9bec6"}

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "rapport",  # stable output; ids are made unique per chart below
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa0a6",
    "xtick.color": "#4a4f57",
    "ytick.color": "#2b2f36",
    "axes.labelcolor": "#4a4f57",
}


@dataclass(frozen=True)
class Chart:
    name: str  # also the prefix of every id inside the SVG, so charts inlined together never collide
    title: str
    svg: Markup


@contextmanager
def _figure(
    fmt: Formats, height_in: float, width_in: float = WIDTH_IN, **subplots: Any
) -> Iterator[tuple[Figure, Any]]:
    import matplotlib as mpl
    from matplotlib.figure import Figure

    rc = {**_RC, "font.family": matplotlib_families(fmt.lang.code)}
    # "Failed to find font weight bold for NanumGothic, now using 600": it picks the right face anyway.
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    with mpl.rc_context(rc), warnings.catch_warnings():
        # Without the fonts installed, missing glyphs only affect layout estimates; the browser draws the text.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(**subplots)
        try:
            yield fig, axes
        finally:
            font_log.setLevel(level)


def _to_chart(fig: Figure, name: str, title: str) -> Chart:
    """Called inside `_figure`, whose settings also govern saving."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)

    def fix_tag(m: re.Match[str]) -> str:
        # Only inside tags: text content is XML-escaped, so `<...>` here is always markup.
        tag = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', m.group(0))
        tag = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", tag)
        return re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', tag)

    svg = re.sub(r"<[^>]+>", fix_tag, svg)
    # matplotlib's stylesheet says `*{...}`, which inline would style the whole page.
    svg = svg.replace('<style type="text/css">*{', '<style type="text/css">svg.chart-svg *{', 1)
    # Size comes from CSS and the viewBox, so the chart fits the page on screen and on paper.
    svg = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)
    svg = svg.replace("<svg", f'<svg class="chart-svg" role="img" aria-label="{escape(title)}"', 1)
    return Chart(name, title, Markup(svg))


def _whole_numbers() -> Any:
    """Axis ticks for counts of people: 0, 1, 2, never 0.5."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _label_bars(ax: Any, bars: Any, labels: Sequence[str]) -> None:
    """The value at the end of each horizontal bar."""
    for bar, text in zip(bars, labels, strict=True):
        ax.annotate(
            text,
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color="#2b2f36",
        )


def segments_chart(segments: list[dict[str, Any]], fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    if not segments:
        return None
    names = [s["rfm_segment"] for s in segments][::-1]  # largest revenue at the top
    customers = [s["customers"] for s in segments][::-1]
    shares = [s["revenue_share"] or 0 for s in segments][::-1]
    colors = [SEGMENT_COLORS.get(n, ACCENT) for n in names]
    labels = [segment_name(fmt.lang, n) for n in names]
    with _figure(fmt, 0.22 * len(names) + 0.75, ncols=2, sharey=True) as (fig, (left, right)):
        bars = left.barh(labels, customers, color=colors)
        _label_bars(left, bars, [fmt.count(c) for c in customers])
        left.set_title(fmt.lang.gettext("Customers in each segment"))
        left.set_xlim(0, max(customers + [1]) * 1.25)
        left.xaxis.set_major_locator(_whole_numbers())
        bars = right.barh(labels, [100 * s for s in shares], color=colors)
        _label_bars(right, bars, [fmt.pct(s, 0) for s in shares])
        right.set_title(fmt.lang.gettext("Share of revenue"))
        fig.get_layout_engine().set(wspace=0.06)  # keep the two x axes' end labels apart
        right.set_xlim(0, max([100 * s for s in shares] + [1]) * 1.25)
        right.xaxis.set_major_formatter("{x:.0f}%")
        for ax in (left, right):
            ax.grid(axis="x", color="#eceef1")
            ax.set_axisbelow(True)
        return _to_chart(fig, "segments", fmt.lang.gettext("Customers and revenue by segment"))


def concentration_chart(top_share: float | None, fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    if top_share is None:
        return None
    top = 100 * top_share
    _ = fmt.lang.gettext
    rows = [_("Revenue"), _("Customers")]
    with _figure(fmt, 1.35) as (fig, ax):
        ax.barh(rows, [top, 20], color=GOOD)
        ax.barh(rows, [100 - top, 80], left=[top, 20], color=MUTED)
        inside = [
            (top, 100 - top, fmt.pct(top_share, 0), fmt.pct(1 - top_share, 0)),
            (20, 80, _("top 20%%"), _("the other 80%%")),
        ]
        for y, (a, b, la, lb) in enumerate(inside):
            ax.text(a / 2, y, la, ha="center", va="center", color="white", fontsize=8.5, fontweight="bold")
            ax.text(a + b / 2, y, lb, ha="center", va="center", color="#2b2f36", fontsize=8.5)
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter("{x:.0f}%")
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        ax.set_title(_("The best fifth of customers and their share of revenue"))
        return _to_chart(fig, "concentration", _("Value concentration"))


def lifecycle_chart(lifecycle: list[tuple[str, int]], fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    if not any(n for _, n in lifecycle):
        return None
    labels = [fmt.lang.gettext(STAGE_LABELS[s]) if s in STAGE_LABELS else s for s, _ in lifecycle]
    counts = [n for _, n in lifecycle]
    with _figure(fmt, 2.1) as (fig, ax):
        bars = ax.bar(labels, counts, color=[STAGE_COLORS.get(s, ACCENT) for s, _ in lifecycle])
        for bar, n in zip(bars, counts, strict=True):
            ax.annotate(
                fmt.count(n),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=8.5,
            )
        ax.set_ylim(0, max(counts) * 1.18)
        ax.yaxis.set_major_locator(_whole_numbers())
        ax.set_ylabel(fmt.lang.gettext("customers"))
        ax.tick_params(axis="x", labelsize=7.5, length=0)
        ax.grid(axis="y", color="#eceef1")
        ax.set_axisbelow(True)
        ax.set_title(fmt.lang.gettext("Where customers are in their life with the shop"))
        return _to_chart(fig, "lifecycle", fmt.lang.gettext("Customers by lifecycle stage"))


def _segment_label(fmt: Formats, name: str) -> str:
    """Segment names and the "(new)"/"(gone)" markers of migrations."""
    from rapport.reports.migrations import GONE, NEW

    if name == NEW:
        return fmt.lang.gettext("(new)")
    if name == GONE:
        return fmt.lang.gettext("(gone)")
    return segment_name(fmt.lang, name)


def migrations_chart(migrations: Migrations, fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    if not migrations.net:
        return None
    names = [_segment_label(fmt, s) for s, _ in migrations.net][::-1]
    values = [v for _, v in migrations.net][::-1]
    # Narrow: it sits beside the table of the largest moves.
    with _figure(fmt, 0.24 * len(names) + 0.8, width_in=4.2) as (fig, ax):
        bars = ax.barh(names, values, color=[GOOD if v > 0 else BAD for v in values])
        span = max(abs(v) for v in values)
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(
                fmt.number(v) if v < 0 else "+" + fmt.number(v),
                (v, bar.get_y() + bar.get_height() / 2),
                xytext=(3 if v > 0 else -3, 0),
                textcoords="offset points",
                va="center",
                ha="left" if v > 0 else "right",
                fontsize=8,
            )
        ax.set_xlim(-span * 1.3, span * 1.3)
        ax.xaxis.set_major_locator(_whole_numbers())
        ax.axvline(0, color="#4a4f57", linewidth=0.8)
        ax.grid(axis="x", color="#eceef1")
        ax.set_axisbelow(True)
        ax.set_xlabel(fmt.lang.gettext("customers gained (right) or lost (left)"))
        ax.set_title(fmt.lang.gettext("Net change in segment size"))
        return _to_chart(fig, "migrations", fmt.lang.gettext("Net change in segment size since the previous run"))


def segment_history_chart(history: SegmentHistory, fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    ordered = [s for s in SEGMENT_ORDER if s in history.series] + sorted(
        s for s in history.series if s not in SEGMENT_ORDER
    )
    with _figure(fmt, 2.2) as (fig, ax):
        for seg in ordered:
            ax.plot(
                history.dates,
                history.series[seg],
                marker="o",
                markersize=3,
                linewidth=1.6,
                color=SEGMENT_COLORS.get(seg, ACCENT),
                label=segment_name(fmt.lang, seg),
            )
        ax.legend(fontsize=7, ncols=2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylabel(fmt.lang.gettext("customers"))
        ax.yaxis.set_major_locator(_whole_numbers())
        ax.grid(color="#eceef1")
        ax.set_xticks(history.dates, [fmt.shortdate(d) for d in history.dates], fontsize=7.5)
        ax.set_title(fmt.lang.gettext("Segment sizes over recent runs"))
        return _to_chart(fig, "segment_history", fmt.lang.gettext("Segment sizes over time"))


def campaign_labels(campaigns: Sequence[Campaign], width: int = 30, fmt: Formats | None = None) -> list[str]:
    """Axis labels; a name used by several campaigns gets its send date (or id) to tell them apart."""
    fmt = fmt or formats()
    repeats = Counter(c.name for c in campaigns)
    labels = []
    for c in campaigns:
        suffix = ""
        if repeats[c.name] > 1:
            suffix = f" ({fmt.daymonth(c.send_at)})" if c.send_at else f" ({c.campaign_id})"
        labels.append(truncate(c.name, max(width - len(suffix), 8)) + suffix)
    return labels


def campaign_rates_chart(campaigns: list[Campaign], fmt: Formats | None = None) -> Chart | None:
    fmt = fmt or formats()
    shown = campaigns[:MAX_CAMPAIGNS]
    if not shown:
        return None
    # Bars go at numeric positions: categorical labels would merge two campaigns of the same name.
    names = campaign_labels(shown, fmt=fmt)[::-1]
    rows = range(len(names))
    _ = fmt.lang.gettext
    panels = [
        (_("Open rate"), [c.open_rate for c in shown]),
        (_("Click rate"), [c.click_rate for c in shown]),
        (_("Conversion rate"), [c.conversion_rate for c in shown]),
    ]
    with _figure(fmt, 0.24 * len(names) + 0.9, ncols=3, sharey=True) as (fig, axes):
        for ax, (title, rates), color in zip(axes, panels, (ACCENT, "#5b8fd0", GOOD), strict=True):
            values = [100 * r if r is not None else 0.0 for r in rates][::-1]
            labels = [fmt.pct(r) if r is not None else _("n/a") for r in rates][::-1]
            bars = ax.barh(rows, values, color=color)
            _label_bars(ax, bars, labels)
            ax.set_yticks(rows, names)
            ax.set_xlim(0, max(values + [1.0]) * 1.45)
            ax.xaxis.set_major_formatter("{x:.0f}%")
            ax.set_title(title, fontsize=9)
            ax.grid(axis="x", color="#eceef1")
            ax.set_axisbelow(True)
        return _to_chart(fig, "campaign_rates", _("Open, click and conversion rates by campaign"))


def lift_chart(campaigns: list[Campaign], fmt: Formats | None = None) -> Chart | None:
    """Lift with its 95% interval as an error bar; the words beside each bar (the verdict) match its colour.
    Campaigns in the order given (decisions.learned_order: what was learned first)."""
    from matplotlib.ticker import MaxNLocator

    fmt = fmt or formats()
    shown = [c for c in campaigns if c.has_holdout][:MAX_CAMPAIGNS]
    if not shown:
        return None
    names = campaign_labels(shown, fmt=fmt)[::-1]
    _ = fmt.lang.gettext
    with _figure(fmt, 0.3 * len(shown) + 1.0) as (fig, ax):
        lows = []
        highs = []
        for y, c in enumerate(shown[::-1]):
            assert c.lift_abs is not None and c.lift_ci_low is not None and c.lift_ci_high is not None
            x, lo, hi = 100 * c.lift_abs, 100 * c.lift_ci_low, 100 * c.lift_ci_high
            color = VERDICT_COLORS[c.verdict]
            ax.errorbar(
                [x],
                [y],
                xerr=[[max(x - lo, 0)], [max(hi - x, 0)]],
                fmt="o",
                color=color,
                ecolor=color,
                elinewidth=2,
                capsize=4,
                markersize=6,
            )
            lows.append(lo)
            highs.append(hi)
        span = max(max(abs(v) for v in lows + highs), 0.5)
        for y, c in enumerate(shown[::-1]):
            ax.annotate(
                _(VERDICT_LABELS[c.verdict]),
                (span * 1.15, y),
                va="center",
                fontsize=8,
                color=VERDICT_COLORS[c.verdict],
                annotation_clip=False,
            )
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlim(-span * 1.1, span * 1.1)
        ax.axvline(0, color="#4a4f57", linewidth=0.8, linestyle="--")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10], integer=True))
        ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:+.0f}" if round(x) else "0")
        ax.set_xlabel(_("lift: extra buyers per 100 people emailed vs. the held-out group (bar: 95%% range)"))
        ax.grid(axis="x", color="#eceef1")
        ax.set_axisbelow(True)
        ax.set_title(_("Did the email make people buy? (lift over the holdout group)"))
        return _to_chart(fig, "campaign_lift", _("Campaign lift with 95%% interval"))


def segment_lift_chart(lifts: list[SegmentLift], campaigns: list[Campaign], fmt: Formats | None = None) -> Chart | None:
    """Campaign × segment grid of lift. Confident cells ('*', 95% interval excludes zero) in full colour,
    the rest faded: with small groups most differences are noise, and the eye should not land on them."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    fmt = fmt or formats()
    by_cell = {(s.campaign_id, s.rfm_segment): s for s in lifts if s.lift_abs is not None}
    if not by_cell:
        return None
    shown = [c for c in campaigns if any(cid == c.campaign_id for cid, _ in by_cell)][:MAX_CAMPAIGNS]
    segs_present = {seg for _, seg in by_cell}
    segs = [s for s in SEGMENT_ORDER if s in segs_present] + sorted(segs_present - set(SEGMENT_ORDER))
    grid = np.full((len(shown), len(segs)), np.nan)
    confident = np.zeros(grid.shape, dtype=bool)
    for i, c in enumerate(shown):
        for j, seg in enumerate(segs):
            cell = by_cell.get((c.campaign_id, seg))
            if cell is not None:
                grid[i, j] = 100 * cell.lift_abs  # type: ignore[operator]
                confident[i, j] = cell.significant
    span = max(float(np.nanmax(np.abs(grid))), 0.5)
    size = 8.5 if len(segs) <= 6 else 7
    with _figure(fmt, 0.3 * len(shown) + 1.5) as (fig, ax):
        mesh = ax.pcolormesh(
            np.ma.masked_invalid(grid),
            cmap="RdYlGn",
            norm=TwoSlopeNorm(0, -span, span),
            edgecolors="white",
            linewidth=1.5,
        )
        mesh.set_alpha(np.where(confident, 1.0, 0.3).ravel())
        ax.set_facecolor("#eef0f3")
        for i in range(len(shown)):
            for j in range(len(segs)):
                v = grid[i, j]
                if math.isnan(v):
                    ax.text(j + 0.5, i + 0.5, "–", ha="center", va="center", fontsize=size, color="#8a8f98")
                    continue
                strong = confident[i, j] and abs(v) > 0.6 * span  # strong colours need white text
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{v:+.1f}" + ("*" if confident[i, j] else ""),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if strong else "#1f2328",
                    fontweight="bold" if confident[i, j] else "normal",
                )
        ax.set_xticks(
            [j + 0.5 for j in range(len(segs))],
            [segment_name(fmt.lang, s) for s in segs],
            rotation=35,
            ha="right",
            rotation_mode="anchor",
            fontsize=7.5,
        )
        ax.set_yticks([i + 0.5 for i in range(len(shown))], campaign_labels(shown, fmt=fmt))
        ax.invert_yaxis()
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = fig.colorbar(mesh, ax=ax, shrink=0.8, pad=0.01)
        bar.solids.set_alpha(1.0)
        bar.set_label(fmt.lang.gettext("lift, points"), fontsize=7.5)
        ax.set_title(fmt.lang.gettext("Lift by customer segment, in points (* = confident)"))
        return _to_chart(fig, "segment_lift", fmt.lang.gettext("Campaign lift by customer segment"))
