"""The report drawn while the audience files are written (rapport.pipeline.steps.write_outputs): it lists the
files once they are written, never the previous run's, and is not written when the export failed."""

from __future__ import annotations

import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from rapport.reports.render import render_report

AS_OF = date(2025, 6, 30)
STALE_ROWS = 17  # rows of the previous run's file, more than the fixture has people


def _listed_counts(html: str) -> dict[str, int]:
    """The audience table of the report: file name -> people shown."""
    rows = re.findall(r'<tr><td class="nowrap" translate="no">([^<]+\.csv)</td><td class="num">([\d,]+)</td>', html)
    return {name: int(n.replace(",", "")) for name, n in rows}


def _write_later(out: Path) -> list[Path]:
    """What the export does meanwhile, on the report's fixture (whose file has no addresses to export): files
    replaced atomically, after long enough that a report not waiting for it lists the previous run's files."""
    time.sleep(1.5)
    files = {"champions.csv": 3, "loyal-customers.csv": 2}  # name -> data rows
    for name, rows in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text("email,customer_id\r\n" + "".join(f"new{i}@example.com,n{i}\r\n" for i in range(rows)),
                       encoding="utf-8")
        tmp.replace(out / name)
    return [out / name for name in files]


def test_report_lists_the_files_written_meanwhile(published_db: Path, tmp_path: Path) -> None:
    audiences = tmp_path / "audiences"
    audiences.mkdir()
    stale = "email,customer_id\n" + "".join(f"old{i}@example.com,c{i}\n" for i in range(STALE_ROWS))
    (audiences / "champions.csv").write_text(stale, encoding="utf-8")
    with ThreadPoolExecutor(1) as pool:
        written = pool.submit(_write_later, audiences)
        paths = render_report(published_db, tmp_path / "reports", run_id="run_cur", as_of=AS_OF,
                              audiences_dir=audiences, pdf=False, audiences_written=written)
    assert _listed_counts(paths.html.read_text(encoding="utf-8")) == {"champions.csv": 3, "loyal-customers.csv": 2}


def test_no_report_when_the_export_failed(published_db: Path, tmp_path: Path) -> None:
    failed: Future[object] = Future()
    failed.set_exception(OSError(28, "No space left on device"))
    out = tmp_path / "reports"
    with pytest.raises(OSError, match="No space left"):
        render_report(published_db, out, run_id="run_cur", as_of=AS_OF, audiences_dir=tmp_path,
                      pdf=False, audiences_written=failed)
    assert not list(out.glob("*.html"))
