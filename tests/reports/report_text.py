"""What a reader of a rendered report sees: its text pieces, where each sits, and which are data values.

Shared by the translation tests (no English left), the font tests (every character covered) and the demo
test. Imported by module name (tests/reports is on sys.path for its test files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

VOID = {"meta", "br", "wbr", "img", "input", "link", "hr", "source", "path", "rect", "use", "circle", "line"}
# Latin-script words a Korean or Thai report keeps on purpose (see reports/locale/GLOSSARY.md).
KEPT_LATIN = {"USD", "ROI", "RFM", "UTC"}
MASKED_EMAIL = re.compile(r"\S\*\*\*@[\w.-]+")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class Piece:
    text: str
    tag: str  # the element it is in ("@title", "@aria-label" for attributes)
    in_svg: bool
    data: bool  # inside an element marked as a data value (translate="no", class "name", lang="en")
    lang: str  # the nearest lang="…"
    font_family: str | None  # the nearest inline font-family (SVG text), if any


def _is_data(attrs: dict[str, str]) -> bool:
    """translate="no" (data values), class "name" (customer and campaign names), and the English segment
    names kept beside the translated ones (<span class="en" lang="en">)."""
    classes = attrs.get("class", "").split()
    return attrs.get("translate") == "no" or "name" in classes or ("en" in classes and attrs.get("lang") == "en")


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str], list[str] | None]] = []
        self.pieces: list[Piece] = []
        self.data_values: list[str] = []  # the whole text of each element marked as data
        self.css: list[str] = []

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attr_list}
        for name in ("title", "aria-label"):
            if name in attrs:
                self._add(attrs[name], f"@{name}", data=_is_data(attrs), attrs=attrs)
                if _is_data(attrs):
                    self.data_values.append(attrs[name].strip())
        if tag not in VOID:
            self.stack.append((tag, attrs, [] if _is_data(attrs) else None))

    def handle_startendtag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        """`<path ... />`: attributes only, nothing opened."""
        attrs = {k: v or "" for k, v in attr_list}
        for name in ("title", "aria-label"):
            if name in attrs:
                self._add(attrs[name], f"@{name}", data=_is_data(attrs), attrs=attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in (t for t, _, _ in self.stack):
            return
        while self.stack:
            open_tag, _, buffer = self.stack.pop()
            if buffer is not None:
                self.data_values.append(re.sub(r"\s+", " ", "".join(buffer)).strip())
            if open_tag == tag:
                break

    def _add(self, text: str, tag: str, data: bool = False, attrs: dict[str, str] | None = None) -> None:
        if not text.strip():
            return
        chain = [a for _, a, _ in self.stack] + ([attrs] if attrs else [])
        lang = next((a["lang"] for a in reversed(chain) if "lang" in a), "")
        style = next((a["style"] for a in reversed(chain) if "font-family" in a.get("style", "")), "")
        family = re.search(r"font-family:\s*([^;]+)", style)
        in_data = data or any(buffer is not None for _, _, buffer in self.stack)
        for _, _, buffer in self.stack:
            if buffer is not None:
                buffer.append(text)
        self.pieces.append(
            Piece(
                text.strip(),
                tag,
                any(t == "svg" for t, _, _ in self.stack),
                in_data,
                lang,
                family.group(1).strip() if family else None,
            )
        )

    def handle_data(self, data: str) -> None:
        tag = self.stack[-1][0] if self.stack else ""
        if tag == "style":
            self.css.append(data)
        elif tag != "script":
            self._add(data, tag)


@dataclass(frozen=True)
class Page:
    pieces: list[Piece]
    data_values: list[str]
    css: str
    html_lang: str


def parse(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    lang = re.search(r'<html lang="([^"]*)"', html)
    return Page(parser.pieces, parser.data_values, "\n".join(parser.css), lang.group(1) if lang else "")


def untranslated_words(page: Page, data_in_charts: set[str]) -> list[tuple[str, str]]:
    """Latin-script words outside data values, masked addresses and the kept terms: (word, context).

    `data_in_charts`: chart labels that are data (campaign names as the charts print them), since
    matplotlib's SVG cannot carry translate="no".
    """
    found = []
    for piece in page.pieces:
        if piece.data or (piece.in_svg and piece.text in data_in_charts):
            continue
        text = MASKED_EMAIL.sub(" ", piece.text).replace("US$", " ")
        found += [(w, piece.text) for w in LATIN_WORD.findall(text) if w not in KEPT_LATIN]
    return found


def css_font_stacks(css: str) -> dict[str, list[str]]:
    """The custom properties holding font stacks (`--sans`, `--sans-zh`), as lists of family names."""
    stacks = {}
    for name, value in re.findall(r"(--sans(?:-\w+)?):\s*([^;]+);", css):
        stacks[name] = families(value)
    return stacks


def families(value: str) -> list[str]:
    """Family names of a CSS font-family value, generic families left out."""
    out = []
    for part in value.split(","):
        name = part.strip().strip("'\"")
        if name and name not in ("sans-serif", "serif", "monospace") and not name.startswith("var("):
            out.append(name)
    return out


def chart_labels(names: list[str]) -> set[str]:
    """How charts may print data names: whole, cut short with "…", or with a date or id in brackets."""
    return {n for n in names} | {n[:k] + "…" for n in names for k in range(4, len(n))}


def in_charts(page: Page, names: list[str]) -> set[str]:
    """The chart texts that are data names (for `untranslated_words`)."""
    labels = chart_labels(names)
    return {p.text for p in page.pieces if p.in_svg and re.sub(r" \([^)]*\)$", "", p.text) in labels}
