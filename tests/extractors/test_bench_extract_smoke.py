"""The extraction benchmark still runs end to end (tiny sizes; the real run is documented in bench/)."""

from __future__ import annotations

import importlib.util

import pytest

from rapport.core.config import PROJECT_ROOT

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_bench_extract_runs_on_a_tiny_dataset(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_extract", PROJECT_ROOT / "bench" / "bench_extract.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "results.md"
    bench.main(
        [
            "--orders",
            "2000",
            "--events",
            "4800",
            "--contacts",
            "100",
            "--helpdesk",
            "200",
            "--out",
            str(tmp_path / "data"),
            "--results",
            str(out),
        ]
    )
    text = out.read_text()
    # orders rows = 500 customers + 2000 orders + items + 31 fx rates; the bench asserts every row landed
    assert "| orders (SQLite, full load) |" in text and "| ESP events" in text and "| helpdesk" in text
