"""Hostile ESP exports: webhook event files and contact, campaign and audience CSVs. The extractor never
crashes, quarantines every bad line with a reason at `<file>:<line>`, lands every good record exactly once
(webhook retries counted as duplicates), keeps unknown fields in `_extra`, and its counts reconcile.

Hypothesis writes the files byte by byte (gzip or plain, LF or CRLF, blank lines, bytes that are not UTF-8,
truncated JSON, unescaped NULs, junk objects where scalars belong, CSV rows with the wrong field count,
fields over the CSV reader's size limit, CSV-injection and SQL strings). Every record is labelled good or
with its defect, and its line number is tracked as the file is written; expectations come from the labels.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from extract_helpers import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.extractors.esp import extract_esp

pytestmark = pytest.mark.slow  # each runs for 5-20 s

END = datetime(2025, 8, 2)
T0 = datetime(2025, 7, 1)
HOSTILE_TEXT = [
    "'; drop table raw.esp_events; --",
    '=HYPERLINK("http://x","y")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-2+3",
    '"quoted", comma',
    "line\nbreak",
    "a\x00b",
    "김민준",
    "สมชาย",
    "李伟",
    "😀",
    "back\\slash",
    " ",
    "null",
]
text_values = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.text(max_size=30), st.integers(1_000, 50_000).map(lambda n: "z" * n)
)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------ webhook event files

EVENT_DEFECTS = {  # name -> (field or None, strategy of values (ABSENT drops the key), reason fragment)
    "no_id": ("sg_event_id", st.just("ABSENT"), "missing sg_event_id"),
    "no_event": ("event", st.sampled_from(["ABSENT", None]), "missing event"),
    "no_timestamp": ("timestamp", st.just("ABSENT"), "missing timestamp"),
    "bad_timestamp": (
        "timestamp",
        st.sampled_from(["soon", 1.5, {"a": 1}, True, float("nan"), 10**30]),
        "bad timestamp",
    ),
    "bad_machine_open": ("sg_machine_open", st.sampled_from(["maybe", 2, [True]]), "bad sg_machine_open"),
    "bad_group": ("asm_group_id", st.sampled_from(["x", -0.5]), "bad asm_group_id"),
    "object_email": ("email", st.sampled_from([{"a": 1}, ["x@y"]]), "bad email ("),
}


@st.composite
def event_files(draw):
    """[(relative path, bytes, [(line number, label)])]; labels ("good", expected row), ("dup",),
    ("bad", reason fragment)."""
    files, goods, next_id, hour = [], [], 0, 0
    for n in range(draw(st.integers(1, 3))):
        hour = draw(st.integers(hour, 23))  # files in the order the extractor reads them: first copies first
        rel = f"events/dt=2025-08-01/hour={hour:02d}/part-{n:04d}.jsonl" + draw(st.sampled_from(["", ".gz"]))
        eol = draw(st.sampled_from([b"\n", b"\r\n"]))
        lines: list[bytes] = []
        labels: list[tuple[int, tuple]] = []
        for k in range(draw(st.integers(1, 6))):
            if draw(st.booleans()) and lines:
                lines.append(draw(st.sampled_from([b"", b"   ", b"\t"])))  # blank: not a record
            next_id += 1
            event = {
                "email": draw(text_values),
                "timestamp": 1754006400 + draw(st.integers(0, 86_000)),
                "event": draw(st.sampled_from(["delivered", "open", "click", "bounce"])),
                "sg_event_id": f"ev-{next_id}-" + draw(st.sampled_from(["", "'; --", "=1+1", "ü"])),
                "sg_message_id": draw(text_values),
                "campaign_id": "cmp_1",
            }
            if draw(st.booleans()):
                event.update(sg_machine_open=draw(st.booleans()), asm_group_id=draw(st.integers(0, 10**6)))
            extra_values = st.one_of(text_values, st.lists(st.integers(-(10**15), 10**15)))
            extra = draw(
                st.one_of(
                    st.none(), st.dictionaries(st.sampled_from(["tls", "Event", "category"]), extra_values, min_size=1)
                )
            )
            event.update(extra or {})
            # the first record of a file is good: a file none of whose records has a field is schema drift
            kind = (
                "good"
                if k == 0
                else draw(
                    st.sampled_from(
                        [
                            "good",
                            "good",
                            "dup",
                            "retry",
                            "truncated",
                            "not_utf8",
                            "raw_nul",
                            "lone_surrogate",
                            "not_object",
                            *EVENT_DEFECTS,
                        ]
                    )
                )
            )
            line_no = len(lines) + 1
            if kind == "good":
                line = json.dumps(event, ensure_ascii=draw(st.booleans())).encode()
                expected = (
                    event["sg_event_id"],
                    event["email"],
                    event["timestamp"],
                    event["event"],
                    event.get("sg_machine_open"),
                    event.get("asm_group_id"),
                    extra or None,
                    f"{rel}:{line_no}",
                )
                goods.append(line)
                labels.append((line_no, ("good", expected)))
            elif kind == "dup":  # a webhook retry of an event already written, maybe in an earlier file
                line = draw(st.sampled_from(goods))
                labels.append((line_no, ("dup",)))
            elif kind == "retry":  # the same event id again with other content: still the same event
                first = json.loads(draw(st.sampled_from(goods)))
                line = json.dumps({**first, "email": "RETRY@example.com"}).encode()
                labels.append((line_no, ("dup",)))
            else:
                line = _bad_line(draw, kind, event)
                labels.append((line_no, ("bad", _REASONS.get(kind) or EVENT_DEFECTS[kind][2])))
            lines.append(line)
        body = b"".join(line + eol for line in lines)
        files.append((rel, gzip.compress(body, mtime=0) if rel.endswith(".gz") else body, labels))
    return files


_REASONS = {
    "truncated": "invalid JSON",
    "not_utf8": "invalid UTF-8",
    "raw_nul": "invalid JSON",
    "lone_surrogate": "invalid JSON",
    "not_object": "not a JSON object",
}


def _bad_line(draw, kind: str, event: dict) -> bytes:
    text = json.dumps(event).encode()
    if kind == "truncated":
        return text[: draw(st.integers(1, len(text) - 1))].rstrip()
    if kind == "not_utf8":
        return text.replace(b'"email": ', b'"email": "\xff\xfe", "x": ', 1)
    if kind == "raw_nul":  # a control character inside a string must be escaped in JSON
        return text.replace(b'"cmp_1"', b'"cmp\x00_1"')
    if kind == "lone_surrogate":
        return text.replace(b'"cmp_1"', b'"\\ud800cmp"')
    if kind == "not_object":
        return draw(st.sampled_from([b"[1, 2]", b'"event"', b"42", b"null", b"[]"]))
    field, values, _reason = EVENT_DEFECTS[kind]
    value = draw(values)
    event = dict(event)
    if value == "ABSENT":
        event.pop(field, None)
    else:
        event[field] = value
    return json.dumps(event).encode()


@FUZZ
@given(event_files())
def test_hostile_event_lines_are_quarantined_with_file_and_line(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "esp"
        for rel, data, _labels in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        cfg = make_settings(Path(tmp), extra={"esp_batch_files": 2})  # several batches
        con = duckdb.connect(config=cfg.duckdb_config())
        try:
            res = extract_esp(con, cfg, run_id="fuzz", interval_end=END)
            records = [(rel, line, lab) for rel, _d, labels in files for line, lab in labels]
            good = [lab[1] for _r, _l, lab in records if lab[0] == "good"]
            landed = con.execute(
                "select sg_event_id, email, timestamp, event, sg_machine_open, asm_group_id, "
                "_extra, _source from raw.esp_events"
            ).fetchall()
            landed = [(*r[:6], json.loads(r[6]) if r[6] else None, r[7]) for r in landed]
            assert sorted(landed, key=repr) == sorted(good, key=repr)
            bad = [(f"{rel}:{line}", lab[1]) for rel, line, lab in records if lab[0] == "bad"]
            rejects = con.execute("select location, reason from quarantine.esp_events_rejects").fetchall()
            assert len(rejects) == len(bad), (rejects, bad)
            for location, fragment in bad:
                assert [r for loc, r in rejects if loc == location and fragment in r], (location, fragment, rejects)
            c = res.tables["esp_events"]
            n_dup = sum(lab[0] == "dup" for _r, _l, lab in records)
            assert (c.rows_read, c.rows_landed, c.rows_quarantined, c.rows_duplicate) == (
                len(records),
                len(good),
                len(bad),
                n_dup,
            )
        finally:
            con.close()


# ------------------------------------------------------------------ CSV exports

CONTACTS_HEADER = ["contact_id", "email", "first_name", "last_name", "status", "created_at", "updated_at"]
CAMPAIGNS_HEADER = [
    "campaign_id",
    "name",
    "subject",
    "send_at",
    "target_segment",
    "holdout_pct",
    "cost",
    "cost_currency",
]


def _csv_line(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


@st.composite
def csv_file(draw, header: list[str], make_good, defects: dict, *, extra_column: bool = True):
    """(bytes, [(line, label)]): a header (maybe with an unknown column) and labelled rows."""
    cols = header + (["vip"] if extra_column and draw(st.booleans()) else [])
    out = [_csv_line(cols).encode()]
    line = 2
    labels = []
    for i in range(draw(st.integers(1, 6))):
        row, expected = draw(make_good(i))
        if "vip" in cols:
            row = [*row, "yes"]
            expected = (*expected, {"vip": "yes"})
        elif extra_column:
            expected = (*expected, None)
        kind = draw(st.sampled_from([None, None, *defects]))
        if kind is None:
            text = _csv_line(row).encode()
            labels.append((line, ("good", expected)))
        else:
            text, fragment = defects[kind](draw, row)
            labels.append((line, ("bad", fragment)))
        out.append(text)
        line += text.count(b"\n")
    return b"".join(out), labels


def _csv_defects(required: int, typed: int | None = None, typed_name: str = "") -> dict:
    """Defects of a CSV row: `required` is a required column's index, `typed` a typed column's index."""

    def short(draw, row):
        return _csv_line(row[: draw(st.integers(1, len(row) - 1))]).encode(), "fields, got"

    def long(_draw, row):
        return _csv_line([*row, "surplus"]).encode(), "fields, got"

    def not_utf8(_draw, row):  # on one physical line: the line is what cannot be decoded
        row = [f.replace("\n", " ") for f in row]
        return _csv_line(row).encode().replace(b",", b",\xff", 1), "invalid UTF-8"

    def missing(_draw, row):
        return _csv_line([*row[:required], "", *row[required + 1 :]]).encode(), "missing"

    def untypable(draw, row):
        value = draw(st.sampled_from(["soon", "NaN", "infinity", "'; drop table x; --"]))
        return _csv_line([*row[:typed], value, *row[typed + 1 :]]).encode(), f"bad {typed_name}"

    def huge(_draw, row):  # over the CSV reader's field limit (128 KiB); the reader goes on at the next line,
        # so a record that also spans lines would leave its other lines to be rejected on their own
        row = [f.replace("\n", " ") for f in row]
        return _csv_line([*row[:1], "h" * 140_000, *row[2:]]).encode(), "unreadable CSV record"

    defects = {"short": short, "long": long, "not_utf8": not_utf8, "missing": missing, "huge": huge}
    return defects if typed is None else {**defects, "untypable": untypable}


def _csv_text(draw) -> tuple[str, str | None]:
    """A field's text and the value it lands as ('' is read as NULL in CSV exports)."""
    value = draw(text_values).replace("\r", "")  # a lone CR inside a field is a line break to the reader
    return value, (value or None)


@st.composite
def contact(draw, i: int):
    email, email_x = _csv_text(draw)
    first, first_x = _csv_text(draw)
    ts = T0 + timedelta(seconds=draw(st.integers(0, 10**6)))
    row = [f"c{i}", email, first, "Lee", "subscribed", "2025-06-01T00:00:00Z", ts.strftime("%Y-%m-%d %H:%M:%S")]
    return row, (f"c{i}", email_x, first_x, "subscribed", ts, date(2025, 8, 1))


@st.composite
def campaign(draw, i: int):
    name, name_x = _csv_text(draw)
    pct = draw(st.integers(0, 100))
    cents = draw(st.integers(0, 10**8))
    row = [f"cmp_{i}", name, "Hello", "2025-08-01T09:00:00Z", "all buyers", str(pct), f"{cents / 100:.2f}", "USD"]
    return row, (f"cmp_{i}", name_x, datetime(2025, 8, 1, 9), float(pct), Decimal(cents) / 100)


@st.composite
def member(draw, i: int):
    email, email_x = _csv_text(draw)
    email = f"{i}:{email}"  # the natural key is (campaign, email): members are distinct
    group = draw(st.sampled_from(["treatment", "control"]))
    return [email, group], (f"{i}:{email_x or ''}", group)


@FUZZ
@given(
    contacts=csv_file(CONTACTS_HEADER, contact, _csv_defects(0, 6, "updated_at")),
    campaigns=csv_file(CAMPAIGNS_HEADER, campaign, _csv_defects(0, 5, "holdout_pct")),
    audience=csv_file(["email", "group"], member, _csv_defects(1), extra_column=False),
)
def test_hostile_csv_rows_are_quarantined_with_file_and_line(contacts, campaigns, audience):
    exports = {
        "contacts/contacts_20250801.csv": ("esp_contacts", contacts),
        "campaigns/campaigns_20250801.csv": ("esp_campaigns", campaigns),
        "audiences/cmp_1.csv": ("esp_audiences", audience),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "esp"
        for rel, (_table, (data, _labels)) in exports.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        cfg = make_settings(Path(tmp))
        con = duckdb.connect(config=cfg.duckdb_config())
        try:
            res = extract_esp(con, cfg, run_id="fuzz", interval_end=END)
            queries = {
                "esp_contacts": "select contact_id, email, first_name, status, updated_at, snapshot_date, _extra",
                "esp_campaigns": "select campaign_id, name, send_at, holdout_pct, cost, _extra",
                "esp_audiences": 'select email, "group"',
            }
            for rel, (table, (_data, labels)) in exports.items():
                rows = con.execute(f"{queries[table]} from raw.{table}").fetchall()
                if table != "esp_audiences":
                    rows = [(*r[:-1], json.loads(r[-1]) if r[-1] else None) for r in rows]
                good = [lab[1] for _ln, lab in labels if lab[0] == "good"]
                assert sorted(rows, key=repr) == sorted(good, key=repr), table
                bad = [(f"{rel}:{ln}", lab[1]) for ln, lab in labels if lab[0] == "bad"]
                rejects = con.execute(f"select location, reason from quarantine.{table}_rejects").fetchall()
                assert len(rejects) == len(bad), (table, rejects, bad)
                for location, fragment in bad:
                    assert [r for loc, r in rejects if loc == location and fragment in r], (location, fragment, rejects)
                c = res.tables[table]
                assert (c.rows_read, c.rows_landed, c.rows_quarantined, c.rows_duplicate) == (
                    len(labels),
                    len(good),
                    len(bad),
                    0,
                ), table
        finally:
            con.close()
