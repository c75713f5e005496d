"""The campaign statistics SQL (int_campaign_lift_counts -> int_campaign_lift_stats -> campaign marts) run by
dbt on DuckDB over member-level fixtures, checked against published values, hand computations and
independent implementations (statsmodels, scipy, numpy) to 1e-9.

The fixture members are written straight into `intermediate.int_campaign_members` (and the other parents
of the campaign marts into their intermediate tables); only the statistics models are built, so each
expected value comes from the rows written here. Newcombe interval values are from Newcombe (1998),
"Interval estimation for the difference between independent proportions: comparison of eleven methods",
Statistics in Medicine 17:873-890, Table II, method 10, for the paper's eight examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

pytestmark = pytest.mark.slow  # one dbt build of four models (~15 s)

SELECT = ["int_campaign_lift_counts", "int_campaign_lift_stats", "campaign_performance", "campaign_segment_performance"]
Z975 = 1.959963984540054  # standard normal 97.5% quantile (tables)
Z80 = 0.8416212335729143  # standard normal 80% quantile (tables)
SEGMENTS = ["Champions", "At Risk", "No Purchases"]


@dataclass
class Group:
    """Member-level outcomes of one audience group (one array element per member)."""

    converted: np.ndarray
    pre_orders: np.ndarray
    revenue: np.ndarray  # the person's window revenue
    pre_revenue: np.ndarray
    counts_revenue: np.ndarray  # False: another member of the group is the same person
    segment: np.ndarray

    @property
    def n(self) -> int:
        return len(self.converted)

    @property
    def y_rev(self) -> np.ndarray:  # each order counted once per group
        return np.where(self.counts_revenue, self.revenue, 0.0)

    @property
    def x_rev(self) -> np.ndarray:
        return np.where(self.counts_revenue, self.pre_revenue, 0.0)

    def where(self, mask: np.ndarray) -> Group:
        return Group(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def counts_only(conversions: int, n: int) -> Group:
    converted = np.arange(n) < conversions
    zeros = np.zeros(n)
    return Group(converted, zeros, zeros, zeros, np.ones(n, bool), np.full(n, "No Purchases"))


def simulated(rng: np.random.Generator, n: int, base: float, effect: float, dup_share: float = 0.03) -> Group:
    """Converters more likely among recent buyers (the CUPED covariate carries signal); revenue in cents."""
    pre_orders = rng.poisson(0.5, n).astype(float)
    p = np.clip(base + 0.06 * np.minimum(pre_orders, 2) + effect, 0, 1)
    converted = rng.random(n) < p
    revenue = np.where(converted, np.round(rng.lognormal(3.6, 0.7, n) * (1 + 0.3 * pre_orders), 2), 0.0)
    pre_revenue = np.array([np.round(rng.lognormal(3.5, 0.6, int(k)).sum(), 2) for k in pre_orders])
    counts = rng.random(n) >= dup_share
    return Group(converted, pre_orders, revenue, pre_revenue, counts, rng.choice(SEGMENTS, n))


def exact_covariate(rng: np.random.Generator, n: int) -> Group:
    """Window revenue exactly 3x the pre-period revenue: the covariate explains all of its variance."""
    converted = rng.random(n) < 0.5
    pre_revenue = np.where(converted, np.round(rng.lognormal(3.5, 0.6, n), 2), 0.0)
    pre_orders = rng.poisson(0.5, n).astype(float)
    return Group(converted, pre_orders, 3 * pre_revenue, pre_revenue, np.ones(n, bool), np.full(n, "Champions"))


PAPER = {  # campaign: (treated conversions, treated, control conversions, control, interval low, high)
    "paper1": (56, 70, 48, 80, 0.0524, 0.3339),
    "paper2": (9, 10, 3, 10, 0.1705, 0.8090),
    "paper3": (6, 7, 2, 7, 0.0582, 0.8062),
    "paper4": (5, 56, 0, 29, -0.0381, 0.1926),  # control rate 0: interval defined, lift_rel null
    "paper5": (0, 10, 0, 20, -0.1611, 0.2775),
    "paper6": (0, 10, 0, 10, -0.2775, 0.2775),
    "paper7": (10, 10, 0, 20, 0.6791, 1.0000),
    "paper8": (10, 10, 0, 10, 0.6075, 1.0000),
}


EXACT_SEED = 0


def fixture_campaigns() -> dict[str, tuple[Group, Group]]:
    rng = np.random.default_rng(20)
    camps = {
        "large": (simulated(rng, 600, 0.05, 0.03), simulated(rng, 150, 0.05, 0.0)),
        "mid": (simulated(rng, 120, 0.10, 0.0), simulated(rng, 60, 0.10, 0.0)),
        "rare": (simulated(rng, 900, 0.01, 0.01), simulated(rng, 45, 0.01, 0.0)),
        "negative": (simulated(rng, 400, 0.05, -0.04), simulated(rng, 400, 0.09, 0.0)),
        "hand_mde": (counts_only(100, 1000), counts_only(100, 1000)),
        "nobody": (counts_only(0, 50), counts_only(0, 10)),
        "one_control": (simulated(rng, 10, 0.3, 0.0), simulated(rng, 1, 0.3, 0.0)),
        "no_control": (simulated(rng, 20, 0.3, 0.0), simulated(rng, 0, 0.3, 0.0)),
    }
    exact = np.random.default_rng(EXACT_SEED)
    camps["exact_covariate"] = (exact_covariate(exact, 40), exact_covariate(exact, 20))
    camps.update({k: (counts_only(a, n), counts_only(c, m)) for k, (a, n, c, m, _, _) in PAPER.items()})
    return camps


CAMPAIGNS = fixture_campaigns()


def _member_rows(camps: dict[str, tuple[Group, Group]]) -> list[tuple]:
    rows = []
    for cid, groups in camps.items():
        for name, g in zip(("treatment", "control"), groups, strict=True):
            for i in range(g.n):
                rows.append((cid, f"{name}{i}@x.com", name, str(g.segment[i]), bool(g.converted[i]),
                             int(g.pre_orders[i]), float(g.revenue[i]), float(g.pre_revenue[i]),
                             bool(g.counts_revenue[i])))  # fmt: skip
    return rows


def _write_parents(path: str, camps: dict[str, tuple[Group, Group]]) -> None:
    with duckdb.connect(path) as con:
        con.execute("create schema if not exists intermediate")
        con.execute(
            "create table intermediate.int_campaign_members (campaign_id varchar, recipient_key varchar, "
            "audience_group varchar, pre_send_rfm_segment varchar, converted boolean, pre_orders bigint, "
            "window_revenue_usd decimal(18, 2), pre_revenue_usd decimal(18, 2), counts_revenue boolean)"
        )
        con.executemany("insert into intermediate.int_campaign_members values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        _member_rows(camps))  # fmt: skip
        con.execute(
            "create table intermediate.int_campaigns (campaign_id varchar, name varchar, subject varchar, "
            "send_at timestamp, target_segment varchar, holdout_pct double, cost double, cost_currency varchar, "
            "cost_usd double)"
        )
        for i, cid in enumerate(camps):
            cost = None if cid == "mid" else 100.0 + i
            con.execute("insert into intermediate.int_campaigns values (?, ?, 's', '2025-06-01 09:00:00', 'all', "
                        "10, ?, 'USD', ?)", [cid, cid, cost, cost])  # fmt: skip
        funnel = ["processed", "delivered", "bounced", "dropped", "deferred", "unique_opens", "unique_human_opens",
                  "unique_machine_opens", "unique_clicks", "unsubscribes", "spam_reports"]  # fmt: skip
        counts = ", ".join(f"{c} bigint" for c in funnel)
        con.execute(f"create table intermediate.int_campaign_funnel (campaign_id varchar, {counts})")
        con.execute(
            "create table intermediate.int_order_attribution (order_id bigint, customer_id varchar, "
            "campaign_id varchar, net_revenue_usd decimal(18, 4))"
        )


@pytest.fixture(scope="module")
def wh(make_warehouse) -> Any:
    wh = make_warehouse("lift_stats")
    _write_parents(str(wh.path), CAMPAIGNS)
    wh.build(select=SELECT)
    return wh


@pytest.fixture(scope="module")
def perf(wh) -> dict[str, dict[str, Any]]:
    return {r["campaign_id"]: r for r in wh.query_dicts("select * from marts.campaign_performance")}


@pytest.fixture(scope="module")
def seg(wh) -> dict[tuple[str, str], dict[str, Any]]:
    rows = wh.query_dicts("select * from marts.campaign_segment_performance")
    return {(r["campaign_id"], r["rfm_segment"]): r for r in rows}


def close(actual: float | None, expected: float, tol: float = 1e-9) -> bool:
    """Equal to 1e-9, relative for large values (revenue), absolute for rates and probabilities."""
    return actual is not None and abs(actual - expected) <= tol * max(1.0, abs(expected))


COMPARED = ["large", "mid", "rare", "negative", "hand_mde", "nobody", "one_control", "exact_covariate", *PAPER]


@pytest.mark.parametrize(("campaign", "low", "high"), [(k, v[4], v[5]) for k, v in PAPER.items()])
def test_newcombe_interval_matches_the_paper(perf, campaign, low, high):
    row = perf[campaign]
    assert row["lift_ci_low"] == pytest.approx(low, abs=6e-5)
    assert row["lift_ci_high"] == pytest.approx(high, abs=6e-5)
    assert row["lift_ci_low"] <= row["lift_abs"] <= row["lift_ci_high"]


@pytest.mark.parametrize("campaign", COMPARED)
def test_conversion_lift_matches_statsmodels(perf, campaign):
    t, c = CAMPAIGNS[campaign]
    row = perf[campaign]
    ct, cc = int(t.converted.sum()), int(c.converted.sum())
    assert (row["treatment_conversions"], row["control_conversions"]) == (ct, cc)
    assert close(row["lift_abs"], ct / t.n - cc / c.n)
    low, high = confint_proportions_2indep(ct, t.n, cc, c.n, compare="diff", method="newcomb", alpha=0.05)
    assert close(row["lift_ci_low"], low) and close(row["lift_ci_high"], high)
    if ct + cc in (0, t.n + c.n):
        assert row["p_value"] == 1.0  # no variance: no evidence of a difference
    else:
        _z, p = proportions_ztest([ct, cc], [t.n, c.n], alternative="two-sided")
        assert close(row["p_value"], p)
    assert close(row["incremental_conversions"], (ct / t.n - cc / c.n) * t.n)


@pytest.mark.parametrize("campaign", COMPARED)
def test_mde_matches_the_closed_form_and_statsmodels_power(perf, campaign):
    t, c = CAMPAIGNS[campaign]
    p = (t.converted.sum() + c.converted.sum()) / (t.n + c.n)
    if p == 0:
        assert perf[campaign]["mde_abs"] is None
        return
    sigma = np.sqrt(p * (1 - p))
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sigma * np.sqrt(1 / t.n + 1 / c.n)
    assert close(perf[campaign]["mde_abs"], expected)
    # statsmodels' power at that lift is 80%: exactly for the one-sided test at 2.5% (the closed form
    # ignores the far tail of the two-sided test), within 1e-6 for the two-sided test at 5%; its solver
    # finds the same lift to its own tolerance. Effect sizes are in standard deviations.
    power, effect = NormalIndPower(), perf[campaign]["mde_abs"] / sigma
    assert close(power.power(effect, t.n, 0.025, ratio=c.n / t.n, alternative="larger"), 0.8)
    assert power.power(effect, t.n, 0.05, ratio=c.n / t.n) == pytest.approx(0.8, abs=1e-6)
    d = power.solve_power(nobs1=t.n, alpha=0.05, power=0.8, ratio=c.n / t.n)
    assert perf[campaign]["mde_abs"] == pytest.approx(d * sigma, rel=1e-5)


def test_mde_by_hand(perf):
    # 1000 vs 1000 members, 100 conversions each: p = 0.1,
    # mde = (1.959964 + 0.841621) * sqrt(0.1 * 0.9 * (1/1000 + 1/1000)) = 2.801585 * 0.0134164 = 0.0375870
    assert perf["hand_mde"]["mde_abs"] == pytest.approx((Z975 + Z80) * np.sqrt(0.09 * 0.002), abs=1e-12)
    assert perf["hand_mde"]["mde_abs"] == pytest.approx(0.037587, abs=1e-6)
    assert perf["nobody"]["mde_abs"] is None  # nobody converted: p = 0


@pytest.mark.parametrize("campaign", ["large", "mid", "rare", "negative"])
def test_revenue_interval_matches_welch(perf, campaign):
    t, c = CAMPAIGNS[campaign]
    row = perf[campaign]
    diff = t.y_rev.mean() - c.y_rev.mean()
    assert close(row["revenue_per_recipient_treatment_usd"], t.y_rev.mean())
    assert close(row["incremental_revenue_usd"], diff * t.n)
    low, high = CompareMeans(DescrStatsW(t.y_rev), DescrStatsW(c.y_rev)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert close(row["incremental_revenue_ci_low"], low * t.n)
    assert close(row["incremental_revenue_ci_high"], high * t.n)
    _t, _p, df = ttest_ind(t.y_rev, c.y_rev, usevar="unequal")
    assert close(
        row["incremental_revenue_ci_high"] - row["incremental_revenue_usd"],
        stats.t.ppf(0.975, df) * np.sqrt(t.y_rev.var(ddof=1) / t.n + c.y_rev.var(ddof=1) / c.n) * t.n,
    )
    cost = row["cost_usd"]
    if cost is None:
        assert row["roi_ci_low"] is None and row["roi_ci_high"] is None
    else:
        assert close(row["roi_ci_low"], (low * t.n - cost) / cost)
        assert close(row["roi_ci_high"], (high * t.n - cost) / cost)


def _cuped(t_y: np.ndarray, t_x: np.ndarray, c_y: np.ndarray, c_x: np.ndarray) -> tuple[float, float, float]:
    """CUPED by hand in numpy: theta from both groups, adjusted outcomes, normal interval."""
    y, x = np.concatenate([t_y, c_y]), np.concatenate([t_x, c_x])
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1) if np.var(x) > 0 else 0.0
    adj_t, adj_c = t_y - theta * (t_x - x.mean()), c_y - theta * (c_x - x.mean())
    lift = adj_t.mean() - adj_c.mean()
    se = np.sqrt(adj_t.var(ddof=1) / len(t_y) + adj_c.var(ddof=1) / len(c_y))
    return lift, lift - stats.norm.ppf(0.975) * se, lift + stats.norm.ppf(0.975) * se


@pytest.mark.parametrize("campaign", ["large", "mid", "rare", "negative", "hand_mde", "exact_covariate", "paper1"])
def test_cuped_matches_a_numpy_computation(perf, campaign):
    t, c = CAMPAIGNS[campaign]
    row = perf[campaign]
    lift, low, high = _cuped(t.converted.astype(float), t.pre_orders, c.converted.astype(float), c.pre_orders)
    assert close(row["lift_cuped_abs"], lift)
    assert close(row["lift_cuped_ci_low"], low) and close(row["lift_cuped_ci_high"], high)
    diff, low, high = _cuped(t.y_rev, t.x_rev, c.y_rev, c.x_rev)
    assert close(row["incremental_revenue_cuped_usd"], diff * t.n)
    assert close(row["incremental_revenue_cuped_ci_low"], low * t.n)
    assert close(row["incremental_revenue_cuped_ci_high"], high * t.n)


def test_a_covariate_that_explains_everything_leaves_no_cuped_interval(perf):
    # var(y) + theta^2 var(x) - 2 theta cov(y, x) is 0 here, but computed it cancels to +-1e-12, whose square
    # root gave a +-1e-6 interval that changed with the order the sums were added in (a rebuild differed).
    row = perf["exact_covariate"]
    assert row["incremental_revenue_cuped_ci_low"] == row["incremental_revenue_cuped_usd"]
    assert row["incremental_revenue_cuped_ci_high"] == row["incremental_revenue_cuped_usd"]


def test_cuped_narrows_the_interval_when_the_covariate_predicts(perf):
    for campaign in ("large", "negative"):
        row = perf[campaign]
        t, c = CAMPAIGNS[campaign]
        wald = 2 * Z975 * np.sqrt(t.converted.var(ddof=1) / t.n + c.converted.var(ddof=1) / c.n)
        assert row["lift_cuped_ci_high"] - row["lift_cuped_ci_low"] < wald


def test_q_values_match_benjamini_hochberg(perf):
    tested = sorted(k for k, r in perf.items() if r["has_control_group"] and r["p_value"] is not None)
    assert set(tested) == set(COMPARED)
    _reject, q, _s, _b = multipletests([perf[k]["p_value"] for k in tested], method="fdr_bh")
    for k, expected in zip(tested, q, strict=True):
        assert close(perf[k]["q_value"], expected), k
        assert perf[k]["p_value"] <= perf[k]["q_value"] <= 1


def test_verdicts_follow_the_interval_and_the_mde(perf):
    for k in COMPARED:
        row = perf[k]
        if row["lift_ci_low"] > 0:
            expected = "increased"
        elif row["lift_ci_high"] < 0:
            expected = "decreased"
        elif row["mde_abs"] is None or row["mde_abs"] > 0.02:
            expected = "too small to tell"
        else:
            expected = "no detectable effect"
        assert row["verdict"] == expected, k
    assert perf["paper1"]["verdict"] == "increased"  # 0.0524 .. 0.3339
    assert perf["negative"]["verdict"] == "decreased"
    assert perf["hand_mde"]["verdict"] == "too small to tell"  # 0 .. with mde 0.0376 > 0.02
    assert perf["nobody"]["verdict"] == "too small to tell"  # mde null: nobody converted


def test_small_groups_and_missing_control(perf):
    one = perf["one_control"]  # a single control member: no variance, no Welch or CUPED interval
    assert one["lift_ci_low"] is not None and one["mde_abs"] is not None
    assert one["incremental_revenue_ci_low"] is None and one["lift_cuped_ci_low"] is None
    assert one["lift_cuped_abs"] is not None
    none = perf["no_control"]
    assert none["has_control_group"] is False and none["treatment_conversion_rate"] is not None
    for column in ("lift_abs", "lift_ci_low", "p_value", "mde_abs", "q_value", "verdict", "incremental_revenue_usd",
                   "incremental_revenue_ci_low", "roi", "roi_ci_low", "roi_ci_high", "lift_cuped_abs",
                   "lift_cuped_ci_low", "incremental_revenue_cuped_usd"):  # fmt: skip
        assert none[column] is None, column
    assert perf["paper4"]["lift_rel"] is None  # control rate 0


def test_segment_rows_use_the_same_statistics(seg):
    t, c = CAMPAIGNS["large"]
    for segment in SEGMENTS:
        ts, cs = t.where(t.segment == segment), c.where(c.segment == segment)
        row = seg[("large", segment)]
        assert (row["treatment_size"], row["control_size"]) == (ts.n, cs.n)
        ct, cc = int(ts.converted.sum()), int(cs.converted.sum())
        low, high = confint_proportions_2indep(ct, ts.n, cc, cs.n, compare="diff", method="newcomb")
        assert close(row["lift_ci_low"], low) and close(row["lift_ci_high"], high)
        p = (ct + cc) / (ts.n + cs.n)
        assert close(row["mde_abs"], (Z975 + Z80) * np.sqrt(p * (1 - p) * (1 / ts.n + 1 / cs.n)), tol=1e-12)
        low, high = CompareMeans(DescrStatsW(ts.y_rev), DescrStatsW(cs.y_rev)).tconfint_diff(usevar="unequal")
        assert close(row["incremental_revenue_ci_low"], low * ts.n)
    assert "q_value" not in seg[("large", SEGMENTS[0])]
