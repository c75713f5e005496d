"""Typing and merging rules shared by all extractors, on tiny hand-made batches."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pyarrow as pa
import pytest

from rapport.extractors.coerce import columns, typed_query
from rapport.extractors.landing import ensure_schema, merge_batch, utc_session
from rapport.extractors.state import batch_transaction, get_state, put_state


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)
    ensure_schema(c)  # idempotent
    yield c
    c.close()


def _land(con, table: str, rows: list[dict], run_id: str = "r1"):
    """Land text rows through the same typed_query/merge_batch path the extractors use, in one batch."""
    with batch_transaction(con):
        return _merge(con, table, rows, run_id)


def _merge(con, table: str, rows: list[dict], run_id: str):
    """merge_batch of text rows, in the caller's transaction."""
    names = [c.name for c in columns(table)]
    data = {n: pa.array([r.get(n) for r in rows], pa.string()) for n in names}
    data["_ord"] = pa.array(range(len(rows)), pa.int64())
    data["_loc"] = pa.array([r.get("_loc", f"row{i}") for i, r in enumerate(rows)], pa.string())
    sql = typed_query(
        table,
        {n: f't."{n}"' for n in names},
        from_sql="_in t",
        source_sql="'test'",
        raw_sql="_loc",
        loc_sql="_loc",
        ord_sql="_ord",
    )
    con.register("_in", pa.table(data))
    try:
        with utc_session(con):
            return merge_batch(con, table, sql, system="test", run_id=run_id)
    finally:
        con.unregister("_in")


def test_columns_follow_schemas():
    cols = {c.name: c for c in columns("shop_orders")}
    assert cols["subtotal"].type == "decimal(14,2)"
    assert cols["id"].required and cols["updated_at"].required and not cols["email"].required
    assert [c.name for c in columns("esp_audiences")] == ["campaign_id", "email", "group"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-08-01T00:03:39Z", datetime(2025, 8, 1, 0, 3, 39)),
        ("2025-08-01T00:03:39+00:00", datetime(2025, 8, 1, 0, 3, 39)),
        ("2025-08-01 00:03:39", datetime(2025, 8, 1, 0, 3, 39)),
        ("2025-08-01T09:03:39+09:00", datetime(2025, 8, 1, 0, 3, 39)),  # offsets are converted to UTC
        ("2025-08-01 00:03:39.250+00", datetime(2025, 8, 1, 0, 3, 39, 250000)),
    ],
)
def test_timestamps_in_every_contract_format_parse_to_utc(con, text, expected):
    con.execute("set TimeZone = 'America/New_York'")  # must not matter
    counts = _land(con, "shop_customers", [{"id": "1", "updated_at": text}])
    assert counts.rows_landed == 1
    assert con.execute("select updated_at from raw.shop_customers").fetchall() == [(expected,)]
    assert con.execute("select current_setting('TimeZone')").fetchall()[0][0] == "America/New_York"


def test_untypable_values_are_quarantined_with_reason_and_location(con):
    counts = _land(
        con,
        "shop_orders",
        [
            {"id": "1", "updated_at": "2025-08-01T00:00:00Z", "total": "12.50"},
            {"id": "2", "updated_at": "2025-08-01T00:00:00Z", "total": "twelve", "_loc": "orders:id=2"},
            {"id": "3", "updated_at": "yesterday", "_loc": "orders:id=3"},
            {"id": None, "updated_at": "2025-08-01T00:00:00Z", "_loc": "orders:id=?"},
        ],
    )
    assert (counts.rows_read, counts.rows_landed, counts.rows_quarantined, counts.rows_duplicate) == (4, 1, 3, 0)
    rejects = con.execute("select location, reason from quarantine.shop_orders_rejects order by 1").fetchall()
    assert rejects == [
        ("orders:id=2", "bad total (twelve)"),
        ("orders:id=3", "bad updated_at (yesterday)"),
        ("orders:id=?", "missing id"),
    ]
    # the same rejects read again are duplicates, not new quarantine rows
    again = _land(
        con,
        "shop_orders",
        [{"id": "2", "updated_at": "2025-08-01T00:00:00Z", "total": "twelve", "_loc": "orders:id=2"}],
    )
    assert (again.rows_quarantined, again.rows_duplicate) == (0, 1)
    assert con.execute("select count(*) from quarantine.shop_orders_rejects").fetchall() == [(3,)]


def test_versions_merge_on_natural_key(con):
    v1 = {"id": "7", "status": "paid", "updated_at": "2025-08-01T00:00:00Z"}
    v2 = {"id": "7", "status": "refunded", "updated_at": "2025-08-02T00:00:00Z"}
    assert _land(con, "shop_orders", [v1]).rows_landed == 1
    c = _land(con, "shop_orders", [v1, v2, v2])  # v1 landed before, v2 twice in this batch
    assert (c.rows_read, c.rows_landed, c.rows_duplicate) == (3, 1, 2)
    rows = con.execute("select id, status, updated_at from raw.shop_orders order by updated_at").fetchall()
    assert rows == [(7, "paid", datetime(2025, 8, 1)), (7, "refunded", datetime(2025, 8, 2))]


def test_changed_content_under_same_key_replaces(con):
    # order_items are keyed on id alone: the latest landing wins
    _land(con, "shop_order_items", [{"id": "1", "order_id": "10", "quantity": "1"}])
    c = _land(con, "shop_order_items", [{"id": "1", "order_id": "10", "quantity": "3"}], run_id="r2")
    assert (c.rows_landed, c.rows_duplicate) == (1, 0)
    assert con.execute("select id, quantity, _run_id from raw.shop_order_items").fetchall() == [(1, 3, "r2")]


def test_events_keep_the_first_copy_of_an_event_id(con):
    first = {"sg_event_id": "e1", "event": "open", "timestamp": "100", "email": "a@x.com"}
    retry = {"sg_event_id": "e1", "event": "open", "timestamp": "100", "email": "A@x.com"}
    _land(con, "esp_events", [first])
    c = _land(con, "esp_events", [retry, {"sg_event_id": "e2", "event": "click", "timestamp": "101"}])
    assert (c.rows_read, c.rows_landed, c.rows_duplicate) == (2, 1, 1)
    assert con.execute("select sg_event_id, email from raw.esp_events order by 1").fetchall() == [
        ("e1", "a@x.com"),
        ("e2", None),
    ]


def test_contact_version_keeps_first_snapshot_date(con):
    v = {"contact_id": "c1", "status": "subscribed", "updated_at": "2025-07-01T00:00:00Z"}
    _land(con, "esp_contacts", [{**v, "snapshot_date": "2025-08-01"}])
    c = _land(con, "esp_contacts", [{**v, "snapshot_date": "2025-08-02"}])
    assert (c.rows_landed, c.rows_duplicate) == (0, 1)
    unsub = {
        "contact_id": "c1",
        "status": "unsubscribed",
        "updated_at": "2025-08-02T10:00:00Z",
        "snapshot_date": "2025-08-03",
    }
    assert _land(con, "esp_contacts", [unsub]).rows_landed == 1
    assert con.execute("select status, snapshot_date from raw.esp_contacts order by updated_at").fetchall() == [
        ("subscribed", date(2025, 8, 1)),
        ("unsubscribed", date(2025, 8, 3)),
    ]


def test_state_is_only_rewritten_when_it_changes(con):
    with batch_transaction(con):
        put_state(con, "orders", "k", "v1", "r1")
    with batch_transaction(con):
        put_state(con, "orders", "k", "v1", "r2")
    assert con.execute("select value, run_id from ops.extract_state").fetchall() == [("v1", "r1")]
    with batch_transaction(con):
        put_state(con, "orders", "k", "v2", "r3")
    assert get_state(con, "orders", "k") == "v2"


def test_failed_batch_rolls_back_rows_and_state(con):
    with pytest.raises(RuntimeError), batch_transaction(con):
        put_state(con, "orders", "k", "v1", "r1")
        con.execute("insert into raw.shop_fx_rates values ('2025-08-01', 'USD', 1, 'r1', now(), null, null)")
        raise RuntimeError("boom")
    assert get_state(con, "orders", "k") is None
    assert con.execute("select count(*) from raw.shop_fx_rates").fetchall() == [(0,)]


def test_counts_that_do_not_reconcile_stop_the_batch_and_land_nothing(con, monkeypatch):
    from rapport.extractors import landing
    from rapport.extractors.errors import FatalSourceError, LandingCountsError

    _land(con, "shop_orders", [{"id": "1", "updated_at": "2025-08-01T00:00:00Z"}])
    before = con.execute("select * from raw.shop_orders").fetchall()
    real = landing.TableCounts

    def off_by_one(**kw):  # one row read more than the batch accounts for, as a lost row would be
        return real(**{**kw, "rows_read": kw["rows_read"] + 1})

    monkeypatch.setattr(landing, "TableCounts", off_by_one)
    batch = [
        {"id": "1", "updated_at": "2025-08-01T00:00:00Z"},  # a duplicate
        {"id": "2", "updated_at": "2025-08-01T00:00:00Z"},  # new
        {"id": "3", "updated_at": "never", "_loc": "orders:id=3"},  # quarantined
    ]
    with pytest.raises(LandingCountsError) as err, batch_transaction(con):
        put_state(con, "orders", "orders.updated_at", "2025-08-01 00:00:00", "r2")
        _merge(con, "shop_orders", batch, "r2")
    assert isinstance(err.value, FatalSourceError)  # a retry would count the same batch the same way
    assert str(err.value).startswith(
        "landing raw.shop_orders: the batch's counts do not reconcile: read 4 should equal landed 1 + "
        "quarantined 1 + duplicate 1 (= 3); nothing of this batch was landed"
    )
    # the whole batch rolled back: rows, rejects and the state written in its transaction
    assert con.execute("select * from raw.shop_orders").fetchall() == before
    assert con.execute("select count(*) from quarantine.shop_orders_rejects").fetchall() == [(0,)]
    assert get_state(con, "orders", "orders.updated_at") is None
