"""Range checks on nullable number columns go through `gx_between`'s vectorised comparison and flag exactly
the rows GX's value-by-value function flags (expected rows worked out by hand). Slow: imports GX."""

from __future__ import annotations

from datetime import UTC, datetime

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


@pytest.fixture(scope="module")
def validate_us(validate):  # noqa: ARG001 (the fixture installs the vectorised condition)
    """A timestamp column at microseconds, as pandas reads the frames' Parquet files, with a null."""
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    batch_definition = (
        ctx.data_sources.add_pandas("us").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
    )
    moments = ["2026-01-01 00:00:00", "2026-03-01 00:00:00", None, "2026-03-01 00:00:00.000001", "2027-01-01"]
    frame = pd.DataFrame({"t": pd.Series(pd.to_datetime(moments, format="ISO8601")).astype("datetime64[us]")})
    assert str(frame["t"].dtype) == "datetime64[us]"

    def run(**kwargs) -> tuple[int, list[str]]:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        parameters = kwargs.pop("parameters", None)
        result = batch.validate(
            gx.expectations.ExpectColumnValuesToBeBetween(column="t", **kwargs),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            expectation_parameters=parameters,
        )
        assert not result.exception_info.get("raised_exception"), result.exception_info
        return result.result["unexpected_count"], sorted(str(v) for v in result.result["partial_unexpected_list"])

    return run


MARCH = datetime(2026, 3, 1)
JAN, MARCH_0, MARCH_1, NEXT_YEAR = (
    "2026-01-01 00:00:00",
    "2026-03-01 00:00:00",
    "2026-03-01 00:00:00.000001",
    "2027-01-01 00:00:00",
)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"max_value": MARCH}, (2, [MARCH_1, NEXT_YEAR])),
        (
            {"max_value": MARCH, "strict_max": True},
            (3, [MARCH_0, MARCH_1, NEXT_YEAR]),
        ),
        ({"min_value": MARCH}, (1, [JAN])),
        (
            {"min_value": MARCH, "max_value": MARCH},
            (3, [JAN, MARCH_1, NEXT_YEAR]),
        ),
        # the raw suites' form: the bound a run parameter, an ISO string
        (
            {"max_value": {"$PARAMETER": "m"}, "parameters": {"m": "2026-03-01T00:00:00"}},
            (2, [MARCH_1, NEXT_YEAR]),
        ),
    ],
)
def test_microsecond_timestamps_compared_whole_as_gx_compares_them(validate_us, bounds, expected):
    assert validate_us(**bounds) == expected  # the null is never unexpected; a microsecond past the bound is


def test_which_timestamp_checks_are_compared_whole():
    from rapport.expectations.gx_between import _vectorisable

    naive = pd.Series(pd.to_datetime(["2026-01-01"])).astype("datetime64[us]")
    assert _vectorisable(naive, None, MARCH)
    assert not _vectorisable(naive, None, "2026-03-01")  # a string bound: GX's function
    assert not _vectorisable(naive.dt.tz_localize("UTC"), None, MARCH)  # a time zone: GX's function
    assert not _vectorisable(naive, None, MARCH.replace(tzinfo=UTC))
    assert not _vectorisable(naive, MARCH, datetime(2026, 1, 1))  # crossed bounds: GX raises
