"""A small hand-written dbt manifest (three layers, a source, tests within and across layers) for the DAG
rendering tests. Only the fields cosmos and rapport.orchestration.dbt_tasks read."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def _node(uid: str, path: str, depends: list[str]) -> dict:
    kind, package, name = uid.split(".")[:3]
    return {
        "unique_id": uid,
        "resource_type": kind,
        "name": name,
        "package_name": package,
        "original_file_path": path,
        "depends_on": {"nodes": depends, "macros": []},
        "config": {"materialized": "table"} if kind == "model" else {},
        "tags": [],
        "fqn": [package, *Path(path).parts[1:-1], name],
    }


SOURCE = "source.rapport.shop.orders"
STG, INT, MART = "model.rapport.stg_orders", "model.rapport.int_orders", "model.rapport.customers"
NODES = [
    _node(STG, "models/staging/stg_orders.sql", [SOURCE]),
    _node(INT, "models/intermediate/int_orders.sql", [STG]),
    _node(MART, "models/marts/customers.sql", [INT]),
    _node("test.rapport.not_null_stg_orders_id.a1", "models/staging/_models.yml", [STG]),
    _node("test.rapport.source_not_null_shop_orders_id.b2", "models/staging/_sources.yml", [SOURCE]),
    # declared with the intermediate model, but also refers to a mart: runs with the marts
    _node(
        "test.rapport.relationships_int_orders_customer_id__ref_customers_.c3",
        "models/intermediate/_m.yml",
        [INT, MART],
    ),
    # a singular test over the source and a staging model
    _node("test.rapport.assert_stg_matches_source.d4", "tests/assert_stg_matches_source.sql", [SOURCE, STG]),
]


def write_manifest(path: Path) -> Path:
    """Write the manifest, dated a day ahead so the real dbt project's files never look newer than it."""
    source = {
        "unique_id": SOURCE, "resource_type": "source", "name": "orders", "source_name": "shop",
        "package_name": "rapport", "original_file_path": "models/staging/_sources.yml",
        "depends_on": {"nodes": []}, "config": {}, "tags": [], "fqn": ["rapport", "staging", "shop", "orders"],
    }  # fmt: skip
    manifest = {
        "metadata": {"project_name": "rapport", "dbt_version": "1.11.16"},
        "nodes": {n["unique_id"]: n for n in NODES},
        "sources": {SOURCE: source},
        "exposures": {},
        "unit_tests": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    future = time.time() + 86400
    os.utime(path, (future, future))
    return path
