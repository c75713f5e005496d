"""The mart gate imports Great Expectations in a thread while DuckDB exports its frames (3-6 s of import beside
6-15 s of export at 1M people), and its verdict is the same. Run in a fresh interpreter: in the test process
GX is usually imported already, and an import that is already done overlaps nothing. Slow: GX's import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HELPERS = Path(__file__).resolve().parent

# Records, at each frame export, whether GX's import thread is at work.
SCRIPT = """
import json, sys, threading
sys.path.insert(0, {helpers!r})
from pathlib import Path
import duckdb
from expectation_helpers import build_clean_marts, land_clean_sources, settings_for
from rapport.expectations import gate

seen = []
real_export = gate.export_frame

def export_frame(*args, **kwargs):
    seen.append({{
        "import_thread": any(t.name.startswith("rapport-gx-import") for t in threading.enumerate()),
    }})
    return real_export(*args, **kwargs)

gate.export_frame = export_frame  # a spy: the real export runs
wh = Path({wh!r})
settings = settings_for(wh)
con = duckdb.connect(str(wh / "work.duckdb"))
land_clean_sources(con, "r0")
build_clean_marts(con)
summary = gate.run_mart_checks(con, settings, run_id="m0")
print(json.dumps({{"seen": seen, "errors": summary.errors, "evaluated": summary.evaluated,
                  "gx_loaded_after": "rapport.expectations.gx_runner" in sys.modules}}))
"""


def test_mart_gate_imports_gx_while_exporting(tmp_path: Path) -> None:
    from rapport.expectations.catalog import suites_for

    code = SCRIPT.format(helpers=str(HELPERS), wh=str(tmp_path / "warehouse"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    specs = suites_for("mart")
    assert len(result["seen"]) == len(specs)  # one export per suite
    # the import started before the first export, and takes seconds: it is still at work then
    assert result["seen"][0]["import_thread"]
    assert result["gx_loaded_after"]
    assert (result["evaluated"], result["errors"]) == (sum(len(s.expectations) for s in specs), 0)
