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


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    gate: str  # "raw" or "mart"
    relation: str
    key: tuple[str, ...]
    expectations: tuple[dict, ...]
    path: Path

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
        )
    return suites


def suites_for(gate: str) -> list[SuiteSpec]:
    return [s for s in load_suites().values() if s.gate == gate]
