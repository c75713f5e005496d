"""Campaign marts built by dbt from hand-made raw rows, through staging and identity stitching.

Campaign k1 (sent 2025-06-10 09:00, cost 100 EUR; EUR rates 1.1 on 06-09, 1.2 on 06-11 -> 110 USD):
treatment alice, bob, carol, frank; control dave, erin. Campaign k2 (sent 06-11 12:00, cost 0 USD):
treatment alice only (no control group).
- alice: pre-send order 05-01 (30); machine open, human open ("ALICE@x.com ") and click on k1 on 06-10;
  click on k2 at 06-11 13:00:00; orders 06-12 10:00 (80) and 06-16 13:00:00 (20, exactly 120 h after the
  k2 click). Both orders were also within 120 h of the k1 click: each goes to k2 only (latest touch).
- bob: only a privacy-proxy open on k1; order 06-11 (15): not attributed, but converts (intent to treat).
- carol: bounced (blocked); no orders. erin: no orders.
- frank: click on k1 06-10 10:00:00; order 06-15 10:00:01 (5), one second past 120 h: not attributed.
- dave (control): pre-send order 01-05 (10); order 06-12 (40).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

pytestmark = pytest.mark.slow  # one dbt build (~20 s)

SELECT = ["+path:models/marts/campaigns", "+path:models/marts/segments"]


def _unix(ts: str) -> int:
    return int(datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def wh(make_warehouse, rows) -> Any:
    wh = make_warehouse("campaigns")
    people = {1: "alice", 2: "bob", 4: "dave", 5: "frank"}
    wh.insert(
        "shop_customers",
        [rows.shop_customer(i, email=f"{n}@x.com", first_name=n.title()) for i, n in people.items()],
    )
    order_rows = [
        (100, 1, "2025-05-01 12:00:00", 30),
        (101, 1, "2025-06-12 10:00:00", 80),
        (102, 1, "2025-06-16 13:00:00", 20),
        (200, 2, "2025-06-11 08:00:00", 15),
        (400, 4, "2025-01-05 12:00:00", 10),
        (401, 4, "2025-06-12 10:00:00", 40),
        (500, 5, "2025-06-15 10:00:01", 5),
    ]
    wh.insert(
        "shop_orders",
        [
            # checkout email set: an all-null email column trips the staging email macro (reported)
            rows.shop_order(i, customer_id=c, email=f"{people[c]}@x.com", total=t, created_at=ts, updated_at=ts)
            for i, c, ts, t in order_rows
        ],
    )
    wh.insert(
        "shop_fx_rates",
        [
            {"rate_date": "2025-06-09", "currency": "EUR", "usd_per_unit": 1.1},
            {"rate_date": "2025-06-11", "currency": "EUR", "usd_per_unit": 1.2},
        ],
    )
    wh.insert(
        "esp_campaigns",
        [
            rows.esp_campaign("k1", send_at="2025-06-10 09:00:00", cost=100, cost_currency="EUR"),
            rows.esp_campaign("k2", send_at="2025-06-11 12:00:00", cost=0, cost_currency="USD", holdout_pct=0),
        ],
    )
    audience = [
        ("k1", "Alice@X.com", "treatment"),
        ("k1", "bob@x.com", "treatment"),
        ("k1", "carol@x.com", "treatment"),
        ("k1", "frank@x.com", "treatment"),
        ("k1", "dave@x.com", "control"),
        ("k1", "erin@x.com", "control"),
        ("k2", "alice@x.com", "treatment"),
    ]
    wh.insert("esp_audiences", [{"campaign_id": c, "email": e, "group": g} for c, e, g in audience])
    events = [
        ("k1", "Alice@X.com", "processed", "2025-06-10 09:00:00", {}),
        ("k1", "bob@x.com", "processed", "2025-06-10 09:00:00", {}),
        ("k1", "carol@x.com", "processed", "2025-06-10 09:00:00", {}),
        ("k1", "frank@x.com", "processed", "2025-06-10 09:00:00", {}),
        ("k1", "Alice@X.com", "delivered", "2025-06-10 09:00:05", {}),
        ("k1", "bob@x.com", "delivered", "2025-06-10 09:00:05", {}),
        ("k1", "frank@x.com", "delivered", "2025-06-10 09:00:05", {}),
        ("k1", "carol@x.com", "bounce", "2025-06-10 09:00:05", {"type": "blocked"}),
        ("k1", "alice@x.com", "open", "2025-06-10 09:01:00", {"sg_machine_open": True}),
        ("k1", "ALICE@x.com ", "open", "2025-06-10 10:00:00", {"sg_machine_open": False}),
        ("k1", "alice@x.com", "click", "2025-06-10 10:05:00", {}),
        ("k1", "bob@x.com", "open", "2025-06-10 09:05:00", {"sg_machine_open": True}),
        ("k1", "frank@x.com", "click", "2025-06-10 10:00:00", {}),
        ("k2", "alice@x.com", "processed", "2025-06-11 12:00:00", {}),
        ("k2", "alice@x.com", "delivered", "2025-06-11 12:00:05", {}),
        ("k2", "alice@x.com", "click", "2025-06-11 13:00:00", {}),
    ]
    wh.insert(
        "esp_events",
        [
            rows.esp_event(f"ev{i}", email, event, campaign_id=c, timestamp=_unix(ts), **kw)
            for i, (c, email, event, ts, kw) in enumerate(events)
        ],
    )
    wh.build(as_of=date(2025, 6, 30), select=SELECT)
    return wh


@pytest.fixture(scope="module")
def perf(wh) -> dict[str, dict[str, Any]]:
    return {r["campaign_id"]: r for r in wh.query_dicts("select * from marts.campaign_performance")}


def test_funnel_unique_recipients_and_machine_opens(perf):
    k1 = perf["k1"]
    assert (k1["processed"], k1["delivered"], k1["bounced"], k1["dropped"]) == (4, 3, 1, 0)
    assert (k1["unique_opens"], k1["unique_human_opens"], k1["unique_clicks"]) == (2, 1, 2)
    assert k1["open_rate"] == pytest.approx(1 / 3)
    assert k1["click_rate"] == pytest.approx(2 / 3)
    assert k1["click_to_open_rate"] == pytest.approx(2.0)


def test_attribution_last_touch_by_stitched_customer(wh, perf):
    credited = wh.query(
        "select a.order_id, a.campaign_id from intermediate.int_order_attribution a order by a.order_id"
    )
    assert credited == [(101, "k2"), (102, "k2")]
    assert (perf["k1"]["attributed_orders"], float(perf["k1"]["attributed_revenue_usd"])) == (0, 0.0)
    assert (perf["k2"]["attributed_orders"], float(perf["k2"]["attributed_revenue_usd"])) == (2, 100.0)


def test_holdout_lift_intent_to_treat(perf):
    k1 = perf["k1"]
    assert (k1["treatment_size"], k1["control_size"]) == (4, 2)
    assert (k1["treatment_conversions"], k1["control_conversions"]) == (3, 1)
    assert k1["treatment_conversion_rate"] == 0.75 and k1["control_conversion_rate"] == 0.5
    assert k1["lift_abs"] == pytest.approx(0.25)
    assert k1["lift_rel"] == pytest.approx(0.5)
    # pooled 4/6, se = sqrt(2/3 * 1/3 * (1/4 + 1/2)) = 0.408248, z = 0.612372, p = 2 * (1 - Phi(z)) = 0.54029
    assert k1["p_value"] == pytest.approx(0.54029, abs=1e-4)
    assert k1["lift_ci_low"] < 0.25 < k1["lift_ci_high"]
    assert k1["incremental_conversions"] == pytest.approx(1.0)
    # treatment revenue 100 (alice) + 15 (bob) + 5 (frank) = 120 / 4 = 30; control 40 / 2 = 20
    assert float(k1["revenue_per_recipient_treatment_usd"]) == pytest.approx(30.0)
    assert float(k1["revenue_per_recipient_control_usd"]) == pytest.approx(20.0)
    assert float(k1["incremental_revenue_usd"]) == pytest.approx(40.0)
    assert float(k1["cost_usd"]) == pytest.approx(110.0)  # 100 EUR at the 06-09 rate (06-10 has none)
    assert float(k1["roi"]) == pytest.approx((40 - 110) / 110)


def test_decisions_from_member_outcomes_and_pre_send_covariates(wh, perf):
    # 90 days before k1's send (06-10 09:00) starts 03-12 09:00: alice's 05-01 order is in her
    # pre-period, dave's 01-05 order is not, bob's 06-11 order is after the send
    pre = dict(wh.query("select recipient_key, pre_orders from intermediate.int_campaign_members "
                        "where campaign_id = 'k1'"))  # fmt: skip
    assert pre == {"alice@x.com": 1, "bob@x.com": 0, "carol@x.com": 0, "frank@x.com": 0, "dave@x.com": 0,
                   "erin@x.com": 0}  # fmt: skip
    k1 = perf["k1"]
    # per member window revenue: treatment alice 100, bob 15, carol 0, frank 5; control dave 40, erin 0
    low, high = CompareMeans(DescrStatsW(np.array([100.0, 15, 0, 5])), DescrStatsW(np.array([40.0, 0]))).tconfint_diff(
        usevar="unequal"
    )
    assert float(k1["incremental_revenue_ci_low"]) == pytest.approx(low * 4, rel=1e-9)
    assert float(k1["incremental_revenue_ci_high"]) == pytest.approx(high * 4, rel=1e-9)
    assert k1["roi_ci_low"] == pytest.approx((low * 4 - 110) / 110, rel=1e-9)
    # CUPED on conversions: y (alice, bob, carol, frank | dave, erin) = 1 1 0 1 | 1 0, x = 1 0 0 0 | 0 0;
    # theta = cov(y, x) / var(x) over all six; lift = (0.75 - 0.5) - theta * (mean x_t - mean x_c)
    y, x = np.array([1.0, 1, 0, 1, 1, 0]), np.array([1.0, 0, 0, 0, 0, 0])
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    assert theta == pytest.approx(0.4)  # cov = (1 - 6 * 1/6 * 4/6) / 5 = 1/15, var = (1 - 6 / 36) / 5 = 1/6
    assert k1["lift_cuped_abs"] == pytest.approx(0.25 - 0.4 * (0.25 - 0.0), abs=1e-12)
    assert k1["verdict"] == "too small to tell"  # the interval straddles 0 with six members
    assert k1["mde_abs"] > 0.5 and k1["q_value"] == pytest.approx(k1["p_value"])  # the only test
    assert perf["k2"]["verdict"] is None and perf["k2"]["q_value"] is None


def test_campaign_without_control_group(perf):
    k2 = perf["k2"]
    assert (k2["treatment_size"], k2["control_size"], k2["has_control_group"]) == (1, 0, False)
    assert k2["treatment_conversion_rate"] == 1.0
    for column in ("control_conversion_rate", "lift_abs", "lift_rel", "lift_ci_low", "lift_ci_high",
                   "p_value", "incremental_conversions", "revenue_per_recipient_control_usd",
                   "incremental_revenue_usd", "roi"):  # fmt: skip
        assert k2[column] is None, column


def test_segment_performance_uses_the_pre_send_segment(wh):
    rows = wh.query(
        "select campaign_id, rfm_segment, segment_as_of_date, treatment_size, control_size, "
        "treatment_conversions, control_conversions from marts.campaign_segment_performance "
        "order by campaign_id, rfm_segment"
    )
    # k1, as of 06-09 from orders before the send: alice (05-01, 39 days) and dave (01-05, 155 days)
    # are the only buyers: dave R 3 F 1 About to Sleep, alice R 5 F 1 New Customers (her later orders
    # do not leak in); bob, carol, frank and erin had no orders yet.
    k1_day = date(2025, 6, 9)
    assert rows == [
        ("k1", "About to Sleep", k1_day, 0, 1, 0, 1),
        ("k1", "New Customers", k1_day, 1, 0, 1, 0),
        ("k1", "No Purchases", k1_day, 3, 1, 2, 0),
        ("k2", "Promising", date(2025, 6, 10), 1, 0, 1, 0),
    ]
    # k2 (sent 06-11 12:00): bob's order at 06-11 08:00 is before the send, so three buyers: dave
    # (156 days) R 2, alice (40) R ceil(10/3) = 4, bob (-1: that morning) R 5 -> alice R 4 F 1 Promising.
