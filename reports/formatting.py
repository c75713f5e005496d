"""Numbers, amounts and dates for a non-technical reader, in the report's language (Jinja filters and chart
labels).

Babel formats them by the language's CLDR locale (digits, grouping, signs, month names); the words around
them (units such as "pts", "min") and the date patterns are messages in the catalogs. Amounts are always US
dollars: the locale decides how a dollar amount is written (`$1,234` in English, `US$1,234` in Korean and
Thai), never the currency.

The module-level functions are the English ones, as before the report had languages.
"""

from __future__ import annotations

import math
from typing import Any

from babel.dates import UTC, format_date, format_datetime
from babel.numbers import format_compact_currency, format_currency, format_decimal, format_percent

from rapport.reports.i18n import Language, language

CURRENCY = "USD"  # RAPPORT_REPORTING_CURRENCY: USD only for now


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _decimals(digits: int) -> str:
    return "#,##0" + ("." + "0" * digits if digits > 0 else "")


class Formats:
    """The formatting filters of one language."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.locale = lang.locale

    def _number(self, v: float, pattern: str) -> str:
        return format_decimal(v, format=pattern, locale=self.locale)

    def count(self, x: Any) -> str:
        return "–" if _missing(x) else self._number(round(float(x)), "#,##0")

    def number(self, x: Any, digits: int = 0) -> str:
        return "–" if _missing(x) else self._number(float(x), _decimals(digits))

    def money(self, x: Any) -> str:
        """$1,234 below ten thousand, then $12.3K / $4.56M where the language abbreviates: the reader wants
        magnitude, not cents."""
        if _missing(x):
            return "–"
        v = float(x)
        if self.lang.compact_money and abs(v) >= 1e4:
            digits = 2 if abs(v) >= 1e6 else 1
            return format_compact_currency(v, CURRENCY, locale=self.locale, fraction_digits=digits)
        pattern = "¤#,##0" if abs(v) >= 100 else "¤#,##0.00"
        return format_currency(v, CURRENCY, format=pattern, locale=self.locale, currency_digits=False)

    def pct(self, x: Any, digits: int = 1) -> str:
        """A rate held as a fraction (0.123) shown as a percentage (12.3%)."""
        return "–" if _missing(x) else format_percent(float(x), format=_decimals(digits) + "%", locale=self.locale)

    def _signed(self, v: float, digits: int) -> str:
        pattern = _decimals(digits)
        return self._number(v, f"+{pattern};-{pattern}")

    def _signed_percent(self, v: float, digits: int) -> str:
        pattern = _decimals(digits) + "%"
        return format_percent(v, format=f"+{pattern};-{pattern}", locale=self.locale)

    def points(self, x: Any, digits: int = 1) -> str:
        """A difference of two rates, in percentage points with an explicit sign (+1.2 pts)."""
        if _missing(x):
            return "–"
        return self.lang.pgettext("unit", "%(value)s pts", value=self._signed(float(x) * 100, digits))

    def size_points(self, x: Any, digits: int = 1) -> str:
        """A size of a lift (a minimum detectable effect), in percentage points without a sign (4.1 pts)."""
        if _missing(x):
            return "–"
        return self.lang.pgettext("unit", "%(value)s pts", value=self._number(abs(float(x)) * 100, _decimals(digits)))

    def q_value(self, x: Any) -> str:
        """A q-value (or p-value) to three decimals, more where three would round it onto 0.05, the level it
        is read against; "< 0.001" below that."""
        if _missing(x):
            return "–"
        v = float(x)
        if v < 0.001:
            return "< " + self._number(0.001, "0.000")
        digits = 3
        while digits < 6 and round(v, digits) == 0.05 and v != 0.05:
            digits += 1
        return self._number(v, "0." + "0" * digits)

    def signed_pct(self, x: Any, digits: int = 0) -> str:
        return "–" if _missing(x) else self._signed_percent(float(x), digits)

    def _date(self, d: Any, pattern: str) -> str:
        return "–" if d is None else format_date(d, pattern, locale=self.locale)

    # "date pattern" messages are CLDR date patterns, not text: d day, M month number, MMM short and MMMM full
    # month name, y year, G era; literal words in single quotes. Translators pick their locale's usual forms.
    def longdate(self, d: Any) -> str:
        # Translators: CLDR pattern of a long date (30 June 2025); your locale's long date format
        return self._date(d, self.lang.pgettext("date pattern", "d MMMM y"))

    def shortdate(self, d: Any) -> str:
        # Translators: CLDR pattern of a short date on a chart axis (30 Jun 2025)
        return self._date(d, self.lang.pgettext("date pattern", "d MMM y"))

    def daymonth(self, d: Any) -> str:
        # Translators: CLDR pattern of a day and month without the year (30 Jun)
        return self._date(d, self.lang.pgettext("date pattern", "d MMM"))

    def stamp(self, ts: Any) -> str:
        """A point in time (UTC) to the minute: seconds are noise to this reader."""
        if ts is None:
            return "–"
        # Translators: CLDR pattern of a date and time to the minute, 24-hour clock (2025-05-31 01:05)
        pattern = self.lang.pgettext("date pattern", "yyyy-MM-dd HH:mm")
        return format_datetime(ts, pattern, tzinfo=UTC, locale=self.locale)

    def duration_minutes(self, x: Any) -> str:
        """Support resolution times: minutes up to an hour, then hours up to two days, then days."""
        if _missing(x):
            return "–"
        m = float(x)
        if m < 60:
            return self.lang.pgettext("unit", "%(value)s min", value=self._number(m, "#,##0"))
        if m < 48 * 60:
            return self.lang.pgettext("unit", "%(value)s h", value=self._number(m / 60, "#,##0.0"))
        return self.lang.pgettext("unit", "%(value)s days", value=self._number(m / 1440, "#,##0.0"))

    def filters(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "money": self.money,
            "pct": self.pct,
            "points": self.points,
            "signed_pct": self.signed_pct,
            "size_points": self.size_points,
            "q_value": self.q_value,
            "number": self.number,
            "truncate_label": truncate,
            "longdate": self.longdate,
            "shortdate": self.shortdate,
            "stamp": self.stamp,
            "duration_minutes": self.duration_minutes,
        }


def truncate(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def formats(code: str = "en") -> Formats:
    return Formats(language(code))


_EN = formats("en")
count = _EN.count
money = _EN.money
pct = _EN.pct
points = _EN.points
signed_pct = _EN.signed_pct
number = _EN.number
longdate = _EN.longdate
stamp = _EN.stamp
duration_minutes = _EN.duration_minutes


def plural(n: Any, singular: str, many: str | None = None) -> str:
    """English only: `3 | plural("person", "people")` -> "3 people". Translated text uses ngettext."""
    word = singular if not _missing(n) and round(float(n)) == 1 else (many or singular + "s")
    return f"{count(n)} {word}"
