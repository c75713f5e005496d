"""Staging models on hand-made raw rows: renames, typing, JSON flattening and latest-version-wins."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # one dbt build (~10 s)


@pytest.fixture(scope="module")
def wh(make_warehouse, rows) -> Any:
    wh = make_warehouse("staging")
    shop_customer, shop_order, helpdesk_user, helpdesk_ticket = (
        rows.shop_customer,
        rows.shop_order,
        rows.helpdesk_user,
        rows.helpdesk_ticket,
    )
    esp_contact, esp_campaign, esp_event = rows.esp_contact, rows.esp_campaign, rows.esp_event
    wh.insert(
        "shop_customers",
        [
            shop_customer(1, email="old@example.com", updated_at="2024-01-01 00:00:00"),
            shop_customer(
                1,
                email=" Alice.Smith+promo@GoogleMail.com ",
                first_name="Alice",
                last_name="Smith",
                phone="010-1234-5678",
                country="kr",
                updated_at="2024-05-01 00:00:00",
            ),
            shop_customer(2, email="bob@example.com", phone="(415) 555-0100", country="US"),
        ],
    )
    wh.insert(
        "shop_orders",
        [
            shop_order(10, customer_id=1, status="pending", updated_at="2025-01-10 12:00:00"),
            shop_order(10, customer_id=1, status="paid", currency="krw", total=15000,
                       updated_at="2025-01-11 08:00:00"),
            shop_order(11, email="guest@x.org", phone="+66 81 234 5678", status="refunded", refunded_total=10),
        ],
    )  # fmt: skip
    wh.insert(
        "shop_order_items",
        [
            {"id": 100, "order_id": 10, "sku": "A", "quantity": 1, "unit_price": 5},
            {"id": 100, "order_id": 10, "sku": "A", "quantity": 3, "unit_price": 5},
        ],
    )
    # the second landing of item 100 is later: it wins
    wh.insert("shop_order_items", [{"id": 101, "order_id": 10, "sku": "B", "quantity": 2, "unit_price": 1.5}])
    wh.insert(
        "shop_fx_rates",
        [{"rate_date": "2025-01-10", "currency": "KRW", "usd_per_unit": 0.00070}],
    )
    wh.insert(
        "helpdesk_users",
        [
            helpdesk_user(500, name="Alice", email="ALICE.SMITH@gmail.com", external_id=" 1 "),
            helpdesk_user(501, name="Agent", role="agent", updated_at="2024-02-02 00:00:00"),
        ],
    )
    wh.insert(
        "helpdesk_tickets",
        [
            helpdesk_ticket(900, 500, status="open", updated_at="2025-02-01 00:00:00"),
            helpdesk_ticket(
                900,
                500,
                status="solved",
                priority="urgent",
                via={"channel": "chat"},
                tags=["refund", "vip"],
                satisfaction_rating={"score": "good", "comment": "thanks!"},
                metric_set={
                    "reply_time_in_minutes": {"calendar": 12},
                    "full_resolution_time_in_minutes": {"calendar": 95},
                    "solved_at": "2025-02-02T10:30:00Z",
                    "reopens": 1,
                },
                updated_at="2025-02-02 10:30:00",
            ),
        ],
    )
    wh.insert(
        "esp_contacts",
        [
            esp_contact("c1", email="alice.smith@gmail.com", updated_at="2024-03-01 00:00:00",
                        snapshot_date="2024-03-01"),
            esp_contact("c1", email="alice.smith@gmail.com", updated_at="2024-04-01 00:00:00",
                        snapshot_date="2024-04-01", first_name="Alice"),
            esp_contact("c1", email="alice.smith@gmail.com", status="unsubscribed",
                        updated_at="2024-05-01 00:00:00", snapshot_date="2024-05-01"),
        ],
    )  # fmt: skip
    wh.insert(
        "esp_campaigns",
        [
            esp_campaign("cmp1", name="Spring draft", snapshot_date="2025-02-01"),
            esp_campaign("cmp1", name="Spring sale", cost_currency="eur", snapshot_date="2025-02-02"),
        ],
    )
    wh.insert("esp_audiences", [{"campaign_id": "cmp1", "email": "Alice.Smith@gmail.com", "group": "Treatment"}])
    wh.insert(
        "esp_events",
        [
            esp_event("e1", "ALICE.SMITH+x@gmail.com", "open", campaign_id="cmp1", sg_machine_open=True),
            esp_event("e2", "alice.smith@gmail.com", "open", campaign_id="cmp1"),
            esp_event("e3", "alice.smith@gmail.com", "bounce", campaign_id="cmp1", type="blocked"),
        ],
    )
    wh.build(select=["path:models/staging"])
    return wh


def test_customers_latest_version_wins_and_keys_are_normalised(wh: Any) -> None:
    rows = wh.query_dicts("select * from staging.stg_shop__customers order by customer_id")
    assert [r["customer_id"] for r in rows] == [1, 2]
    alice = rows[0]
    assert alice["email"] == " Alice.Smith+promo@GoogleMail.com "  # raw kept for display
    assert alice["email_normalized"] == "alicesmith@gmail.com"
    assert alice["phone_normalized"] == "+821012345678"
    assert alice["country"] == "KR"
    assert alice["full_name"] == "Alice Smith"
    assert rows[1]["phone_normalized"] == "+14155550100"


def test_orders_renamed_latest_status_and_guest_phone(wh: Any) -> None:
    rows = wh.query_dicts("select * from staging.stg_shop__orders order by order_id")
    assert [(r["order_id"], r["customer_id"], r["status"], r["currency"]) for r in rows] == [
        (10, 1, "paid", "KRW"),
        (11, None, "refunded", "USD"),
    ]
    assert rows[1]["is_guest"] is True
    assert rows[1]["phone_normalized"] == "+66812345678"  # international form parses without a country


def test_order_items_latest_landing(wh: Any) -> None:
    rows = wh.query("select order_item_id, quantity, line_total from staging.stg_shop__order_items order by 1")
    assert [(r[0], r[1], float(r[2])) for r in rows] == [(100, 3, 15.0), (101, 2, 3.0)]


def test_helpdesk_users_roles_and_external_id(wh: Any) -> None:
    rows = wh.query("select user_id, is_end_user, external_id, email_normalized from staging.stg_helpdesk__users")
    assert sorted(rows) == [(500, True, "1", "alicesmith@gmail.com"), (501, False, None, None)]


def test_tickets_json_flattened(wh: Any) -> None:
    rows = wh.query_dicts("select * from staging.stg_helpdesk__tickets")
    assert len(rows) == 1
    t = rows[0]
    assert t["ticket_id"] == 900 and t["status"] == "solved" and t["priority"] == "urgent"
    assert t["via_channel"] == "chat"
    assert t["tags"] == ["refund", "vip"]
    assert (t["satisfaction_score"], t["satisfaction_comment"]) == ("good", "thanks!")
    assert (t["reply_time_minutes"], t["full_resolution_time_minutes"], t["reopens"]) == (12, 95, 1)
    assert t["solved_at"] == datetime(2025, 2, 2, 10, 30)


def test_contacts_latest_and_status_history(wh: Any) -> None:
    assert wh.query("select contact_id, status, first_name from staging.stg_esp__contacts") == [
        ("c1", "unsubscribed", None)
    ]
    history = wh.query(
        "select status, previous_status, valid_from, valid_to, is_current "
        "from staging.stg_esp__contact_status_history order by valid_from"
    )
    # the 2024-04-01 version repeats 'subscribed': folded into the first period
    assert history == [
        ("subscribed", None, datetime(2024, 3, 1), datetime(2024, 5, 1), False),
        ("unsubscribed", "subscribed", datetime(2024, 5, 1), None, True),
    ]


def test_campaigns_latest_snapshot(wh: Any) -> None:
    assert wh.query("select campaign_id, name, cost_currency, snapshot_date from staging.stg_esp__campaigns") == [
        ("cmp1", "Spring sale", "EUR", date(2025, 2, 2))
    ]


def test_audiences_group_and_member_id(wh: Any) -> None:
    assert wh.query(
        "select audience_member_id, email, audience_group, email_normalized from staging.stg_esp__audiences"
    ) == [("cmp1:Alice.Smith@gmail.com", "Alice.Smith@gmail.com", "treatment", "alicesmith@gmail.com")]


def test_events_time_and_flags(wh: Any) -> None:
    rows = wh.query(
        "select sg_event_id, event_at, email_normalized, is_human_open, bounce_type "
        "from staging.stg_esp__events order by 1"
    )
    at = datetime(2025, 3, 1, 9, 0)  # unix 1740819600
    assert rows == [
        ("e1", at, "alicesmith@gmail.com", False, None),
        ("e2", at, "alicesmith@gmail.com", True, None),
        ("e3", at, "alicesmith@gmail.com", False, "blocked"),
    ]
