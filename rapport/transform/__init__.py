"""The dbt runner: invoking the dbt project in-process against the working warehouse (`dbt_invocation`,
`runner`), the Python UDFs its models call (`udfs`, a dbt-duckdb plugin in `dbt_plugin`), and the Spark
engine (RAPPORT_ENGINE=spark): its session (`spark`), the tables it exchanges with the working file
(`spark_exchange`) and the DuckDB types they come back with (`model_types`).

May import the packages below it (`rapport.core`, `rapport.experiments`). dbt and pyspark are imported
inside functions (seconds to import).
"""
