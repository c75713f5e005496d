"""The gate tells GX that the checkpoint it just registered is fresh, sparing GX's read-back of the checkpoint and
of every validation definition, suite and batch definition from the store before each validation
(gx_runner._registered_as_fresh). That relies on `_checkpoint` leaving the store holding exactly those objects:
GX's own freshness check, run here, must agree, on a first registration, in a new process and after the frames'
layout changed. Objects the gate did not register are still checked by GX."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from expectation_helpers import land_clean_sources, settings_for

from rapport.expectations import gx_runner
from rapport.expectations.catalog import suites_for
from rapport.expectations.gate import run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)


@pytest.fixture
def raw_checked(tmp_path):
    """A warehouse whose raw gate ran once on clean sources: (warehouse dir, the raw suites, their frames dir)."""
    warehouse = tmp_path / "warehouse"
    settings = settings_for(warehouse)  # makes the directory
    con = duckdb.connect(str(warehouse / "work.duckdb"))
    land_clean_sources(con, "r0")
    run_raw_checks(con, settings, run_id="r0", interval_end=END)
    yield warehouse, suites_for("raw"), warehouse / "gx" / "frames" / "raw"
    con.close()


def _gx_says_fresh(checkpoint) -> bool:
    """GX's own check (the one the gate skips): every object read back from the store equals the one in memory."""
    with gx_runner.warnings.catch_warnings():
        gx_runner.warnings.simplefilter("ignore")
        return checkpoint.is_fresh().success and all(vd.is_fresh().success for vd in checkpoint.validation_definitions)


def test_the_checkpoint_a_gate_registers_is_the_one_gx_stored(raw_checked):
    warehouse, specs, frames = raw_checked
    paths: dict[str, tuple[Path, ...]] = {s.name: (frames / f"{s.name}.parquet",) for s in specs}

    cached = gx_runner._checkpoint(warehouse, "raw", specs, paths)  # the gate's, kept by this process
    assert _gx_says_fresh(cached)
    gx_runner._contexts.clear()  # a new process: loaded from the store
    gx_runner._checkpoints.clear()
    assert _gx_says_fresh(gx_runner._checkpoint(warehouse, "raw", specs, paths))
    # another layout of one suite's frame (split in two parts): assets, definitions and checkpoint replaced
    one = specs[0].name
    relaid = gx_runner._checkpoint(warehouse, "raw", specs, {**paths, one: (paths[one][0], paths[one][0])})
    assert len(relaid.validation_definitions) == len(specs) + 1
    assert _gx_says_fresh(relaid)


def test_only_the_registered_checkpoint_is_taken_as_fresh_and_only_meanwhile(raw_checked):
    warehouse, specs, frames = raw_checked
    checkpoint = gx_runner._checkpoint(
        warehouse, "raw", specs, {s.name: (frames / f"{s.name}.parquet",) for s in specs}
    )
    # never added to the store: GX's check fails it, inside the block as outside
    stranger = gx_runner.gx.Checkpoint(name="not_registered", validation_definitions=checkpoint.validation_definitions)
    # stored, but changed in memory since (another object than the gate's): GX's check fails it too
    stale = gx_runner._context(warehouse).checkpoints.get(checkpoint.name)
    stale.result_format = {"result_format": "BOOLEAN_ONLY"}
    assert not stale.is_fresh().success
    gx_checkpoint_check = gx_runner.Checkpoint.is_fresh
    gx_definition_check = gx_runner.ValidationDefinition.is_fresh
    with gx_runner._registered_as_fresh(checkpoint):
        assert checkpoint.is_fresh().success
        assert all(vd.is_fresh().success for vd in checkpoint.validation_definitions)
        assert not stranger.is_fresh().success
        assert not stale.is_fresh().success
    assert gx_runner.Checkpoint.is_fresh is gx_checkpoint_check
    assert gx_runner.ValidationDefinition.is_fresh is gx_definition_check
