"""What the report reads from the published file, checked against the hand-made fixture (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rapport.reports.data import (
    AT_RISK_HIGH_VALUE,
    BAD_SUPPORT,
    check_required,
    load_action_list,
    load_campaigns,
    load_customer_base,
    load_run_info,
    relation_columns,
)
from rapport.reports.headline import headline_values


@pytest.fixture
def con(published_db: Path):
    c = duckdb.connect(str(published_db), read_only=True)
    yield c
    c.close()


def test_headline_values(con: duckdb.DuckDBPyConnection) -> None:
    v = headline_values(con)
    assert v["customers"] == 12
    assert v["buying_customers"] == 10
    assert v["revenue_usd"] == pytest.approx(8600)
    assert v["avg_order_value_usd"] == pytest.approx(8600 / 32)
    assert v["email_subscribers"] == 7
    assert v["active_customers"] == 5  # new 1 + active 4 + reactivated 0
    assert v["new_customers"] == 1
    assert v["at_risk_customers"] == 3
    assert v["attributed_revenue_usd"] == pytest.approx(4500 + 800 + 1200 + 300 + 2100 + 2600)


def test_customer_base(con: duckdb.DuckDBPyConnection) -> None:
    base = load_customer_base(con)
    assert base.top_20pct_revenue_share == pytest.approx(5000 / 8600)
    assert (base.high_tier_customers, base.buying_customers) == (2, 10)
    assert base.lifecycle == [
        ("prospect", 2),
        ("new", 1),
        ("active", 4),
        ("reactivated", 0),
        ("at_risk", 3),
        ("churned", 2),
    ]
    assert [s["rfm_segment"] for s in base.segments[:3]] == ["Champions", "Cannot Lose Them", "Loyal Customers"]
    assert sum(s["customers"] for s in base.segments) == 12


def test_campaigns_ranked_by_revenue_with_the_published_decisions(con: duckdb.DuckDBPyConnection, facts) -> None:
    campaigns = load_campaigns(con).campaigns
    assert [c.campaign_id for c in campaigns] == [
        "cmp_spring",
        "cmp_flash",
        "cmp_summer",
        "cmp_vip",
        "cmp_hostile",
        "cmp_winback",
    ]
    assert [c.verdict for c in campaigns] == [
        "increased",
        "too_small",
        "no_effect",
        "no_holdout",
        "too_small",
        "decreased",
    ]
    assert [c.roi_known for c in campaigns] == [True, True, True, False, False, True]
    assert campaigns[4].name == facts.hostile_campaign
    vip = campaigns[3]
    assert vip.control_size == 0 and vip.lift_abs is None and not vip.has_holdout
    spring = campaigns[0]
    assert (spring.treatment_buyers, spring.control_buyers) == (60, 8)
    assert (spring.q_value, spring.mde_abs) == (pytest.approx(0.057367), pytest.approx(0.041061))
    assert (spring.incremental_revenue_ci_low, spring.incremental_revenue_ci_high) == (300, 4700)
    assert (spring.roi_ci_low, spring.roi_ci_high) == (pytest.approx(-0.4), pytest.approx(8.4))  # (bound - 500) / 500


def test_files_published_before_the_decisions_get_the_same_verdicts(tmp_path: Path, make_published_db) -> None:
    """Without `verdict`, `mde_abs` and the buyer counts, the rule of contracts/marts.md is applied to the
    interval (and a missing MDE counts as too small to tell); buyers come from rate x size."""
    path = make_published_db()
    with duckdb.connect(str(path)) as c:
        c.execute("alter table marts.campaign_performance drop column verdict")
        c.execute("alter table marts.campaign_performance drop column treatment_conversions")
        c.execute("alter table marts.campaign_performance drop column control_conversions")
    with duckdb.connect(str(path), read_only=True) as c:
        by_id = {x.campaign_id: x for x in load_campaigns(c).campaigns}
    assert {k: x.verdict for k, x in by_id.items()} == {
        "cmp_spring": "increased",
        "cmp_flash": "too_small",
        "cmp_summer": "no_effect",
        "cmp_vip": "no_holdout",
        "cmp_hostile": "too_small",
        "cmp_winback": "decreased",
    }
    assert (by_id["cmp_spring"].treatment_buyers, by_id["cmp_spring"].control_buyers) == (60, 8)
    assert by_id["cmp_vip"].control_buyers is None


def test_action_lists_rank_by_value_and_mask_emails(con: duckdb.DuckDBPyConnection, facts) -> None:
    at_risk = load_action_list(con, AT_RISK_HIGH_VALUE)
    # c04 is in "At Risk" but mid tier; c01 is high tier but a Champion: neither belongs here.
    assert [p["customer_id"] for p in at_risk.rows] == ["c02"]
    assert (at_risk.total, at_risk.total_revenue_usd) == (1, 2000)
    support = load_action_list(con, BAD_SUPPORT)
    assert [p["customer_id"] for p in support.rows] == ["c02", "c04", "c06"]
    assert (support.total, support.total_revenue_usd) == (3, 3300)
    c02, c04, c06 = support.rows
    assert c04["name"] == facts.hyperlink_name
    assert c02["name"] == facts.script_name  # escaped by the template, not mangled here
    assert c02["email"] == "e***@example.com"
    assert c06["name"] == "b***@example.net"  # a name typed as an email is masked too
    assert (c02["tickets"], c02["open_tickets"], c02["bad_ratings"]) == (3, 1, 1)


def test_action_list_limit_keeps_the_total(con: duckdb.DuckDBPyConnection) -> None:
    listed = load_action_list(con, BAD_SUPPORT, limit=1)
    assert [p["customer_id"] for p in listed.rows] == ["c02"]
    assert listed.total == 3


def test_run_info_skips_failed_runs(con: duckdb.DuckDBPyConnection) -> None:
    run = load_run_info(con, relation_columns(con), "run_cur")
    assert run.status == "success"
    assert run.quarantined == 2 + 1 + 4
    assert run.previous_success is not None and run.previous_success["run_id"] == "run_prev"


def test_missing_contract_relation_is_named(tmp_path: Path, make_published_db) -> None:
    path = make_published_db()
    with duckdb.connect(str(path)) as c:
        c.execute("drop table marts.value_concentration")
    with duckdb.connect(str(path), read_only=True) as c, pytest.raises(ValueError, match="value_concentration"):
        check_required(relation_columns(c))
