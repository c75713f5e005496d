"""HTTP client for a Zendesk-style incremental cursor export: httpx for HTTP, tenacity for retries.

Retries: `429` waits what `Retry-After` says (capped); `5xx`, connection errors (refused, reset, timeouts,
truncated responses) and unreadable bodies back off exponentially with full jitter; both are bounded by a
number of attempts. Then the request fails with `HelpdeskUnavailableError` naming the base URL (userinfo
masked), the endpoint and the cursor. Other `4xx` fail at once (a wrong token is not going to get better).
The token travels in a header only; every message this module produces is scrubbed of it anyway.

Bodies are decoded leniently: bytes that are not UTF-8 (and unpaired surrogate escapes like "\\ud800")
cannot be landed, but they only make the item holding them bad (`Page.bad`), not the page.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from dataclasses import dataclass, field

import httpx
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from rapport.extractors.errors import SourceConfigError, SourceUnavailableError, redact_url

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/v2/incremental/{kind}/cursor.json"


class HelpdeskError(RuntimeError):
    """The export cannot continue; the message names the endpoint and the cursor, never the token."""


class HelpdeskAuthError(HelpdeskError, SourceConfigError):
    """No token, or the helpdesk rejected it (401/403): not retried."""


class HelpdeskUnavailableError(HelpdeskError, SourceUnavailableError):
    """Retries ran out: the helpdesk is down, overloaded or unreachable."""


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Transient(Exception):
    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # total tries per page, the first included
    base_s: float = 0.5  # backoff: uniform(0, min(max_wait_s, base_s * 2**n))
    max_wait_s: float = 30.0
    max_retry_after_s: float = 300.0  # a Retry-After above this is not waited out in full


@dataclass(frozen=True)
class Page:
    items: list[str]  # each item re-serialised as JSON text, in stream order
    after_cursor: str | None
    end_of_stream: bool
    bad: dict[int, str] = field(default_factory=dict)  # item index -> why it cannot be landed


def serialise_items(items: list) -> tuple[list[str], dict[int, str]]:
    """Items as compact JSON text. One holding a lone surrogate (undecodable bytes, or an unpaired escape)
    is written with it as the visible text `\\udcff` (valid UTF-8 JSON, so it can be quarantined as is)."""
    out, bad = [], {}
    for i, item in enumerate(items):
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        if _SURROGATE.search(text):
            text = _SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text)
            bad[i] = "invalid UTF-8 (undecodable bytes or an unpaired surrogate)"
        out.append(text)
    return out, bad


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is seconds (Zendesk) or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HelpdeskClient:
    def __init__(self, base_url: str, token: str, *, retry: RetryPolicy | None = None, timeout_s: float = 30.0) -> None:
        if not token:
            raise HelpdeskAuthError("no helpdesk token configured (RAPPORT_HELPDESK_TOKEN)")
        try:
            url = httpx.URL(base_url) if "://" in base_url else None
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise SourceConfigError(
                f"RAPPORT_HELPDESK_URL={redact_url(base_url)!r} is not an http(s) URL: expected "
                "the helpdesk's base URL, e.g. https://yourcompany.zendesk.com"
            )
        self._token = token
        self.base_url = redact_url(base_url.rstrip("/"))
        self.retry = retry or RetryPolicy()
        self._jitter = wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.max_wait_s)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            transport=httpx.HTTPTransport(retries=0),  # tenacity does all retrying
        )

    def __enter__(self) -> HelpdeskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")

    def page(self, kind: str, cursor: str | None, *, start_time: int = 0) -> Page:
        """One page of the `kind` export: from `cursor`, or from `start_time` when there is none yet."""
        path = EXPORT_PATH.format(kind=kind)
        params = {"cursor": cursor} if cursor else {"start_time": str(start_time)}
        where = f"cursor={cursor}" if cursor else f"start_time={start_time}"
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda rs: self._log_retry(rs, path, where),
        )
        try:
            for attempt in retrying:
                with attempt:
                    payload = self._get_once(path, params, where)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise HelpdeskUnavailableError(
                self._scrub(
                    f"helpdesk unavailable at {self.base_url} after {self.retry.attempts} attempts: GET {path} at "
                    f"{where} (last error: {last}); pages already landed are kept and a rerun resumes from this cursor"
                )
            ) from None
        items = payload.get(kind)
        if not isinstance(items, list):
            raise HelpdeskError(f"helpdesk GET {path} at {where}: response has no {kind!r} list")
        after = payload.get("after_cursor")
        if after is not None and not isinstance(after, str):
            raise HelpdeskError(
                self._scrub(f"helpdesk GET {path} at {where}: after_cursor is not a string ({json.dumps(after)[:80]})")
            )
        texts, bad = serialise_items(items)
        return Page(items=texts, after_cursor=after, end_of_stream=payload.get("end_of_stream") is True, bad=bad)

    def _get_once(self, path: str, params: dict[str, str], where: str) -> dict:
        try:
            resp = self._http.get(path, params=params)
        except httpx.TransportError as exc:  # refused, reset, timeouts, truncated responses
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status == 429:
            raise _Transient("429 Too Many Requests", parse_retry_after(resp.headers.get("Retry-After")))
        if status >= 500:
            raise _Transient(f"{status} {resp.reason_phrase}")
        if status in (401, 403):
            raise HelpdeskAuthError(
                f"helpdesk GET {path} at {where}: {status} {resp.reason_phrase} "
                "(the token was rejected; check RAPPORT_HELPDESK_TOKEN)"
            )
        if status != 200:
            raise HelpdeskError(self._scrub(f"helpdesk GET {path} at {where}: {status} {resp.text[:200]}"))
        try:
            # not resp.json(): one undecodable byte would make the whole page unreadable, for ever
            payload = json.loads(resp.content.decode("utf-8", "surrogateescape"))
        except ValueError as exc:  # a body cut short by a proxy: ask again
            raise _Transient(f"unreadable JSON body ({exc})") from exc
        if not isinstance(payload, dict):
            raise _Transient("JSON body is not an object")
        return payload

    def _wait(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_retry_after_s)
        return self._jitter(rs)

    def _log_retry(self, rs: RetryCallState, path: str, where: str) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        sleep = rs.next_action.sleep if rs.next_action else 0.0
        log.warning(
            self._scrub(
                f"helpdesk GET {path} at {where}: {exc}; attempt {rs.attempt_number}/"
                f"{self.retry.attempts}, retrying in {sleep:.2f} s"
            )
        )
