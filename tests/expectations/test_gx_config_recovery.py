"""A process killed while Great Expectations rewrote its config (GX opens great_expectations.yml, truncates
it and writes it) left the file cut short, and every later gate failed to load the context (found by the
crash matrix: InvalidDataContextConfigError "_schema" on the rerun after a kill in check_raw). The gate's
context now lives in memory and neither reads nor writes that file: a file cut short by an earlier version,
at points that failed in each of the ways GX reported it, is left as it is and a new process's gate passes
the clean sources again."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from expectation_helpers import land_clean_sources, settings_for

from rapport.expectations import gx_runner
from rapport.expectations.gate import run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)

# great_expectations.yml as an earlier version wrote it (abridged to the parts the cuts below fall in)
OLD_CONFIG = b"""config_version: 4.0
config_variables_file_path: uncommitted/config_variables.yml
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
data_docs_sites:
  rapport:
    class_name: SiteBuilder
    show_how_to_buttons: false
"""


def _new_process() -> None:
    """Forget the contexts this process made, as the next task's process would not have them."""
    gx_runner._contexts.clear()


def test_a_config_cut_short_by_a_kill_does_not_stop_the_gate(tmp_path):
    settings = settings_for(tmp_path / "warehouse")
    con = duckdb.connect(str(tmp_path / "warehouse" / "work.duckdb"))
    land_clean_sources(con, "r0")
    first = run_raw_checks(con, settings, run_id="r0", interval_end=END)
    config = tmp_path / "warehouse" / "gx" / "great_expectations.yml"
    assert not config.exists()
    # empty (killed right after the truncation), cut inside a class name, cut inside the Data Docs site
    cuts = [0, OLD_CONFIG.index(b"TupleFilesystemStore") + 5, OLD_CONFIG.index(b"    class_name: SiteBuilder") + 4]
    for cut in cuts:
        config.write_bytes(OLD_CONFIG[:cut])
        _new_process()
        again = run_raw_checks(con, settings, run_id="r0", interval_end=END)
        assert (again.evaluated, again.passed, again.errors) == (first.evaluated, first.passed, 0)
        assert config.read_bytes() == OLD_CONFIG[:cut], "the file is neither read nor rewritten"
    con.close()
