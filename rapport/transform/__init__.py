"""The dbt runner: invoking the dbt project in-process against the working warehouse (`runner`) and the
Python UDFs its models call (`udfs`, a dbt-duckdb plugin).

May import `rapport.core` only. dbt itself is imported inside functions (seconds to import).
"""
