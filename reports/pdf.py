"""PDF through headless Chromium's print-to-PDF (Debian's `chromium`; scripts/install_chromium.sh).

The browser runs with a throw-away profile and every background network feature off, so printing a
report never reaches the network. `RAPPORT_CHROMIUM` may name the binary; otherwise `chromium` (or
`chromium-browser`, `google-chrome`) is looked up on PATH.

`PdfPrinter` starts the browser when it is made and prints later over the DevTools protocol
(devtools_pipe.py), so the report starts Chromium before it reads the data and draws the charts, and waits
only for the print (issue 16: starting Chromium was about half of the PDF's 2 s). `Page.printToPDF` gets
the parameters `--print-to-pdf --no-pdf-header-footer` uses (backgrounds printed, the CSS page size, no
header or footer): the PDF is the one the command line prints, byte for byte apart from its dates.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from rapport.reports.devtools_pipe import DevToolsError, DevToolsPipe
from rapport.reports.files import write_atomic

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


def profile_parent() -> str | None:
    """Where the browser's throw-away profile goes: a RAM disk when there is one (None: the temp directory).
    Chromium writes ~190 files into a new profile; deleting them took 0.5 s on the benchmark machine's disk,
    1 ms in /dev/shm."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


# what `--print-to-pdf --no-pdf-header-footer` asks of Page.printToPDF
PRINT_PARAMETERS = {"printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False}


class PdfPrinter:
    """A headless Chromium started now, to print one or more HTML files later (`print`); `close` (or the
    end of a `with` block) stops it. When Chromium cannot be found or started, `print` raises
    ChromiumUnavailable, so a caller that starts the printer early still writes its HTML first."""

    def __init__(self) -> None:
        self.work_dir: Path | None = None  # the browser's throw-away profile and log, removed by close()
        self._error: str | None = None
        self._pipe: DevToolsPipe | None = None
        self._page: int | None = None  # id of the command that opens the page to print in
        binary = find_chromium()
        if binary is None:
            self._error = (
                "Chromium was not found (looked for RAPPORT_CHROMIUM, then "
                + ", ".join(CANDIDATES)
                + " on PATH); run scripts/install_chromium.sh"
            )
            return
        self._tmp = tempfile.TemporaryDirectory(
            prefix="rapport-chromium-", dir=profile_parent(), ignore_cleanup_errors=True
        )
        tmp = self.work_dir = Path(self._tmp.name)
        try:
            self._pipe = DevToolsPipe(
                chromium_command(binary, tmp / "profile", "--remote-debugging-pipe", "about:blank"),
                tmp / "stderr.log",
            )
            self._page = self._pipe.send("Target.createTarget", {"url": "about:blank"})  # while Python works
        except (OSError, DevToolsError) as exc:
            self._error = f"Chromium could not start: {exc}"

    def print(self, html: Path, pdf: Path, *, timeout_s: float = PRINT_TIMEOUT_S) -> None:
        """Print `html` to `pdf` (replaced only when printing succeeded). Raises ChromiumUnavailable."""
        if self._error is not None or self._pipe is None:
            raise ChromiumUnavailable(self._error or "Chromium was stopped")
        pipe, deadline = self._pipe, time.monotonic() + timeout_s
        try:
            if self._page is None:
                self._page = pipe.send("Target.createTarget", {"url": "about:blank"})
            target = pipe.reply(self._page, deadline)["targetId"]
            self._page = None  # one page per print: a second print opens its own
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True}, deadline=deadline)[
                "sessionId"
            ]
            pipe.call("Page.enable", session=session, deadline=deadline)
            opened = pipe.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session, deadline=deadline)
            if opened.get("errorText"):
                raise DevToolsError(f"could not open {html}: {opened['errorText']}")
            pipe.event("Page.loadEventFired", session, deadline)
            data = pipe.call("Page.printToPDF", PRINT_PARAMETERS, session=session, deadline=deadline)["data"]
            pipe.call("Target.closeTarget", {"targetId": target}, deadline=deadline)
        except DevToolsError as exc:
            self._error = f"Chromium could not print the report: {exc}"
            raise ChromiumUnavailable(self._error) from exc
        content = base64.b64decode(data)
        if content[:5] != b"%PDF-":
            raise ChromiumUnavailable("Chromium printed something that is not a PDF")
        write_atomic(pdf, content)

    def close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
            self._tmp.cleanup()

    def __enter__(self) -> PdfPrinter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def print_to_pdf(html: Path, pdf: Path, *, timeout_s: float = PRINT_TIMEOUT_S) -> None:
    """Print `html` to `pdf` (replaced only when printing succeeded). Raises ChromiumUnavailable."""
    with PdfPrinter() as printer:
        printer.print(html, pdf, timeout_s=timeout_s)
