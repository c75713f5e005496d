"""The demo helpdesk: a Zendesk-style incremental cursor export served over HTTP on loopback.

Implements `GET /api/v2/incremental/{users,tickets}/cursor.json?start_time=<unix>` and the following
`?cursor=<after_cursor>` pages exactly as sources.md section 2 describes. Items are kept ordered by
(updated_at, id); a cursor is the base64 of "updated_at_unix:id" of the last item handed out, so it is
opaque to clients but depends only on the data: a cursor stored by an extractor stays valid after the
server restarts on the same data, and asking for it again later returns whatever arrived since.

Fault injection (`FaultPlan`) makes a seeded fraction of requests fail with 429/500/502/503 or a reset
connection, or fails everything after N good pages, so extractor retry and resume logic can be tested.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import gzip
import hmac
import json
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

KINDS = ("users", "tickets")
EXPORT_PREFIX = "/api/v2/incremental/"
MAX_PAGE_SIZE = 1000


@dataclass
class HelpdeskData:
    """Items as the API returns them; the same id may appear several times with increasing updated_at."""

    users: list[dict] = field(default_factory=list)
    tickets: list[dict] = field(default_factory=list)


def _read_jsonl_gz(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_helpdesk_data(data_dir: Path) -> HelpdeskData:
    """Read `data_dir/users.jsonl.gz` and `data_dir/tickets.jsonl.gz` (the generator's helpdesk dir)."""
    data_dir = Path(data_dir)
    return HelpdeskData(
        users=_read_jsonl_gz(data_dir / "users.jsonl.gz"),
        tickets=_read_jsonl_gz(data_dir / "tickets.jsonl.gz"),
    )


@dataclass(frozen=True)
class FaultPlan:
    """Deterministic failures: request n (counted over export requests that passed auth) fails when the
    n-th draw of `default_rng(seed)` is below `rate`; the kind is drawn from `kinds` by the same rng.

    `retry_after` is the Retry-After value sent with 429 (written as an integer when it is whole, the way
    Zendesk sends it). `fail_after_pages`: once that many pages were served successfully, every later
    request gets 500 (to test resuming from a stored cursor).
    """

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = ("429", "500", "502", "503", "reset")
    retry_after: float = 0.01
    fail_after_pages: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - {"429", "500", "502", "503", "reset"}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")


def encode_cursor(ts: int, item_id: int) -> str:
    return base64.urlsafe_b64encode(f"{ts}:{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Inverse of `encode_cursor`; raises ValueError on anything that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, item_id = raw.split(":")
        return int(ts), int(item_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def iso_to_unix(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


class _Stream:
    """One export stream (users or tickets): items sorted by (updated_at unix, id), pre-serialised."""

    def __init__(self, items: Iterable[dict]) -> None:
        pairs = sorted(((iso_to_unix(it["updated_at"]), int(it["id"])), it) for it in items)
        self.keys: list[tuple[int, int]] = [k for k, _ in pairs]
        self.json: list[str] = [json.dumps(it, ensure_ascii=False, separators=(",", ":")) for _, it in pairs]

    def add(self, items: Iterable[dict]) -> None:
        for it in items:
            key = (iso_to_unix(it["updated_at"]), int(it["id"]))
            pos = bisect.bisect_right(self.keys, key)
            self.keys.insert(pos, key)
            self.json.insert(pos, json.dumps(it, ensure_ascii=False, separators=(",", ":")))

    def page(self, after: tuple[int, int], size: int) -> tuple[list[str], tuple[int, int], bool]:
        """Items strictly after position `after`; returns (items, new position, end_of_stream)."""
        start = bisect.bisect_right(self.keys, after)
        stop = min(start + size, len(self.keys))
        chunk = self.json[start:stop]
        position = self.keys[stop - 1] if stop > start else after
        return chunk, position, stop >= len(self.keys)


class HelpdeskServer:
    """A running demo helpdesk. Use `serve_helpdesk` to get one."""

    def __init__(
        self,
        data: HelpdeskData,
        *,
        token: str,
        page_size: int = MAX_PAGE_SIZE,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._token = token.encode()
        self.page_size = page_size
        self._lock = threading.Lock()
        self._streams = {"users": _Stream(data.users), "tickets": _Stream(data.tickets)}
        # (path with query, status); the token travels in a header, so paths never contain it.
        # status 0 means the connection was reset without a response.
        self.request_log: list[tuple[str, int]] = []
        self.pages_served = 0
        self.set_faults(faults)
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        # a short poll interval keeps stop() fast (tests start many servers)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="helpdesk-server", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._httpd.server_address[:2]
        self.base_url = f"http://{bound_host}:{bound_port}"

    def set_faults(self, faults: FaultPlan | None) -> None:
        """Replace the fault plan (restarts its random sequence and the fail-after-pages count)."""
        with self._lock:
            self.faults = faults
            self._fault_rng = np.random.default_rng(faults.seed) if faults else None
            self._pages_at_plan = self.pages_served

    def add_items(self, kind: str, items: Iterable[dict]) -> None:
        """Append new items (or new versions of existing ids) while the server runs."""
        if kind not in self._streams:
            raise ValueError(f"kind must be one of {KINDS}")
        with self._lock:
            self._streams[kind].add(items)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    # -- called from handler threads -------------------------------------------------------------
    def _check_token(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), self._token)

    def _draw_fault(self) -> str | None:
        with self._lock:
            plan = self.faults
            if plan is None:
                return None
            good_pages = self.pages_served - self._pages_at_plan
            if plan.fail_after_pages is not None and good_pages >= plan.fail_after_pages:
                return "500"
            assert self._fault_rng is not None
            u, k = self._fault_rng.random(), self._fault_rng.integers(len(plan.kinds))
            return plan.kinds[int(k)] if u < plan.rate else None

    def _page(self, kind: str, after: tuple[int, int], size: int) -> bytes:
        with self._lock:
            chunk, position, end = self._streams[kind].page(after, size)
            self.pages_served += 1
        cursor = encode_cursor(*position)
        after_url = f"{self.base_url}{EXPORT_PREFIX}{kind}/cursor.json?cursor={cursor}"
        tail = json.dumps(
            {
                "after_cursor": cursor,
                "after_url": after_url,
                "before_cursor": None,
                "before_url": None,
                "end_of_stream": end,
            }
        )
        return f'{{"{kind}":[{",".join(chunk)}],{tail[1:]}'.encode()


def _make_handler(server: HelpdeskServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real API behind a load balancer

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes; without NODELAY, Nagle + delayed ACK add ~40 ms each
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet; request_log keeps what tests need (and never the Authorization header)

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            # logged before the response goes out: a client that has its response can rely on the log
            server.request_log.append((self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps({"error": message}).encode(), headers)

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send RST: the client sees a connection reset, no response.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            server.request_log.append((self.path, 0))
            with suppress(OSError):
                self.connection.close()

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            kind = None
            for k in KINDS:
                if url.path == f"{EXPORT_PREFIX}{k}/cursor.json":
                    kind = k
            if kind is None:
                self._error(404, "InvalidEndpoint")
                return
            if not server._check_token(self.headers.get("Authorization")):
                self._error(401, "Couldn't authenticate you")
                return
            fault = server._draw_fault()
            if fault == "reset":
                self._reset()
                return
            if fault == "429":
                ra = server.faults.retry_after if server.faults else 1
                value = str(int(ra)) if float(ra).is_integer() else repr(float(ra))
                self._error(429, "TooManyRequests", {"Retry-After": value})
                return
            if fault is not None:
                self._error(int(fault), "ServerError")
                return
            query = parse_qs(url.query)
            size = server.page_size
            if "per_page" in query:
                try:
                    size = max(1, min(int(query["per_page"][0]), MAX_PAGE_SIZE))
                except ValueError:
                    self._error(400, "InvalidPaginationParameter")
                    return
            if "cursor" in query:
                try:
                    after = decode_cursor(query["cursor"][0])
                except ValueError:
                    self._error(400, "InvalidCursor")
                    return
            elif "start_time" in query:
                try:
                    start = int(query["start_time"][0])
                except ValueError:
                    self._error(400, "InvalidValue: start_time")
                    return
                if start < 0:
                    self._error(400, "InvalidValue: start_time")
                    return
                after = (start, -1)  # (updated_at, id) > (start, -1)  <=>  updated_at >= start
            else:
                self._error(400, "start_time or cursor is required")
                return
            self._send(200, server._page(kind, after, size))

    return Handler


@contextmanager
def serve_helpdesk(
    data: HelpdeskData | Path,
    *,
    token: str,
    page_size: int = MAX_PAGE_SIZE,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[HelpdeskServer]:
    """Serve `data` (or the helpdesk directory the generator wrote) until the block exits."""
    if not isinstance(data, HelpdeskData):
        data = load_helpdesk_data(Path(data))
    srv = HelpdeskServer(data, token=token, page_size=page_size, faults=faults, host=host, port=port)
    try:
        yield srv
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the demo helpdesk (Zendesk-style export).")
    parser.add_argument("--data", type=Path, required=True, help="directory holding users/tickets.jsonl.gz")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", required=True)
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    args = parser.parse_args(argv)
    with serve_helpdesk(args.data, token=args.token, page_size=args.page_size, host=args.host, port=args.port) as srv:
        print(srv.base_url, flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
