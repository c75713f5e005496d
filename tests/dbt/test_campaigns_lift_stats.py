"""The lift statistics Python model (int_campaign_lift_stats) against published and hand-computed values.

Interval values are Newcombe (1998), "Interval estimation for the difference between independent
proportions: comparison of eleven methods", Statistics in Medicine 17:873-890, Table II, method 10 (hybrid
score interval), for the paper's eight examples. The z-test p-values are computed by hand below.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

MODEL = (
    Path(__file__).resolve().parents[2]
    / "dbt_project"
    / "models"
    / "intermediate"
    / "campaigns"
    / "int_campaign_lift_stats.py"
)


@pytest.fixture(scope="module")
def lift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("int_campaign_lift_stats", MODEL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("treated", "n_treated", "control", "n_control", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),  # control rate 0: interval defined, lift_rel null
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_interval_matches_the_paper(lift, treated, n_treated, control, n_control, low, high):
    out = lift._row_stats(treated, n_treated, control, n_control, 0.05)
    assert out["lift_ci_low"] == pytest.approx(low, abs=6e-5)
    assert out["lift_ci_high"] == pytest.approx(high, abs=6e-5)
    assert out["lift_abs"] == pytest.approx(treated / n_treated - control / n_control)
    assert out["lift_ci_low"] <= out["lift_abs"] <= out["lift_ci_high"]


def test_pooled_z_test_p_value(lift):
    # 10/100 vs 5/20: pooled p = 15/120 = 0.125, se = sqrt(0.125 * 0.875 * (1/100 + 1/20)) = 0.081009,
    # z = (0.10 - 0.25) / 0.081009 = -1.85164, two-sided p = 2 * Phi(-1.85164) = 0.06408
    out = lift._row_stats(10, 100, 5, 20, 0.05)
    assert out["p_value"] == pytest.approx(0.06408, abs=1e-4)
    # 50/100 vs 40/100: pooled 0.45, se = sqrt(0.45 * 0.55 * 0.02) = 0.070356, z = 1.42134, p = 0.15521
    out = lift._row_stats(50, 100, 40, 100, 0.05)
    assert out["p_value"] == pytest.approx(0.15521, abs=1e-4)
    assert out["lift_rel"] == pytest.approx(0.25)  # 0.1 / 0.4
    assert out["treatment_conversion_rate"] == 0.5
    assert out["control_conversion_rate"] == 0.4


def test_degenerate_and_missing_groups(lift):
    # Same rate 0 in both groups: no variance, no evidence of a difference.
    out = lift._row_stats(0, 50, 0, 10, 0.05)
    assert out["p_value"] == 1.0 and out["lift_abs"] == 0.0 and out["lift_rel"] is None
    assert out["lift_ci_low"] < 0 < out["lift_ci_high"]
    # No control group: only the treatment rate.
    out = lift._row_stats(5, 50, 0, 0, 0.05)
    assert out["treatment_conversion_rate"] == 0.1
    assert all(out[k] is None for k in lift.STAT_COLUMNS if k != "treatment_conversion_rate")
    # No treated members (a segment with control members only).
    out = lift._row_stats(0, 0, 1, 4, 0.05)
    assert all(v is None for v in out.values())


def test_confidence_level_widens_the_interval(lift):
    narrow = lift._row_stats(56, 70, 48, 80, 0.10)
    wide = lift._row_stats(56, 70, 48, 80, 0.01)
    paper = lift._row_stats(56, 70, 48, 80, 0.05)
    assert wide["lift_ci_low"] < paper["lift_ci_low"] < narrow["lift_ci_low"]
    assert narrow["lift_ci_high"] < paper["lift_ci_high"] < wide["lift_ci_high"]


class _FakeConfig:
    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def __call__(self, **kwargs: object) -> None:
        self.values.update(kwargs)

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)


class _FakeDbt:
    def __init__(self, session: duckdb.DuckDBPyConnection, confidence: str) -> None:
        self.session = session
        self.config = _FakeConfig({"lift_confidence_level": confidence})

    def ref(self, name: str) -> duckdb.DuckDBPyRelation:
        return self.session.table(name)


def test_model_types_and_nulls(lift):
    session = duckdb.connect()
    session.execute(
        "create table int_campaign_lift_counts as select * from (values "
        "('campaign', 'k1', null, 70, 80, 56, 48, 100.5, 80.0), "
        "('campaign', 'k2', null, 50, 0, 5, 0, 10.0, 0.0), "
        "('campaign_segment', 'k1', 'Champions', 70, 80, 56, 48, 100.5, 80.0)) "
        "t(grain, campaign_id, rfm_segment, treatment_size, control_size, treatment_conversions, "
        "control_conversions, treatment_revenue_usd, control_revenue_usd)"
    )
    rel = lift.model(_FakeDbt(session, "0.95"), session)
    rows = {(r[0], r[1]): r for r in rel.fetchall()}
    cols = rel.columns
    k1 = dict(zip(cols, rows[("campaign", "k1")], strict=True))
    assert k1["lift_ci_low"] == pytest.approx(0.0524, abs=6e-5)
    assert k1["confidence_level"] == 0.95
    k2 = dict(zip(cols, rows[("campaign", "k2")], strict=True))
    assert k2["treatment_conversion_rate"] == 0.1
    assert k2["lift_abs"] is None and k2["p_value"] is None and k2["control_conversion_rate"] is None
    types = dict(zip(cols, [str(t) for t in rel.types], strict=True))
    assert types["rfm_segment"] == "VARCHAR" and types["p_value"] == "DOUBLE"


def test_model_on_no_campaigns_keeps_column_types(lift):
    session = duckdb.connect()
    session.execute(
        "create table int_campaign_lift_counts (grain varchar, campaign_id varchar, rfm_segment varchar, "
        "treatment_size bigint, control_size bigint, treatment_conversions bigint, control_conversions bigint, "
        "treatment_revenue_usd decimal(38,4), control_revenue_usd decimal(38,4))"
    )
    rel = lift.model(_FakeDbt(session, "0.95"), session)
    assert rel.fetchall() == []
    assert "NULL" not in [str(t) for t in rel.types]
