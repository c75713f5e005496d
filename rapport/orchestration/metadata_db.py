"""The in-process runner's Airflow metadata database: migrated only when its schema is behind.

`airflow db migrate` (`initdb`) imports every model and walks the migration scripts: seconds on every
`rapport run`, for a schema that changes only when Airflow is upgraded. The database records its schema
revision in `alembic_version`; Airflow lists the head revision of each release that added migrations
(`_REVISION_HEADS_MAP`). When the recorded revision is the head of the installed release and the pool
exists, nothing needs doing. Anything else (a new file, an older schema, an unknown revision, a newer
Airflow than the map knows) runs the migration as before, so a wrong guess costs time, never correctness.
"""

from __future__ import annotations

import logging

log = logging.getLogger("rapport.runner")


def expected_head() -> str | None:
    """The schema revision of the installed Airflow: the head of the latest release in Airflow's map that
    is not newer than it (None when the map offers none)."""
    from airflow import __version__
    from airflow.utils.db import _REVISION_HEADS_MAP
    from packaging.version import Version

    installed = Version(__version__).release
    known = [(Version(v).release, head) for v, head in _REVISION_HEADS_MAP.items()]
    older = [(release, head) for release, head in known if release <= installed]
    return max(older)[1] if older else None


def metadata_state(pool: str | None) -> tuple[str | None, bool]:
    """(revision recorded in the metadata DB or None, whether `pool` exists or no pool is wanted)."""
    from airflow import settings
    from sqlalchemy import inspect, text

    with settings.engine.connect() as con:
        tables = set(inspect(con).get_table_names())
        if "alembic_version" not in tables:
            return None, False
        revision = con.execute(text("select version_num from alembic_version")).scalar()
        if not pool:
            return revision, True
        if "slot_pool" not in tables:
            return revision, False
        found = con.execute(text("select 1 from slot_pool where pool = :pool"), {"pool": pool}).scalar()
        return revision, found is not None


def ensure_metadata_db() -> bool:
    """Migrate the metadata DB if its schema is behind, and create the warehouse pool if it is missing.
    Returns whether a migration ran."""
    from rapport.orchestration.dag_policy import warehouse_pool

    pool = warehouse_pool()
    revision, pool_ok = metadata_state(pool)
    migrate = revision is None or revision != expected_head()
    if migrate:
        from airflow.utils.db import initdb

        log.info("migrating the Airflow metadata DB (schema revision %s, expected %s)", revision, expected_head())
        initdb()
    if pool and (migrate or not pool_ok):
        from airflow.models.pool import Pool

        # dag.test() ignores pools; created anyway so this metadata DB matches a deployment's.
        Pool.create_or_update_pool(pool, 1, "rapport: one writer of the working DuckDB file", False)
    return migrate
