#!/usr/bin/env bash
# Install Debian's Chromium for the marketer report's PDF (headless print-to-PDF) and its end-to-end
# test (screenshot), plus two small fonts so customer names in Korean, Chinese and Thai do not print as
# empty boxes (fonts-wqy-microhei ~5 MB covers Hangul and CJK ideographs, fonts-tlwg-loma-ttf covers Thai).
# Idempotent: installs only what is missing (no apt-get at all when everything is there).
# Prints the path of the chromium binary on stdout; progress goes to stderr. Exit 1 when it cannot install.
set -euo pipefail

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

has_font_for() {  # $1: fontconfig language tag
    command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list ":lang=$1" family 2>/dev/null | head -n 1)" ]
}

missing=()
[ -n "$(find_chromium)" ] || missing+=(chromium)
# Checked after chromium is known: a missing fc-list (no fontconfig yet) means fonts are missing too.
{ has_font_for ko && has_font_for zh-cn; } || missing+=(fonts-wqy-microhei)
has_font_for th || missing+=(fonts-tlwg-loma-ttf)

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
