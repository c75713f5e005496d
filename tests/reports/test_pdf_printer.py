"""The PDF printer: Chromium started ahead of time and driven over the DevTools pipe (reports/pdf.py,
reports/devtools_pipe.py). Without a browser: a Chromium that fails, or never answers, costs the PDF only.
With Chromium: the PDF is the one `chromium --print-to-pdf --no-pdf-header-footer` prints of the same file."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
from test_browser import CHROMIUM, needs_chromium  # one marker, one loud reason when Chromium is missing

from rapport.reports.devtools_pipe import DevToolsError, DevToolsPipe
from rapport.reports.pdf import ChromiumUnavailable, PdfPrinter, chromium_command, profile_parent
from rapport.reports.render import render_report


def _fake_chromium(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_a_chromium_that_fails_to_start_costs_the_pdf_only(
    published_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RAPPORT_CHROMIUM", str(_fake_chromium(tmp_path, 'echo "no display: cannot start" >&2; exit 3')))
    out = tmp_path / "reports"
    out.mkdir()
    (out / "latest.pdf").write_bytes(b"%PDF- an older report")
    with caplog.at_level(logging.WARNING, logger="rapport.reports"):
        paths = render_report(published_db, out, run_id="run_cur", as_of=date(2025, 6, 30), pdf=True)
    assert paths.pdf is None and paths.html.exists()
    # the warning names what Chromium said on its way out
    assert "NO PDF" in caplog.text and "no display: cannot start" in caplog.text
    assert not (out / "latest.pdf").exists()
    assert not list(out.glob(".*"))


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_chromium_that_never_answers_times_out_and_is_stopped_with_its_helpers(tmp_path: Path) -> None:
    # the "browser" ignores the protocol; a helper it started must stop with it (Chromium's renderers, zygote)
    helper = tmp_path / "helper.pid"
    fake = _fake_chromium(tmp_path, f"sleep 60 & echo $! > {helper}; exec sleep 60")
    pipe = DevToolsPipe([str(fake)], tmp_path / "stderr.log")
    started = time.monotonic()
    with pytest.raises(DevToolsError, match="did not answer in time"):
        pipe.call("Target.createTarget", {"url": "about:blank"}, deadline=time.monotonic() + 0.5)
    while not helper.exists() or not helper.read_text().strip():
        time.sleep(0.02)
    helper_pid = int(helper.read_text())
    assert _running(helper_pid)
    pipe.close()
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):  # killed and reaped: no such process any more
        os.kill(pipe.pid, 0)
    deadline = time.monotonic() + 5
    while _running(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _running(helper_pid)


# Two A4 pages with the report's kind of content: page CSS, coloured backgrounds, an inline SVG, non-Latin text.
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Printer check</title><style>
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "DejaVu Sans", sans-serif; }
.card { background: #e8f3ec; border: 1px solid #1a7f4b; padding: 8px; }
section { break-after: page; }
</style></head><body>
<section><h1>Page one {n}</h1><p class="card">Revenue to date grew by $1,234.</p>
<svg width="200" height="60"><rect width="120" height="40" fill="#2f6db5"/><text x="4" y="55">chart</text></svg>
</section>
<section><h1>Page two</h1><p>고객 ลูกค้า 客户</p></section>
</body></html>"""


def _without_dates(pdf: bytes) -> bytes:
    return re.sub(rb"/(CreationDate|ModDate) \(D:[^)]*\)", b"", pdf)


@pytest.mark.slow
@needs_chromium
def test_the_pdf_is_what_chromiums_print_to_pdf_prints(tmp_path: Path) -> None:
    pages = [tmp_path / "one.html", tmp_path / "two.html"]
    for n, page in enumerate(pages):
        page.write_text(PAGE.replace("{n}", str(n)), encoding="utf-8")
    with PdfPrinter() as printer:  # one browser, two prints: each on its own page
        for page in pages:
            printer.print(page, page.with_suffix(".pdf"))
        # the browser's profile, on the RAM disk where there is one (other test workers may run browsers too:
        # only this printer's directory is looked at)
        own = printer.work_dir
        assert own is not None and (own / "profile").is_dir()
        assert own.parent == Path(profile_parent() or tempfile.gettempdir())
    assert not own.exists()
    for page in pages:
        expected = tmp_path / f"{page.stem}-cli.pdf"
        assert CHROMIUM is not None
        subprocess.run(
            chromium_command(
                CHROMIUM, tmp_path / f"profile-{page.stem}", f"--print-to-pdf={expected}", "--no-pdf-header-footer",
                page.resolve().as_uri(),
            ),
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        printed = page.with_suffix(".pdf").read_bytes()
        assert printed.startswith(b"%PDF-") and b"/Count 2" in printed
        assert _without_dates(printed) == _without_dates(expected.read_bytes())


@pytest.mark.slow
@needs_chromium
def test_a_missing_page_is_reported_not_printed(tmp_path: Path) -> None:
    with PdfPrinter() as printer, pytest.raises(ChromiumUnavailable):
        printer.print(tmp_path / "missing.html", tmp_path / "missing.pdf")
    assert not (tmp_path / "missing.pdf").exists()


def test_the_browser_inherits_no_open_file_but_its_two_pipes(tmp_path: Path) -> None:
    # DuckDB opens its database files without close-on-exec: a browser must not keep the warehouse open
    opened = os.open(tmp_path / "warehouse.duckdb", os.O_RDWR | os.O_CREAT)
    held = fcntl.fcntl(opened, fcntl.F_DUPFD, 100)  # high: clear of the descriptor sh reads its script from
    os.close(opened)
    os.set_inheritable(held, True)
    listing = tmp_path / "fds.txt"
    try:
        pipe = DevToolsPipe([str(_fake_chromium(tmp_path, f"ls /proc/$$/fd > {listing}"))], tmp_path / "stderr.log")
        deadline = time.monotonic() + 10
        while pipe.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        pipe.close()
    finally:
        os.close(held)
    fds = {int(name) for name in listing.read_text().split()}
    assert held not in fds and {0, 1, 2, 3, 4} <= fds


def test_events_that_arrive_before_a_reply_are_kept_per_session_and_handed_over_once(tmp_path: Path) -> None:
    # a "browser" that writes two events of page session s1, one of s2 and one of the browser (no session), then
    # the reply to command 1; the reply's reader keeps the events for take_events (the browser tests' problems)
    messages = [
        {"method": "Runtime.consoleAPICalled", "sessionId": "s1", "params": {"type": "error"}},
        {"method": "Log.entryAdded", "sessionId": "s2", "params": {}},
        {"method": "Target.targetCreated", "params": {}},
        {"method": "Runtime.exceptionThrown", "sessionId": "s1", "params": {}},
        {"id": 1, "result": {"ok": True}},
    ]
    script = tmp_path / "messages"
    script.write_bytes(b"".join(json.dumps(m).encode() + b"\0" for m in messages))
    pipe = DevToolsPipe([str(_fake_chromium(tmp_path, f"cat {script} >&4; exec sleep 60"))], tmp_path / "stderr.log")
    try:
        assert pipe.call("Runtime.evaluate", session="s1", deadline=time.monotonic() + 10) == {"ok": True}
        assert [m["method"] for m in pipe.take_events("s1")] == ["Runtime.consoleAPICalled", "Runtime.exceptionThrown"]
        assert pipe.take_events("s1") == []  # handed over once
        assert [m["method"] for m in pipe.take_events("s2")] == ["Log.entryAdded"]
    finally:
        pipe.close()
