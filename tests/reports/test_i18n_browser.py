"""The Korean and Thai reports in headless Chromium and as PDFs: screenshots kept as test artefacts, chart text
inside its chart, Thai lines broken only between words, the PDF's text and embedded fonts.

Screenshots go to test-artifacts/report-<language>.png at the repository root (git-ignored), every run.
Needs Chromium and poppler-utils (scripts/install_chromium.sh); without them these tests are skipped with
a reason that says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import test_browser as harness  # the DevTools client of the English report's browser test

from rapport.reports.render import render_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        harness.CHROMIUM is None or not shutil.which("pdftotext") or not shutil.which("pdffonts"),
        reason="!!! Chromium or poppler-utils NOT installed: the Korean and Thai reports were not opened or "
        "printed. Run scripts/install_chromium.sh (CI does this before pytest). !!!",
    ),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SECTIONS = 10  # one printed page per <section class="page">
# Hand-written: the headings and footers a reader of each printed report must find.
PRINTED = {
    "ko": [
        "고객과 캠페인",
        "한눈에 보기",
        "고객 현황",
        "캠페인: 메일이 구매로 이어졌는가?",
        "캠페인: 테스트별 결과",
        "읽는 법",
        "표본이 작아 판단 불가",
        "지금 챙겨야 할 고객",
        "지금 챙겨야 할 고객: 예측",
        "이탈 위험 매출",
        "재구매 가능성이 높은 고객",
        "이 보고서에 대하여",
        "10쪽 중 1쪽",
        "10쪽 중 10쪽",
        "rapport 마케팅 보고서",
    ],
    "th": [
        "ลูกค้าและแคมเปญ",
        "สรุปภาพรวม",
        "ฐานลูกค้า",
        "แคมเปญ: อีเมลทำให้คนซื้อหรือไม่",
        "แคมเปญ: ผลการทดสอบแต่ละแคมเปญ",
        "วิธีอ่าน",
        "ยอดขายเพิ่มขึ้น",
        "ลูกค้าที่ควรดูแลตอนนี้",
        "ลูกค้าที่ควรดูแลตอนนี้: การคาดการณ์",
        "รายได้ที่เสี่ยงสูญเสีย",
        "ลูกค้าที่มีแนวโน้มจะซื้ออีก",
        "เกี่ยวกับรายงานนี้",
        "หน้า 1 จาก 10",
        "หน้า 10 จาก 10",
        "รายงานการตลาด rapport",
    ],
}
OWN_FONT = {"ko": "NanumGothic", "th": "NotoSansThai-Regular"}  # PostScript names in the PDF
CHINESE_FONT = "WenQuanYiMicroHei"

# Every text of every chart: its box, the chart's box, and which tick axis it labels (if any).
CHART_TEXT_JS = """
[...document.querySelectorAll('figure.chart svg')].flatMap(svg => {
  const box = svg.getBoundingClientRect();
  const chart = svg.parentElement.dataset.chart;
  return [...svg.querySelectorAll('text')].map(t => {
    const r = t.getBoundingClientRect();
    const tick = t.closest('g[id*="xtick"]') ? 'x' : t.closest('g[id*="ytick"]') ? 'y' : '';
    return {chart, tick, text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            inside: r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1
                    && r.bottom <= box.bottom + 1};
  });
})
"""
# Where Chromium broke lines inside Thai text, and whether each break is a word boundary by ICU's
# dictionary (Intl.Segmenter): breaks are found by the top of each grapheme moving down a line.
THAI_BREAKS_JS = """
(() => {
  const words = new Intl.Segmenter('th', {granularity: 'word'});
  const graphemes = new Intl.Segmenter('th', {granularity: 'grapheme'});
  const out = {breaks: 0, inside_words: []};
  for (const el of document.querySelectorAll(SELECTOR)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
      const text = node.data;
      if (!/[\\u0E01-\\u0E5B]/.test(text)) continue;
      const bounds = new Set([...words.segment(text)].map(s => s.index));
      const range = document.createRange();
      let top = null;
      for (const g of graphemes.segment(text)) {
        if (/^\\s+$/.test(g.segment)) { continue; }
        range.setStart(node, g.index);
        range.setEnd(node, g.index + g.segment.length);
        const rects = range.getClientRects();
        if (!rects.length) continue;
        if (top !== null && rects[0].top > top + 3) {
          out.breaks += 1;
          const before = text.slice(0, g.index);
          if (!bounds.has(g.index) && !/\\s$/.test(before)) {
            out.inside_words.push(before.slice(-8) + '|' + text.slice(g.index, g.index + 8));
          }
        }
        top = rects[0].top;
      }
    }
  }
  return out;
})()
"""


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory, intl) -> dict[str, SimpleNamespace]:
    base = tmp_path_factory.mktemp("i18n_browser")
    db = intl.build(base / "rapport.duckdb", migrations=intl.migrations, segment_history=True)
    out = {}
    for code in ("ko", "th"):
        paths = render_report(db, base / code, run_id="run_cur", as_of=intl.as_of, language=code)
        assert paths.pdf is not None
        out[code] = SimpleNamespace(html=paths.html, pdf=paths.pdf)
    return out


def _open(html: Path, width: int) -> tuple[list[dict], dict, str, bytes, list[str], dict, dict]:
    browser = harness.Browser()
    try:
        browser.open(html.as_uri(), width=width)
        texts = browser.evaluate(CHART_TEXT_JS)
        breaks = browser.evaluate(THAI_BREAKS_JS.replace("SELECTOR", "'td, th, li, p, dd, dt'"))
        lang = browser.evaluate("document.documentElement.lang")
        decisions = browser.evaluate(harness.DECISIONS_JS)
        predictions = browser.evaluate(harness.PREDICTIONS_JS)
        png = browser.screenshot()
        problems = browser.problems()
    finally:
        browser.close()
    return texts, breaks, lang, png, problems, decisions, predictions


def _overlaps(texts: list[dict]) -> list[tuple[str, str]]:
    out = []
    for axis in ("x", "y"):
        for chart in {t["chart"] for t in texts}:
            ticks = [t for t in texts if t["chart"] == chart and t["tick"] == axis and t["right"] > t["left"]]
            for i, a in enumerate(ticks):
                for b in ticks[i + 1 :]:
                    w = min(a["right"], b["right"]) - max(a["left"], b["left"])
                    h = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
                    if w > 1 and h > 1:
                        out.append((a["text"], b["text"]))
    return out


@pytest.mark.parametrize("code", ["ko", "th"])
def test_report_in_chromium_screenshot_and_chart_text_that_fits(printed, code: str) -> None:
    texts, breaks, lang, png, problems, decisions, predictions = _open(printed[code].html, width=1000)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"report-{code}.png").write_bytes(png)
    assert problems == []
    assert lang == code
    stddev, inked = harness.ink(png)
    assert stddev > 20 and inked > 0.05
    assert len({t["chart"] for t in texts}) == len(harness.EXPECTED_CHARTS)
    assert [t["text"] for t in texts if not t["inside"]] == []  # no label runs off its chart
    assert _overlaps(texts) == []  # tick labels do not run into each other
    # the campaign decisions: every row in the language, the longer sentences still fit the page
    assert len(decisions["rows"]) == 5 and decisions["too_wide"] == []
    assert all(visible for _, visible in decisions["flags"]) and len(decisions["flags"]) == 1
    # the predictions page: amounts in US$, both lists, nothing cut off in the longer words
    assert predictions["cards"] == ["4", "US$1,081", "US$480"]
    assert [len(rows) for rows in predictions["lists"]] == [1, 3] and predictions["too_wide"] == []
    if code == "th":
        assert breaks["breaks"] >= 10  # plenty of Thai wraps at this width...
        assert breaks["inside_words"] == []  # ...and every one between words


def test_the_line_break_check_sees_broken_thai_words(tmp_path: Path) -> None:
    """The check above can fail: with `word-break: break-all` Chromium splits Thai words."""
    page = tmp_path / "broken.html"
    text = "ลูกค้าที่ให้คะแนนความพึงพอใจว่าไม่ดีภายในหนึ่งร้อยแปดสิบวันที่ผ่านมา " * 3
    page.write_text(
        f'<html lang="th"><body><table><tr><td style="width:90px;word-break:break-all">{text}</td>'
        f"</tr></table></body></html>",
        encoding="utf-8",
    )
    browser = harness.Browser()
    try:
        browser.open(page.as_uri(), width=400)
        breaks = browser.evaluate(THAI_BREAKS_JS.replace("SELECTOR", "'td'"))
    finally:
        browser.close()
    assert breaks["inside_words"], breaks


def _pdffonts(pdf: Path) -> list[tuple[str, str, str]]:
    """(PostScript name without the subset tag, type, embedded)."""
    lines = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()
    rows = []
    for line in lines[2:]:
        m = re.match(r"(\S+)\s+(.+?)\s{2,}\S+\s+(yes|no)\s+(yes|no)\s+(yes|no)", line)
        assert m, line
        rows.append((m.group(1).split("+", 1)[-1], m.group(2), m.group(3)))
    return rows


def _covers(postscript_name: str, text: str) -> bool:
    """Whether the installed font of that PostScript name (what Chromium embedded) has every character."""
    from fontTools.ttLib import TTFont

    query = ["fc-match", "-f", "%{postscriptname}|%{file}|%{index}", f":postscriptname={postscript_name}"]
    found = subprocess.run(query, capture_output=True, text=True, check=True).stdout.split("|")
    assert found[0] == postscript_name, f"{postscript_name} is embedded but not installed here: {found}"
    with TTFont(found[1], fontNumber=int(found[2]), lazy=True) as font:
        chars = font.getBestCmap()
    return all(ord(ch) in chars for ch in text if not ch.isspace())


@pytest.mark.parametrize("code", ["ko", "th"])
def test_pdf_holds_the_translated_text_and_embeds_fonts_that_cover_it(printed, code: str) -> None:
    pdf = printed[code].pdf
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for heading in PRINTED[code]:
        assert heading in text, heading
    assert text.count("\f") == SECTIONS  # one page per section: a form feed after each page
    for name in ("박지훈", "สมศรี มีสุข", "陈静"):
        assert name in text, name
    fonts = _pdffonts(pdf)
    assert fonts and all(embedded == "yes" for _, _, embedded in fonts), fonts
    names = {name for name, _, _ in fonts}
    assert OWN_FONT[code] in names and CHINESE_FONT in names, names
    own_script = "".join(re.findall(r"[\uac00-\ud7a3\u0e01-\u0e5b]", "".join(PRINTED[code])))
    assert own_script and _covers(OWN_FONT[code], own_script)
    assert _covers(CHINESE_FONT, "陈静双十一大促")
    assert not _covers(OWN_FONT["th"], "고객")  # the check can fail: the Thai font has no Hangul
