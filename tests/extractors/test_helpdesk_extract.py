"""Helpdesk extractor against the demo helpdesk server (real HTTP on loopback), with injected faults."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
from extract_helpers import TOKEN, checksums, connect, make_settings, raw_rows

from rapport.demo.helpdesk_server import FaultPlan, HelpdeskData, encode_cursor, serve_helpdesk
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.helpdesk_client import HelpdeskAuthError, HelpdeskError, parse_retry_after

DAY1_END = datetime(2025, 8, 2)
DAY2_END = datetime(2025, 8, 3)
FAST_RETRY = {"helpdesk_retry_base_s": 0.005, "helpdesk_retry_max_s": 0.05}


def _ts(day: int, minute: int) -> str:
    return f"2025-08-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00Z"


def _user(i: int, day: int, minute: int, **kw) -> dict:
    u = {
        "id": i,
        "name": f"사용자 {i}",
        "email": f"User{i}@Example.com" if i % 4 else None,
        "phone": None,
        "role": "end-user",
        "external_id": str(i) if i % 2 else None,
        "created_at": "2025-07-01T00:00:00Z",
        "updated_at": _ts(day, minute),
    }
    u.update(kw)
    return u


def _ticket(i: int, day: int, minute: int, **kw) -> dict:
    t = {
        "id": 500 + i,
        "requester_id": i % 40 + 1,
        "assignee_id": 9001 if i % 2 else None,
        "subject": f"Order question {i}",
        "status": "solved" if i % 3 == 0 else "open",
        "priority": None if i % 4 == 0 else "normal",
        "via": {"channel": "email"},
        "tags": ["vip"] if i == 1 else [],
        "satisfaction_rating": {"score": "good", "comment": None},
        "metric_set": {
            "reply_time_in_minutes": {"calendar": 30},
            "full_resolution_time_in_minutes": {"calendar": None},
            "solved_at": None,
            "reopens": 0,
        },
        "created_at": "2025-07-15T00:00:00Z",
        "updated_at": _ts(day, minute),
    }
    t.update(kw)
    return t


def _data() -> HelpdeskData:
    # day 1: users 1..40 (user 7 has an unreadable created_at, user 9 an unknown field), tickets 1..25;
    # day 2: a new version of user 3, user 41, tickets 26..28
    users = [_user(i, 1, 30 * i) for i in range(1, 41)]
    users[6]["created_at"] = "31/07/2025"
    users[8]["locale"] = "ko-KR"
    users += [_user(3, 2, 60, email="new3@example.com"), _user(41, 2, 70)]
    tickets = [_ticket(i, 1, 50 * i) for i in range(1, 26)] + [_ticket(i, 2, 10 * i) for i in range(26, 29)]
    return HelpdeskData(users=users, tickets=tickets)


@pytest.fixture
def wh(tmp_path):
    settings = make_settings(tmp_path, extra=FAST_RETRY)
    con = connect(tmp_path / "wh.duckdb", settings)
    yield tmp_path, settings, con
    con.close()


def _clean_rows(tmp_path, end=DAY2_END):
    """Rows of an uninterrupted, fault-free run (the reference)."""
    settings = make_settings(tmp_path / "ref", extra=FAST_RETRY)
    con = connect(tmp_path / "ref" / "wh.duckdb", settings)
    with serve_helpdesk(_data(), token=TOKEN, page_size=5) as srv:
        extract_helpdesk(con, settings, run_id="ref", interval_end=end, base_url=srv.base_url)
    rows = {t: raw_rows(con, t) for t in ("helpdesk_users", "helpdesk_tickets")}
    con.close()
    return rows


def test_interval_export_lands_items_and_keeps_unknown_fields(wh):
    tmp, settings, con = wh
    with serve_helpdesk(_data(), token=TOKEN, page_size=5) as srv:
        res = extract_helpdesk(con, settings, run_id="r1", interval_end=DAY1_END, base_url=srv.base_url)
        u, t = res.tables["helpdesk_users"], res.tables["helpdesk_tickets"]
        assert (u.rows_read, u.rows_landed, u.rows_quarantined, u.rows_duplicate) == (40, 39, 1, 0)
        assert (t.rows_read, t.rows_landed) == (25, 25)
        assert con.execute("select location, reason from quarantine.helpdesk_users_rejects").fetchall() == [
            # page 2 (users 6..10) was asked for with the cursor after user 5 (updated 02:30); user 7 is item 1
            (
                f"users cursor={encode_cursor(int(datetime(2025, 8, 1, 2, 30, tzinfo=UTC).timestamp()), 5)} item 1",
                "bad created_at (31/07/2025)",
            )
        ]
        assert con.execute("select _extra from raw.helpdesk_users where id = 9").fetchall() == [('{"locale":"ko-KR"}',)]
        assert con.execute("select _extra from raw.helpdesk_users where id = 8").fetchall() == [(None,)]
        assert con.execute(
            "select tags, via->>'channel', metric_set->'reply_time_in_minutes'->>'calendar', "
            "priority from raw.helpdesk_tickets where id = 501"
        ).fetchall() == [('["vip"]', "email", "30", "normal")]
        # next interval: the new version of user 3 and the day-2 items; the export resumes from the cursor (the
        # only other request is the volume probe: the export since the newest landed items, not from the start)
        n_before = len(srv.request_log)
        res2 = extract_helpdesk(con, settings, run_id="r2", interval_end=DAY2_END, base_url=srv.base_url)
        paths = [path for path, _status in srv.request_log[n_before:]]
        assert not [p for p in paths if "start_time=0" in p]
        assert len([p for p in paths if "start_time=" in p]) == 2  # one probe per kind
    assert res2.tables["helpdesk_users"].rows_landed == 2
    assert res2.tables["helpdesk_tickets"].rows_landed == 3
    assert con.execute("select email from raw.helpdesk_users where id = 3 order by updated_at").fetchall() == [
        ("User3@Example.com",),
        ("new3@example.com",),
    ]


def test_reruns_add_nothing_and_leave_the_warehouse_identical(wh):
    tmp, settings, con = wh
    with serve_helpdesk(_data(), token=TOKEN, page_size=5) as srv:
        extract_helpdesk(con, settings, run_id="d1", interval_end=DAY1_END, base_url=srv.base_url)
        extract_helpdesk(con, settings, run_id="d2", interval_end=DAY2_END, base_url=srv.base_url)
        before = checksums(con)
        again = extract_helpdesk(con, settings, run_id="d2-again", interval_end=DAY2_END, base_url=srv.base_url)
        assert again.rows_landed == 0 and again.rows_quarantined == 0
        extract_helpdesk(con, settings, run_id="d1-backfill", interval_end=DAY1_END, base_url=srv.base_url)
        assert checksums(con) == before


def test_faulty_server_yields_the_same_rows_as_a_clean_run(wh):
    tmp, settings, con = wh
    plan = FaultPlan(rate=0.3, seed=7)  # this seed's draws include every fault kind
    with serve_helpdesk(_data(), token=TOKEN, page_size=5, faults=plan) as srv:
        extract_helpdesk(con, settings, run_id="f1", interval_end=DAY1_END, base_url=srv.base_url)
        extract_helpdesk(con, settings, run_id="f2", interval_end=DAY2_END, base_url=srv.base_url)
        statuses = [s for _p, s in srv.request_log]
    # the plan really hit: rate limits, server errors and connection resets were all retried
    assert {429, 500, 0} <= set(statuses), statuses
    assert sum(s != 200 for s in statuses) >= 5
    clean = _clean_rows(tmp)
    for table, rows in clean.items():
        assert raw_rows(con, table) == rows, table


def test_exhausted_retries_fail_clearly_keep_landed_pages_and_resume(wh, caplog):
    tmp, settings, con = wh
    settings = make_settings(tmp, extra={**FAST_RETRY, "helpdesk_retry_attempts": 3})
    caplog.set_level(logging.DEBUG)
    with serve_helpdesk(_data(), token=TOKEN, page_size=5, faults=FaultPlan(fail_after_pages=3)) as srv:
        with pytest.raises(HelpdeskError) as err:
            extract_helpdesk(con, settings, run_id="broken", interval_end=DAY2_END, base_url=srv.base_url)
        assert [s for _p, s in srv.request_log] == [200, 200, 200, 500, 500, 500]
    msg = str(err.value)
    assert "/api/v2/incremental/users/cursor.json" in msg and "cursor=" in msg and "3 attempts" in msg
    assert TOKEN not in msg and TOKEN not in caplog.text
    # the three pages that came through stay landed, with the cursor after them
    assert con.execute("select count(*) from raw.helpdesk_users").fetchall() == [(14,)]  # 15 read, 1 quarantined
    cursor = con.execute("select value from ops.extract_state where key = 'users.cursor'").fetchall()[0][0]
    assert f"cursor={cursor}" in msg
    assert con.execute(
        "select rows_landed from ops.extraction_log where run_id = 'broken' and \"table\" = 'helpdesk_users'"
    ).fetchall() == [(14,)]
    # a rerun against a healthy server resumes from that cursor and ends where a clean run ends
    with serve_helpdesk(_data(), token=TOKEN, page_size=5) as srv:
        extract_helpdesk(con, settings, run_id="resume", interval_end=DAY2_END, base_url=srv.base_url)
        paths = [path for path, _status in srv.request_log]
        assert any(p.endswith(f"users/cursor.json?cursor={cursor}") for p in paths)
        assert not [p for p in paths if "users/cursor.json?start_time=0" in p]  # no restart from the beginning
    clean = _clean_rows(tmp)
    for table, rows in clean.items():
        assert raw_rows(con, table) == rows, table


def test_retry_after_is_honoured(wh):
    tmp, _settings, con = wh
    settings = make_settings(tmp, extra={"helpdesk_retry_base_s": 0.0001, "helpdesk_retry_attempts": 3})
    plan = FaultPlan(rate=1.0, seed=0, kinds=("429",), retry_after=0.4)
    with serve_helpdesk(_data(), token=TOKEN, page_size=5, faults=plan) as srv:
        t0 = time.monotonic()
        with pytest.raises(HelpdeskError, match="429"):
            extract_helpdesk(con, settings, run_id="r", interval_end=DAY1_END, base_url=srv.base_url)
        elapsed = time.monotonic() - t0
    # two waits of Retry-After (0.4 s) between three attempts; the jitter alone would be ~0 s
    assert elapsed >= 0.8
    assert con.execute("select count(*) from raw.helpdesk_users").fetchall() == [(0,)]


def test_wrong_token_fails_at_once_without_leaking_it(wh, caplog):
    tmp, _settings, con = wh
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp, helpdesk_token="wrong-secret-value", extra=FAST_RETRY)
    with serve_helpdesk(_data(), token=TOKEN) as srv:
        with pytest.raises(HelpdeskAuthError) as err:
            extract_helpdesk(con, settings, run_id="r", interval_end=DAY1_END, base_url=srv.base_url)
        assert [s for _p, s in srv.request_log] == [401]
    assert "401" in str(err.value) and "users" in str(err.value)
    assert "wrong-secret-value" not in str(err.value) and "wrong-secret-value" not in caplog.text


def test_retry_after_header_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
