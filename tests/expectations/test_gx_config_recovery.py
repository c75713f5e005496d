"""A process killed while Great Expectations rewrote its config (GX opens great_expectations.yml, truncates
it and writes it) left the file cut short, and every later gate failed to load the context (found by the
crash matrix: InvalidDataContextConfigError "_schema" on the rerun after a kill in check_raw). The gate now
sets a broken config aside and makes it afresh: here the file is cut at points that fail in each of the ways
GX reports it, and a new process's gate must pass the clean sources again."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from expectation_helpers import land_clean_sources, settings_for

from rapport.expectations import gx_runner
from rapport.expectations.gate import run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)


def _new_process() -> None:
    """Forget the contexts and checkpoints this process loaded, as the next task's process would not have them."""
    gx_runner._contexts.clear()
    gx_runner._checkpoints.clear()


def test_a_config_cut_short_by_a_kill_is_set_aside_and_the_gate_runs_again(tmp_path):
    settings = settings_for(tmp_path / "warehouse")
    con = duckdb.connect(str(tmp_path / "warehouse" / "work.duckdb"))
    land_clean_sources(con, "r0")
    first = run_raw_checks(con, settings, run_id="r0", interval_end=END)
    config = tmp_path / "warehouse" / "gx" / "great_expectations.yml"
    whole = config.read_bytes()
    assert b"data_docs_sites" in whole
    # empty (killed right after the truncation), cut inside a class name, cut inside the Data Docs site
    cuts = [0, whole.index(b"TupleFilesystemStore") + 5, whole.index(b"    class_name: SiteBuilder") + 4]
    for i, cut in enumerate(cuts, start=1):
        config.write_bytes(whole[:cut])
        _new_process()
        again = run_raw_checks(con, settings, run_id="r0", interval_end=END)
        assert (again.evaluated, again.passed, again.errors) == (first.evaluated, first.passed, 0)
        assert len(list(config.parent.glob("great_expectations.yml.broken-*"))) == i, "the cut file is kept aside"
        assert b"data_docs_sites" in config.read_bytes()
    con.close()


def test_a_gate_rewrites_the_config_only_when_a_setting_differs(tmp_path):
    """A gate saves great_expectations.yml only when its Data Docs site or flags differ from the stored ones (a
    new or moved warehouse): a config left alone cannot be cut short, and a gate is spared the rewrite."""
    settings = settings_for(tmp_path / "warehouse")
    con = duckdb.connect(str(tmp_path / "warehouse" / "work.duckdb"))
    land_clean_sources(con, "r0")
    run_raw_checks(con, settings, run_id="r0", interval_end=END)
    config = tmp_path / "warehouse" / "gx" / "great_expectations.yml"
    written, stat = config.read_bytes(), config.stat()

    _new_process()
    run_raw_checks(con, settings, run_id="r1", interval_end=END)
    assert config.stat().st_mtime_ns == stat.st_mtime_ns
    assert config.read_bytes() == written

    # a warehouse moved here from elsewhere: its stored site points at the old Data Docs folder
    docs = str(tmp_path / "warehouse" / "data_docs")
    config.write_text(written.decode().replace(docs, "/elsewhere/data_docs"), encoding="utf-8")
    _new_process()
    run_raw_checks(con, settings, run_id="r2", interval_end=END)
    con.close()
    assert "/elsewhere" not in config.read_text(encoding="utf-8")
    assert docs in config.read_text(encoding="utf-8")
