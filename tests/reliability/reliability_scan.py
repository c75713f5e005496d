"""Search everything a run leaves on disk for secret values, in the forms they could take there.

Raw bytes are not enough: DuckDB and Parquet compress strings, gzip and PDF streams compress everything. So
DuckDB files and Parquet files are read through DuckDB (every column of every table cast to text), SQLite
files (Airflow's metadata DB, the demo shop) through sqlite3, .gz files decompressed and PDFs through their
text; every file is also searched byte for byte.
"""

from __future__ import annotations

import base64
import gzip
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb


def secret_forms(secret: str) -> dict[str, bytes]:
    """The secret as it could be written: as is, URL-encoded, and base64 at each of the three byte alignments
    it can have inside a longer encoded text (the part of the encoding that depends on the secret alone)."""
    forms = {"plain": secret, "url-encoded": quote(secret, safe=""), "url-encoded (path)": quote(secret),
             "form-encoded": quote_plus(secret)}  # fmt: skip
    out: dict[str, bytes] = {}
    for name, value in forms.items():
        if value.encode() not in out.values():  # quote_plus is quote(safe="") unless the secret has a space
            out[name] = value.encode()
    raw = secret.encode()
    for shift in range(3):
        buf = b"\0" * shift + raw
        start = -(-shift // 3) * 3  # first 3-byte group that lies wholly inside the secret
        end = start + (len(buf) - start) // 3 * 3
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            out[f"{name}@{shift}"] = encode(buf[start:end]).rstrip(b"=")
    return out


def _duckdb_text(path: Path, parquet: bool = False) -> Iterator[str]:
    con = duckdb.connect(":memory:")
    try:
        if parquet:
            for (row,) in con.execute("select cast(t as varchar) from read_parquet(?) t", [str(path)]).fetchall():
                yield row
            return
        con.execute(f"attach '{path}' as f (read_only)")
        tables = (
            con.execute("select schema_name, table_name from duckdb_tables() where database_name = 'f'").fetchall()
            + con.execute(
                "select schema_name, view_name from duckdb_views() where database_name = 'f' and not internal"
            ).fetchall()
        )
        for schema, table in tables:
            rel = f'f."{schema}"."{table}"'
            for (row,) in con.execute(f"select cast(t as varchar) from {rel} t").fetchall():
                yield row
    finally:
        con.close()


def _sqlite_text(path: Path) -> Iterator[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
            for row in con.execute(f'select * from "{table}"'):
                yield " ".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row)
    finally:
        con.close()


def pdf_text(path: Path) -> Iterator[str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    for page in reader.pages:
        yield page.extract_text() or ""
    yield str(reader.metadata or "")


def _views(path: Path) -> Iterator[tuple[str, bytes]]:
    """(how it was read, content) for one file."""
    data = path.read_bytes()
    yield "bytes", data
    name = path.name
    if name.endswith(".gz"):
        yield "gunzip", gzip.decompress(data)
    if data.startswith(b"SQLite format 3\0"):
        yield "sqlite", "\n".join(_sqlite_text(path)).encode()
    elif data[8:12] == b"DUCK" and not name.endswith(".wal"):
        yield "duckdb", "\n".join(_duckdb_text(path)).encode()
    elif name.endswith(".parquet"):
        yield "parquet", "\n".join(_duckdb_text(path, parquet=True)).encode()
    elif name.endswith(".pdf"):
        yield "pdf text", "\n".join(pdf_text(path)).encode()


def find_secrets(roots: Iterable[Path], secrets: dict[str, str], *, newer_than: float = 0.0) -> list[str]:
    """Every (file, how read, secret, form) where a secret was found, under `roots` (files modified after
    `newer_than` only). Unreadable files are reported too: a scan that cannot look is not a clean scan."""
    forms = {(label, form): value for label, secret in secrets.items() for form, value in secret_forms(secret).items()}
    hits = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.stat().st_mtime < newer_than:
                continue
            try:
                for how, content in _views(path):
                    hits += [f"{path} ({how}): {label} as {form}" for (label, form), v in forms.items() if v in content]
            except Exception as exc:  # any unreadable artefact is a finding
                hits.append(f"{path}: could not be read to check it ({type(exc).__name__}: {exc})")
    return hits


def find_in_text(text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{label} as {form}" for label, secret in secrets.items()
            for form, value in secret_forms(secret).items() if value.decode() in text]  # fmt: skip
