"""Glyph coverage of a rendered report: do the fonts it names (CSS stacks, the charts' SVG font lists, the
printed footer's font) have every character it shows? Fonts located with fontconfig, read with fontTools.
"""

from __future__ import annotations

import re
import shutil
from functools import cache

from report_text import Page, css_font_stacks, families

from rapport.reports.fonts import FONT_STACKS, font_file

ALL_FAMILIES = sorted({f for stack in FONT_STACKS.values() for f in stack})
# The report's fonts that are not installed (scripts/install_chromium.sh installs them).
MISSING = [f for f in ALL_FAMILIES if font_file(f) is None] if shutil.which("fc-match") else ["fontconfig"]


@cache
def cmap(family: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    found = font_file(family)
    assert found is not None, f"font {family!r} is named by the report but not installed"
    path, index = found
    with TTFont(str(path), fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap())


def uncovered(text: str, stack: list[str]) -> set[str]:
    """Characters of `text` that no font of the stack has (the browser would fall back past the stack)."""
    chars = {ch for ch in text if not ch.isspace() and ord(ch) >= 0x20}
    for family in stack:
        chars = {ch for ch in chars if ord(ch) not in cmap(family)}
        if not chars:
            break
    return chars


def footer_texts(css: str) -> list[str]:
    """The printed page's footer strings (CSS `content:` of the @page margin boxes)."""
    values = re.findall(r"content:\s*([^;]*);", css)
    return [s for value in values for s in re.findall(r'"((?:[^"\\]|\\.)*)"', value)]


def gaps(page: Page) -> list[tuple[str, str, list[str]]]:
    """(missing characters, the text, the stack it is drawn with) for every text the named fonts miss."""
    stacks = css_font_stacks(page.css)
    assert {"--sans", "--sans-zh"} <= set(stacks), stacks
    out = []
    for piece in page.pieces:
        if piece.in_svg and piece.font_family:
            stack = families(piece.font_family)
        elif piece.lang == "zh":
            stack = stacks["--sans-zh"]
        elif piece.tag == "code":
            stack = ["DejaVu Sans Mono", *stacks["--sans"]]
        else:
            stack = stacks["--sans"]
        missing = uncovered(piece.text, stack)
        if missing:
            out.append(("".join(sorted(missing)), piece.text, stack))
    for text in footer_texts(page.css):
        missing = uncovered(text, stacks["--sans"])
        if missing:
            out.append(("".join(sorted(missing)), text, stacks["--sans"]))
    return out
