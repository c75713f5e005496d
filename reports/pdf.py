"""PDF through headless Chromium's print-to-PDF (Debian's `chromium`; scripts/install_chromium.sh).

The browser runs with a throw-away profile and every background network feature off, so printing a
report never reaches the network. `RAPPORT_CHROMIUM` may name the binary; otherwise `chromium` (or
`chromium-browser`, `google-chrome`) is looked up on PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rapport.reports.files import copy_atomic

log = logging.getLogger("rapport.reports")

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 120
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


class ChromiumUnavailable(RuntimeError):
    pass


def find_chromium() -> str | None:
    explicit = os.environ.get("RAPPORT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() and os.access(explicit, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(binary: str, profile_dir: Path, *extra: str) -> list[str]:
    return [binary, *HEADLESS_FLAGS, f"--user-data-dir={profile_dir}", *extra]


def print_to_pdf(html: Path, pdf: Path, *, timeout_s: float = PRINT_TIMEOUT_S) -> None:
    """Print `html` to `pdf` (replaced only when printing succeeded). Raises ChromiumUnavailable."""
    binary = find_chromium()
    if binary is None:
        raise ChromiumUnavailable(
            "Chromium was not found (looked for RAPPORT_CHROMIUM, then "
            + ", ".join(CANDIDATES)
            + " on PATH); run scripts/install_chromium.sh"
        )
    with tempfile.TemporaryDirectory(prefix="rapport-chromium-", ignore_cleanup_errors=True) as tmp:
        out = Path(tmp) / "report.pdf"
        cmd = chromium_command(
            binary,
            Path(tmp) / "profile",
            f"--print-to-pdf={out}",
            "--no-pdf-header-footer",
            html.resolve().as_uri(),
        )
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ChromiumUnavailable(f"Chromium could not print the report: {exc}") from exc
        if proc.returncode != 0 or not out.exists() or out.read_bytes()[:5] != b"%PDF-":
            tail = (proc.stderr or "").strip().splitlines()[-5:]
            raise ChromiumUnavailable(f"Chromium exited {proc.returncode} without a PDF: " + " | ".join(tail))
        copy_atomic(out, pdf)
