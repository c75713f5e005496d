"""Source checks at extraction (issue #17): a source that lost what earlier runs landed from it, records dated
in the future, freshness. Hand-made sources; expected counts and times worked out by hand."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from extract_helpers import TOKEN, connect, make_settings, write_shop
from hypothesis import given
from hypothesis import strategies as st
from test_esp_extract import build_tree
from test_helpdesk_extract import _data, _user

from rapport.demo.helpdesk_server import HelpdeskData, serve_helpdesk
from rapport.extractors.errors import FatalSourceError, SourceCheckError
from rapport.extractors.esp import extract_esp
from rapport.extractors.helpdesk import extract_helpdesk
from rapport.extractors.orders import extract_orders
from rapport.extractors.schemas import raw_ddl
from rapport.extractors.source_health import FUTURE_REASON, drop_severity, freshness_findings

DAY1_END = datetime(2025, 8, 2)
DAY2_END = datetime(2025, 8, 3)


# ---------------------------------------------------------------- ESP: files that disappeared


@pytest.fixture
def esp(tmp_path):
    build_tree(tmp_path / "esp")
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    extract_esp(con, settings, run_id="r1", interval_end=DAY1_END)  # loads 6 files (see test_esp_extract)
    yield tmp_path / "esp", settings, con
    con.close()


def test_an_emptied_esp_root_stops_before_anything_lands(esp):
    root, settings, con = esp
    assert con.execute("select count(*) from ops.esp_manifest").fetchall() == [(6,)]
    shutil.rmtree(root)
    root.mkdir()  # an empty mount point
    with pytest.raises(SourceCheckError) as err:
        extract_esp(con, settings, run_id="r2", interval_end=DAY2_END)
    assert str(err.value).startswith(
        f"esp: RAPPORT_ESP_ROOT ({root}) holds 0 of the 6 export files earlier runs loaded (audiences/ 0 of 1, "
        "campaigns/ 0 of 1, contacts/ 0 of 2, events/ 0 of 2) (100% fewer): is the folder unmounted"
    )
    assert "RAPPORT_VOLUME_DROP_ERROR_PCT (now 100)" in str(err.value)
    assert isinstance(err.value, FatalSourceError)  # not retried
    assert con.execute("select count(*) from ops.extraction_log where run_id = 'r2'").fetchall() == [(4,)]


def test_a_vanished_export_folder_is_an_error_a_few_missing_files_a_warning(esp):
    root, settings, con = esp
    (root / "events/dt=2025-08-01/hour=09/part-0002.jsonl.gz").unlink()  # 1 of 6 files: 17% fewer
    res = extract_esp(con, settings, run_id="r2", interval_end=DAY1_END)
    assert [(f.severity, f.message) for f in res.findings] == [
        (
            "warn",
            f"RAPPORT_ESP_ROOT ({root}) holds 5 of the 6 export files earlier runs loaded (events/ 1 of 2) "
            "(17% fewer, RAPPORT_VOLUME_DROP_WARN_PCT=10): is the folder unmounted, or were files removed? "
            "Restore them and rerun",
        )
    ]
    shutil.rmtree(root / "audiences")  # a whole kind gone: 2 of 6 missing overall, but audiences/ holds none
    with pytest.raises(SourceCheckError, match=r"holds 4 of the 6 .*audiences/ 0 of 1, events/ 1 of 2"):
        extract_esp(con, settings, run_id="r3", interval_end=DAY1_END)


# ---------------------------------------------------------------- orders: emptied tables, future dates


def _order(oid: int, updated: str, total: float = 10.0) -> tuple:
    return (
        oid,
        None,
        f"o{oid}@example.com",
        None,
        "paid",
        "USD",
        total,
        0,
        0,
        0,
        total,
        0,
        None,
        None,
        None,
        None,
        "2025-08-01T00:00:00Z",
        updated,
        None,
    )


@pytest.fixture
def shop(tmp_path):
    write_shop(
        tmp_path / "shop.db",
        orders=[_order(i, f"2025-08-01T0{i}:00:00Z") for i in range(1, 5)],
        fx=[("2025-08-01", "USD", 1)],
    )
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)
    yield tmp_path, settings, con
    con.close()


def _delete_orders(tmp, where: str) -> None:
    db = sqlite3.connect(tmp / "shop.db")
    db.execute(f"delete from orders where {where}")
    db.commit()
    db.close()


def test_an_emptied_orders_table_stops_the_run(shop):
    tmp, settings, con = shop
    _delete_orders(tmp, "true")
    with pytest.raises(SourceCheckError) as err:
        extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
    assert str(err.value).startswith(
        "orders: table orders holds 0 rows, 4 were landed before (100% fewer): was "
        "it emptied, or is RAPPORT_ORDERS_DB_URL another copy?"
    )


@pytest.mark.parametrize("error_pct, outcome", [(100, "warn"), (25, "error"), (26, "warn")])
def test_a_shrunken_table_warns_or_stops_by_the_setting(shop, error_pct, outcome):
    tmp, _settings, con = shop
    _delete_orders(tmp, "id = 4")  # 3 of 4 rows: 25% fewer
    settings = make_settings(tmp, volume_drop_error_pct=error_pct)
    if outcome == "error":
        with pytest.raises(SourceCheckError, match="holds 3 rows, 4 were landed before"):
            extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
        return
    res = extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
    assert [(f.severity, f.message.split(" (")[0]) for f in res.findings] == [
        ("warn", "table orders holds 3 rows, 4 were landed before")
    ]


def test_each_orders_table_is_counted_once_per_run(shop, monkeypatch):
    # a count(*) of a whole source table (~60 ms for 1M orders): the volume check needs one per landed table
    from rapport.extractors.sql_source import SqliteSource

    tmp, settings, con = shop
    counted: list[str] = []
    real = SqliteSource.count
    monkeypatch.setattr(SqliteSource, "count", lambda self, table: counted.append(table) or real(self, table))
    extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)
    landed = [t for t in ("customers", "orders", "order_items", "fx_rates") if t in counted]
    assert sorted(counted) == sorted(landed) and len(counted) == len(set(counted)) >= 2


def test_a_future_dated_order_is_quarantined_counted_once_and_never_moves_the_watermark(shop):
    tmp, settings, con = shop
    write_shop(tmp / "shop.db", orders=[_order(9, "2099-01-01T00:00:00Z"), _order(5, "2025-08-02T01:00:00Z")])
    for run, expected_new in (("r2", 1), ("r3", 0)):  # the rerun reads it again: a duplicate rejection
        res = extract_orders(con, settings, run_id=run, interval_end=DAY2_END)
        assert res.future_dated == expected_new
        assert res.tables["shop_orders"].rows_quarantined == expected_new
    rejects = con.execute("select reason, location from quarantine.shop_orders_rejects").fetchall()
    assert rejects == [
        (
            f"{FUTURE_REASON}: updated_at more than RAPPORT_CLOCK_SKEW_MINUTES=60 after the "
            "extraction; it lands once that time has come",
            "orders:id=9",
        )
    ]
    assert con.execute("select value from ops.extract_state where key = 'orders.updated_at'").fetchall() == [
        ("2025-08-02 01:00:00",)
    ]  # order 5's, not 2099
    assert con.execute("select count(*) from raw.shop_orders where id = 9").fetchall() == [(0,)]


@pytest.mark.parametrize("skew_minutes, future", [(60, 1), (0, 2), (120, 0)])
def test_how_far_ahead_is_the_future_is_the_clock_skew_setting(shop, skew_minutes, future):
    tmp, _settings, con = shop
    now = datetime.now(UTC)
    write_shop(
        tmp / "shop.db",
        orders=[
            _order(8, f"{now + timedelta(minutes=30):%Y-%m-%dT%H:%M:%SZ}"),
            _order(9, f"{now + timedelta(minutes=90):%Y-%m-%dT%H:%M:%SZ}"),
        ],
    )
    res = extract_orders(con, make_settings(tmp, clock_skew_minutes=skew_minutes), run_id="r2", interval_end=now)
    assert res.future_dated == future
    # not dated in the future: past the interval, so it waits for a later one (neither landed nor quarantined)
    assert res.tables["shop_orders"].rows_landed == 0
    assert res.tables["shop_orders"].rows_quarantined == future


# ---------------------------------------------------------------- helpdesk: nothing returned, future items


def test_a_helpdesk_returning_nothing_stops_the_run(tmp_path):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    with serve_helpdesk(_data(), token=TOKEN) as srv:
        extract_helpdesk(con, settings, run_id="r1", interval_end=DAY2_END, base_url=srv.base_url)
    with serve_helpdesk(HelpdeskData(), token=TOKEN) as empty, pytest.raises(SourceCheckError) as err:
        extract_helpdesk(con, settings, run_id="r2", interval_end=DAY2_END, base_url=empty.base_url)
    # 40 users landed (user 7 was quarantined); the 200 newest reach back to the oldest (day 1, 00:30)
    assert str(err.value).startswith(
        "helpdesk: the export of users since 2025-08-01 00:30 UTC returned none of "
        "the 40 users earlier runs landed from then on (100% fewer): is "
        "RAPPORT_HELPDESK_URL the right helpdesk"
    )
    assert con.execute("select count(*) from raw.helpdesk_users where _run_id = 'r2'").fetchall() == [(0,)]
    con.close()


def test_a_helpdesk_missing_some_items_warns(tmp_path):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    data = _data()
    with serve_helpdesk(data, token=TOKEN) as srv:
        extract_helpdesk(con, settings, run_id="r1", interval_end=DAY2_END, base_url=srv.base_url)
    # users 1-5 gone: 35 of the 40 landed ones come back (7, quarantined before, was never landed)
    fewer = HelpdeskData(users=[u for u in data.users if u["id"] > 5], tickets=data.tickets)
    with serve_helpdesk(fewer, token=TOKEN) as srv:
        res = extract_helpdesk(con, settings, run_id="r2", interval_end=DAY2_END, base_url=srv.base_url)
    assert [(f.severity, f.message.split(" (")[0]) for f in res.findings] == [
        (
            "warn",
            "the export of users since 2025-08-01 00:30 UTC returned 35 of the 40 users earlier runs landed "
            "from then on",
        )
    ]
    con.close()


def test_a_future_dated_helpdesk_item_is_quarantined_and_keeps_the_cursor(tmp_path):
    settings = make_settings(tmp_path)
    con = connect(tmp_path / "wh.duckdb", settings)
    data = _data()
    data.users.append(_user(99, 1, 0, updated_at="2099-01-01T00:00:00Z"))
    with serve_helpdesk(data, token=TOKEN, page_size=10) as srv:
        res = extract_helpdesk(con, settings, run_id="r1", interval_end=DAY2_END, base_url=srv.base_url)
        assert res.future_dated == 1
        cursor = con.execute("select value from ops.extract_state where key = 'users.cursor'").fetchall()[0][0]
        # a user updated later (but before 2099) arrives: the cursor never jumped past it
        srv.add_items("users", [_user(42, 2, 600)])
        res = extract_helpdesk(con, settings, run_id="r2", interval_end=DAY2_END, base_url=srv.base_url)
    assert res.future_dated == 0  # read again, a duplicate rejection
    assert con.execute("select count(*) from raw.helpdesk_users where id = 42").fetchall() == [(1,)]
    assert con.execute("select count(*) from raw.helpdesk_users where id = 99").fetchall() == [(0,)]
    assert con.execute(
        "select location from quarantine.helpdesk_users_rejects where starts_with(reason, ?)", [FUTURE_REASON]
    ).fetchall() == [("users id=99",)]
    assert con.execute("select value from ops.extract_state where key = 'users.cursor'").fetchall() == [(cursor,)]
    con.close()


# ---------------------------------------------------------------- freshness


@pytest.fixture
def raw():
    con = duckdb.connect()
    for stmt in raw_ddl():
        con.execute(stmt)
    yield con
    con.close()


def test_freshness_compares_the_newest_record_with_the_interval_end(raw, tmp_path):
    raw.execute(
        "insert into raw.helpdesk_tickets (id, updated_at, _run_id, _extracted_at) values "
        "(1, '2026-01-01 00:00:00', 'r', now()), (2, '2025-12-30 00:00:00', 'r', now())"
    )
    settings = make_settings(tmp_path)  # warn after 72 h, error after 336 h
    assert freshness_findings(raw, settings, "helpdesk", datetime(2026, 1, 4, 0, 0)) == []  # 72 h: not more
    [warn] = freshness_findings(raw, settings, "helpdesk", datetime(2026, 1, 4, 1, 0))
    assert (warn.severity, warn.message) == (
        "warn",
        "no new data for 3.0 days: the newest record is from "
        "2026-01-01 00:00 UTC, the data interval ends 2026-01-04 01:00 UTC "
        "(RAPPORT_FRESHNESS_WARN_HOURS=72)",
    )
    [error] = freshness_findings(raw, settings, "helpdesk", datetime(2026, 1, 15, 1, 0))
    assert error.severity == "error" and "RAPPORT_FRESHNESS_ERROR_HOURS=336" in error.message
    assert "does RAPPORT_HELPDESK_URL still receive data?" in error.message
    off = make_settings(tmp_path, freshness_warn_hours=0, freshness_error_hours=0)
    assert freshness_findings(raw, off, "helpdesk", datetime(2027, 1, 1)) == []


def test_esp_freshness_is_the_date_of_the_newest_export_file(raw, tmp_path):
    raw.execute(
        "insert into ops.esp_manifest (path) values ('contacts/contacts_20260101.csv'), "
        "('events/dt=2026-01-02/hour=5/part-0000.jsonl.gz'), ('audiences/cmp.csv')"
    )
    settings = make_settings(tmp_path, freshness_warn_hours=1)
    assert freshness_findings(raw, settings, "esp", datetime(2026, 1, 2, 7)) == []  # the hour ended 06:00
    [warn] = freshness_findings(raw, settings, "esp", datetime(2026, 1, 2, 7, 1))
    assert "the newest record is from 2026-01-02 06:00 UTC" in warn.message


def test_a_source_never_landed_is_a_warning(raw, tmp_path):
    [warn] = freshness_findings(raw, make_settings(tmp_path), "orders", datetime(2026, 1, 1))
    assert (warn.severity, warn.message) == (
        "warn",
        "nothing has been landed from this source yet: is RAPPORT_ORDERS_DB_URL right?",
    )


@given(
    landed=st.integers(1, 10_000),
    held=st.integers(0, 10_000),
    more=st.integers(0, 10_000),
    warn=st.floats(0, 100),
    error=st.floats(0, 101),
)
def test_holding_more_never_makes_a_drop_worse(tmp_path_factory, landed, held, more, warn, error):
    settings = make_settings(tmp_path_factory.getbasetemp(), volume_drop_warn_pct=warn, volume_drop_error_pct=error)
    rank = {None: 0, "warn": 1, "error": 2}
    assert rank[drop_severity(settings, held + more, landed)] <= rank[drop_severity(settings, held, landed)]
    assert drop_severity(settings, landed + more, landed) is None  # holding all (or more) is never a drop
    if error <= 100:
        assert drop_severity(settings, 0, landed) == "error"  # holding nothing errs at any threshold <= 100%
