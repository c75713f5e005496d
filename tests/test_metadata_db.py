"""The in-process runner migrates Airflow's metadata DB only when its schema is behind.

In a child process (Airflow reads its configuration once per process), on a fresh SQLite metadata DB under a
temporary warehouse. Slow: the first migration creates the whole schema (seconds)."""

from __future__ import annotations

import pytest
from demo_builds import python_json

pytestmark = pytest.mark.slow

DRIVER = """
import json
from rapport.core.config import load_settings
from rapport.orchestration.local_runner import configure_airflow

configure_airflow(load_settings())
from airflow import settings
from airflow.utils import db
from sqlalchemy import text
from rapport.orchestration import metadata_db

out = {"head_is_alembics": metadata_db.expected_head() in db._get_script_object().get_heads()}
out["fresh"] = metadata_db.ensure_metadata_db()
out["again"] = metadata_db.ensure_metadata_db()
with settings.engine.begin() as con:
    con.execute(text("delete from slot_pool where pool = 'rapport_warehouse'"))
out["pool_deleted"] = metadata_db.ensure_metadata_db()
out["pool_back"] = metadata_db.metadata_state("rapport_warehouse")[1]
migrations = []
db.initdb = lambda: migrations.append(1)  # what an older schema would get: not run for real here
with settings.engine.begin() as con:
    con.execute(text("update alembic_version set version_num = '29ce7909c52b'"))  # Airflow 3.0.0's head
out["older"] = metadata_db.ensure_metadata_db()
out["migrations"] = len(migrations)
print(json.dumps(out))
"""


def test_metadata_db_is_migrated_when_new_or_behind_and_left_alone_otherwise(tmp_path):
    out = python_json(DRIVER, tmp_path)
    assert out == {"head_is_alembics": True, "fresh": True, "again": False, "pool_deleted": False,
                   "pool_back": True, "older": True, "migrations": 1}  # fmt: skip
