"""What a run hands to its readers: the blue/green publishing of the marts for BI tools (`publish`: DuckDB
file in v1.4.0 format, Parquet copies, atomic swap) and the upload-ready audience files (`audiences`).

May import `rapport.core` and the report's file helpers (`rapport.reports`).
"""
