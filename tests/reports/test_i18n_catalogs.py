"""The message catalogs: complete, up to date with the code, well-formed, and true to the glossary."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from babel.dates import format_date, format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from rapport.reports.catalogs import TEMPLATE, extract, problems
from rapport.reports.i18n import LANGUAGES, catalog_path, check_language, compile_catalog, language, load_catalog

TRANSLATED = [code for code in LANGUAGES if code != "en"]
GLOSSARY = Path(catalog_path("ko")).parents[2] / "GLOSSARY.md"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TAG = re.compile(r"</?(\w+)[^>]*>")
# Latin-script words a translation may keep (reports/locale/GLOSSARY.md, "What stays as it is").
KEPT = {"USD", "ROI", "RFM", "UTC", "US", "rapport", "marts", "segment_migrations", "customer_predictions"}
MASKED_EMAIL = re.compile(r"\S\*\*\*@[\w.-]+")


@pytest.fixture(scope="module")
def template() -> Catalog:
    return extract()


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {code: load_catalog(code) for code in TRANSLATED}


def _messages(catalog: Catalog, template: Catalog):
    wanted = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in template if m.id}
    for m in catalog:
        key = (m.context, m.id if isinstance(m.id, str) else m.id[0])
        if m.id and key in wanted:
            yield m


def _forms(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_is_translated(code: str, template: Catalog) -> None:
    """Nothing the code or templates say is missing, empty (any plural form), fuzzy or broken."""
    assert problems(code, template) == []


def test_the_check_finds_what_is_missing(template: Catalog) -> None:
    broken = load_catalog("ko")
    ids = [m.id for m in broken if m.id and isinstance(m.id, str) and not m.context]
    broken.get(ids[0]).string = ""
    broken.get(ids[1]).flags.add("fuzzy")
    broken.delete(ids[2])
    broken.get("sent %(date)s").string = "%(datum)s 발송"
    found = "\n".join(problems("ko", template, broken))
    assert f"untranslated: {ids[0]!r}" in found
    assert f"fuzzy (needs review): {ids[1]!r}" in found
    assert f"missing: {ids[2]!r}" in found
    assert "broken: 'sent %(date)s'" in found


def test_the_committed_template_lists_every_message(template: Catalog) -> None:
    """messages.pot is what translators work from: regenerated whenever a message changes."""
    with TEMPLATE.open("rb") as f:
        committed = read_po(f)
    keys = {(m.context, m.id) for m in template if m.id}
    assert {(m.context, m.id) for m in committed if m.id} == keys, (
        "reports/locale/messages.pot is out of date: run python -m rapport.reports.catalogs update"
    )


@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_keep_placeholders_markup_and_percent_signs(
    code: str, template: Catalog, catalogs: dict[str, Catalog]
) -> None:
    for m in _messages(catalogs[code], template):
        source = m.id[-1] if isinstance(m.id, tuple | list) else m.id  # the form used for "many"
        names = set(PLACEHOLDER.findall(source))
        source_tags = Counter(t for t in TAG.findall(source) if t != "br")
        for text in _forms(m):
            assert set(PLACEHOLDER.findall(text)) == names, (m.id, text)
            assert text % dict.fromkeys(names, "x") is not None  # a lone % would raise here
            assert Counter(t for t in TAG.findall(text) if t != "br") == source_tags, (m.id, text)


@pytest.mark.parametrize("code", TRANSLATED)
def test_no_english_left_in_the_translations(code: str, template: Catalog, catalogs: dict[str, Catalog]) -> None:
    for m in _messages(catalogs[code], template):
        if m.context == "date pattern":  # CLDR pattern letters, checked below
            continue
        for text in _forms(m):
            prose = MASKED_EMAIL.sub("", TAG.sub("", PLACEHOLDER.sub("", text)))
            words = set(re.findall(r"[A-Za-z_]{2,}", prose)) - KEPT
            assert not words, (m.id, text)


@pytest.mark.parametrize("code", TRANSLATED)
def test_plural_forms_are_the_languages_own(code: str) -> None:
    """Korean and Thai have one plural form (CLDR); the catalog header must say so for gettext."""
    number, expression = get_plural(LANGUAGES[code].locale)
    header = catalog_path(code).read_text(encoding="utf-8")
    assert f'"Plural-Forms: nplurals={number}; plural={expression};\\n"' in header
    assert number == 1


def test_date_patterns_are_the_locales_usual_forms() -> None:
    """The catalogs' date patterns give what CLDR gives for the locale's long and medium dates."""
    d = date(2025, 6, 30)
    from rapport.reports.formatting import formats

    for code in TRANSLATED:
        fmt = formats(code)
        locale = LANGUAGES[code].locale
        assert fmt.longdate(d) == format_date(d, "long", locale=locale)
        assert fmt.shortdate(d) == format_date(d, "medium", locale=locale)
        assert fmt.daymonth(d) == format_skeleton("MMMd", d, locale=locale)
    assert formats("ko").longdate(d) == "2025년 6월 30일"
    assert formats("th").longdate(d) == "30 มิถุนายน ค.ศ. 2025"
    assert formats("en").longdate(d) == "30 June 2025"  # as before the report had languages
    stamp = datetime(2025, 5, 31, 1, 5)
    assert [formats(c).stamp(stamp) for c in ("en", "ko", "th")] == [
        "2025-05-31 01:05",
        "2025. 5. 31. 01:05",
        "31 พ.ค. 2025 01:05",
    ]


def _glossary_tables() -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = {}
    section = ""
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] != "English":
                tables.setdefault(section, []).append(cells)
    return tables


def test_segment_and_stage_names_are_the_glossarys() -> None:
    tables = _glossary_tables()
    rows = tables["RFM segments"] + tables["Lifecycle stages"]
    assert len(tables["RFM segments"]) == 11 and len(tables["Lifecycle stages"]) == 6
    for english, korean, thai, *_ in rows:
        assert language("ko").gettext(english) == korean, english
        assert language("th").gettext(english) == thai, english


def test_checked_terms_are_used_consistently(template: Catalog, catalogs: dict[str, Catalog]) -> None:
    rows = [r for r in _glossary_tables()["Terms"] if r[3] == "yes"]
    assert len(rows) >= 6
    checked = 0
    misses = []
    for english, korean, thai, _, _ in rows:
        variants = [v.strip() for v in english.split(",")]
        pattern = re.compile(r"\b(" + "|".join(re.escape(v) for v in variants) + r")\b", re.IGNORECASE)
        for code, term in (("ko", korean), ("th", thai)):
            for m in _messages(catalogs[code], template):
                source = " ".join(m.id) if isinstance(m.id, tuple | list) else m.id
                if pattern.search(PLACEHOLDER.sub("", source).replace("%%", "%")):
                    checked += 1
                    for text in _forms(m):
                        if term not in text.replace("%%", "%"):
                            misses.append((code, english, m.id, text))
    assert misses == []
    assert checked > 100


def test_fuzzy_translations_are_not_used() -> None:
    """A fuzzy entry (Babel's guess after a message changed) shows the English until someone reviews it."""
    catalog = Catalog(locale="ko_KR")
    catalog.add("Revenue", "매출")
    catalog.add("Customers", "고객 수", flags=["fuzzy"])
    translations = compile_catalog(catalog)
    assert translations.gettext("Revenue") == "매출"
    assert translations.gettext("Customers") == "Customers"


def test_unknown_language_is_refused_with_the_setting_and_the_choices() -> None:
    assert check_language(" TH ") == "th"
    assert check_language(None) == check_language("") == "en"
    with pytest.raises(ValueError, match=r"RAPPORT_REPORT_LANGUAGE='fr' .* use one of en, ko, th"):
        check_language("fr")


def test_the_setting_accepts_exactly_the_languages_with_catalogs():
    from rapport.core.config import REPORT_LANGUAGES

    assert tuple(LANGUAGES) == REPORT_LANGUAGES
