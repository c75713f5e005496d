"""The secret scanner of test_secrets.py finds a secret wherever a run could have put it (so a clean scan
there means something): compressed DuckDB and Parquet columns, SQLite, gzip, and encoded forms in text."""

from __future__ import annotations

import base64
import gzip
import sqlite3
from urllib.parse import quote

import duckdb
from reliability_scan import find_in_text, find_secrets, secret_forms

SECRET = "sk_Te5t/se+cr=et!Q9@w:E%r"


def test_every_planted_secret_is_found_and_nothing_else(tmp_path):
    (tmp_path / "clean.log").write_text("nothing to see\n" * 100)
    # DuckDB: in the 10,000th row of a column DuckDB dictionary-compresses, inside a JSON value
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute("create schema ops")
    con.execute("create table ops.runs as select 'failed' as status, null::json as error from range(10000)")
    con.execute("update ops.runs set error = json_object('msg', ?) where rowid = 9999", [f"token {SECRET} bad"])
    con.execute(f"copy (select * from ops.runs) to '{tmp_path / 'b.parquet'}' (format parquet, compression zstd)")
    con.close()
    lite = sqlite3.connect(tmp_path / "airflow.db")
    lite.execute("create table xcom (value blob)")
    lite.execute("insert into xcom values (?)", [f"url=postgresql://u:{quote(SECRET, safe='')}@h/db".encode()])
    lite.commit()
    lite.close()
    (tmp_path / "page.json.gz").write_bytes(gzip.compress(f'{{"auth": "Bearer {SECRET}"}}'.encode()))
    (tmp_path / "header.txt").write_text("Authorization: Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode())

    hits = find_secrets([tmp_path], {"token": SECRET})
    found = {h.split(" ", 1)[0].rsplit("/", 1)[-1] for h in hits}
    assert found == {"a.duckdb", "b.parquet", "airflow.db", "page.json.gz", "header.txt"}, hits
    assert any("a.duckdb (duckdb)" in h for h in hits)  # read through DuckDB, not only as bytes
    assert any("url-encoded" in h for h in hits if "airflow.db" in h)
    assert any("base64" in h for h in hits if "header.txt" in h)


def test_forms_differ_where_encoding_changes_the_secret():
    forms = secret_forms(SECRET)
    assert forms["url-encoded"] != forms["plain"]
    assert len({forms[f"base64@{k}"] for k in range(3)}) == 3
    assert find_in_text(f"x={quote(SECRET, safe='')}", {"s": SECRET}) == ["s as url-encoded"]
    assert find_in_text("no secret here", {"s": SECRET}) == []
