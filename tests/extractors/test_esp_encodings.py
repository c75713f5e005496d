"""ESP files as Windows tools write them (issue #17): a UTF-8 byte-order mark, CRLF line ends, UTF-16; and
files in another encoding, whose undecodable lines are quarantined naming the encoding they look like."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from extract_helpers import connect, make_settings

from rapport.extractors.errors import SchemaDriftError
from rapport.extractors.esp import extract_esp

END = datetime(2025, 8, 2)
CONTACTS = [
    "contact_id,email,first_name,last_name,status,created_at,updated_at",
    "c1,min@example.com,민준,김,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z",
    "c2,helene@example.fr,Hélène,Dubois,subscribed,2025-07-02T00:00:00Z,2025-07-02T00:00:00Z",
]
CAMPAIGNS = [
    "campaign_id,name,subject,send_at,target_segment,holdout_pct,cost,cost_currency",
    "cmp_1,Été,Soldes,2025-08-01T09:00:00Z,all,10,12.5,EUR",
]
AUDIENCE = ["email,group", "min@example.com,treatment", "helene@example.fr,control"]
EVENTS = [
    json.dumps(
        {
            "email": "min@example.com",
            "timestamp": 1754038800 + i,
            "event": "delivered",
            "sg_event_id": f"e{i}",
            "sg_message_id": "m",
            "campaign_id": "cmp_1",
        }
    )
    for i in range(3)
]
FILES = {
    "contacts/contacts_20250801.csv": CONTACTS,
    "campaigns/campaigns_20250801.csv": CAMPAIGNS,
    "audiences/cmp_1.csv": AUDIENCE,
    "events/dt=2025-08-01/hour=09/part-0000.jsonl": EVENTS,
}
LANDED = {"esp_contacts": 2, "esp_campaigns": 1, "esp_audiences": 2, "esp_events": 3}


def _write(root: Path, encode, gz: bool) -> None:
    for rel, lines in FILES.items():
        path = root / (rel + ".gz" if gz and rel.endswith(".jsonl") else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = encode("\r\n".join(lines) + "\r\n")
        path.write_bytes(gzip.compress(data) if gz and rel.endswith(".jsonl") else data)


def _extract(tmp_path: Path):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    res = extract_esp(con, settings, run_id="r1", interval_end=END)
    return con, res


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
@pytest.mark.parametrize("gz", [False, True])
def test_byte_order_marks_and_crlf_read_like_plain_utf8(tmp_path, encoding, gz):
    _write(tmp_path / "esp", lambda text: text.encode(encoding), gz)
    con, res = _extract(tmp_path)
    assert {t: (c.rows_landed, c.rows_quarantined) for t, c in res.tables.items()} == {
        t: (n, 0) for t, n in LANDED.items()
    }
    assert con.execute("select first_name from raw.esp_contacts order by contact_id").fetchall() == [
        ("민준",),
        ("Hélène",),
    ]
    assert con.execute("select name from raw.esp_campaigns").fetchall() == [("Été",)]  # no '\r' left anywhere
    assert con.execute("select count(*) from raw.esp_events where email = 'min@example.com'").fetchall() == [(3,)]
    con.close()


@pytest.mark.parametrize("encoding, looks_like", [("cp1252", r"cp125\d"), ("euc-kr", "cp949")])
def test_a_file_in_a_legacy_encoding_names_it_in_the_reason(tmp_path, encoding, looks_like):
    # charset-normalizer's guess: cp1250 and cp1252 share most letters, so either may be named for French
    root = tmp_path / "esp"
    path = root / "contacts" / "contacts_20250801.csv"
    path.parent.mkdir(parents=True)
    korean = [("민준", "김"), ("서연", "이")]
    names = korean if encoding == "euc-kr" else [("Hélène", "Dubois"), ("François", "Lefèvre")]
    lines = [CONTACTS[0], "c0,ascii@example.com,Ann,Lee,subscribed,2025-07-01T00:00:00Z,2025-07-01T00:00:00Z"] + [
        f"c{i},p{i}@example.com,{first},{last},subscribed,2025-07-03T00:00:00Z,2025-07-03T00:00:00Z"
        for i, (first, last) in enumerate(names, start=1)
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    con, res = _extract(tmp_path)
    rejects = con.execute("select location, reason from quarantine.esp_contacts_rejects order by 1").fetchall()
    assert [loc for loc, _ in rejects] == [f"contacts/contacts_20250801.csv:{n}" for n in (3, 4)]
    for _loc, reason in rejects:
        assert re.fullmatch(rf"invalid UTF-8 \(the file looks like {looks_like}: export it as UTF-8\)", reason)
    assert res.tables["esp_contacts"].rows_landed == 1  # the ASCII line is valid UTF-8
    con.close()


def test_one_damaged_line_among_utf8_ones_is_not_called_another_encoding(tmp_path):
    root = tmp_path / "esp"
    path = root / "events" / "dt=2025-08-01" / "hour=09" / "part-0000.jsonl"
    path.parent.mkdir(parents=True)
    good = [line.replace("min@", "민준@").encode() for line in EVENTS]
    path.write_bytes(b"\n".join([good[0], b'{"email": "\xff\xfe@example.com"}', *good[1:]]) + b"\n")
    con, _res = _extract(tmp_path)
    assert con.execute("select location, reason from quarantine.esp_events_rejects").fetchall() == [
        ("events/dt=2025-08-01/hour=09/part-0000.jsonl:2", "invalid UTF-8")
    ]
    con.close()


def test_an_unreadable_header_names_the_encoding(tmp_path):
    root = tmp_path / "esp"
    path = root / "audiences" / "cmp_1.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes("correo electrónico,grupo\nmaría@example.es,tratamiento\n".encode("cp1252"))
    with pytest.raises(SchemaDriftError, match=r"header line \(1\) is not valid UTF-8 \(the file looks like cp125"):
        _extract(tmp_path)
