"""The report's languages: gettext message catalogs managed with Babel, and the locale of numbers and dates.

English is the source language: the messages in the templates and the code are the English text, so English
needs no catalog. Every other language has `locale/<code>/LC_MESSAGES/messages.po` (committed). The `.po`
file is compiled in memory on first use (Babel's `read_po` + `write_mo`, a few milliseconds), so there is no
`.mo` file to build, ship or forget to rebuild: a fresh clone works as it is.

Every message is a Python format string, in templates (Jinja's new-style gettext) and in code alike:
placeholders are `%(name)s` and a literal percent sign is `%%`.

Adding a language: add it to `LANGUAGES`, create its catalog (docs/report.md, "Languages").
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup, escape

from rapport.core import config

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
SETTING = "RAPPORT_REPORT_LANGUAGE"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class LanguageSpec:
    code: str
    locale: str  # CLDR locale of numbers and dates
    # Amounts of ten thousand and more as "$12.3K". Only where the locale's compact form reads naturally:
    # Korean's counts in units of 10,000 (만) and Thai's Latin K/M would not; those show whole amounts.
    compact_money: bool


LANGUAGES: dict[str, LanguageSpec] = {
    "en": LanguageSpec("en", "en", compact_money=True),
    "ko": LanguageSpec("ko", "ko_KR", compact_money=False),
    "th": LanguageSpec("th", "th_TH", compact_money=False),
}


# The setting is validated where settings are read (rapport.core.config, which knows no Babel).
# (tests/reports/test_i18n_catalogs.py checks that both name the same languages)
check_language = config.check_language


def catalog_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_catalog(code: str) -> Catalog:
    """The committed catalog of a translated language, as Babel reads it."""
    path = catalog_path(code)
    if not path.is_file():
        raise FileNotFoundError(
            f"the message catalog of report language {code!r} is missing: {path} "
            "(see docs/report.md, 'Languages', for how catalogs are made)"
        )
    with path.open("rb") as f:
        return read_po(f, locale=LANGUAGES[code].locale, domain=DOMAIN)


def compile_catalog(catalog: Catalog) -> gettext.GNUTranslations:
    """Compile in memory, as `pybabel compile` would; fuzzy entries are left out (they need review)."""
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@dataclass(frozen=True)
class Language:
    """One report language: its translations and its Babel locale. Get one with `language(code)`."""

    code: str
    locale: Locale
    translations: gettext.NullTranslations
    compact_money: bool

    def gettext(self, message: str, **values: Any) -> str:
        return _format(self.translations.gettext(message), values)

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        """`num` is `n`, as in Jinja's ngettext; pass a formatted count under another name."""
        return _format(self.translations.ngettext(singular, plural, n), {"num": n, **values})

    def pgettext(self, context: str, message: str, **values: Any) -> str:
        return _format(self.translations.pgettext(context, message), values)


def _format(text: str, values: dict[str, Any]) -> str:
    """With a Markup value (a name wrapped in markup), the whole sentence becomes Markup: the message is
    escaped and every plain value too, as Jinja's autoescape would."""
    if any(isinstance(v, Markup) for v in values.values()):
        return Markup(escape(text)) % values
    return text % values


@cache
def language(code: str = DEFAULT_LANGUAGE) -> Language:
    code = check_language(code)
    spec = LANGUAGES[code]
    translations: gettext.NullTranslations = (
        gettext.NullTranslations() if code == DEFAULT_LANGUAGE else compile_catalog(load_catalog(code))
    )
    return Language(code, Locale.parse(spec.locale), translations, spec.compact_money)


def N_(message: str) -> str:  # noqa: N802  (gettext's conventional name)
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message
