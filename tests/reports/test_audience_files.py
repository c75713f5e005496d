"""Listing of the audience CSV files shown in the report."""

from __future__ import annotations

from pathlib import Path

from rapport.reports.audience_files import list_audience_files


def test_lists_csv_files_with_people_counts(audiences_dir: Path) -> None:
    files = list_audience_files(audiences_dir)
    assert files is not None
    assert [(f.name, f.people) for f in files] == [("at_risk.csv", 2), ("champions.csv", 1)]
    assert files[1].path == str((audiences_dir / "champions.csv").resolve())


def test_no_directory_means_none(tmp_path: Path) -> None:
    assert list_audience_files(None) is None
    assert list_audience_files(tmp_path / "missing") is None
    assert list_audience_files(tmp_path) == []
