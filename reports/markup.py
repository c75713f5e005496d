"""Template filters that make markup around text: segment names, data values' script, paths, CSS strings."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from markupsafe import Markup, escape

from rapport.reports.formatting import Formats
from rapport.reports.glossary import segment_name
from rapport.reports.migrations import GONE, NEW


def script_lang(text: Any) -> str:
    """The language a name's script implies, for `lang=` on data values: Hangul -> ko, Thai -> th, Chinese
    characters (without kana or Hangul) -> zh, else "" (unknown). Browsers pick glyph shapes and line
    breaks by it: 王 drawn in a Chinese font in a Korean report, Thai names broken between words."""
    scripts = set()
    for ch in str(text or ""):
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("HANGUL"):
            scripts.add("ko")
        elif name.startswith("THAI"):
            scripts.add("th")
        elif name.startswith(("HIRAGANA", "KATAKANA")):
            scripts.add("ja")
        elif name.startswith("CJK"):
            scripts.add("han")
    if "ko" in scripts:
        return "ko"
    if "ja" in scripts:
        return "ja"
    if "han" in scripts:
        return "zh"
    return "th" if "th" in scripts else ""


def lang_attr(text: Any) -> Markup:
    """` lang="…"` for a data value whose script says its language, else nothing."""
    code = script_lang(text)
    return Markup(' lang="{}"').format(code) if code else Markup("")


def path_breaks(path: Any) -> Markup:
    """A file path that may wrap after each separator only, never inside a (perhaps Thai) name."""
    return Markup("/<wbr>").join(escape(part) for part in str(path).split("/"))


def css_string(text: str) -> Markup:
    """A quoted CSS string (inside <style>, where HTML escaping does not apply)."""
    body = re.sub(r'[\\"\n<>]', lambda m: f"\\{ord(m.group(0)):x} ", text)
    return Markup(f'"{body}"')


def template_helpers(fmt: Formats) -> dict[str, Any]:
    lang = fmt.lang

    def segment(name: Any) -> str:
        if name == NEW:
            return lang.gettext("(new)")
        if name == GONE:
            return lang.gettext("(gone)")
        return segment_name(lang, str(name))

    def segment_with_english(name: Any) -> Markup:
        """Where segments are introduced: the translated name with the English one beside it, since the
        English names are what marketers search for."""
        shown = segment(name)
        if shown == name:
            return escape(shown)
        return Markup('{} <span class="en" lang="en" translate="no">({})</span>').format(shown, name)

    return {
        "segment": segment,
        "segment_en": segment_with_english,
        "lang_attr": lang_attr,
        "path_breaks": path_breaks,
    }


def page_margins_css(fmt: Formats, font_family: str) -> Markup:
    """The printed page's footer (CSS margin boxes): the report's name and "page N of M", translated."""
    lang = fmt.lang
    marker = "\x00"
    counter = lang.gettext("page %(page)s of %(pages)s", page=f"{marker}page{marker}", pages=f"{marker}pages{marker}")
    parts = []
    for i, part in enumerate(counter.split(marker)):
        if i % 2:
            parts.append(f"counter({part})")
        elif part:
            parts.append(str(css_string(part)))
    title = css_string(lang.gettext("rapport marketer report"))
    font = f"font: 9px {font_family}; color: #5d6470;"
    return Markup(
        "@page {\n"
        f"  @bottom-right {{ content: {' '.join(parts)}; {font} }}\n"
        f"  @bottom-left {{ content: {title}; {font} }}\n"
        "}"
    )
