"""dbt-duckdb plugin (named in `profiles.yml`): registers rapport's UDFs on every dbt connection.

Kept apart from `rapport.transform.udfs` so that code using the UDFs outside dbt does not import dbt.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from rapport.transform.udfs import register


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)
