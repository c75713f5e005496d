"""dbt builds on DuckDB with several threads (issue 16): the same tables as one thread, and no two nodes that
may run at the same time share state.

With dbt threads > 1, dbt-duckdb runs independent nodes at once, each in its own transaction on a cursor of one
DuckDB connection. Two such transactions that delete or update the same rows, or create the same catalog entry,
conflict (DuckDB's optimistic concurrency: "Conflict on tuple deletion", "Catalog write-write conflict"); a
node that reads a table another node writes without depending on it reads it before or after, by chance.

One small demo warehouse (300 people, 2 months, built with the default of two threads: a copy of the session's
build, tests/demo300_build.py), a later day landed by hand
(tests/incremental_days.py's HAND_EDITS: a refund, a late event and audience row, a
solved ticket, an unsubscribe, two accounts merging, so the incremental identity models and customers
recompute what they touched through their hook-kept lists), then copies of it built with 1 and 4 threads:

- incrementally, and again with --full-refresh: every table of staging, intermediate and marts holds the same
  rows at 4 threads as at 1 (doubles to 1e-9, build times left out);
- from the 4-thread incremental build's debug log: every relation a node touched is its own, one of its
  ancestors', or one no model owns (hook-kept lists, scratch and temporary tables) that every other node
  touching it is ordered with in the graph (an ancestor or a descendant): then no two nodes dbt may run at
  once write the same table or read what the other writes.
About 2 minutes on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from demo300_build import DAY, demo300_copy, demo_env
from incremental_days import BUILD_TIMES, HAND_EDITS
from row_equality import table_differences

from rapport.core.config import load_settings
from rapport.transform.runner import dbt_dirs

pytestmark = pytest.mark.slow

HAND_RUN = "manual__threads"
SCHEMAS = ("staging", "intermediate", "marts")
# when a build wrote a row (wall clock): the copies build the same day one after the other, so the records
# that appear that day get their first assignment time from each build (BUILD_TIMES: the other history columns)
WALL_CLOCK = {**BUILD_TIMES, "marts.customer_identities": "first_assigned_at"}
BUILD = """
import sys
from datetime import date
from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build

dbt_build(load_settings(), run_id=sys.argv[1], as_of=date.fromisoformat(sys.argv[2]),
          full_refresh=sys.argv[3] == "full")
"""

_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d+ ")
_ON_NODE = re.compile(r"On ((?:model|test|seed|snapshot)\.[^:]+): (.*)")
# a relation of the warehouse's schemas, quoted as dbt renders it or written by hand (`intermediate.x`)
_RELATION = re.compile(r'\b"?(staging|intermediate|marts|raw|quarantine|ops)"?\."?(\w+)"?')
_COMMENT = re.compile(r"/\*.*?\*/|--.*$")  # SQL comments name relations too (`marts.customers` in prose)


def _env(wh: Path, threads: str) -> dict[str, str]:
    # at debug, dbt's log file has every statement with its node (touched_relations)
    return {**demo_env(wh), "RAPPORT_DBT_THREADS": threads, "RAPPORT_DBT_LOG_LEVEL": "debug"}


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _work(wh: Path) -> Path:
    return wh / "work" / "rapport_work.duckdb"


def _log(wh: Path) -> Path:
    return dbt_dirs(load_settings({"RAPPORT_WAREHOUSE_DIR": str(wh)}))[1] / "dbt.log"


def _build(wh: Path, threads: str, *, full: bool) -> str:
    """A dbt build of the whole project in its own process with `threads` dbt threads; its debug log."""
    _log(wh).unlink(missing_ok=True)
    as_of = DAY + timedelta(days=1)
    _run([sys.executable, "-c", BUILD, HAND_RUN, as_of.isoformat(), "full" if full else "incremental"],
         _env(wh, threads))  # fmt: skip
    return _log(wh).read_text()


def _copy(wh: Path, to: Path) -> Path:
    _work(to).parent.mkdir(parents=True)
    shutil.copyfile(_work(wh), _work(to))
    return to


def _differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Table -> (rows only in a, rows only in b) for every table of SCHEMAS that differs, wall-clock columns
    left out; doubles equal to 1e-9 (sums in another order differ in the last bits: row_equality)."""
    return table_differences(a, b, SCHEMAS, WALL_CLOCK)


def _reason(wh: Path) -> str:
    with duckdb.connect(str(_work(wh)), read_only=True) as con:
        return con.execute("select reason from ops.transform_increments where state = 'committed'").fetchone()[0]


def touched_relations(log: str) -> dict[tuple[str, str], set[str]]:
    """(schema, table) -> the nodes whose statements in a dbt debug log name it. A log record's continuation
    lines (the rest of a statement) follow it whole, even with threads."""
    touched: dict[tuple[str, str], set[str]] = defaultdict(set)
    node = None
    for line in log.splitlines():
        if _STAMP.match(line):
            found = _ON_NODE.search(line)
            node, line = (found.group(1), found.group(2)) if found else (None, "")
        if node:
            for schema, table in _RELATION.findall(_COMMENT.sub("", line)):
                touched[(schema.lower(), table.lower())].add(node)
    return touched


def _ancestors(parents: dict[str, set[str]]) -> Callable[[str], set[str]]:
    """A node's ancestors in a graph given as each node's parents (memoised)."""
    found: dict[str, set[str]] = {}

    def up(uid: str) -> set[str]:
        if uid not in found:
            found[uid] = set()
            for parent in parents.get(uid, ()):
                found[uid] |= {parent} | up(parent)
        return found[uid]

    return up


def unordered_sharing(manifest: dict, touched: dict[tuple[str, str], set[str]]) -> list[str]:
    """Nodes that touch a relation they have no dependency path to: another model's relation they do not
    descend from, or a relation no model owns that another node touches with no path between the two."""
    declared = {uid: set(n.get("depends_on", {}).get("nodes", [])) for uid, n in manifest["nodes"].items()}
    declared_up = _ancestors(declared)

    # `dbt build` runs a model's tests before its children: a test whose models are all upstream of a node
    # (as dbt adds those edges) precedes it
    tests_of: dict[str, set[str]] = defaultdict(set)
    for uid, deps in declared.items():
        if uid.startswith("test."):
            for dep in deps:
                tests_of[dep].add(uid)
    parents = {
        uid: deps | ({t for dep in deps for t in tests_of[dep] if declared[t] <= declared_up(uid)}
                     if not uid.startswith("test.") else set())
        for uid, deps in declared.items()
    }  # fmt: skip
    up = _ancestors(parents)

    owner = {
        (n["schema"].lower(), (n.get("alias") or n.get("identifier") or n["name"]).lower()): uid
        for uid, n in {**manifest["nodes"], **manifest["sources"]}.items()
        if n["resource_type"] in ("model", "seed", "snapshot", "source")
    }
    problems = []
    for relation, nodes in sorted(touched.items()):
        nodes = {n for n in nodes if n in parents}
        if relation in owner:
            problems += [f"{n} touches {relation} of {owner[relation]}, not an ancestor"
                         for n in sorted(nodes) if n != owner[relation] and owner[relation] not in up(n)]  # fmt: skip
        else:
            problems += [f"{a} and {b} both touch {relation} with no path between them"
                         for a in sorted(nodes) for b in sorted(nodes)
                         if a < b and a not in up(b) and b not in up(a)]  # fmt: skip
    return problems


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("threads")
    # built with the default threads (no RAPPORT_DBT_THREADS): a copy of the session's demo build, the same
    # `rapport demo` this file ran itself before; its dbt log came with the copy
    wh = demo300_copy(tmp_path_factory, root / "demo")
    default_log = _log(wh).read_text()
    with duckdb.connect(str(_work(wh))) as con:
        for sql in HAND_EDITS:
            assert con.execute(sql.format(run=HAND_RUN)).fetchone()[0] == 1, sql
    one, four = _copy(wh, root / "threads1"), _copy(wh, root / "threads4")
    logs = {"one": _build(one, "1", full=False), "four": _build(four, "4", full=False)}
    reasons = (_reason(one), _reason(four))
    incremental_diff = _differences(_work(one), _work(four))
    manifest = json.loads((dbt_dirs(load_settings({"RAPPORT_WAREHOUSE_DIR": str(four)}))[0] / "manifest.json")
                          .read_text())  # fmt: skip
    _build(one, "1", full=True)
    logs["four_full"] = _build(four, "4", full=True)
    full_diff = _differences(_work(one), _work(four))
    return {"default_log": default_log, "logs": logs, "reasons": reasons, "manifest": manifest,
            "incremental_diff": incremental_diff, "full_diff": full_diff}  # fmt: skip


def test_the_default_is_two_threads_and_the_setting_is_honoured(builds) -> None:
    assert "Concurrency: 2 threads (target='work')" in builds["default_log"]
    assert "Concurrency: 1 threads (target='work')" in builds["logs"]["one"]
    assert "Concurrency: 4 threads (target='work')" in builds["logs"]["four"]


def test_four_threads_build_a_day_incrementally_as_one_does(builds) -> None:
    assert builds["reasons"] == ("incremental", "incremental")
    four = builds["logs"]["four"]
    # the hook-kept lists were in play: identity labels and customers built from what the day touched
    # `\b`: the marts' line, not another model's ending in "customers" (int_email_customers logs its own)
    assert "int_identity_labels: incremental" in four and re.search(r"\bcustomers: incremental, recomputing", four)
    assert builds["incremental_diff"] == {}


def test_four_threads_build_in_full_as_one_does(builds) -> None:
    assert builds["full_diff"] == {}


def test_nodes_that_may_run_at_once_share_no_table(builds) -> None:
    touched = touched_relations(builds["logs"]["four"])
    # the log names what the hooks and materializations touch, the shared list of touched values included:
    # the identifiers (writing it), the fan-out and the edges, and the identifiers'
    # uniqueness test scoped to it (docs/quality.md "dbt tests on a day build")
    sharing = touched["intermediate", "int_identity_identifiers_unpivoted__touched"]
    assert {n for n in sharing if n.startswith("model.")} == {
        f"model.rapport.{m}"
        for m in ("int_identity_identifiers_unpivoted", "int_identity_fanout_measured", "int_identity_edges_filtered")
    }
    [scoped_test] = [n for n in sharing if not n.startswith("model.")]
    assert scoped_test.startswith("test.rapport.unique_combination_int_identity_identifiers_unpivoted_"), sharing
    assert unordered_sharing(builds["manifest"], touched) == []
