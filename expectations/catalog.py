"""The stored suites (`suites/*.json`, Great Expectations' suite format) read as plain JSON.

Everything here works without importing Great Expectations: the gate needs suite names, keys, contract
columns and severities to build frames, pick samples and write results before (and after) GX runs.
Severities use GX's native field: `critical` is reported as `error` (stops the run), `warning` as `warn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SEVERITY = {"critical": "error", "warning": "warn"}


# Expectations whose result over a frame is the sum of their results over any split of its rows.
PART_WISE = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_match_regex",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_table_columns_to_match_set",
        "expect_table_column_count_to_be_between",
    }
)


# Expectations that read only the columns their kwargs name (or none, like a row count): a frame carrying
# just those columns gives them the same result. `expect_table_column_count_to_be_between` is not one (it
# counts every column), nor is an exact `expect_table_columns_to_match_set` (see `SuiteSpec.columns_read`).
COLUMN_SCOPED = (PART_WISE - {"expect_table_column_count_to_be_between"}) | {
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_unique_value_count_to_be_between",
    "expect_table_row_count_to_equal",
}
COLUMN_KWARGS = ("column", "column_A", "column_B")


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    gate: str  # "raw" or "mart"
    relation: str
    key: tuple[str, ...]
    expectations: tuple[dict, ...]
    path: Path
    # validated even by a run that landed nothing since the checks last passed (the raw gate is skipped
    # then: rapport.pipeline.reuse): for checks about what did NOT arrive, e.g. a source's freshness
    every_run: bool = False

    @property
    def splittable(self) -> bool:
        """Whether the suite can be validated part by part, the parts split by a hash of `key`: every
        expectation is row-wise or about the schema, and uniqueness is of a column set containing the key
        (all rows of one key share a part). Then each result is the sum of the parts' results."""
        if not self.key:
            return False
        for e in self.expectations:
            kwargs = e["kwargs"]
            if "mostly" in kwargs:  # a share of the whole frame, not of a part
                return False
            if e["type"] in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
                cols = kwargs.get("column_list") or [kwargs.get("column")]
                if not set(self.key) <= set(cols):
                    return False
            elif e["type"] not in PART_WISE:
                return False
        return True

    @property
    def columns_read(self) -> frozenset[str] | None:
        """The columns the suite reads: those its expectations name (the contract's column set included)
        and its key, which the samples of offending rows show. None when an expectation depends on every
        column of the frame (a column count, an exact column set, a type this list does not know)."""
        columns = set(self.key)
        for e in self.expectations:
            kwargs = e["kwargs"]
            if e["type"] not in COLUMN_SCOPED:
                return None
            # an exact column set (GX's default) fails on a column the frame would no longer carry
            if e["type"] == "expect_table_columns_to_match_set" and kwargs.get("exact_match", True) is not False:
                return None
            columns.update(kwargs[k] for k in COLUMN_KWARGS if kwargs.get(k))
            columns.update(kwargs.get("column_list") or ())
            columns.update(kwargs.get("column_set") or ())
        return frozenset(columns)

    @property
    def contract_columns(self) -> list[str]:
        return [
            c
            for e in self.expectations
            if e["type"] == "expect_table_columns_to_match_set"
            for c in e["kwargs"]["column_set"]
        ]


def expectation_label(expectation: dict) -> str:
    """Stable, readable name of one expectation: `meta.name` or `type(columns)`."""
    meta = expectation.get("meta") or {}
    if meta.get("name"):
        return str(meta["name"])
    kw = expectation.get("kwargs") or {}
    if kw.get("column"):
        cols = kw["column"]
    elif kw.get("column_A"):
        cols = f"{kw['column_A']},{kw['column_B']}"
    else:
        cols = ",".join(kw.get("column_list") or [])
    return f"{expectation['type']}({cols})"


@cache
def load_suites() -> dict[str, SuiteSpec]:
    suites: dict[str, SuiteSpec] = {}
    for path in sorted(SUITES_DIR.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        meta = raw.get("meta") or {}
        suites[raw["name"]] = SuiteSpec(
            name=raw["name"],
            gate=meta["gate"],
            relation=meta["relation"],
            key=tuple(meta.get("key") or ()),
            expectations=tuple(raw["expectations"]),
            path=path,
            every_run=bool(meta.get("every_run", False)),
        )
    return suites


def suites_for(gate: str) -> list[SuiteSpec]:
    return [s for s in load_suites().values() if s.gate == gate]
