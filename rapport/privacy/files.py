"""`forget` outside the database files: what the warehouse directory holds besides them.

After the erased marts are republished (published file, Parquet, audience CSVs, report, dbt docs), what
remains are copies made by earlier runs:

- `gx/frames/**.parquet`: the inputs of the last checks (raw and mart rows): deleted before the rebuild
  (the mart checks of the rebuild write fresh ones, the next run's checks the rest);
- `spark/` (RAPPORT_ENGINE=spark): Spark's tables, its metastore and the Parquet exchanged with it, copies
  of raw and of every model: deleted before the rebuild (the working file is the warehouse of record, and
  a Spark build that finds no copies loads them from it again);
- reports of other as-of dates (`reports/rapport_report_<date>.html|pdf`): the HTML is redacted (names,
  customer ids, emails, phones), the PDF beside a redacted HTML is deleted (it cannot be edited in place);
- every other text file (run logs, dbt logs, Great Expectations results and data docs, status files):
  spellings of the person's emails and phones, and their full names, are replaced by "[erased]".

The source systems (`demo/`, or the ESP export root when it lies inside the warehouse) are not touched:
they are not rapport's to change. Binary files other than Parquet (DuckDB, SQLite, PDF, gzip) are not
edited; the DuckDB files are handled in rapport.privacy.database.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rapport.core.config import Settings
from rapport.privacy.match import (
    PHONE_SEPARATORS,
    REDACTED,
    email_could_be_in,
    email_pattern,
    phone_could_be_in,
    phone_pattern,
    python_pattern,
    redact_text,
)

MAX_TEXT_BYTES = 256 * 1024 * 1024
_SKIP_SUFFIXES = {
    ".duckdb",
    ".db",
    ".wal",
    ".parquet",
    ".pdf",
    ".png",
    ".jpg",
    ".gz",
    ".zip",
    ".lock",
    ".key",
    ".msgpack",
    ".gpickle",
    ".sqlite",
    ".woff",
    ".woff2",
    ".ttf",
    ".ico",
}


@dataclass
class FileChanges:
    redacted: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)

    def lines(self, root: Path) -> list[str]:
        out = [f"redacted {p.relative_to(root)}" for p in self.redacted]
        return out + [f"deleted  {p.relative_to(root)}" for p in self.deleted]


def _excluded(settings: Settings) -> list[Path]:
    """Directories that are not rapport's output: the source systems."""
    dirs = [settings.demo_dir, settings.esp_root, settings.work_db.parent]
    return [d.resolve() for d in dirs]


def _inside(path: Path, dirs: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def delete_check_frames(settings: Settings, *, dry_run: bool = False) -> list[Path]:
    """The checks' input copies (gx/frames): rows of everyone, rewritten by the next checks."""
    frames = sorted((settings.warehouse_dir / "gx" / "frames").rglob("*.parquet"))
    if not dry_run:
        for path in frames:
            path.unlink(missing_ok=True)
    return frames


def delete_spark_copies(settings: Settings) -> list[Path]:
    """Delete Spark's warehouse, metastore and exchange files (settings.spark_dir), copies of everyone's rows;
    returns the files that were there."""
    root = settings.spark_dir
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if root.is_dir():
        shutil.rmtree(root)
    return files


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.erasure.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def scrub_files(
    settings: Settings,
    emails: set[str],
    phones: set[str],
    literals: set[str],
    *,
    keep: set[Path] = frozenset(),
    dry_run: bool = False,
) -> FileChanges:
    """Redact every text file under the warehouse directory (see the module doc): spellings of the normalised
    `emails` and E.164 `phones`, and `literals` (full names, customer ids) as whole words. `keep` are files
    this forget has just regenerated from the erased data (left as they are)."""
    email_pats = {e: python_pattern(email_pattern(e)) for e in emails}
    phone_pats = {p: python_pattern(pat) for p in phones if (pat := phone_pattern(p))}
    # whole words only: a name or id inside a longer word is somebody else's
    words = {v: re.compile(r"(^|\W)(" + re.escape(v) + r")(?=\W|$)") for v in literals if v.strip()}
    changes = FileChanges()
    excluded = _excluded(settings)
    keep = {p.resolve() for p in keep}
    for path in sorted(settings.warehouse_dir.rglob("*")):
        real = path.resolve()
        if not path.is_file() or path.is_symlink() or _inside(real, excluded) or real in keep:
            continue
        if path.suffix.lower() in _SKIP_SUFFIXES or path.stat().st_size > MAX_TEXT_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        # cheap literal tests first: the patterns are slow on megabytes of JSON and HTML
        lowered = text.lower()
        undotted = lowered.replace(".", "")
        digits = PHONE_SEPARATORS.sub("", text)
        wanted = [pat for e, pat in email_pats.items() if email_could_be_in(e, lowered, undotted)]
        wanted += [pat for p, pat in phone_pats.items() if phone_could_be_in(p, digits)]
        new, n = redact_text(text, wanted) if wanted else (text, 0)
        for value, word in sorted(words.items(), key=lambda kv: -len(kv[0])):
            if value in new:
                new, m = word.subn(lambda mt: mt.group(1) + REDACTED, new)
                n += m
        if not n:
            continue
        changes.redacted.append(path)
        if not dry_run:
            _write_atomic(path, new)
        pdf = path.with_suffix(".pdf")
        if path.parent == settings.reports_dir and path.suffix == ".html" and pdf.exists():
            changes.deleted.append(pdf)
            if not dry_run:
                pdf.unlink()
    return changes
