"""Hostile helpdesk items over real HTTP: the extractor never crashes, quarantines every bad item with a reason
at `<kind> <cursor> item <n>`, lands every good item exactly once (with unknown fields kept in `_extra`), and
its counts reconcile.

A tiny loopback server (extract_helpers.PageServer) serves pages that Hypothesis assembles as bytes, so an
item can hold what the demo helpdesk would refuse to serve: bytes that are not UTF-8, unpaired surrogate
escapes, NaN, objects where the contract has a scalar, junk that is not an object at all. Each item is
labelled good or with its defect; expectations come from the labels.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from extract_helpers import PageServer, export_page, make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.extractors.helpdesk import extract_helpdesk

pytestmark = pytest.mark.slow  # each runs for 5-20 s

END = datetime(2025, 8, 2)
T0 = datetime(2025, 7, 1)
FAST_RETRY = {"helpdesk_retry_base_s": 0.001, "helpdesk_retry_max_s": 0.01, "helpdesk_retry_attempts": 2}
HOSTILE_TEXT = [
    "'; drop table x; --",
    '=HYPERLINK("http://x","y")',
    "@SUM(1+1)",
    "a\x00b",
    "김민준",
    "สมชาย",
    "李伟",
    '"quoted"',
    "back\\slash",
    "line\nbreak",
    "😀",
    "",
    "{not json}",
    "[1, 2]",
    "null",
]
text_values = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.text(max_size=30), st.integers(10_000, 100_000).map(lambda n: "y" * n)
)
timestamps = st.integers(0, 30 * 24 * 3600).map(lambda s: T0 + timedelta(seconds=s))
PLACEHOLDER = "@@BAD-BYTES@@"  # replaced by bytes that are not UTF-8 once the item is serialised

# defect -> (field, strategy of values (absent: the key is dropped), reason fragment)
ABSENT = object()
COMMON_DEFECTS = {
    "no_id": ("id", st.just(ABSENT), "missing id"),
    "null_id": ("id", st.just(None), "missing id"),
    "bad_id": ("id", st.sampled_from(["abc", 1.5, True, {"a": 1}, [1], 10**30, float("nan")]), "bad id"),
    "no_updated_at": ("updated_at", st.just(ABSENT), "missing updated_at"),
    "bad_updated_at": (
        "updated_at",
        st.sampled_from(["yesterday", 12345, {"x": 1}, "infinity", "epoch", float("nan"), "2025-02-30T00:00:00Z"]),
        "bad updated_at",
    ),
    "not_utf8": (None, st.just(PLACEHOLDER), "invalid UTF-8"),
    "lone_surrogate": (None, st.sampled_from(["\ud800", "x\udfff"]), "invalid UTF-8"),
}
USER_DEFECTS = {
    **COMMON_DEFECTS,
    "object_name": ("name", st.sampled_from([{"first": "x"}, ["a", "b"]]), "bad name ("),
    "object_email": ("email", st.just({"$ne": None}), "bad email (object)"),
}
TICKET_DEFECTS = {
    **COMMON_DEFECTS,
    "string_via": ("via", st.sampled_from(["email", 5]), "bad via (not an object)"),
    "string_tags": ("tags", st.just("vip"), "bad tags (not an array)"),
    "bad_requester": ("requester_id", st.sampled_from(["x", 2.5]), "bad requester_id"),
    "array_subject": ("subject", st.just([1]), "bad subject (array)"),
}
NOT_OBJECTS = st.sampled_from([b"[1, 2]", b'"a string"', b"42", b"null", b"true", b"[]"])


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(item: dict) -> bytes:
    try:
        text = json.dumps(item, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: sent as the escape "\ud800", as a JSON encoder would
        text = json.dumps(item).encode()
    return text.replace(PLACEHOLDER.encode(), b"\xff\xfe")


@st.composite
def good_user(draw, i: int) -> tuple[dict, tuple]:
    ts = draw(timestamps)
    item = {
        "id": i,
        "name": draw(text_values),
        "email": draw(st.one_of(st.none(), text_values)),
        "phone": draw(st.one_of(st.none(), text_values)),
        "role": "end-user",
        "external_id": draw(st.one_of(st.none(), st.sampled_from(["17", "'; --"]))),
        "created_at": "2025-06-01T00:00:00Z",
        "updated_at": _iso(ts),
    }
    for key in draw(st.sets(st.sampled_from(["phone", "external_id", "created_at"]))):  # optional keys go
        del item[key]
    extra = draw(
        st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["locale", "ID", "user_fields"]),
                st.one_of(text_values, st.just({"a": [1]})),
                min_size=1,
            ),
        )
    )
    item.update(extra or {})
    expected = (
        i,
        item["name"],
        item["email"],
        item.get("phone"),
        "end-user",
        item.get("external_id"),
        datetime(2025, 6, 1) if "created_at" in item else None,
        ts,
        extra or None,
    )
    return item, expected


@st.composite
def good_ticket(draw, i: int) -> tuple[dict, tuple]:
    ts = draw(timestamps)
    tags = draw(st.lists(text_values, max_size=3))
    item = {
        "id": i,
        "requester_id": draw(st.integers(1, 10**12)),
        "assignee_id": None,
        "subject": draw(text_values),
        "status": "open",
        "priority": draw(st.sampled_from([None, "low", "urgent"])),
        "via": {"channel": "web"},
        "tags": tags,
        "satisfaction_rating": {"score": "good", "comment": draw(text_values)},
        "metric_set": {"reply_time_in_minutes": {"calendar": 3}, "reopens": 0},
        "created_at": "2025-06-01T00:00:00Z",
        "updated_at": _iso(ts),
    }
    return item, (i, item["requester_id"], item["subject"], tags, ts)


@st.composite
def exports(draw, kind: str):
    """Pages of one export: [(page items as bytes, [labels])]; labels: ("good", expected), ("dup",),
    ("bad", reason fragment)."""
    make_good, defects = (good_user, USER_DEFECTS) if kind == "users" else (good_ticket, TICKET_DEFECTS)
    pages, next_id, goods = [], 1, []
    for _p in range(draw(st.integers(1, 3))):
        items, labels = [], []
        for _k in range(draw(st.integers(1, 5))):
            item, expected = draw(make_good(next_id))
            next_id += 1
            # every page keeps at least one good item: a page where all items lack a field is schema drift
            defect = None if not items else draw(st.sampled_from([None, "dup", "not_object", *defects]))
            if defect is None:
                items.append(_encode(item))
                labels.append(("good", expected))
                goods.append(item)
            elif defect == "dup":  # an item seen before, again with the same updated_at
                items.append(_encode(draw(st.sampled_from(goods))))
                labels.append(("dup",))
            elif defect == "not_object":
                items.append(draw(NOT_OBJECTS))
                labels.append(("bad", "not a JSON object"))
            else:
                field, values, fragment = defects[defect]
                value = draw(values)
                if field is None:
                    field = "name" if kind == "users" else "subject"
                if value is ABSENT:
                    del item[field]
                else:
                    item[field] = value
                items.append(_encode(item))
                labels.append(("bad", fragment))
        pages.append((items, labels))
    return pages


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(users=exports("users"), tickets=exports("tickets"))
def test_hostile_items_are_quarantined_and_good_items_land_once(users, tickets):
    served = {
        kind: [export_page(kind, items, i, i == len(pages) - 1) for i, (items, _labels) in enumerate(pages)]
        for kind, pages in (("users", users), ("tickets", tickets))
    }
    with tempfile.TemporaryDirectory() as tmp, PageServer(served) as srv:
        cfg = make_settings(Path(tmp), extra=FAST_RETRY)
        con = duckdb.connect(config=cfg.duckdb_config())
        try:
            res = extract_helpdesk(con, cfg, run_id="fuzz", interval_end=END, base_url=srv.base_url)
            for kind, pages in (("users", users), ("tickets", tickets)):
                _check(con, res.tables[f"helpdesk_{kind}"], kind, pages)
            before = _snapshot(con)
            again = extract_helpdesk(con, cfg, run_id="fuzz-again", interval_end=END, base_url=srv.base_url)
            assert again.rows_read == 0  # resumed after the last page
            assert _snapshot(con) == before
        finally:
            con.close()


def _check(con, counts, kind: str, pages) -> None:
    table = f"helpdesk_{kind}"
    labels = [(i, k, lab) for i, (_items, labs) in enumerate(pages) for k, lab in enumerate(labs)]
    good = [lab[1] for _i, _k, lab in labels if lab[0] == "good"]
    bad = [(i, k, lab[1]) for i, k, lab in labels if lab[0] == "bad"]
    dups = [lab for _i, _k, lab in labels if lab[0] == "dup"]
    if kind == "users":
        landed = con.execute(
            "select id, name, email, phone, role, external_id, created_at, updated_at, _extra from raw.helpdesk_users"
        ).fetchall()
        landed = [(*r[:-1], json.loads(r[-1]) if r[-1] else None) for r in landed]
    else:
        landed = con.execute("select id, requester_id, subject, tags, updated_at from raw.helpdesk_tickets").fetchall()
        landed = [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in landed]
    assert sorted(landed, key=repr) == sorted(good, key=repr)
    rejects = con.execute(f"select location, reason from quarantine.{table}_rejects").fetchall()
    assert len(rejects) == len(bad), (rejects, bad)
    for i, k, fragment in bad:
        where = "start_time=0" if i == 0 else f"cursor=p{i}"
        reasons = [r for loc, r in rejects if loc == f"{kind} {where} item {k}"]
        assert len(reasons) == 1 and fragment in reasons[0], (i, k, fragment, rejects)
    assert (counts.rows_read, counts.rows_landed, counts.rows_quarantined, counts.rows_duplicate) == (
        len(labels),
        len(good),
        len(bad),
        len(dups),
    )


def _snapshot(con):
    tables = (
        "raw.helpdesk_users",
        "raw.helpdesk_tickets",
        "quarantine.helpdesk_users_rejects",
        "quarantine.helpdesk_tickets_rejects",
        "ops.extract_state",
    )
    return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in tables}
