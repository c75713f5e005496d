"""A headless Chromium driven over the DevTools protocol through `--remote-debugging-pipe`.

Chromium reads protocol commands (JSON, each ended by a NUL byte) from its file descriptor 3 and writes the
replies and events the same way to descriptor 4: the transport Puppeteer uses by default, with no port to open
and no client library to install (the standard library's `os.posix_spawn` places the two pipe ends on 3 and 4).
The browser starts as soon as the object is made, so a caller can do other work while it starts; commands
written before it is ready wait in the pipe.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

FIRST_FREE_FD = 10  # pipe ends are moved at or above this, clear of 0-4, before they are placed on 3 and 4


def inherited_fds() -> list[int]:
    """This process's descriptors above stdio that a child would inherit (DuckDB opens its database files
    without close-on-exec): the browser gets them closed, as subprocess's `close_fds` does, so no browser
    process holds a warehouse file open."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found = []
    for name in os.listdir(fd_dir):
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return found


class DevToolsError(RuntimeError):
    """Chromium exited, failed a command or did not answer in time; the message says which."""


class DevToolsPipe:
    def __init__(self, command: list[str], stderr_path: Path) -> None:
        """Start `command` (a Chromium command line that includes `--remote-debugging-pipe`)."""
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # above 4, so that placing them on 3 and 4 cannot overwrite one with the other
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, FIRST_FREE_FD)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, FIRST_FREE_FD)
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            self.pid = os.posix_spawn(
                command[0],
                command,
                os.environ,
                setpgroup=0,  # its own process group: `close` stops the browser and its helpers together
                file_actions=[
                    *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited_fds()),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, str(stderr_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                    (os.POSIX_SPAWN_DUP2, child_in, 3),
                    (os.POSIX_SPAWN_DUP2, child_out, 4),
                ],
            )
        except OSError:
            os.close(self._to_browser)
            os.close(self._from_browser)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self._stderr_path = stderr_path
        self._buffer = bytearray()
        self._next_id = 0
        self._returncode: int | None = None
        self._events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        """Write a command and return its id, without waiting for the reply."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")  # small: fits the pipe's buffer
        except BrokenPipeError as exc:
            raise DevToolsError(f"Chromium exited before {method}{self._stderr_tail()}") from exc
        return self._next_id

    def reply(self, command_id: int, deadline: float) -> dict[str, Any]:
        """The result of command `command_id`; events that arrive meanwhile are kept for `event`."""
        while True:
            message = self._receive(deadline)
            if message.get("id") == command_id:
                if "error" in message:
                    raise DevToolsError(f"Chromium refused a command: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, deadline: float
    ) -> dict[str, Any]:
        return self.reply(self.send(method, params, session), deadline)

    def event(self, method: str, session: str, deadline: float) -> dict[str, Any]:
        """The first event `method` of `session` (kept or still to come)."""
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == method and message.get("sessionId") == session:
                    return self._events.pop(i)
            message = self._receive(deadline)
            if "method" in message:
                self._events.append(message)

    def take_events(self, session: str) -> list[dict[str, Any]]:
        """The events of `session` kept so far (they arrived while a reply was awaited), in arrival order; they are
        no longer kept. For a caller that looks at everything a page reported (console messages, exceptions)
        rather than waiting for one event."""
        taken = [message for message in self._events if message.get("sessionId") == session]
        self._events = [message for message in self._events if message.get("sessionId") != session]
        return taken

    def close(self) -> None:
        """Stop the browser and every process it started (its own process group) at once, and release the pipes.

        SIGKILL rather than Browser.close: the profile is thrown away, so a graceful shutdown, which took ~0.5 s
        (writing that profile, stopping each helper), buys nothing once the PDF is in hand."""
        if self._returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            self._returncode = os.waitstatus_to_exitcode(status)
        for fd in (self._to_browser, self._from_browser):
            with suppress(OSError):  # closed by an earlier close()
                os.close(fd)
        self._to_browser = self._from_browser = -1

    def poll(self) -> int | None:
        """The browser's exit code once it has exited (as `subprocess.Popen.poll`), else None."""
        if self._returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._returncode = os.waitstatus_to_exitcode(status)
        return self._returncode

    def _receive(self, deadline: float) -> dict[str, Any]:
        end = self._buffer.find(b"\0")
        while end < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DevToolsError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise DevToolsError(f"Chromium exited{self._stderr_tail()}")
            start = len(self._buffer)  # a PDF's reply is megabytes: look for its end in the new bytes only
            self._buffer += chunk
            end = self._buffer.find(b"\0", start)
        message = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return json.loads(message)

    def _stderr_tail(self) -> str:
        try:
            lines = self._stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return (": " + " | ".join(lines)) if lines else ""
