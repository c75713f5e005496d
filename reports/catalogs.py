"""The report's message catalogs: extract the messages, merge them into each language's catalog, check them.

Babel's API with the mapping in reports/babel.cfg, so the result is what `pybabel extract` / `pybabel update`
give with the same options. For translators and developers (docs/report.md, "Languages"):

    python -m rapport.reports.catalogs update    # extract, write locale/messages.pot, merge into every .po
    python -m rapport.reports.catalogs check     # list untranslated, fuzzy or broken messages; exit 1 if any
    python -m rapport.reports.catalogs init xx   # start the catalog of a new language xx

New and changed messages arrive in each .po empty or marked fuzzy (Babel's guess from a similar message);
the report shows them in English until someone translates them and removes the fuzzy flag, and the tests
fail until then. Nothing is compiled to .mo: rapport.reports.i18n compiles the .po in memory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import write_po

from rapport.reports.i18n import DEFAULT_LANGUAGE, DOMAIN, LANGUAGES, LOCALE_DIR, catalog_path, load_catalog

REPORTS_DIR = Path(__file__).resolve().parent
MAPPING = REPORTS_DIR / "babel.cfg"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
COMMENT_TAGS = ("Translators:",)
PROJECT = "rapport marketer report"
AUTHORS = "the rapport authors"
BUGS = "the rapport issue tracker"
HEADER = (
    "# Messages of the PROJECT: the template each language's catalog is updated from.\n"
    "# Copyright (C) YEAR ORGANIZATION\n"
    "# Terms: reports/locale/GLOSSARY.md. Update with: python -m rapport.reports.catalogs update\n#"
)


def extract() -> Catalog:
    """Every message of the templates and the code, as `pybabel extract -F reports/babel.cfg` finds them."""
    with MAPPING.open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, str(MAPPING))
    catalog = Catalog(
        project=PROJECT,
        version="1",
        copyright_holder=AUTHORS,
        msgid_bugs_address=BUGS,
        header_comment=HEADER,
        fuzzy=False,
    )
    for filename, lineno, message, comments, context in extract_from_dir(
        REPORTS_DIR,
        method_map,
        options_map,
        keywords=DEFAULT_KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        # File names without line numbers: a moved line does not change every catalog.
        write_po(f, catalog, width=0, include_lineno=False, ignore_obsolete=True)


def update() -> list[Path]:
    """Write the template, then merge it into every translated language's catalog."""
    template = extract()
    _write(template, TEMPLATE)
    written = [TEMPLATE]
    for code in LANGUAGES:
        if code == DEFAULT_LANGUAGE:
            continue
        catalog = load_catalog(code)
        catalog.update(template)
        _write(catalog, catalog_path(code))
        written.append(catalog_path(code))
    return written


def init(code: str, locale: str) -> Path:
    """An empty catalog for a new language (add it to i18n.LANGUAGES too)."""
    catalog = Catalog(
        locale=Locale.parse(locale),
        project=PROJECT,
        version="1",
        copyright_holder=AUTHORS,
        msgid_bugs_address=BUGS,
        last_translator=AUTHORS,
        language_team=AUTHORS,
        fuzzy=False,
    )
    catalog.update(extract())
    _write(catalog, catalog_path(code))
    return catalog_path(code)


def _untranslated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return not strings or any(not s for s in strings)


def problems(code: str, template: Catalog | None = None, catalog: Catalog | None = None) -> list[str]:
    """What keeps a language's catalog (the committed one unless given) from translating the whole report:
    messages the code uses that it lacks, leaves empty (any plural form) or marks fuzzy, and translations
    whose placeholders do not match (Babel's checkers)."""
    template = template if template is not None else extract()
    catalog = catalog if catalog is not None else load_catalog(code)
    found = []
    for message in template:
        if not message.id:
            continue
        ours = catalog.get(message.id, message.context)
        where = ", ".join(f for f, _ in message.locations)
        label = f"{message.id!r} ({where})"
        if ours is None:
            found.append(f"missing: {label}")
        elif ours.fuzzy:
            found.append(f"fuzzy (needs review): {label}")
        elif _untranslated(ours):
            found.append(f"untranslated: {label}")
        elif ours.pluralizable and len(ours.string) != catalog.num_plurals:
            found.append(f"needs {catalog.num_plurals} plural form(s): {label}")
    for message, errors in catalog.check():
        found += [f"broken: {message.id!r}: {error}" for error in errors]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rapport.reports.catalogs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("update", help="extract the messages and merge them into every language's catalog")
    sub.add_parser("check", help="list messages each language still lacks; exit 1 if any")
    new = sub.add_parser("init", help="start the catalog of a new language")
    new.add_argument("code", help="language code, e.g. ja")
    new.add_argument("--locale", help="CLDR locale of numbers and dates (default: the code)")
    args = parser.parse_args(argv)
    if args.command == "update":
        for path in update():
            print(f"wrote {path}")
        return 0
    if args.command == "init":
        print(f"wrote {init(args.code, args.locale or args.code)}; add {args.code!r} to LANGUAGES in reports/i18n.py")
        return 0
    template = extract()
    bad = 0
    for code in LANGUAGES:
        if code == DEFAULT_LANGUAGE:
            continue
        found = problems(code, template)
        bad += len(found)
        print(f"{code}: {len(template) - len(found)} of {len(template)} messages translated")
        for line in found:
            print(f"  {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
