"""The rendered Korean and Thai reports (no browser): all text translated, data left as it is, numbers,
dates and amounts in the locale's way, the segment names' English beside them once, line breaking."""

from __future__ import annotations

import re
from datetime import date

import pytest
from babel.dates import format_date
from markupsafe import Markup
from report_text import MASKED_EMAIL, in_charts, parse, untranslated_words

from rapport.reports.glossary import SEGMENT_NAMES
from rapport.reports.i18n import language
from rapport.reports.render import render_report

LOCALES = {"ko": "ko_KR", "th": "th_TH"}
# Hand-written: what a reader of each report must see (reports/locale/GLOSSARY.md).
HEADINGS = {
    "ko": [
        "고객과 캠페인",
        "고객 현황",
        "고객 현황: 생애주기와 이동",
        "캠페인",
        "캠페인: 메일이 구매로 이어졌는가?",
        "캠페인: 테스트별 결과",
        "캠페인: 어떤 세그먼트가 반응했나",
        "지금 챙겨야 할 고객",
        "지금 챙겨야 할 고객: 예측",
        "오디언스 파일",
        "이 보고서에 대하여",
    ],
    "th": [
        "ลูกค้าและแคมเปญ",
        "ฐานลูกค้า",
        "ฐานลูกค้า: ช่วงวงจรชีวิตและการย้ายกลุ่ม",
        "แคมเปญ",
        "แคมเปญ: อีเมลทำให้คนซื้อหรือไม่",
        "แคมเปญ: ผลการทดสอบแต่ละแคมเปญ",
        "แคมเปญ: กลุ่มลูกค้าใดตอบสนอง",
        "ลูกค้าที่ควรดูแลตอนนี้",
        "ลูกค้าที่ควรดูแลตอนนี้: การคาดการณ์",
        "ไฟล์รายชื่อกลุ่มเป้าหมาย",
        "เกี่ยวกับรายงานนี้",
    ],
}


@pytest.mark.parametrize("code", ["ko", "th"])
def test_no_english_left(intl_reports, intl, code: str) -> None:
    page = parse(intl_reports[code].html)
    assert page.html_lang == code
    assert untranslated_words(page, in_charts(page, intl.campaign_names)) == []
    headings = [p.text for p in page.pieces if p.tag in ("h1", "h2")]
    assert (
        headings
        == HEADINGS[code][:1]
        + ["한눈에 보기" if code == "ko" else "สรุปภาพรวม", "주요 지표" if code == "ko" else "ตัวเลขสำคัญ"]
        + HEADINGS[code][1:]
    )


def test_the_scan_finds_english(intl_reports, intl) -> None:
    """The check above can fail: on the English report it finds the English."""
    page = parse(intl_reports["en"].html)
    assert page.html_lang == "en"
    words = {w for w, _ in untranslated_words(page, in_charts(page, intl.campaign_names))}
    assert {"Customers", "campaigns", "Lift", "segment", "revenue"} <= words


@pytest.mark.parametrize("code", ["ko", "th"])
def test_what_is_left_as_data_is_data(intl_reports, intl, code: str) -> None:
    """Everything marked as a data value (skipped by the scan) is a name, address, code, path or the English
    name of a segment: no sentence hides behind translate="no"."""
    page = parse(intl_reports[code].html)
    people = {p[1] for p in intl.people} | {p[3] for p in intl.people}
    segments = {f"({s})" for s in SEGMENT_NAMES}
    other = {
        "rapport",
        "marts.segment_migrations",
        "run_cur",
        "run_prev",
        "champions.csv",
        "at_risk.csv",
        "docs/predictions.md",
    }
    for value in page.data_values:
        assert (
            value in people
            or value in intl.campaign_names
            or value in segments
            or value in other
            or MASKED_EMAIL.fullmatch(value)
            or value.endswith(("audiences", ".csv"))
        ), value


@pytest.mark.parametrize("code", ["ko", "th"])
def test_segment_names_translated_with_the_english_once(intl_reports, code: str) -> None:
    html = intl_reports[code].html
    lang = language(code)
    for english in ("Champions", "Cannot Lose Them", "At Risk", "Hibernating", "No Purchases"):
        beside = f'{lang.gettext(english)} <span class="en" lang="en" translate="no">({english})</span>'
        assert html.count(beside) == 1, english
        assert html.count(f"({english})") == 1, english
    # elsewhere (charts, lists, flows) the translated name alone
    assert html.count(lang.gettext("Cannot Lose Them")) >= 4


@pytest.mark.parametrize("code", ["ko", "th"])
def test_amounts_stay_dollars_while_numbers_and_dates_follow_the_locale(intl_reports, code: str) -> None:
    html = intl_reports[code].html
    locale = LOCALES[code]
    assert format_date(date(2025, 6, 30), "long", locale=locale) in html
    assert "US$8,600" in html and "US$2,000" in html and "US$50.00" in html
    for other in ("₩", "฿", "KRW", "THB", "บาท"):
        assert other not in html
    assert not re.search(r"\d\s*원", html)
    assert ("+3.3%p" if code == "ko" else "+3.3 จุด") in html  # lift in percentage points
    assert ("2.1시간" if code == "ko" else "2.1 ชม.") in html  # support resolution time
    assert "$8,600" in intl_reports["en"].html and "US$" not in intl_reports["en"].html


@pytest.mark.parametrize("code", ["ko", "th"])
def test_line_breaking_never_splits_words(intl_reports, code: str) -> None:
    """Thai has no spaces: Chromium breaks it by dictionary unless CSS forces breaks anywhere. Korean
    breaks between words (keep-all). Names carry the language of their script."""
    page = parse(intl_reports[code].html)
    css = re.sub(r"/\*.*?\*/", "", page.css, flags=re.S)
    for forced in ("break-all", "anywhere", "line-break: loose"):
        assert forced not in css
    assert re.search(r":lang\(ko\)\s*\{[^}]*word-break:\s*keep-all", css)
    html = intl_reports[code].html
    assert '<td class="name" translate="no" lang="th">สมศรี มีสุข</td>' in html
    assert '<td class="name" translate="no" lang="ko">박지훈</td>' in html
    assert '<td class="name" translate="no" lang="zh">陈静</td>' in html
    assert '<span class="name" translate="no" lang="zh">双十一大促</span>' in html
    assert '<span class="name" translate="no" lang="ko">봄맞이 세일</span>' in html


def test_charts_name_the_languages_fonts(intl_reports) -> None:
    first = {"ko": "'NanumGothic'", "th": "'Noto Sans Thai'", "en": "'DejaVu Sans'"}
    for code, family in first.items():
        stacks = set(re.findall(r"font-family: ([^;\"]+)", intl_reports[code].html.split("</style>", 1)[1]))
        assert stacks and all(s.startswith(family) for s in stacks), stacks


def test_names_in_translated_sentences_stay_escaped(make_published_db, tmp_path, facts) -> None:
    """A highlight naming a campaign: the name is data (translate="no") and still escaped."""
    worked = [(c[0], facts.hostile_campaign if c[0] == "cmp_spring" else c[1], *c[2:]) for c in facts.campaigns]
    paths = render_report(
        make_published_db(campaigns=worked), tmp_path, run_id="run_cur", as_of=facts.as_of, pdf=False, language="th"
    )
    html = paths.html.read_text(encoding="utf-8")
    assert "<script" not in html
    assert '“<span class="name" translate="no">&lt;script&gt;alert(1)&lt;/script&gt; &amp; =HYPERLINK' in html
    markup = language("ko").gettext("“%(name)s” 100%%", name=Markup("<b>{}</b>").format("<i>"))
    assert markup == "“<b>&lt;i&gt;</b>” 100%"


def test_unknown_language_is_refused(published_db, tmp_path) -> None:
    with pytest.raises(ValueError, match="language='fr' is not a report language; use one of en, ko, th"):
        render_report(published_db, tmp_path, run_id="r", as_of=date(2025, 6, 30), pdf=False, language="fr")
