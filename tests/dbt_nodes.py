"""Run dbt on a test warehouse and read back each node's result (tests of scoped dbt tests), or the day builds
of an incremental model and how they compare with a full rebuild (tests of incremental models)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from typing import Any

import duckdb

from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build, dbt_dirs, invoke, raise_on_failures


def dbt_nodes(wh: Any, command: str, select: list[str], since: str | None, as_of: date) -> dict[str, dict[str, Any]]:
    """Run `dbt <command>` on `select` with `since`; each node's status, failures and SQL, by node name."""
    dbt_vars = json.dumps({"as_of": as_of.isoformat(), "run_id": "scoping", "since": since})
    args = [command, "--vars", dbt_vars, "--select", *select, "--indirect-selection", "cautious"]
    if command == "build":
        args += ["--exclude-resource-type", "unit_test"]
    invoke(wh.settings, args)
    results = json.loads((dbt_dirs(wh.settings)[0] / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r for r in results}


def execute_sql(wh: Any, sql: str) -> None:
    """Write to the warehouse by hand (a bug's rows), outside dbt."""
    with duckdb.connect(str(wh.path)) as con:
        con.execute(sql)


def incremental_build(
    wh: Any, run_id: str, since: str, *, as_of: date, select: list[str], dbt_vars: dict[str, Any], logged: str
) -> int:
    """Incremental dbt build of `select` reading what landed after `since`; the count the model logged
    (`logged`: a regex with one group), which must be there (else the model was not built incrementally)."""
    all_vars = json.dumps({"as_of": as_of.isoformat(), "run_id": run_id, "since": since, **dbt_vars})
    command = ["build", "--vars", all_vars, "--select", *select, "--exclude-resource-type", "unit_test",
               "--indirect-selection", "cautious"]  # fmt: skip
    raise_on_failures(wh.settings, invoke(wh.settings, command), "build")
    found = re.findall(logged, (dbt_dirs(wh.settings)[1] / "dbt.log").read_text())
    assert found, f"not built incrementally: no log line matching {logged!r}"
    return int(found[-1])


def full_rebuild_differences(
    wh: Any, run_id: str, root: Any, *, as_of: date, select: list[str], dbt_vars: dict[str, Any], table: str
) -> tuple[int, int]:
    """Rows of `table` only in the incremental build, only in a --full-refresh rebuild of a copy."""
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(root / f"full-{run_id}")})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    dbt_build(settings, run_id=run_id, as_of=as_of, select=select, full_refresh=True,
              extra_args=["--vars", json.dumps(dbt_vars), "--indirect-selection", "cautious"])  # fmt: skip
    with duckdb.connect() as con:
        con.execute(f"attach '{wh.path}' as a (read_only)")
        con.execute(f"attach '{settings.work_db}' as b (read_only)")
        a, b = (
            con.execute(f"select count(*) from (select * from {x}.{table} except all "
                        f"select * from {y}.{table})").fetchone()[0]
            for x, y in (("a", "b"), ("b", "a"))
        )  # fmt: skip
    return a, b
