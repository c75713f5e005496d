"""Range checks on nullable number columns go through `gx_between`'s vectorised comparison and flag exactly
the rows GX's value-by-value function flags (expected rows worked out by hand). Slow: imports GX."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def validate():
    import great_expectations as gx

    from rapport.expectations import gx_runner  # noqa: F401 (installs the vectorised condition)

    ctx = gx.get_context(mode="ephemeral")
    asset = ctx.data_sources.add_pandas("t").add_dataframe_asset("a")
    batch_definition = asset.add_batch_definition_whole_dataframe("b")
    frame = pd.DataFrame(
        {
            "n": pd.array([-1, 0, 3, 5, 10, None], dtype="Int64"),
            "x": pd.array([0.0, 0.5, 1.0, 1.5, None, -0.25], dtype="Float64"),
            "d": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01", None, "2026-04-01", "2026-05-01"]),
        }
    )

    def run(column: str, **bounds) -> tuple[int, list]:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            gx.expectations.ExpectColumnValuesToBeBetween(column=column, **bounds),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
        )
        assert not result.exception_info.get("raised_exception"), result.exception_info
        return result.result["unexpected_count"], sorted(result.result["partial_unexpected_list"])

    return run


def test_the_vectorised_condition_is_the_one_gx_uses(validate):  # noqa: ARG001 (the fixture installs it)
    from great_expectations.expectations.registry import _registered_metrics

    _, condition = _registered_metrics["column_values.between.condition"]["providers"]["PandasExecutionEngine"]
    assert getattr(condition, "rapport_vectorised", False)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"min_value": 0, "max_value": 5}, (2, [-1, 10])),
        ({"min_value": 0, "max_value": 5, "strict_min": True}, (3, [-1, 0, 10])),
        ({"min_value": 0, "max_value": 5, "strict_max": True}, (3, [-1, 5, 10])),
        ({"min_value": 0, "max_value": 5, "strict_min": True, "strict_max": True}, (4, [-1, 0, 5, 10])),
        ({"min_value": 1}, (2, [-1, 0])),
        ({"max_value": 3}, (2, [5, 10])),
        ({"min_value": 5, "max_value": 5}, (4, [-1, 0, 3, 10])),  # the mart suites' "exactly one" check
    ],
)
def test_integer_column_with_a_null(validate, bounds, expected):
    assert validate("n", **bounds) == expected  # the null is never unexpected


def test_float_column_and_float_bounds(validate):
    assert validate("x", min_value=0, max_value=1) == (2, [-0.25, 1.5])
    assert validate("x", min_value=-0.01, max_value=0.01, strict_min=True) == (4, [-0.25, 0.5, 1.0, 1.5])


def test_dates_still_go_through_gx(validate):
    count, values = validate("d", max_value=datetime(2026, 3, 15))
    assert count == 2 and [str(v)[:10] for v in values] == ["2026-04-01", "2026-05-01"]
