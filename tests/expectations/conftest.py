"""Fixtures of the expectation tests; builders live in expectation_helpers.py."""

from __future__ import annotations

import duckdb
import pytest

from rapport.extractors.schemas import raw_ddl


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the raw, quarantine and ops tables and nothing in them."""
    c = duckdb.connect()
    for stmt in raw_ddl():
        c.execute(stmt)
    yield c
    c.close()
