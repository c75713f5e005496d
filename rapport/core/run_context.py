"""The identity of one run: its id, data interval and as-of date (what every step is a function of), and
whether it rebuilds everything (`full_refresh`: `rapport run --full-refresh`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class RunContext:
    run_id: str
    interval_start: datetime | None
    interval_end: datetime
    as_of: date
    full_refresh: bool = False

    @classmethod
    def create(
        cls,
        run_id: str,
        interval_end: datetime | None = None,
        interval_start: datetime | None = None,
        as_of: date | None = None,
        full_refresh: bool = False,
    ) -> RunContext:
        end = _naive_utc(interval_end or datetime.now(UTC))
        start = _naive_utc(interval_start) if interval_start else None
        as_of = as_of or end.date()
        return cls(run_id=run_id, interval_start=start, interval_end=end, as_of=as_of, full_refresh=full_refresh)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in d.items()}


def _naive_utc(ts: datetime) -> datetime:
    """Warehouse timestamps are naive UTC."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.replace(microsecond=0)
