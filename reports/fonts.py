"""The fonts the report names, per language, for the HTML (CSS font stacks) and the charts (matplotlib).

Customer names come in Latin, Hangul, Thai and Chinese script in every language's report, so every stack
covers all four; the language's own font comes first so its text looks native. All are Debian packages,
installed by scripts/install_chromium.sh:

- Noto Sans, Noto Sans Thai (fonts-noto-core); DejaVu Sans (fonts-dejavu-core) for symbols (▲ ▼ →);
- NanumGothic (fonts-nanum), the usual Korean sans, and WenQuanYi Micro Hei (fonts-wqy-microhei) for
  Chinese characters: both have TrueType outlines, which Chromium embeds in the PDF as named, subset fonts;
- Noto Sans CJK (fonts-noto-cjk) last, for the rare character the others lack. Its outlines are CFF, which
  Chromium's PDF writer can only embed as unnamed Type 3 glyph procedures (blurry in some viewers, text
  still extractable), so it is the fallback rather than the first choice.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from functools import cache
from pathlib import Path

log = logging.getLogger("rapport.reports")

LATIN, SYMBOLS, THAI = "Noto Sans", "DejaVu Sans", "Noto Sans Thai"
KOREAN, CHINESE = "NanumGothic", "WenQuanYi Micro Hei"
CJK_FALLBACK = ("Noto Sans CJK KR", "Noto Sans CJK SC")

FONT_STACKS: dict[str, tuple[str, ...]] = {
    # English keeps the font it always had first.
    "en": (SYMBOLS, LATIN, KOREAN, THAI, CHINESE, *CJK_FALLBACK),
    "ko": (KOREAN, LATIN, SYMBOLS, THAI, CHINESE, *CJK_FALLBACK),
    "th": (THAI, LATIN, SYMBOLS, KOREAN, CHINESE, *CJK_FALLBACK),
    # Names in Chinese characters (marked lang="zh"): Chinese glyph shapes, not the Korean ones.
    "zh": (CHINESE, "Noto Sans CJK SC", LATIN, SYMBOLS, KOREAN, THAI, "Noto Sans CJK KR"),
}


def font_stack(code: str) -> tuple[str, ...]:
    return FONT_STACKS.get(code, FONT_STACKS["en"])


def css_font_family(code: str) -> str:
    """A CSS font-family value: the stack, then the generic family as the browser's last resort."""
    return ", ".join(f'"{family}"' for family in font_stack(code)) + ", sans-serif"


@cache
def font_file(family: str) -> tuple[Path, int] | None:
    """The installed file (and face index, for .ttc collections) of a font family, from fontconfig; None
    when fontconfig is missing or has no such family (fc-match then answers with a substitute)."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        out = subprocess.run(
            [fc_match, "-f", "%{family}|%{file}|%{index}", family],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    families, _, rest = out.partition("|")
    path, _, index = rest.partition("|")
    if family not in families.split(",") or not path:
        return None
    return Path(path), int(index or 0)


@cache
def matplotlib_families(code: str) -> tuple[str, ...]:
    """The stack for chart text, registered with matplotlib when its font cache predates the fonts.

    matplotlib measures text with these fonts (so labels are laid out at their real width) and names the
    same list in the SVG, where the browser draws the text.
    """
    from matplotlib import font_manager

    families = font_stack(code)
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in families:
        if family in known:
            continue
        found = font_file(family)
        if found is None:
            log.warning(
                "font %r is not installed: chart labels may be laid out too narrow or too wide "
                "(run scripts/install_chromium.sh)",
                family,
            )
            continue
        font_manager.fontManager.addfont(str(found[0]))
        known = {f.name for f in font_manager.fontManager.ttflist}
    return families
