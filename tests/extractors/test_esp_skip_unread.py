"""ESP extractor: files whose stat and content the warehouse remembers are skipped unread
(rapport.extractors.esp_file_stats), and every way a file can change still makes it read and land."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from extract_helpers import connect, make_settings

from rapport.extractors import esp as esp_module
from rapport.extractors import esp_file_stats
from rapport.extractors.errors import SourceCheckError
from rapport.extractors.esp import extract_esp

END = datetime(2025, 8, 2)
HEADER = "contact_id,email,first_name,last_name,status,created_at,updated_at"
SNAPSHOT = "contacts/contacts_20250801.csv"
ROWS = [
    "c1,min@example.com,Min,Kim,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z",
    "c2,som@example.co.th,Som,Chai,subscribed,2025-07-02T00:00:00Z,2025-07-02T00:00:00Z",
]
EVENTS = "events/dt=2025-08-01/hour=09/part-0001.jsonl"
EVENT_LINES = [
    '{"email": "min@example.com", "timestamp": 1754038800, "event": "open", "sg_event_id": "e1", '
    '"sg_message_id": "m1", "campaign_id": "cmp_1"}',
    '{"email": "min@example.com", "timestamp": 17540',  # truncated: quarantined
]


def _write_tree(root: Path) -> None:
    (root / "contacts").mkdir(parents=True)
    (root / SNAPSHOT).write_text("\n".join([HEADER, *ROWS]) + "\n")
    (root / EVENTS).parent.mkdir(parents=True)
    (root / EVENTS).write_text("\n".join(EVENT_LINES) + "\n")


@pytest.fixture
def esp(tmp_path, monkeypatch):
    """An export tree, a warehouse, and the paths read_file is called with (the real function runs)."""
    _write_tree(tmp_path / "esp")
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    reads: list[str] = []

    def spy(f):  # type: ignore[no-untyped-def]
        reads.append(f.rel)
        return esp_file_stats.read_file(f)

    monkeypatch.setattr(esp_module, "read_file", spy)
    yield tmp_path / "esp", settings, con, reads
    con.close()


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled at once (else they stay racy for RACY_S seconds)."""
    monkeypatch.setattr(esp_file_stats, "RACY_S", -60.0)


def _contacts(con) -> list[tuple]:  # type: ignore[no-untyped-def]
    return con.execute("select contact_id, email, status from raw.esp_contacts order by all").fetchall()


def test_a_rerun_reads_no_file_and_lands_nothing(esp, settled):
    root, settings, con, reads = esp
    first = extract_esp(con, settings, run_id="r1", interval_end=END)
    assert (first.rows_read, first.rows_landed, first.rows_quarantined) == (4, 3, 1)
    assert sorted(reads) == [SNAPSHOT, EVENTS]
    reads.clear()
    again = extract_esp(con, settings, run_id="r2", interval_end=END)
    assert reads == []
    assert (again.rows_read, again.rows_landed) == (0, 0)


def test_a_contact_changed_in_place_with_size_and_mtime_kept_is_read_and_lands(esp, settled):
    """rsync -t or cp -p restore the mtime of a rewritten file: its ctime still moves."""
    root, settings, con, reads = esp
    extract_esp(con, settings, run_id="r1", interval_end=END)
    path = root / SNAPSHOT
    before = path.stat()
    changed = ROWS[1].replace("@example.co.th", "@example.co.uk")  # same length: the file keeps its size
    path.write_text("\n".join([HEADER, ROWS[0], changed]) + "\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    reads.clear()
    res = extract_esp(con, settings, run_id="r2", interval_end=END)
    assert reads == [SNAPSHOT]
    # c2's same version (contact_id, updated_at) now has another email: the newer reading replaces it
    assert (res.tables["esp_contacts"].rows_read, res.tables["esp_contacts"].rows_landed) == (2, 1)
    assert _contacts(con) == [("c1", "min@example.com", "subscribed"), ("c2", "som@example.co.uk", "subscribed")]


def test_copied_files_are_hashed_once_then_skipped(esp, settled, tmp_path):
    root, settings, con, reads = esp
    extract_esp(con, settings, run_id="r1", interval_end=END)
    moved = tmp_path / "esp-moved"  # the export restored elsewhere: new inodes and times, same bytes
    shutil.copytree(root, moved)
    settings = make_settings(tmp_path, esp_root=moved)
    reads.clear()
    res = extract_esp(con, settings, run_id="r2", interval_end=END)
    assert sorted(reads) == [SNAPSHOT, EVENTS] and res.rows_read == 0
    reads.clear()
    extract_esp(con, settings, run_id="r3", interval_end=END)
    assert reads == []


def test_a_file_the_manifest_forgot_is_read_again(esp, settled):
    """A rollback deletes manifest rows, not the cache: the cache alone must not skip a file."""
    root, settings, con, reads = esp
    extract_esp(con, settings, run_id="r1", interval_end=END)
    con.execute("delete from ops.esp_manifest where path = ?", [EVENTS])
    reads.clear()
    res = extract_esp(con, settings, run_id="r2", interval_end=END)
    assert reads == [EVENTS]
    # read again: its event is a duplicate, its truncated line an exact re-rejection
    assert (res.rows_read, res.rows_landed, res.rows_duplicate) == (2, 0, 2)
    assert con.execute("select count(*) from ops.esp_manifest").fetchall() == [(2,)]


def test_files_modified_just_now_are_not_remembered(esp):
    """Within RACY_S of a file's last change its stat may not show the next one: read it again next run."""
    root, settings, con, reads = esp
    extract_esp(con, settings, run_id="r1", interval_end=END)
    assert con.execute("select count(*) from ops.esp_file_stats").fetchall() == [(0,)]
    reads.clear()
    extract_esp(con, settings, run_id="r2", interval_end=END)
    assert sorted(reads) == [SNAPSHOT, EVENTS]


EVENTS_2 = "events/dt=2025-08-01/hour=10/part-0001.jsonl"
LATER = "contacts/contacts_20250803.csv"  # due only at an interval ending on or after 2025-08-03


def _cached(con) -> list[str]:  # type: ignore[no-untyped-def]
    return [p for (p,) in con.execute("select path from ops.esp_file_stats order by path").fetchall()]


def test_files_removed_or_renamed_between_runs_leave_no_cache_rows(esp, settled, tmp_path):
    root, _settings, con, reads = esp
    # removing one of two event files is within the volume-drop limits (no warning stops the run)
    settings = make_settings(tmp_path, volume_drop_warn_pct=100.0)
    (root / EVENTS_2).parent.mkdir(parents=True)
    (root / EVENTS_2).write_text(EVENT_LINES[0].replace('"e1"', '"e2"') + "\n")
    (root / LATER).write_text("\n".join([HEADER, ROWS[0]]) + "\n")
    extract_esp(con, settings, run_id="r1", interval_end=datetime(2025, 8, 3))
    assert _cached(con) == [SNAPSHOT, LATER, EVENTS, EVENTS_2]

    (root / EVENTS_2).unlink()
    renamed = "contacts/contacts_20250731.csv"
    (root / SNAPSHOT).rename(root / renamed)
    reads.clear()
    # an earlier interval (a backfill): LATER is not due but still exists, so its row stays
    extract_esp(con, settings, run_id="r2", interval_end=END)
    assert reads == [renamed]  # the renamed file is new to the manifest; the unchanged events file is skipped
    assert _cached(con) == [renamed, LATER, EVENTS]

    reads.clear()
    extract_esp(con, settings, run_id="r3", interval_end=datetime(2025, 8, 3))
    assert reads == []  # every file left is remembered and unchanged: skipped unread
    assert _cached(con) == [renamed, LATER, EVENTS]


def test_an_emptied_export_root_stops_the_run_and_keeps_the_cache(esp, settled):
    root, settings, con, reads = esp
    extract_esp(con, settings, run_id="r1", interval_end=END)
    shutil.rmtree(root / "events")
    with pytest.raises(SourceCheckError, match="export files earlier"):
        extract_esp(con, settings, run_id="r2", interval_end=END)
    assert _cached(con) == [SNAPSHOT, EVENTS]
