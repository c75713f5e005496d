"""ESP extractor on a hand-made export tree: manifest, late and changed files, dedup, quarantine, snapshots."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from extract_helpers import checksums, connect, make_settings

from rapport.extractors.esp import extract_esp

DAY1_END = datetime(2025, 8, 2)
DAY2_END = datetime(2025, 8, 3)
HOUR9 = "events/dt=2025-08-01/hour=09"

CONTACTS_HEADER = "contact_id,email,first_name,last_name,status,created_at,updated_at"


def ev(eid: str, event: str = "delivered", **kw) -> str:
    e = {
        "email": "Min@Example.com",
        "timestamp": 1754038800,
        "event": event,
        "sg_event_id": eid,
        "sg_message_id": "msg-1",
        "campaign_id": "cmp_1",
    }
    e.update(kw)
    return json.dumps(e, ensure_ascii=False)


def write_gz(path: Path, lines: list[str | bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines)
    path.write_bytes(gzip.compress(body))


def build_tree(root: Path) -> None:
    (root / "contacts").mkdir(parents=True)
    (root / "campaigns").mkdir()
    (root / "audiences").mkdir()
    (root / "contacts" / "contacts_20250801.csv").write_text(
        "\n".join(
            [
                CONTACTS_HEADER,
                "c1,Min@Example.com,민준,김,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z",
                "c2,som+news@example.co.th,สมชาย,ใจดี,subscribed,2025-07-02T00:00:00Z,2025-07-02T00:00:00Z",
                "c3,li@example.cn,伟,李,subscribed,2025-07-03T00:00:00Z,not-a-time",
                "c4,short,row",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    (root / "contacts" / "contacts_20250802.csv").write_text(
        "\n".join(
            [
                CONTACTS_HEADER,
                "c1,Min@Example.com,민준,김,unsubscribed,2025-07-01T00:00:00Z,2025-08-01T10:00:00Z",
                # same version as on 08-01 apart from its status: the newer snapshot wins
                "c2,som+news@example.co.th,สมชาย,ใจดี,cleaned,2025-07-02T00:00:00Z,2025-07-02T00:00:00Z",
                "c3,li@example.cn,伟,李,subscribed,2025-07-03T00:00:00Z,2025-07-03T00:00:00Z",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    (root / "contacts" / "contacts_20250803.csv").write_text(  # after DAY1_END
        CONTACTS_HEADER + "\nc5,new@example.com,N,E,subscribed,2025-08-02T00:00:00Z,2025-08-02T00:00:00Z\n"
    )
    (root / "campaigns" / "campaigns_20250801.csv").write_text(
        "campaign_id,name,subject,send_at,target_segment,holdout_pct,cost,cost_currency,owner\n"
        'cmp_1,"Summer, sale","Hi ""friend""",2025-08-01T09:00:00Z,all buyers,10,1250.50,USD,kim\n'
        "cmp_2,Autumn,Hello,2025-08-01T09:00:00Z,all,10,a lot,USD,lee\n"
    )
    (root / "audiences" / "cmp_1.csv").write_text("email,group\nMin@Example.com,treatment\nsom@example.co.th,control\n")
    write_gz(
        root / HOUR9 / "part-0001.jsonl.gz",
        [
            ev("e1"),
            ev("e2", "open", sg_machine_open=True, useragent="Mozilla/5.0", ip="10.0.0.1", tls=1),
            '{"email": "x@example.com", "timestamp": 17540',  # truncated line
            ev("e3", "click", url="https://shop.example/p/1"),
            "",
            "[1, 2]",
        ],
    )
    write_gz(
        root / HOUR9 / "part-0002.jsonl.gz",
        [  # a webhook retry re-sent e2
            ev("e2", "open", sg_machine_open=True, useragent="Mozilla/5.0", ip="10.0.0.1", tls=1),
            ev("e4", "bounce", type="blocked", reason="550 spam"),
            b'{"email": "\xff\xfe@example.com", "event": "open", "sg_event_id": "e9"}',  # invalid UTF-8
        ],
    )
    write_gz(root / "events/dt=2025-08-02/hour=00/part-0001.jsonl.gz", [ev("e7", "open")])  # after DAY1_END


@pytest.fixture
def esp(tmp_path):
    build_tree(tmp_path / "esp")
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    yield tmp_path / "esp", settings, con
    con.close()


def _counts(res, table):
    c = res.tables[table]
    return c.rows_read, c.rows_landed, c.rows_quarantined, c.rows_duplicate


def test_first_run_loads_due_files_dedups_and_quarantines_with_location(esp):
    root, settings, con = esp
    res = extract_esp(con, settings, run_id="r1", interval_end=DAY1_END)
    # events: 5 non-blank lines + 3 lines; e2 twice; truncated, non-object and invalid UTF-8 lines rejected
    assert _counts(res, "esp_events") == (8, 4, 3, 1)
    assert sorted(r[0] for r in con.execute("select sg_event_id from raw.esp_events").fetchall()) == [
        "e1",
        "e2",
        "e3",
        "e4",
    ]
    assert con.execute("select location, reason from quarantine.esp_events_rejects order by 1").fetchall() == [
        (f"{HOUR9}/part-0001.jsonl.gz:3", "invalid JSON"),
        (f"{HOUR9}/part-0001.jsonl.gz:6", "not a JSON object"),
        (f"{HOUR9}/part-0002.jsonl.gz:3", "invalid UTF-8"),
    ]
    assert con.execute("select raw from quarantine.esp_events_rejects where reason = 'invalid UTF-8'").fetchall() == [
        ('{"email": "\\xff\\xfe@example.com", "event": "open", "sg_event_id": "e9"}',)
    ]
    assert con.execute(
        "select sg_machine_open, useragent, _extra, _source from raw.esp_events where sg_event_id = 'e2'"
    ).fetchall() == [(True, "Mozilla/5.0", '{"tls":1}', f"{HOUR9}/part-0001.jsonl.gz:2")]
    assert con.execute("select type, reason from raw.esp_events where sg_event_id = 'e4'").fetchall() == [
        ("blocked", "550 spam")
    ]
    # contacts: 4 rows on 08-01 (c3 untypable, c4 short), 3 on 08-02 (c1 new version, c2 changed, c3 fixed).
    # Both files land in one batch, where c2's 08-01 version is superseded by its 08-02 one: a duplicate.
    assert _counts(res, "esp_contacts") == (7, 4, 2, 1)
    assert con.execute(
        "select contact_id, status, snapshot_date from raw.esp_contacts order by contact_id, updated_at"
    ).fetchall() == [
        ("c1", "subscribed", date(2025, 8, 1)),
        ("c1", "unsubscribed", date(2025, 8, 2)),
        ("c2", "cleaned", date(2025, 8, 2)),
        ("c3", "subscribed", date(2025, 8, 2)),
    ]
    assert con.execute("select location, reason, raw from quarantine.esp_contacts_rejects order by 1").fetchall() == [
        (
            "contacts/contacts_20250801.csv:4",
            "bad updated_at (not-a-time)",
            '{"contact_id":"c3","email":"li@example.cn","first_name":"伟","last_name":"李","status":"subscribed",'
            '"created_at":"2025-07-03T00:00:00Z","updated_at":"not-a-time"}',
        ),
        ("contacts/contacts_20250801.csv:5", "expected 7 fields, got 3", "c4,short,row"),
    ]
    assert _counts(res, "esp_campaigns") == (2, 1, 1, 0)
    assert con.execute("select name, subject, cost, _extra from raw.esp_campaigns").fetchall() == [
        ("Summer, sale", 'Hi "friend"', pytest.approx(1250.50), '{"owner":"kim"}')
    ]
    assert _counts(res, "esp_audiences") == (2, 2, 0, 0)
    assert con.execute('select campaign_id, email, "group" from raw.esp_audiences order by 3').fetchall() == [
        ("cmp_1", "som@example.co.th", "control"),
        ("cmp_1", "Min@Example.com", "treatment"),
    ]
    # every due file is in the manifest once; files after the interval are not
    manifest = dict(con.execute("select path, rows_read from ops.esp_manifest").fetchall())
    assert manifest == {
        "contacts/contacts_20250801.csv": 4,
        "contacts/contacts_20250802.csv": 3,
        "campaigns/campaigns_20250801.csv": 2,
        "audiences/cmp_1.csv": 2,
        f"{HOUR9}/part-0001.jsonl.gz": 5,
        f"{HOUR9}/part-0002.jsonl.gz": 3,
    }
    assert res.rows_read == res.rows_landed + res.rows_quarantined + res.rows_duplicate == 19
    assert con.execute(
        "select rows_read, rows_landed, rows_quarantined, rows_duplicate from ops.extraction_log "
        """where run_id = 'r1' and source = 'esp' and "table" = 'esp_events'"""
    ).fetchall() == [(8, 4, 3, 1)]


def test_reruns_read_nothing_and_change_nothing(esp):
    root, settings, con = esp
    extract_esp(con, settings, run_id="d1", interval_end=DAY1_END)
    extract_esp(con, settings, run_id="d2", interval_end=DAY2_END)
    before = checksums(con)
    again = extract_esp(con, settings, run_id="d2-again", interval_end=DAY2_END)
    assert again.rows_read == 0
    extract_esp(con, settings, run_id="d1-backfill", interval_end=DAY1_END)
    assert checksums(con) == before


def test_next_interval_picks_up_its_partitions_and_snapshots(esp):
    root, settings, con = esp
    extract_esp(con, settings, run_id="d1", interval_end=DAY1_END)
    res = extract_esp(con, settings, run_id="d2", interval_end=DAY2_END)
    assert _counts(res, "esp_events") == (1, 1, 0, 0)
    assert _counts(res, "esp_contacts") == (1, 1, 0, 0)
    assert con.execute("select count(*) from raw.esp_events").fetchall() == [(5,)]


def test_late_file_is_loaded_and_changed_file_reloaded_without_double_counting(esp):
    root, settings, con = esp
    extract_esp(con, settings, run_id="r1", interval_end=DAY1_END)
    # a late file lands in an old partition: one new event, one retry of e1
    write_gz(root / HOUR9 / "part-0003.jsonl.gz", [ev("e5", "open"), ev("e1")])
    # and part-0001 is rewritten with its truncated line repaired and an event appended
    write_gz(
        root / HOUR9 / "part-0001.jsonl.gz",
        [
            ev("e1"),
            ev("e2", "open", sg_machine_open=True, useragent="Mozilla/5.0", ip="10.0.0.1", tls=1),
            ev("e8", "open"),
            ev("e3", "click", url="https://shop.example/p/1"),
            "",
            "[1, 2]",
            ev("e6", "click"),
        ],
    )
    res = extract_esp(con, settings, run_id="r2", interval_end=DAY1_END)
    # part-0001 again: 6 records (e8, e6 new; e1, e2, e3 landed before; [1, 2] quarantined before); part-0003: 2
    assert _counts(res, "esp_events") == (8, 3, 0, 5)
    assert sorted(r[0] for r in con.execute("select sg_event_id from raw.esp_events").fetchall()) == [
        "e1",
        "e2",
        "e3",
        "e4",
        "e5",
        "e6",
        "e8",
    ]
    size, rows_read = con.execute(
        f"select size, rows_read from ops.esp_manifest where path = '{HOUR9}/part-0001.jsonl.gz'"
    ).fetchall()[0]
    assert size == (root / HOUR9 / "part-0001.jsonl.gz").stat().st_size and rows_read == 6
    assert con.execute("select count(*) from ops.esp_manifest").fetchall() == [(7,)]


def test_an_older_snapshot_arriving_late_does_not_win(esp):
    root, settings, con = esp
    extract_esp(con, settings, run_id="r1", interval_end=DAY1_END)
    (root / "contacts" / "contacts_20250731.csv").write_text(  # c2 as it was before it was cleaned
        CONTACTS_HEADER + "\nc2,som+news@example.co.th,สมชาย,ใจดี,subscribed,2025-07-02T00:00:00Z,"
        "2025-07-02T00:00:00Z\n",
        encoding="utf-8",
    )
    res = extract_esp(con, settings, run_id="r2", interval_end=DAY1_END)
    assert _counts(res, "esp_contacts") == (1, 0, 0, 1)
    assert con.execute("select status, snapshot_date from raw.esp_contacts where contact_id = 'c2'").fetchall() == [
        ("cleaned", date(2025, 8, 2))
    ]


def test_missing_root_fails_clearly(tmp_path):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    with pytest.raises(FileNotFoundError, match="ESP export root"):
        extract_esp(con, settings, run_id="r", interval_end=DAY1_END)
    con.close()
