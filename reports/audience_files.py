"""The audience CSV files written beside the report (one per segment), listed so a marketer can find them.

The report shows where the files are and how many people each holds; the addresses themselves stay in
the files (the report masks every email it shows).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class AudienceFile:
    name: str
    path: str
    people: int | None  # data rows (header excluded); None when the file cannot be read as CSV
    modified: datetime


def _data_rows(path: Path) -> int | None:
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            return max(sum(1 for _ in csv.reader(f)) - 1, 0)
    except (OSError, csv.Error):
        return None


def list_audience_files(audiences_dir: Path | None) -> list[AudienceFile] | None:
    """None when there is no audience directory; hidden files (in-progress temporaries) are skipped."""
    if audiences_dir is None or not audiences_dir.is_dir():
        return None
    files = sorted(
        p for p in audiences_dir.rglob("*.csv")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(audiences_dir).parts)
    )
    return [
        AudienceFile(
            name=str(p.relative_to(audiences_dir)),
            path=str(p.resolve()),
            people=_data_rows(p),
            modified=datetime.fromtimestamp(p.stat().st_mtime, UTC).replace(tzinfo=None),
        )
        for p in files
    ]
