"""The demo helpdesk server against a real HTTP client (httpx), on small hand-built data."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import httpx
import pytest

from rapport.demo.helpdesk_server import FaultPlan, HelpdeskData, load_helpdesk_data, serve_helpdesk

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
USERS_URL = "/api/v2/incremental/users/cursor.json"


def iso(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user(uid: int, ts: int, **extra: object) -> dict:
    return {
        "id": uid,
        "name": f"U{uid}",
        "email": f"u{uid}@example.com",
        "phone": None,
        "role": "end-user",
        "external_id": None,
        "created_at": iso(T0),
        "updated_at": iso(ts),
        **extra,
    }


def ticket(tid: int, ts: int, status: str = "new") -> dict:
    return {
        "id": tid,
        "requester_id": 1,
        "assignee_id": None,
        "subject": "s",
        "status": status,
        "priority": None,
        "via": {"channel": "web"},
        "tags": [],
        "satisfaction_rating": {"score": "unoffered", "comment": None},
        "metric_set": {
            "reply_time_in_minutes": {"calendar": None},
            "full_resolution_time_in_minutes": {"calendar": None},
            "solved_at": None,
            "reopens": 0,
        },
        "created_at": iso(T0),
        "updated_at": iso(ts),
    }


# 25 users; ids 0..24, user i updated at T0 + 10*(i // 2) (pairs share a timestamp to test the id tie-break),
# plus a second version of user 3 later than all others.
USERS = [user(i, T0 + 10 * (i // 2)) for i in range(25)] + [user(3, T0 + 1000, locale="ko")]
TICKETS = [ticket(100, T0 + 5), ticket(100, T0 + 50, "open"), ticket(101, T0 + 20)]


def export_all(client: httpx.Client, base: str, kind: str, start: int) -> tuple[list[dict], list[dict]]:
    """Follow after_url until end_of_stream; returns (items, pages)."""
    pages = []
    url = f"{base}/api/v2/incremental/{kind}/cursor.json?start_time={start}"
    while True:
        r = client.get(url, headers=AUTH)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        if page["end_of_stream"]:
            break
        url = page["after_url"]
    return [it for p in pages for it in p[kind]], pages


def test_pagination_covers_every_item_once_in_order() -> None:
    with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN, page_size=10) as srv, httpx.Client() as c:
        items, pages = export_all(c, srv.base_url, "users", 0)
    assert len(pages) == 3  # 26 versions in pages of 10
    assert [len(p["users"]) for p in pages] == [10, 10, 6]
    assert [p["end_of_stream"] for p in pages] == [False, False, True]
    for p in pages:
        assert p["before_cursor"] is None and p["before_url"] is None
        assert p["after_cursor"] and p["after_url"].endswith("cursor=" + p["after_cursor"])
    got = [(it["id"], it["updated_at"]) for it in items]
    assert sorted(got) == sorted((u["id"], u["updated_at"]) for u in USERS)
    assert len(set(got)) == 26
    # ordered by (updated_at, id): the late version of user 3 comes last and keeps its extra field
    assert got[:4] == [(0, iso(T0)), (1, iso(T0)), (2, iso(T0 + 10)), (3, iso(T0 + 10))]
    assert items[-1]["id"] == 3 and items[-1]["locale"] == "ko"


def test_start_time_filters_and_tickets_endpoint() -> None:
    with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN) as srv, httpx.Client() as c:
        users, _ = export_all(c, srv.base_url, "users", T0 + 110)
        tickets, pages = export_all(c, srv.base_url, "tickets", T0 + 20)
    # users with 10*(i//2) >= 110 -> i in 22..24, plus the late version of user 3
    assert [u["id"] for u in users] == [22, 23, 24, 3]
    assert [(t["id"], t["status"]) for t in tickets] == [(101, "new"), (100, "open")]
    assert len(pages) == 1 and pages[0]["end_of_stream"] is True
    assert set(pages[0]) == {"tickets", "after_cursor", "after_url", "before_cursor", "before_url", "end_of_stream"}


def test_unauthorised_requests_get_401() -> None:
    with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN) as srv, httpx.Client() as c:
        url = f"{srv.base_url}{USERS_URL}?start_time=0"
        assert c.get(url).status_code == 401
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get(url, headers={"Authorization": TOKEN}).status_code == 401
        assert c.get(url, headers=AUTH).status_code == 200
        assert all(TOKEN not in path for path, _ in srv.request_log)
        assert [s for _, s in srv.request_log] == [401, 401, 401, 200]


def test_bad_requests() -> None:
    with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN) as srv, httpx.Client() as c:
        base = f"{srv.base_url}/api/v2/incremental/users/cursor.json"
        assert c.get(base, headers=AUTH).status_code == 400
        assert c.get(base + "?cursor=%%%", headers=AUTH).status_code == 400
        assert c.get(base + "?start_time=abc", headers=AUTH).status_code == 400
        assert (
            c.get(f"{srv.base_url}/api/v2/incremental/orgs/cursor.json?start_time=0", headers=AUTH).status_code == 404
        )


def test_cursor_is_opaque_but_stable_across_restarts_and_sees_new_items() -> None:
    data = HelpdeskData(USERS, TICKETS)
    with serve_helpdesk(data, token=TOKEN, page_size=10) as srv, httpx.Client() as c:
        first = c.get(f"{srv.base_url}{USERS_URL}?start_time=0", headers=AUTH).json()
        cursor = first["after_cursor"]
    # last item of page 1 is user 9 at T0+40: the cursor names exactly that position
    assert base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode() == f"{T0 + 40}:9"
    with serve_helpdesk(data, token=TOKEN, page_size=10) as srv, httpx.Client() as c:
        again = c.get(f"{srv.base_url}{USERS_URL}?start_time=0", headers=AUTH).json()
        assert again["after_cursor"] == cursor
        rest = c.get(f"{srv.base_url}{USERS_URL}?cursor={cursor}", headers=AUTH).json()
        assert [u["id"] for u in rest["users"]] == list(range(10, 20))
        # read to the end, then new versions arrive: the last page's after_cursor picks them up
        items, pages = export_all(c, srv.base_url, "users", 0)
        last_cursor = pages[-1]["after_cursor"]
        empty = c.get(f"{srv.base_url}{USERS_URL}?cursor={last_cursor}", headers=AUTH).json()
        assert empty["users"] == [] and empty["end_of_stream"] is True
        assert empty["after_cursor"] == last_cursor
        srv.add_items("users", [user(7, T0 + 2000, custom_fields=[{"id": 1, "value": "x"}]), user(99, T0 + 1500)])
        new = c.get(f"{srv.base_url}{USERS_URL}?cursor={last_cursor}", headers=AUTH).json()
        got = [(u["id"], u["updated_at"]) for u in new["users"]]
        assert got == [(99, iso(T0 + 1500)), (7, iso(T0 + 2000))]
        assert new["users"][1]["custom_fields"] == [{"id": 1, "value": "x"}]
        assert new["end_of_stream"] is True


def test_faults_occur_at_configured_rate_and_are_deterministic() -> None:
    plan = FaultPlan(rate=0.3, seed=11, retry_after=0.01)

    def run() -> list[int]:
        statuses = []
        with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN, faults=plan) as srv, httpx.Client() as c:
            url = f"{srv.base_url}/api/v2/incremental/tickets/cursor.json?start_time=0"
            for _ in range(300):
                try:
                    r = c.get(url, headers=AUTH)
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        assert float(r.headers["Retry-After"]) == 0.01
                except httpx.TransportError:
                    statuses.append(0)
            assert [s for _, s in srv.request_log] == statuses
        return statuses

    first = run()
    fails = sum(s != 200 for s in first)
    # Binomial(300, 0.3): mean 90, sd ~7.9; +-4 sd
    assert 58 <= fails <= 122
    assert {429, 500, 502, 503, 0} <= set(first)
    assert run() == first


def test_integer_retry_after_and_kinds_subset() -> None:
    plan = FaultPlan(rate=1.0, seed=1, kinds=("429",), retry_after=2)
    with serve_helpdesk(HelpdeskData(USERS, TICKETS), token=TOKEN, faults=plan) as srv, httpx.Client() as c:
        r = c.get(f"{srv.base_url}{USERS_URL}?start_time=0", headers=AUTH)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        # auth is checked before faults: a bad token is always a clean 401
        assert c.get(f"{srv.base_url}{USERS_URL}?start_time=0").status_code == 401


def test_fail_after_pages_then_resume_with_stored_cursor() -> None:
    data = HelpdeskData(USERS, TICKETS)
    with (
        serve_helpdesk(data, token=TOKEN, page_size=5, faults=FaultPlan(fail_after_pages=2)) as srv,
        httpx.Client() as c,
    ):
        url = f"{srv.base_url}{USERS_URL}?start_time=0"
        seen = []
        for _ in range(2):
            page = c.get(url, headers=AUTH).json()
            seen += page["users"]
            url = page["after_url"]
        stored = page["after_cursor"]
        assert c.get(url, headers=AUTH).status_code == 500
        assert c.get(url, headers=AUTH).status_code == 500
    with serve_helpdesk(data, token=TOKEN, page_size=5) as srv, httpx.Client() as c:
        url = f"{srv.base_url}{USERS_URL}?cursor={stored}"
        while True:
            page = c.get(url, headers=AUTH).json()
            seen += page["users"]
            if page["end_of_stream"]:
                break
            url = page["after_url"]
    assert len(seen) == 26
    assert sorted((u["id"], u["updated_at"]) for u in seen) == sorted((u["id"], u["updated_at"]) for u in USERS)


def test_load_from_directory(tmp_path: Path) -> None:
    for name, items in (("users", USERS[:3]), ("tickets", TICKETS)):
        with gzip.open(tmp_path / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for it in items:
                fh.write(json.dumps(it, ensure_ascii=False) + "\n")
    data = load_helpdesk_data(tmp_path)
    assert data.users == USERS[:3] and data.tickets == TICKETS
    with serve_helpdesk(tmp_path, token=TOKEN) as srv, httpx.Client() as c:
        items, _ = export_all(c, srv.base_url, "tickets", 0)
    assert len(items) == 3


def test_bad_fault_plan() -> None:
    with pytest.raises(ValueError):
        FaultPlan(rate=0.1, kinds=("418",))
