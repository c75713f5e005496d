"""A source that cannot be reached: each extractor gives up after a bounded number of attempts, with a message
naming the source and where it was looked for, and never the helpdesk token or a database password. Once end
to end: `rapport run` with the ESP export directory missing fails naming it, and nothing published changes."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from demo_builds import cli_env, rapport
from extract_helpers import (
    TOKEN,
    PageServer,
    closed_port,
    connect,
    make_settings,
    published_demo,
    sha256,
    write_shop,
)

from rapport.extractors.errors import (
    FatalSourceError,
    SchemaDriftError,
    SourceCheckError,
    SourceConfigError,
    SourceNotFoundError,
    SourceUnavailableError,
    retry_source,
)
from rapport.extractors.esp import extract_esp
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.helpdesk_client import HelpdeskAuthError, HelpdeskUnavailableError
from rapport.extractors.orders import extract_orders

END = datetime(2025, 8, 2)
PG_PASSWORD = "S3cr3t-pg-pass"
FAST = {
    "helpdesk_retry_base_s": 0.001,
    "helpdesk_retry_max_s": 0.01,
    "orders_connect_base_s": 0.001,
    "esp_root_base_s": 0.001,
}


@pytest.fixture
def quiet_retries(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# ---------------------------------------------------------------- helpdesk


def test_helpdesk_with_nothing_listening_fails_after_bounded_attempts(tmp_path, quiet_retries):
    port = closed_port()
    settings = make_settings(tmp_path, extra={**FAST, "helpdesk_retry_attempts": 4})
    con = connect(tmp_path / "wh.duckdb", settings)
    t0 = time.monotonic()
    with pytest.raises(HelpdeskUnavailableError) as err:
        extract_helpdesk(con, settings, run_id="r", interval_end=END, base_url=f"http://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert msg.startswith(
        f"helpdesk unavailable at http://127.0.0.1:{port} after 4 attempts: GET "
        "/api/v2/incremental/users/cursor.json at start_time=0 (last error: ConnectError"
    )
    assert isinstance(err.value, SourceUnavailableError)
    assert quiet_retries.text.count("attempt ") == 3  # three retries logged, then the fourth attempt failed
    _no_secret(msg + quiet_retries.text, TOKEN)
    con.close()


def test_helpdesk_answering_503_forever_gets_exactly_the_configured_attempts(tmp_path, quiet_retries):
    settings = make_settings(tmp_path, extra={**FAST, "helpdesk_retry_attempts": 5})
    con = connect(tmp_path / "wh.duckdb", settings)
    with PageServer(status=503) as srv, pytest.raises(HelpdeskUnavailableError) as err:
        extract_helpdesk(con, settings, run_id="r", interval_end=END, base_url=srv.base_url)
    assert len(srv.requests) == 5
    assert {auth for _path, auth in srv.requests} == {f"Bearer {TOKEN}"}  # the secret was in play
    assert f"helpdesk unavailable at {srv.base_url} after 5 attempts" in str(err.value)
    assert "503 Service Unavailable" in str(err.value)
    _no_secret(str(err.value) + quiet_retries.text, TOKEN)
    assert con.execute("select count(*) from ops.extract_state").fetchall() == [(0,)]
    con.close()


def test_helpdesk_that_accepts_but_never_answers_times_out_boundedly(tmp_path):
    with socket.socket() as listener:  # the kernel completes connections; nobody ever reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = make_settings(tmp_path, extra={**FAST, "helpdesk_retry_attempts": 2, "helpdesk_timeout_s": 0.3})
        con = connect(tmp_path / "wh.duckdb", settings)
        t0 = time.monotonic()
        with pytest.raises(HelpdeskUnavailableError, match="after 2 attempts.*ReadTimeout"):
            extract_helpdesk(con, settings, run_id="r", interval_end=END, base_url=url)
        assert time.monotonic() - t0 < 5
        con.close()


def test_helpdesk_url_credentials_are_masked(tmp_path, quiet_retries):
    port = closed_port()
    settings = make_settings(tmp_path, extra={**FAST, "helpdesk_retry_attempts": 2})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(HelpdeskUnavailableError) as err:
        extract_helpdesk(
            con, settings, run_id="r", interval_end=END, base_url=f"http://admin:hunter2-secret@127.0.0.1:{port}/"
        )
    assert f"helpdesk unavailable at http://***@127.0.0.1:{port} after 2 attempts" in str(err.value)
    _no_secret(str(err.value) + quiet_retries.text, "hunter2-secret", TOKEN)
    con.close()


# ---------------------------------------------------------------- orders database


def test_missing_sqlite_file_fails_at_once_naming_the_setting(tmp_path, quiet_retries):
    db = tmp_path / "gone" / "shop.db"
    settings = make_settings(tmp_path, orders_db_url=f"sqlite:///{db}", extra={**FAST, "orders_connect_attempts": 3})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SourceConfigError) as err:
        extract_orders(con, settings, run_id="r", interval_end=END)
    assert str(err.value).startswith(
        f"orders database not found: {db} (RAPPORT_ORDERS_DB_URL): point RAPPORT_ORDERS_DB_URL at the shop's database"
    )
    assert isinstance(err.value, FatalSourceError)  # the DAG fails the task without Airflow's retries
    assert "attempt" not in quiet_retries.text  # nor retried here: a missing file does not come back
    assert not db.parent.exists()  # read-only: nothing is created
    con.close()


@pytest.mark.parametrize(
    "url, says",
    [
        ("mysql://shop@db/shop", "unsupported orders database 'mysql'"),
        ("not a url", "is not a database URL"),
        ("sqlite://", "needs a file path"),
    ],
)
def test_an_unusable_orders_url_fails_at_once_naming_the_setting(tmp_path, url, says):
    settings = make_settings(tmp_path, orders_db_url=url)
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SourceConfigError, match="RAPPORT_ORDERS_DB_URL") as err:
        extract_orders(con, settings, run_id="r", interval_end=END)
    assert says in str(err.value)
    con.close()


@pytest.mark.parametrize("url", ["ftp://helpdesk.example.com", "helpdesk.example.com", "http://"])
def test_a_helpdesk_url_that_is_not_http_fails_at_once(tmp_path, url):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SourceConfigError, match="RAPPORT_HELPDESK_URL=.* is not an http"):
        extract_helpdesk(con, settings, run_id="r", interval_end=END, base_url=url)
    con.close()


def test_a_rejected_token_is_not_retried_by_airflow_either():
    # the DAG turns a FatalSourceError into AirflowFailException (no task retries); the client never retries
    # a 401/403 (test_helpdesk_extract.test_wrong_token_fails_at_once_without_leaking_it)
    assert issubclass(HelpdeskAuthError, FatalSourceError)
    assert issubclass(SchemaDriftError, FatalSourceError) and issubclass(SourceCheckError, FatalSourceError)


def test_a_file_that_is_not_a_database_fails_clearly(tmp_path):
    (tmp_path / "shop.db").write_bytes(b"this is not a SQLite database" * 40)
    settings = make_settings(tmp_path, extra={**FAST, "orders_connect_attempts": 2})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(
        SourceUnavailableError,
        match="orders database unavailable at sqlite:///.*after 2 attempts.*file is not a database",
    ):
        extract_orders(con, settings, run_id="r", interval_end=END)
    con.close()


LOCK_HOLDER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("begin exclusive")
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_database_locked_by_a_writer_is_retried_then_read_once_released(tmp_path):
    write_shop(
        tmp_path / "shop.db",
        customers=[(1, "a@x.com", "A", "B", None, "KR", 1, "2025-08-01T00:00:00Z", "2025-08-01T01:00:00Z")],
    )
    # another process holds an exclusive lock (SQLite's locks are per process: it has to be another one)
    writer = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "shop.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    settings = make_settings(tmp_path, extra={**FAST, "orders_connect_attempts": 3})
    con = connect(tmp_path / "wh.duckdb", settings)
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(SourceUnavailableError, match="after 3 attempts.*database is locked"):
            extract_orders(con, settings, run_id="r1", interval_end=END)
    finally:
        writer.communicate("", timeout=30)
    assert extract_orders(con, settings, run_id="r2", interval_end=END).rows_landed == 1
    con.close()


def test_postgresql_on_a_closed_port_fails_without_leaking_the_password(tmp_path, quiet_retries):
    port = closed_port()
    url = f"postgresql+psycopg://rapport:{PG_PASSWORD}@127.0.0.1:{port}/shop"
    settings = make_settings(tmp_path, orders_db_url=url, extra={**FAST, "orders_connect_attempts": 3})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SourceUnavailableError) as err:
        extract_orders(con, settings, run_id="r", interval_end=END)
    msg = str(err.value)
    assert msg.startswith(
        f"orders database unavailable at postgresql+psycopg://rapport:***@127.0.0.1:{port}/shop "
        "after 3 attempts: OperationalError"
    )
    assert "refused" in msg.lower()
    assert quiet_retries.text.count("attempt ") == 2
    _no_secret(msg + quiet_retries.text + repr(err.value) + repr(settings), PG_PASSWORD)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained driver error to leak
    con.close()


# ---------------------------------------------------------------- ESP exports


def test_missing_esp_root_fails_after_bounded_attempts(tmp_path):
    root = tmp_path / "mnt" / "esp"
    settings = make_settings(tmp_path, esp_root=root, extra={**FAST, "esp_root_attempts": 3})
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(SourceNotFoundError) as err:
        extract_esp(con, settings, run_id="r", interval_end=END)
    assert str(err.value) == (
        f"esp unavailable at {root} after 3 attempts: FileNotFoundError: ESP export root "
        f"not found: {root} (RAPPORT_ESP_ROOT)"
    )
    con.close()


def test_retry_source_retries_transient_errors_and_not_fatal_ones():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return "ok"

    assert retry_source(flaky, source="s", where="w", attempts=5, base_s=0.001) == "ok"
    assert len(calls) == 3
    calls.clear()

    def misconfigured() -> None:
        calls.append(1)
        raise ValueError("unsupported URL")

    with pytest.raises(ValueError, match="unsupported URL"):
        retry_source(misconfigured, source="s", where="w", attempts=5, base_s=0.001, fatal=(ValueError,))
    assert len(calls) == 1

    def leaky() -> None:
        raise OSError("login failed for password pw-12345")

    with pytest.raises(SourceUnavailableError) as err:
        retry_source(leaky, source="s", where="w", attempts=2, base_s=0.001, secrets=["pw-12345"])
    assert str(err.value) == "s unavailable at w after 2 attempts: OSError: login failed for password ***"


# ---------------------------------------------------------------- end to end


def _published_files(wh: Path) -> dict[str, str]:
    out = {}
    for top in ("published", "reports", "audiences"):
        for path in sorted((wh / top).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(wh))] = sha256(path)
    return out


@pytest.mark.slow
def test_rapport_run_with_the_esp_directory_missing_fails_naming_it(tmp_path_factory, tmp_path):
    wh = published_demo(tmp_path_factory, tmp_path / "warehouse")
    before = _published_files(wh)
    assert any(p.endswith("rapport.duckdb") for p in before)
    missing = wh / "exports" / "esp"
    proc = rapport(["run", "--interval-end", "2026-11-02T00:00:00"], cli_env(wh, RAPPORT_ESP_ROOT=str(missing)))
    assert proc.returncode != 0, proc.stdout
    assert f"esp unavailable at {missing} after 4 attempts" in proc.stdout, proc.stdout
    assert "extract_esp" in proc.stdout and "failed" in proc.stdout
    assert _published_files(wh) == before
