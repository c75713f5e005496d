"""marts.email_address_quality counts invalid addresses per kind of record from the validity the staging models
record as they stage each record (email_is_valid), so a daily build validates only what landed. Hand-made rows
with addresses that are plainly valid or plainly not (no '@', two '@'), blank ones (spaces, Unicode spaces) and
ones that only start like blank ones, on two days: the second is an
incremental build (var `since`) that restages only the rows landed after the first, and the counts must follow a
changed customer's new address and a new event.

Two dbt builds of the staging models and the mart, ~25 s on 2 shared cores.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from rapport.transform.runner import invoke, raise_on_failures

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
SELECT = ["+email_address_quality"]
DAY_2 = "2025-07-01 00:00:00"  # landed after the first build's rows (conftest: 2025-06-30)
QUALITY = ("select source, records_with_email, invalid_emails, invalid_share from marts.email_address_quality "
           "order by source")  # fmt: skip


def _build(wh: Any, run_id: str, since: str | None = None) -> None:
    dbt_vars = {"as_of": AS_OF.isoformat(), "run_id": run_id} | ({"since": since} if since else {})
    command = ["build", "--vars", json.dumps(dbt_vars), "--select", *SELECT, "--exclude-resource-type", "unit_test",
               "--indirect-selection", "cautious"]  # fmt: skip
    raise_on_failures(wh.settings, invoke(wh.settings, command), "build")


@pytest.fixture(scope="module")
def days(make_warehouse, rows) -> dict[str, Any]:
    wh = make_warehouse("email-quality")
    wh.insert("shop_customers", [
        rows.shop_customer(1, email="ann@example.com"),
        rows.shop_customer(2, email="no-at-sign.example.com"),
        rows.shop_customer(3, email="   "),  # blank: no address, not counted
    ])  # fmt: skip
    wh.insert("shop_orders", [
        rows.shop_order(10, email="two@@example.com"),  # a guest order
        rows.shop_order(11, customer_id=1, email="two@@example.com"),  # a customer's order: not counted
    ])  # fmt: skip
    wh.insert("helpdesk_users", [
        rows.helpdesk_user(500, email="carl@example.net"),
        rows.helpdesk_user(501, email="agent at example.net", role="agent"),  # staff: not counted
    ])  # fmt: skip
    wh.insert("esp_contacts", [
        rows.esp_contact("c1", email="dora@example.com"),
        # the mart finds blank addresses among those starting with a space or a non-ASCII character (trim strips
        # Unicode spaces too): these are blank, not counted
        rows.esp_contact("c2", email="\u00a0"), rows.esp_contact("c3", email="\u3000 \u2003"),
        rows.esp_contact("c4", email=""),
        # and these are not blank (a tab is no space to trim): counted, invalid (no '@')
        rows.esp_contact("c5", email=" no-at-sign"), rows.esp_contact("c6", email="\u00e9-no-at-sign"),
        rows.esp_contact("c7", email="\t"),
    ])  # fmt: skip
    wh.insert("esp_audiences", [{"campaign_id": "cmp1", "email": "no-at-sign.example.com", "group": "treatment"}])
    wh.insert("esp_events", [
        rows.esp_event("e1", "dora@example.com", "open"),
        rows.esp_event("e2", "dora@example.com", "click"),
        rows.esp_event("e3", "x@@example.com", "bounce"),
    ])  # fmt: skip
    _build(wh, "r1")
    first = wh.query(QUALITY)
    # day 2: customer 1's address becomes invalid, a new valid event lands
    wh.insert("shop_customers", [rows.shop_customer(1, email="ann@@example.com", updated_at="2025-06-02 00:00:00")],
              run_id="r2", extracted_at=DAY_2)  # fmt: skip
    wh.insert("esp_events", [rows.esp_event("e4", "eve@example.com", "open")], run_id="r2", extracted_at=DAY_2)
    since = wh.query("select max(_extracted_at) from raw.shop_customers where _run_id = 'r1'")[0][0]
    _build(wh, "r2", since=str(since))
    return {"wh": wh, "first": first, "second": wh.query(QUALITY)}


def test_invalid_addresses_counted_per_kind_of_record(days: dict[str, Any]) -> None:
    assert days["first"] == [
        ("esp.audience_member", 1, 1, 1.0),
        ("esp.contact", 4, 3, 0.75),
        ("esp.event", 3, 1, pytest.approx(1 / 3)),
        ("helpdesk.user", 1, 0, 0.0),
        ("orders.customer", 2, 1, 0.5),
        ("orders.guest_order", 1, 1, 1.0),
    ]


def test_an_incremental_build_follows_a_changed_address_and_a_new_event(days: dict[str, Any]) -> None:
    wh = days["wh"]
    # the second build restaged only what landed (the event table appends; customer 1 replaced)
    assert wh.query("select sg_event_id, _run_id, email_is_valid from staging.stg_esp__events order by 1") == [
        ("e1", "r1", True), ("e2", "r1", True), ("e3", "r1", False), ("e4", "r2", True)]  # fmt: skip
    assert wh.query("select customer_id, email, email_is_valid from staging.stg_shop__customers order by 1") == [
        (1, "ann@@example.com", False), (2, "no-at-sign.example.com", False), (3, "   ", False)]  # fmt: skip
    assert days["second"] == [
        ("esp.audience_member", 1, 1, 1.0),
        ("esp.contact", 4, 3, 0.75),
        ("esp.event", 4, 1, 0.25),
        ("helpdesk.user", 1, 0, 0.0),
        ("orders.customer", 2, 2, 1.0),
        ("orders.guest_order", 1, 1, 1.0),
    ]
