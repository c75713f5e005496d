"""Shared helpers of the demo generator: seeded random streams, the period, time formatting, file writing.

Everything here is deterministic: no wall clock, and random streams are derived from (seed, name) so that
one part of the generator can change without shifting the random numbers of every other part.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

DAY = 86_400
HOUR = 3_600


def rng_for(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per generator part (crc32 is stable across runs and platforms)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class Period:
    """The generated history: unix seconds in [start_ts, end_ts); `end` itself has no events (it is the
    day the exports are taken), so a demo generated with end=today has nothing in the future."""

    start: date
    end: date

    @property
    def start_ts(self) -> int:
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp())

    @property
    def end_ts(self) -> int:
        return int(datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC).timestamp())

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def make_period(end: date, months: int) -> Period:
    return Period(start=end - timedelta(days=round(months * 30.4375)), end=end)


def seasonality(period: Period) -> np.ndarray:
    """Relative shopping intensity per day of the period (piecewise constant by day, max 1.0).

    Weekends are busier, and late November to mid December (sales, holidays) most of all. Natural orders
    are drawn by thinning against this curve, so its integral over any window is exact (see truth.py)."""
    days = np.arange(period.days)
    dates = np.datetime64(period.start.isoformat(), "D") + days
    weekday = (dates.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    s = np.where(weekday >= 5, 1.0, 0.8)
    month_day = (dates - dates.astype("datetime64[M]")).astype("int64") + 1
    month = dates.astype("datetime64[M]").astype("int64") % 12 + 1
    peak = ((month == 11) & (month_day >= 20)) | ((month == 12) & (month_day <= 15))
    s = np.where(peak, s * 1.6, s)
    return s / s.max()


def seasonal_integral(period: Period, s: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Integral of the seasonality curve over [t0, t1) in days (elementwise; empty where t1 <= t0)."""
    cum = np.concatenate([[0.0], np.cumsum(s)])

    def big_s(t: np.ndarray) -> np.ndarray:
        x = np.clip((np.asarray(t, dtype="float64") - period.start_ts) / DAY, 0, period.days)
        d = np.minimum(np.floor(x).astype("int64"), period.days - 1)
        return cum[d] + s[d] * (x - d)

    return np.maximum(big_s(t1) - big_s(t0), 0.0)


def iso_z(ts: np.ndarray) -> np.ndarray:
    """Unix seconds -> '2025-08-01T00:03:39Z' (vectorised)."""
    out = np.datetime_as_string(np.asarray(ts, dtype="int64").astype("datetime64[s]"), unit="s")
    return np.char.add(out.astype("U19"), "Z").astype(object)


def iso_variants(ts: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Timestamps in the styles the orders DB holds: 0 `...Z`, 1 `...+00:00`, 2 `YYYY-MM-DD HH:MM:SS`."""
    base = np.datetime_as_string(np.asarray(ts, dtype="int64").astype("datetime64[s]"), unit="s").astype("U19")
    if base.size == 0:
        return base.astype(object)
    z = np.char.add(base, "Z")
    off = np.char.add(base, "+00:00")
    space = np.char.replace(base, "T", " ")
    return np.select([style == 1, style == 2], [off, space], z).astype(object)


def date_str(ts: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(
        np.asarray(ts, dtype="int64").astype("datetime64[s]").astype("datetime64[D]"), unit="D"
    )


def gz_bytes(text: str, level: int = 6) -> bytes:
    """gzip with mtime 0 and no file name in the header, so identical content gives identical bytes."""
    return gzip.compress(text.encode("utf-8"), compresslevel=level, mtime=0)


def write_gz_chunks(path: Path, chunks: Iterable[str], level: int = 6) -> None:
    """gzip text given in pieces, never holding it whole: the same bytes as gz_bytes of the pieces joined
    (zlib's deflate output does not depend on how its input is cut)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    z = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header with mtime 0, as gzip.compress
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(z.compress(chunk.encode("utf-8")))
        fh.write(z.flush())


def write_gz(path: Path, text: str, level: int = 6) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gz_bytes(text, level))


def random_tokens(
    rng: np.random.Generator,
    n: int,
    length: int,
    alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
) -> np.ndarray:
    """n random strings of `length` characters from `alphabet` (vectorised; no per-row Python)."""
    table = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    codes = table[rng.integers(0, len(table), size=(n, length))]
    return np.ascontiguousarray(codes).view(f"S{length}").ravel().astype(f"U{length}").astype(object)


def pick(rng: np.random.Generator, options: list, probs: list[float], n: int) -> np.ndarray:
    p = np.asarray(probs, dtype="float64")
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=p / p.sum())]
