"""Number formatting for a non-technical reader (used as Jinja filters and in chart labels)."""

from __future__ import annotations

import math
from typing import Any


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def count(x: Any) -> str:
    return "–" if _missing(x) else f"{round(float(x)):,}"


def money(x: Any) -> str:
    """$1,234 below ten thousand, then $12.3K / $4.56M: the reader wants magnitude, not cents."""
    if _missing(x):
        return "–"
    v = float(x)
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 1e6:
        return f"{sign}${v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{sign}${v / 1e3:.1f}K"
    if v >= 100:
        return f"{sign}${v:,.0f}"
    return f"{sign}${v:,.2f}"


def pct(x: Any, digits: int = 1) -> str:
    """A rate held as a fraction (0.123) shown as a percentage (12.3%)."""
    return "–" if _missing(x) else f"{float(x) * 100:.{digits}f}%"


def points(x: Any, digits: int = 1) -> str:
    """A difference of two rates, in percentage points with an explicit sign (+1.2 pts)."""
    return "–" if _missing(x) else f"{float(x) * 100:+.{digits}f} pts"


def signed_pct(x: Any, digits: int = 0) -> str:
    return "–" if _missing(x) else f"{float(x) * 100:+.{digits}f}%"


def number(x: Any, digits: int = 0) -> str:
    return "–" if _missing(x) else f"{float(x):,.{digits}f}"


def truncate(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"



def longdate(d: Any) -> str:
    return "–" if d is None else f"{d.day} {d:%B %Y}"


def stamp(ts: Any) -> str:
    """A point in time to the minute: seconds and microseconds are noise to this reader."""
    return "–" if ts is None else f"{ts:%Y-%m-%d %H:%M}"


def duration_minutes(x: Any) -> str:
    """Support resolution times: minutes up to an hour, then hours up to two days, then days."""
    if _missing(x):
        return "–"
    m = float(x)
    if m < 60:
        return f"{m:.0f} min"
    if m < 48 * 60:
        return f"{m / 60:.1f} h"
    return f"{m / 1440:.1f} days"


def plural(n: Any, singular: str, many: str | None = None) -> str:
    """`3 | plural("person", "people")` -> "3 people"; the number formatted like `count`."""
    word = singular if not _missing(n) and round(float(n)) == 1 else (many or singular + "s")
    return f"{count(n)} {word}"


FILTERS = {
    "count": count,
    "money": money,
    "pct": pct,
    "points": points,
    "signed_pct": signed_pct,
    "number": number,
    "truncate_label": truncate,
    "longdate": longdate,
    "stamp": stamp,
    "duration_minutes": duration_minutes,
    "plural": plural,
}
