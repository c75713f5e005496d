"""End to end: the report opened in headless Chromium (DevTools protocol), and its PDF.

Needs Debian's `chromium` (scripts/install_chromium.sh; CI runs it before pytest). Without it these tests
are skipped with a reason that says so; nothing else in tests/reports needs a browser.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rapport.reports.devtools_pipe import DevToolsPipe
from rapport.reports.pdf import chromium_command, find_chromium, profile_parent

pytestmark = pytest.mark.slow

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="!!! Chromium is NOT installed: the browser and PDF checks of the report did not run. "
    "Run scripts/install_chromium.sh (CI does this before pytest). !!!",
)
EXPECTED_CHARTS = {
    "segments",
    "concentration",
    "lifecycle",
    "migrations",
    "segment_history",
    "campaign_rates",
    "campaign_lift",
    "segment_lift",
}
# One printed page per section of the template, in this order (the fixture is small enough for each).
PAGE_HEADINGS = [
    "Customers and campaigns",
    "Customer base",
    "Customer base: life stages and movement",
    "Campaigns",
    "Campaigns: did the email make people buy?",
    "Campaigns: what each test showed",
    "Campaigns: which segments responded",
    "Who to act on",
    "Who to act on: predictions",
    "Audience files",
]


class Browser:
    """One page of a headless Chromium, driven through the report's own DevTools client (DevToolsPipe, which
    prints the PDF): open a page, evaluate, screenshot, and what the page reported (events kept while waiting
    for replies)."""

    def __init__(self, timeout: float = 30.0) -> None:
        assert CHROMIUM is not None
        # Chromium helper processes may still write the profile while it is removed: ignore that race.
        self._tmp = tempfile.TemporaryDirectory(prefix="rapport-cdp-", dir=profile_parent(), ignore_cleanup_errors=True)
        work = Path(self._tmp.name)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.pipe = DevToolsPipe(
            chromium_command(CHROMIUM, work / "profile", "--remote-debugging-pipe", "about:blank"), work / "stderr.log"
        )
        try:
            target = self.pipe.call("Target.createTarget", {"url": "about:blank"}, deadline=self._deadline())
            attached = {"targetId": target["targetId"], "flatten": True}
            self.session = self.pipe.call("Target.attachToTarget", attached, deadline=self._deadline())["sessionId"]
        except BaseException:
            self.close()
            raise

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def page(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.pipe.call(method, params, session=self.session, deadline=self._deadline())

    def open(self, url: str, width: int = 1100, height: int = 900) -> None:
        for domain in ("Page", "Runtime", "Log"):
            self.page(f"{domain}.enable")
        self.page(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.pipe.take_events(self.session)  # what about:blank reported is not the page's
        self.events.clear()
        self.page("Page.navigate", {"url": url})
        self.pipe.event("Page.loadEventFired", self.session, self._deadline())
        self.page("Runtime.evaluate", {"expression": "1"})  # drain events queued during load

    def evaluate(self, expression: str) -> Any:
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"]["value"]

    def screenshot(self) -> bytes:
        size = self.page("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.page("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        return base64.b64decode(shot["data"])

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors, browser-logged errors (failed loads, CSP), dialogs."""
        self.events += self.pipe.take_events(self.session)
        out = []
        for e in self.events:
            method, p = e["method"], e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + json.dumps(p.get("args")))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
            elif method == "Page.javascriptDialogOpening":
                out.append("dialog: " + p.get("message", ""))
        return out

    def close(self) -> None:
        self.pipe.close()
        self._tmp.cleanup()


CHARTS_JS = """
[...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: f.dataset.chart, width: r.width, height: r.height,
          shapes: svg ? svg.querySelectorAll('path, rect, use').length : 0,
          texts: svg ? svg.querySelectorAll('text').length : 0};
})
"""
# The campaign decisions pages: each row's verdict and sentence, whether they run wider than the page,
# the flags on unreliable revenue ranges drawn, and the verdicts' colours.
DECISIONS_JS = """
(() => {
  const section = document.querySelector('#decisions');
  const rows = [...section.querySelectorAll('tr.verdict')];
  return {
    rows: rows.map(r => [r.classList[1], r.querySelector('td.finding').innerText.replace(/\\s+/g, ' ')]),
    too_wide: [...document.querySelectorAll('#lift, #decisions')].filter(s => s.scrollWidth > s.clientWidth + 1)
      .map(s => s.id),
    flags: [...section.querySelectorAll('.flag')].map(f => {
      const b = f.getBoundingClientRect(); return [f.innerText, b.width > 0 && b.height > 0];
    }),
    colours: rows.map(r => getComputedStyle(r.querySelector('td.finding strong')).color),
  };
})()
"""
# The predictions page: the outlook's cards, each list's customers, and whether it or "Who to act on" (lists
# of eight columns both) runs wider than the page, or a table's cell is cut off.
PREDICTIONS_JS = """
(() => {
  const section = document.querySelector('#predictions');
  return {
    cards: [...section.querySelectorAll('.card .value')].map(c => c.innerText),
    lists: [...section.querySelectorAll('table.people')].map(t =>
      [...t.querySelectorAll('tbody tr')].map(r => r.querySelector('td.email').innerText)),
    too_wide: [...document.querySelectorAll('#actions, #predictions'), ...section.querySelectorAll('td, th')]
      .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + ': ' + e.innerText.slice(0, 40)),
  };
})()
"""
IMAGES_JS = "[...document.images].map(i => ({src: i.src.slice(0, 60), ok: i.complete && i.naturalWidth > 0}))"


def ink(png: bytes) -> tuple[float, float]:
    """(grey-level standard deviation, share of pixels that are not near-white): both ~0 for a blank page."""
    from PIL import Image, ImageStat

    grey = Image.open(io.BytesIO(png)).convert("L")
    hist = grey.histogram()
    return ImageStat.Stat(grey).stddev[0], sum(hist[:200]) / sum(hist)


def colour_pixels(png: bytes, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb)) <= tolerance).all(axis=-1).sum())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, facts) -> SimpleNamespace:
    from rapport.reports.render import render_report

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (scripts/install_chromium.sh)")
    base = tmp_path_factory.mktemp("browser")
    db = facts.build(base / "rapport.duckdb", migrations=facts.migrations, segment_history=True)
    audiences = base / "audiences"
    audiences.mkdir()
    (audiences / "champions.csv").write_text("email\nalice.kim@gmail.com\n", encoding="utf-8")
    started = time.monotonic()
    paths = render_report(db, base / "reports", run_id="run_cur", as_of=date(2025, 6, 30), audiences_dir=audiences)
    return SimpleNamespace(paths=paths, seconds=time.monotonic() - started, out=base / "reports")


@needs_chromium
def test_harness_sees_blank_pages_broken_images_and_console_errors(tmp_path: Path) -> None:
    """The checks below must be able to fail: show them a page with each fault."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    browser = Browser()
    try:
        browser.open(bad.as_uri())
        assert any("boom" in p for p in browser.problems())
        assert any("missing.png" in p or "ERR_FILE_NOT_FOUND" in p for p in browser.problems())
        assert browser.evaluate(IMAGES_JS)[0]["ok"] is False
        stddev, inked = ink(browser.screenshot())
        assert stddev < 5 and inked < 0.01
    finally:
        browser.close()


@needs_chromium
def test_report_in_headless_chromium(rendered: SimpleNamespace, tmp_path: Path, facts) -> None:
    browser = Browser()
    try:
        browser.open(rendered.paths.html.as_uri())
        charts = browser.evaluate(CHARTS_JS)
        images = browser.evaluate(IMAGES_JS)
        text = browser.evaluate("document.body.innerText")
        decisions = browser.evaluate(DECISIONS_JS)
        predictions = browser.evaluate(PREDICTIONS_JS)
        png = browser.screenshot()
        problems = browser.problems()
    finally:
        browser.close()
    (tmp_path / "report.png").write_bytes(png)  # kept for a human look when the test fails
    assert problems == []  # no console errors, failed loads, policy violations or alert() dialogs
    assert {c["name"] for c in charts} == EXPECTED_CHARTS and len(charts) == len(EXPECTED_CHARTS)
    for c in charts:
        assert c["width"] > 300 and c["height"] > 60 and c["shapes"] > 5 and c["texts"] > 2, c
    assert all(i["ok"] for i in images), images
    stddev, inked = ink(png)
    assert stddev > 20 and inked > 0.05, (stddev, inked)
    assert colour_pixels(png, (0x1A, 0x7F, 0x4B)) > 500  # the charts' green bars were painted
    assert facts.script_name in text  # shown as text, never run
    assert "e***@example.com" in text and "evil.sender@example.com" not in text
    # the campaign decisions, by what was learned, in words, nothing wider than its page
    assert [verdict for verdict, _ in decisions["rows"]] == [
        "increased",
        "decreased",
        "no_effect",
        "too_small",
        "too_small",
    ]
    assert decisions["rows"][3][1] == (
        "too small to tell: this test could only have detected a lift above 4.4 pts; holding out 25% of the same "
        "audience would detect 2.0 pts."
    )
    assert decisions["too_wide"] == []
    assert decisions["flags"] == [
        ["unreliable: only 2 buyers among those held out", True]
    ]  # the hostile campaign's revenue range; it has no cost, so no ROI range to flag
    assert decisions["colours"][:3] == ["rgb(26, 127, 75)", "rgb(192, 57, 43)", "rgb(93, 100, 112)"]
    # the predictions: next 90 days' orders and revenue, revenue at risk; c02 likely to churn; c01, c03, c07
    # likely to buy again, likeliest first (conftest.py)
    assert predictions["cards"] == ["4", "$1,081", "$480"]
    assert predictions["lists"] == [["e***@example.com"], ["a***@gmail.com", "m***@naver.com", "w***@qq.com"]]
    assert predictions["too_wide"] == []


@needs_chromium
def test_pdf_has_one_page_per_section_with_text(rendered: SimpleNamespace, facts) -> None:
    from pypdf import PdfReader

    pdf = rendered.paths.pdf
    assert pdf == rendered.out / "rapport_report_2025-06-30.pdf"
    assert (rendered.out / "latest.pdf").read_bytes() == pdf.read_bytes()
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    assert len(pages) == len(PAGE_HEADINGS)
    for number, (text, heading) in enumerate(zip(pages, PAGE_HEADINGS, strict=True), start=1):
        assert heading in text, f"page {number} should start the section {heading!r}"
        assert f"page {number} of {len(PAGE_HEADINGS)}" in text
    assert facts.script_name in pages[3]  # the hostile campaign name, as text in the leaderboard
    assert "How to read this" in pages[4] and "too small to tell" in pages[4]  # the chart's words and the note
    assert "increased sales:" in pages[5] and "0.057)" in pages[5]  # the decisions table
    assert "e***@example.com" in pages[7]
    assert "Revenue at risk" in pages[8] and "$480" in pages[8] and "Likely to buy again" in pages[8]
    everything = "\n".join(pages)
    assert not [p[2] for p in facts.people if p[2] and p[2] in everything]
    assert rendered.seconds < 30
