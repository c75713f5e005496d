"""Run dbt on a test warehouse and read back each node's result (tests of scoped dbt tests)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb

from rapport.transform.runner import dbt_dirs, invoke


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
