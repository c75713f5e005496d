"""How an extraction stops: a source that cannot be reached, a setting that points at nothing usable, a
source whose layout broke its contract, or a source that lost what earlier runs landed from it.

All stop the run before transformation (the extract task fails; nothing downstream runs, nothing is
published). Their messages name the source, what is wrong and the `RAPPORT_*` setting involved, and never
carry a secret: URLs are shown with their password masked (`redact_url`) and every message is scrubbed of
the secrets the caller names. Unavailability is retried (`retry_source`, Airflow's task retries); the
`FatalSourceError`s are not: retrying cannot change a wrong setting or a source's content.

`retry_source` is the bounded retry used where a source is opened (orders database, ESP export root); the
helpdesk client retries each HTTP request itself (`helpdesk_client`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")


class FatalSourceError(Exception):
    """Retrying cannot help: the extract task fails at once (no retries), saying what to change."""


class SourceUnavailableError(OSError):
    """A source could not be reached after bounded retries. Already-landed batches stay landed."""


class SourceNotFoundError(SourceUnavailableError, FileNotFoundError):
    """The source is a path that does not exist (SQLite file, ESP export root)."""


class SchemaDriftError(FatalSourceError, ValueError):
    """A source lacks a column its contract requires: landing would quarantine or misread every record, so
    the run stops before transformation. The message names the source, where, and the column."""


class SourceConfigError(FatalSourceError, ValueError):
    """A setting points at nothing usable (a missing SQLite file, an unsupported URL scheme, a rejected
    token): the message names the `RAPPORT_*` variable to fix."""


class SourceCheckError(FatalSourceError):
    """A source holds far less than earlier runs landed from it, or sent nothing new for longer than the
    freshness window (`source_health`): the message names the source, what was expected and the setting."""


class LandingCountsError(FatalSourceError, RuntimeError):
    """A batch's counts do not reconcile (read = landed + quarantined + duplicate): rapport lost track of some
    rows, a bug rather than a source problem. Raised inside the batch's transaction, so nothing of the batch
    (rows, rejects, state) is landed; a retry would count the same batch the same way, so it is not retried."""


def redact_url(url: str) -> str:
    """The URL for messages and logs: a database URL with its password masked; an HTTP URL with all of its
    userinfo masked (APIs put tokens in the user part too)."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() in ("http", "https") or not sep:
        if not sep:
            return url
        head, slash, tail = rest.partition("/")
        if "@" in head:
            head = "***@" + head.rsplit("@", 1)[1]
        return scheme + sep + head + slash + tail
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parsable: say nothing of what follows the scheme's userinfo
        return scheme + sep + ("***@" + rest.split("@", 1)[1] if "@" in rest else rest)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:  # a 1-2 character "secret" would mangle every message
            text = text.replace(secret, "***")
    return text


def retry_source(
    fn: Callable[[], T],
    *,
    source: str,
    where: str,
    attempts: int,
    base_s: float,
    max_wait_s: float = 10.0,
    fatal: tuple[type[BaseException], ...] = (),
    secrets: Iterable[str | None] = (),
) -> T:
    """Call `fn` until it succeeds, at most `attempts` times (exponential backoff with full jitter); then
    raise `SourceUnavailableError` (`SourceNotFoundError` when the last error was a missing file) saying
    "<source> unavailable at <where> after <n> attempts: <last error>", scrubbed of `secrets`. Errors of
    the `fatal` types and `FatalSourceError`s (configuration, not availability) are raised at once, unchanged."""
    secrets = list(secrets)
    fatal = (FatalSourceError, *fatal)
    attempts = max(1, attempts)

    def _log(rs) -> None:  # type: ignore[no-untyped-def]
        exc = rs.outcome.exception() if rs.outcome else None
        log.warning(
            scrub(
                f"{source} at {where}: {type(exc).__name__}: {exc}; attempt {rs.attempt_number}/{attempts}, retrying",
                secrets,
            )
        )

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=base_s, max=max_wait_s),
        retry=retry_if_exception(lambda e: isinstance(e, Exception) and not isinstance(e, fatal)),
        before_sleep=_log,
        reraise=False,
    )
    try:
        return retrying(fn)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        cls = SourceNotFoundError if isinstance(last, FileNotFoundError) else SourceUnavailableError
        detail = " ".join(f"{type(last).__name__}: {last}".split())  # driver messages span lines
        raise cls(
            scrub(f"{source} unavailable at {where} after {attempts} attempts: {detail[:600]}", secrets)
        ) from None
