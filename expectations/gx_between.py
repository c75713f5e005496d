"""`expect_column_values_to_be_between` on nullable number and on timestamp columns, one vectorised comparison
per column.

Imported by `gx_runner` only (it imports Great Expectations). GX's pandas metric compares a column with
one expression only when its dtype is numpy's int64 or float64; for any other dtype it calls a Python
function per value. The gates read their frames with pandas' nullable dtypes (`Int64`, `Float64`: the
raw suites' type checks name them), so every numeric range check went value by value: 1.6M calls in the
mart gate at 100k people, growing with the marts (docs/quality.md has the figures). For a nullable integer or float
column with numeric bounds this computes the same comparison on the whole column with GX's own
vectorised expression. The same for timestamps: GX compares a datetime column as one expression only at
nanosecond resolution, and pandas reads the frames' Parquet timestamps at microseconds, so the raw suites'
"not in the future" checks went value by value too (an object conversion and ~250k calls in the raw gate at
1M people); a timestamp column without a time zone against bounds that are datetimes without one (as GX hands
them over, `$PARAMETER` strings parsed) is compared whole. Every other case (strings, time zones, bounds of
another type) is GX's function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.expectations.metrics.util import get_dbms_compatible_metric_domain_kwargs
from great_expectations.expectations.registry import _registered_metrics

METRIC = "column_values.between.condition"
ENGINE = "PandasExecutionEngine"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _naive_datetime(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None  # pandas' Timestamp is a datetime


def _vectorisable(column: pd.Series, min_value: object, max_value: object) -> bool:
    bounds = [b for b in (min_value, max_value) if b is not None]
    numbers = (
        isinstance(column.dtype, pd.api.extensions.ExtensionDtype)
        and column.dtype.kind in "iuf"  # Int*, UInt*, Float* (not boolean or strings)
        and all(_is_number(b) for b in bounds)
    )
    # numpy datetimes of any unit, without a time zone, against datetimes without one: GX compares them as one
    # expression only at nanosecond resolution, and pandas reads Parquet timestamps at microseconds
    datetimes = (
        isinstance(column.dtype, np.dtype) and column.dtype.kind == "M" and all(_naive_datetime(b) for b in bounds)
    )
    return (
        (numbers or datetimes)
        and bool(bounds)
        and (len(bounds) == 1 or min_value <= max_value)  # GX raises on crossed bounds: left to it
    )


def install() -> None:
    """Put the vectorised path in front of GX's pandas `column_values.between` condition (once)."""
    providers = _registered_metrics[METRIC]["providers"]
    provider_cls, gx_condition = providers[ENGINE]
    if getattr(gx_condition, "rapport_vectorised", False):
        return
    vectorised: Callable[..., pd.Series] = provider_cls._pandas_vectorized

    @functools.wraps(gx_condition)
    def condition(
        cls: type,
        execution_engine: Any,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict,
        runtime_configuration: dict,
    ) -> tuple[pd.Series, dict, dict]:
        # the same domain as GX's column_condition_partial: the batch (row conditions applied), nulls dropped
        domain_kwargs = get_dbms_compatible_metric_domain_kwargs(
            metric_domain_kwargs=metric_domain_kwargs, batch_columns_list=metrics["table.columns"]
        )
        df, compute_kwargs, accessor_kwargs = execution_engine.get_compute_domain(
            domain_kwargs=domain_kwargs, domain_type=MetricDomainTypes.COLUMN
        )
        column = df[accessor_kwargs["column"]]
        low, high = metric_value_kwargs.get("min_value"), metric_value_kwargs.get("max_value")
        if not _vectorisable(column, low, high):
            return gx_condition(
                cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration
            )
        column = column[column.notnull()]
        meets = vectorised(
            column, low, high, metric_value_kwargs.get("strict_min"), metric_value_kwargs.get("strict_max")
        )
        return ~meets, compute_kwargs, accessor_kwargs

    condition.rapport_vectorised = True  # type: ignore[attr-defined]
    providers[ENGINE] = (provider_cls, condition)
