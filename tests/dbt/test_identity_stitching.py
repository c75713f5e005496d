"""Identity stitching and marts.customers on a hand-made cast of people (expected values worked by hand).

People in the fixture:
- Alice: shop customer 1 (KR phone, gmail with dots/plus/case), a guest order with her normalised email,
  helpdesk user 501 on googlemail.com with dots, two ESP contacts, an audience entry.
- Bob: shop customer 2 -(phone)- helpdesk user 502 -(email)- ESP contact c-bob: a chain through two
  different identifiers. A guest order from bob+x@yahoo.com stays apart (yahoo.com: no plus-addressing).
- Carol: shop customer 3 and helpdesk user 503 with another email, linked by external_id "3".
- info@shop.com on six ESP contacts (over the fan-out limit of 5) and one guest order: seven people.
- The shop's phone typed on six guest orders with six different emails: six people.
- Helpdesk agent 599 shares Alice's email: not a person, links nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.transform.runner import TransformError, invoke, raise_on_failures

pytestmark = pytest.mark.slow  # one dbt build per module (~15 s)


@pytest.fixture(scope="module")
def wh(make_warehouse, rows) -> Any:
    wh = make_warehouse("stitching")
    r = rows
    wh.insert(
        "shop_customers",
        [
            r.shop_customer(
                1,
                email=" Alice.Smith+promo@GoogleMail.com ",
                first_name="Alice",
                last_name="Smith",
                phone="010-1234-5678",
                country="KR",
                created_at="2024-01-05 00:00:00",
            ),
            r.shop_customer(2, email="bob@work.com", phone="(415) 555-0100", country="US"),
            r.shop_customer(3, email="carol@example.com", first_name="Carol", created_at="2023-05-01 00:00:00"),
        ],
    )
    orders = [
        r.shop_order(10, customer_id=1, currency="KRW", total=10000, created_at="2025-01-10 12:00:00"),
        r.shop_order(11, customer_id=1, status="partially_refunded", total=50, refunded_total=20,
                     created_at="2025-01-20 00:00:00"),
        r.shop_order(12, customer_id=1, status="cancelled", total=100, created_at="2025-03-01 00:00:00"),
        r.shop_order(101, email="alicesmith@gmail.com", currency="EUR", total=10, created_at="2025-02-01 08:00:00"),
        r.shop_order(13, customer_id=2, status="refunded", total=40, refunded_total=40),
        r.shop_order(14, customer_id=2, status="fulfilled", currency="THB", total=1000,
                     created_at="2025-03-05 10:00:00"),
        r.shop_order(102, email="bob+x@yahoo.com", total=5),
        r.shop_order(103, email="info@shop.com", total=5),
    ]  # fmt: skip
    orders += [
        r.shop_order(104 + i, email=f"g{i}@x.org", phone="+1 212 555 0199", total=1, created_at="2025-04-01 00:00:00")
        for i in range(6)
    ]
    wh.insert("shop_orders", orders)
    wh.insert(
        "shop_fx_rates",
        [
            {"rate_date": "2025-01-09", "currency": "KRW", "usd_per_unit": 0.0007},
            {"rate_date": "2025-01-11", "currency": "KRW", "usd_per_unit": 0.0009},
            {"rate_date": "2025-02-01", "currency": "EUR", "usd_per_unit": 1.1},
            {"rate_date": "2025-03-05", "currency": "THB", "usd_per_unit": 0.03},
        ],
    )
    wh.insert(
        "helpdesk_users",
        [
            r.helpdesk_user(501, name="Alice S", email="a.l.i.c.e.smith@googlemail.com"),
            r.helpdesk_user(502, name="Bob", email="bob.personal@yahoo.com", phone="+1 415 555 0100"),
            r.helpdesk_user(503, name="Carol W", email="carol.w@another.org", external_id="3"),
            r.helpdesk_user(599, name="Agent", role="agent", email="alice.smith@gmail.com"),
        ],
    )
    solved = {
        "reply_time_in_minutes": {"calendar": 5},
        "full_resolution_time_in_minutes": {"calendar": 60},
        "solved_at": "2025-02-02T00:00:00Z",
        "reopens": 0,
    }
    wh.insert(
        "helpdesk_tickets",
        [
            r.helpdesk_ticket(1, 501, status="solved", metric_set=solved,
                              satisfaction_rating={"score": "good", "comment": None}),
            r.helpdesk_ticket(2, 501, status="open", satisfaction_rating={"score": "bad", "comment": "slow"}),
            r.helpdesk_ticket(3, 501, status="deleted"),
            r.helpdesk_ticket(4, 503, status="pending"),
        ],
    )  # fmt: skip
    contacts = [
        r.esp_contact("c-alice", email="ALICE.SMITH@gmail.com", status="subscribed"),
        r.esp_contact("c-alice2", email="alice.smith+news@gmail.com", status="unsubscribed"),
        r.esp_contact("c-bob", email="Bob.Personal@yahoo.com ", status="unsubscribed"),
    ]
    contacts += [r.esp_contact(f"c-i{i}", email="info@shop.com") for i in range(1, 7)]
    wh.insert("esp_contacts", contacts)
    wh.insert("esp_campaigns", [r.esp_campaign("cmp1"), r.esp_campaign("cmp2", send_at="2025-04-01 09:00:00")])
    wh.insert(
        "esp_audiences",
        [
            {"campaign_id": "cmp1", "email": "Alice.Smith@gmail.com", "group": "treatment"},
            {"campaign_id": "cmp1", "email": "bob.personal@yahoo.com", "group": "control"},
        ],
    )
    t1, t2 = 1743498000, 1743501600  # 2025-04-01 09:00 and 10:00 UTC
    wh.insert(
        "esp_events",
        [
            r.esp_event("e1", "Alice.Smith@gmail.com", "delivered", campaign_id="cmp1"),
            r.esp_event("e2", "Alice.Smith@gmail.com", "delivered", campaign_id="cmp1"),
            r.esp_event("e3", "Alice.Smith@gmail.com", "open", campaign_id="cmp1", sg_machine_open=True),
            r.esp_event("e4", "alice.smith@gmail.com", "delivered", campaign_id="cmp2", timestamp=t1),
            r.esp_event("e5", "alice.smith@gmail.com", "open", campaign_id="cmp2", timestamp=t1),
            r.esp_event("e6", "alice.smith@gmail.com", "click", campaign_id="cmp2", timestamp=t2),
            r.esp_event("e7", "bob.personal@yahoo.com", "delivered", campaign_id="cmp1"),
            r.esp_event("e8", "bob.personal@yahoo.com", "click", campaign_id="cmp1"),
            r.esp_event("e9", "info@shop.com", "click", campaign_id="cmp1"),
            # a delivery with no campaign: counts for no campaign in Alice's emails_delivered
            r.esp_event("e10", "alice.smith@gmail.com", "delivered", campaign_id=None),
        ],
    )
    wh.build()
    return wh


def _ids(wh: Any, *records: tuple[str, Any]) -> set[str]:
    return {wh.customer_of(source, source_id) for source, source_id in records}


def test_alice_records_are_one_customer(wh: Any) -> None:
    ids = _ids(
        wh,
        ("orders.customer", 1),
        ("orders.guest_order", 101),
        ("helpdesk.user", 501),
        ("esp.contact", "c-alice"),
        ("esp.contact", "c-alice2"),
        ("esp.audience_member", "cmp1:Alice.Smith@gmail.com"),
    )
    assert len(ids) == 1


def test_chain_through_different_identifiers(wh: Any) -> None:
    bob = _ids(wh, ("orders.customer", 2), ("helpdesk.user", 502), ("esp.contact", "c-bob"))
    assert len(bob) == 1
    assert wh.customer_of("esp.audience_member", "cmp1:bob.personal@yahoo.com") in bob
    # plus-tags are only dropped for providers that support them
    assert wh.customer_of("orders.guest_order", 102) not in bob


def test_external_id_links_helpdesk_user_to_shop_customer(wh: Any) -> None:
    assert len(_ids(wh, ("orders.customer", 3), ("helpdesk.user", 503))) == 1


def test_fanout_values_link_nobody(wh: Any) -> None:
    info = _ids(wh, *[("esp.contact", f"c-i{i}") for i in range(1, 7)], ("orders.guest_order", 103))
    assert len(info) == 7
    shop_phone = _ids(wh, *[("orders.guest_order", 104 + i) for i in range(6)])
    assert len(shop_phone) == 6
    assert wh.query(
        "select identifier_type, identifier_value, fanout, reason from marts.identity_rejected_identifiers order by 1"
    ) == [
        ("email", "info@shop.com", 6, "shared_by_accounts"),
        ("phone", "+12125550199", 6, "phone_shared_by_emails"),
    ]


def test_every_record_once_and_agents_excluded(wh: Any) -> None:
    counts = dict(wh.query("select source, count(*) from marts.customer_identities group by 1"))
    assert counts == {
        "orders.customer": 3,
        "orders.guest_order": 9,
        "helpdesk.user": 3,
        "esp.contact": 9,
        "esp.audience_member": 2,
    }
    assert wh.query("select count(*) from marts.customers") == [(17,)]


def test_alice_customer_row(wh: Any) -> None:
    alice = wh.customer_of("orders.customer", 1)
    row = wh.query_dicts(f"select * from marts.customers where customer_id = '{alice}'")[0]
    expected = {
        "primary_email": "Alice.Smith+promo@GoogleMail.com",
        "email_normalized": "alicesmith@gmail.com",
        "primary_phone": "+821012345678",
        "full_name": "Alice Smith",
        "country": "KR",
        "first_seen_at": datetime(2024, 1, 5),
        "order_count": 3,  # 10, 11 and guest 101; 12 is cancelled
        "lifetime_revenue_usd": Decimal("48"),  # 10000 KRW * 0.0007 (rate of the 9th) + (50 - 20) + 10 EUR * 1.1
        "avg_order_value_usd": Decimal("16"),
        "first_order_at": datetime(2025, 1, 10, 12),
        "last_order_at": datetime(2025, 2, 1, 8),
        "ticket_count": 2,  # the deleted ticket is no ticket
        "open_ticket_count": 1,
        "csat_good": 1,
        "csat_bad": 1,
        "avg_resolution_minutes": 60,
        "email_status": "subscribed",
        "emails_delivered": 2,  # cmp1 (delivered twice) and cmp2; e10 names no campaign
        "unique_human_opens": 1,  # cmp1's open was a machine open
        "unique_clicks": 1,
        "last_engaged_at": datetime(2025, 4, 1, 10),
    }
    assert {k: row[k] for k in expected} == expected


def test_bob_and_carol_rows(wh: Any) -> None:
    bob = wh.customer_of("orders.customer", 2)
    carol = wh.customer_of("orders.customer", 3)
    cols = "order_count, lifetime_revenue_usd, email_status, emails_delivered, unique_clicks, ticket_count"
    assert wh.query(f"select {cols} from marts.customers where customer_id = '{bob}'") == [
        (1, Decimal("30"), "unsubscribed", 1, 1, 0)
    ]
    assert wh.query(
        f"select {cols}, open_ticket_count, avg_resolution_minutes, full_name "
        f"from marts.customers where customer_id = '{carol}'"
    ) == [(0, Decimal("0"), "none", 0, 0, 1, 1, None, "Carol")]


def test_revenue_reconciles_by_hand(wh: Any) -> None:
    # Alice 48 + Bob 30 + guests 102, 103 (5 each) + six 1-dollar guest orders
    assert wh.query("select sum(lifetime_revenue_usd) from marts.customers") == [(Decimal("94"),)]


def test_orders_enriched_fx_rule(wh: Any) -> None:
    rows = wh.query(
        "select order_id, usd_per_unit, fx_rate_date, net_revenue_usd, is_valid "
        "from intermediate.int_orders_enriched where order_id in (10, 12, 14) order by 1"
    )
    assert [(o, float(u), d and d.isoformat(), float(n), v) for o, u, d, n, v in rows] == [
        (10, 0.0007, "2025-01-09", 7.0, True),  # 10th missing: latest earlier rate, not the 11th
        (12, 1.0, None, 0.0, False),
        (14, 0.03, "2025-03-05", 30.0, True),
    ]
    assert wh.query("select count(*) from intermediate.int_orders_enriched where customer_id is null") == [(0,)]


def test_email_lookup_excludes_rejected(wh: Any) -> None:
    alice = wh.customer_of("orders.customer", 1)
    lookup = dict(wh.query("select email_normalized, customer_id from intermediate.int_email_customers"))
    assert lookup["alicesmith@gmail.com"] == alice
    assert "info@shop.com" not in lookup
    assert "bob+x@yahoo.com" in lookup


def test_unconverged_propagation_fails_the_build(make_warehouse, rows) -> None:
    """A chain longer than one propagation step can cover makes the convergence test fail the build; the
    default step limit covers a chain of 12 groups (about 45 records and identifiers end to end)."""
    wh = make_warehouse("chain")
    groups = 12
    # group k = helpdesk user k, ESP contact ck and shop customer k, all on e_k; shop customer k's phone p_k
    # is also on helpdesk user 100+k, whose email is e_(k+1): groups 1..12 form one chain
    wh.insert(
        "helpdesk_users",
        [
            rows.helpdesk_user(k, email=f"e{k}@chain.org", created_at=f"2024-01-{k:02d} 00:00:00")
            for k in range(1, groups + 1)
        ]
        + [
            rows.helpdesk_user(100 + k, phone=f"+1 415 555 01{k:02d}", email=f"e{k + 1}@chain.org")
            for k in range(1, groups)
        ],
    )
    wh.insert("esp_contacts", [rows.esp_contact(f"c{k}", email=f"e{k}@chain.org") for k in range(1, groups + 1)])
    wh.insert(
        "shop_customers",
        [
            rows.shop_customer(k, email=f"e{k}@chain.org", phone=f"(415) 555-01{k:02d}", country="US")
            for k in range(1, groups)
        ],
    )
    with pytest.raises(TransformError, match="assert_identity_propagation_converged"):
        # unit tests left out: they do not depend on this data
        wh.build(
            extra_args=[
                "--vars", '{"identity_propagation_steps": 1}',
                "--indirect-selection", "cautious",
                "--exclude-resource-type", "unit_test",
            ]
        )  # fmt: skip
    # unconverged labels are no state an incremental build may start from (docs/identity-incremental.md)
    # (the list of the edges' before-images holds the marker "label in full" instead of being emptied)
    marker = "select count(*) from intermediate.int_identity_edges_filtered__before where identifier_type is null"
    assert wh.query(marker) == [(1,)]
    wh.build()  # the default number of steps converges
    assert wh.query(marker) == [(0,)]
    # one person, anchored on the oldest record: created 2024-01-01 are shop customers 1..11 (default) and
    # helpdesk user 1; shop accounts rank first, then the smallest source_id as text ('1')
    anchor_id = "c" + hashlib.md5(b"orders.customer:1").hexdigest()[:16]
    assert wh.query("select distinct customer_id from marts.customer_identities") == [(anchor_id,)]


def test_the_convergence_test_sees_a_record_split_from_its_component(wh: Any, tmp_path) -> None:
    """The convergence test checks "one more step changes nothing" as "one label per identifier" (with the
    root and node-set checks). A record given its own label while the other records of its identifiers keep
    the component's is such a case that only the per-identifier check sees: its label is a root and no
    larger than itself, and the nodes are the graph's."""
    copy = tmp_path / "wh"
    shutil.copytree(wh.settings.warehouse_dir, copy)
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(copy)})
    command = ["test", "--select", "assert_identity_propagation_converged"]
    raise_on_failures(settings, invoke(settings, command), "test")  # the built labels pass
    with duckdb.connect(str(settings.work_db)) as con:
        (node,) = con.execute("select min(node) from intermediate.int_identity_labels where label <> node").fetchone()
        con.execute("update intermediate.int_identity_labels set label = node where node = ?", [node])
    with pytest.raises(TransformError, match="assert_identity_propagation_converged"):
        raise_on_failures(settings, invoke(settings, command), "test")
