#!/usr/bin/env bash
# Install what the marketer report needs to print and to be checked, from Debian's packages:
#   chromium            the PDF (headless print-to-PDF) and the end-to-end tests (screenshots)
#   fonts the report names (reports/fonts.py), so Korean, Thai and Chinese text never prints as boxes:
#     fonts-noto-core     Noto Sans, Noto Sans Thai (TrueType: embedded in the PDF by name)
#     fonts-nanum         NanumGothic, the report's Korean font (TrueType)
#     fonts-wqy-microhei  WenQuanYi Micro Hei for Chinese characters (TrueType)
#     fonts-noto-cjk      Noto Sans CJK, the fallback for rarer characters (CFF outlines, which Chromium can
#                         only embed as unnamed Type 3 fonts, hence not the first choice)
#     fonts-dejavu-core   DejaVu Sans, for symbols (▲ ▼ →) and the English report
#   poppler-utils       pdftotext and pdffonts, which the tests read the PDFs with
# Idempotent: installs only what is missing (no apt-get at all when everything is there).
# Prints the path of the chromium binary on stdout; progress goes to stderr. Exit 1 when it cannot install.
set -euo pipefail

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

has_font() {  # $1: font family name as fontconfig knows it
    command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list ":family=$1" family 2>/dev/null | head -n 1)" ]
}

missing=()
[ -n "$(find_chromium)" ] || missing+=(chromium)
# Checked after chromium is known: a missing fc-list (no fontconfig yet) means fonts are missing too.
{ has_font "Noto Sans" && has_font "Noto Sans Thai"; } || missing+=(fonts-noto-core)
has_font "NanumGothic" || missing+=(fonts-nanum)
has_font "WenQuanYi Micro Hei" || missing+=(fonts-wqy-microhei)
has_font "Noto Sans CJK KR" || missing+=(fonts-noto-cjk)
has_font "DejaVu Sans" || missing+=(fonts-dejavu-core)
{ command -v pdftotext >/dev/null 2>&1 && command -v pdffonts >/dev/null 2>&1; } || missing+=(poppler-utils)

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_chromium.sh: missing ${missing[*]} and apt-get is not available; install them yourself" >&2
        [ -n "$(find_chromium)" ] || exit 1
    else
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then
            if command -v sudo >/dev/null 2>&1; then
                SUDO="sudo"
            else
                echo "install_chromium.sh: missing ${missing[*]}; not root and no sudo (run as root)" >&2
                [ -n "$(find_chromium)" ] || exit 1
            fi
        fi
        if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
            echo "install_chromium.sh: installing ${missing[*]} with apt-get" >&2
            # The package index may be stale or absent in a fresh container: refresh it first.
            $SUDO apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >&2
        fi
    fi
fi

path=$(find_chromium)
if [ -z "$path" ]; then
    echo "install_chromium.sh: chromium is still not on PATH" >&2
    exit 1
fi
echo "$path"
