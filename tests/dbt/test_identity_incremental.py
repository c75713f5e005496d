"""Incremental identity stitching (issue 16 phase 3, docs/identity-incremental.md): a build relabels only the
components touched by edges that changed, and every identity table equals a full rebuild's.

Graph (max_identifier_fanout 2, so a value on 3 accounts is rejected), hand-made:
- day 0: A = {customer 1, helpdesk user 10} (a@x), B = {customer 2, contact b1} (b@x),
  C = {customers 3, 4 (shared@x), helpdesk user 14 (customer 4's phone)}, D = {customer 5, guest order 100}
  (d@x), F = {customer 7, contact f1} (f@x); contact e1 alone.
- day 1: guest order 102 joins A (" A@x.com"; guests do not count towards the fan-out); helpdesk user 20
  (b@x, phone P) and guest order 101 (d@x, phone P) merge B and D; customer 6 makes shared@x a value of
  3 accounts (rejected: C splits, customer 3 alone); contact b1 changes its email (leaves B). F and e1 are
  untouched.
- day 2: customer 6 changes its email: shared@x is back to 2 accounts and customer 3 rejoins C; scratch
  tables a killed build would leave behind are there and must not stop the build.
- day 3, records that vanish: guest order 100 now names customer 5 (its guest record goes, D keeps
  customer 5 and guest 101), helpdesk user 10 turns agent (A keeps customer 1 and guest 102), customer 9
  lands (e@x) and replaces the placeholder record that order 103 made for it (same record_id) and joins
  contact e1, order 104 no longer names customer 11 (the placeholder 11, only in an earlier version of the
  order, goes) and is now a guest order of f@x (joins F); and a fan-out crossing caused by an order (no
  record): customer 1's order beside customer 4's phone with a third email rejects that phone, so helpdesk
  user 14 leaves C. Campaign k1's new snapshot moves its send_at (its audience member's first_seen_at), k2's
  changes nothing (its member is not recomputed, and need not be).
The clusters whose id is recomputed (docs/identity-incremental.md "Stable ids": records whose anchor changed,
new or vanished records, and every holder of their previous ids) are hand-computed too: 13 records on day 1
(A, B+D, b1 and C's three, customer 6; not F, e1, the placeholders, the audience), 3 on day 2 (C), 14 on day 3
(all but customer 6, b1 and the audience); the others keep their rows, written by an earlier build.
The region relabelled is hand-computed from the rule (nodes of changed edges, the old carriers of their
values, and their old components): 10 nodes on day 1, 3 on day 2 (F's 2 nodes are never relabelled), 13 on
day 3 (the linked nodes of A, B+D, C, F and e1 + customer 9 after the day).
Incremental builds pass the var `since` (the previous day's load time), so the staging and identity
records models recompute only what landed; after each day the warehouse is copied and rebuilt with
--full-refresh: the identity tables must be equal.

Eight dbt builds of the staging and identity models (and customer_id_history) for the days, three for the
unparsed phone. The incremental builds run the data tests of what they build (the incremental state's
invariants, e.g. assert_customer_ids_follow_clusters); day 0 and the --full-refresh rebuilds run the models
only: day 0 is a plain first build (its tests run on many fixtures elsewhere), and each rebuild's tables are
compared with the incremental build's, whose tests passed (day_zero_build, _full_rebuild_differences).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import replace
from datetime import date
from typing import Any

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build, dbt_dirs, invoke, raise_on_failures

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
DAY0_LOADED = "2025-06-30 00:00:00"  # when day 0's rows landed (tests/dbt/conftest.py's default)
SELECT = ["+int_customer_ids_assigned", "customer_id_history"]
VARS = {"max_identifier_fanout": 2}
PHONE_14 = "+44 7700 900444"
PHONE_P = "+44 7700 900555"
TABLES = (
    "int_identity_records_unioned",
    "int_identity_identifiers_unpivoted",
    "int_identity_fanout_measured",
    "int_identity_edges_filtered",
    "int_identity_labels",
    "int_identity_edges_filtered__before",  # the before-images the labels consumed: empty after both builds
    "int_identity_labels__region",  # the region the clusters consumed: empty after both builds
    "int_identity_clusters_propagated",
    "int_identity_clusters_propagated__changed",  # the records the ids consumed: empty after both builds
    "int_customer_ids_assigned",
)
BUILD_TIMES = {"first_assigned_at", "last_assigned_at"}  # wall-clock: differ in a later rebuild
# the models without their data tests (the builds whose data tests would check nothing the tests here do not)
MODELS_ONLY = ["--indirect-selection", "cautious", "--exclude-resource-type", "test"]
# which build last computed a pair: an incremental build computes only the clusters whose id can change, a
# --full-refresh one every cluster (checked apart: _last_computed)
COMPUTED_BY = {"last_assigned_run_id"}


def _incremental_build(
    wh: Any,
    run_id: str,
    since: str,
    select: list[str] = SELECT,
    extra_vars: dict[str, Any] | None = None,
    clusters_by_region: bool = True,
) -> None:
    """dbt build without --full-refresh (selective builds never commit the ledger, so dbt_build would
    rebuild in full), reading what landed after `since`: the labels start from the last build's state.
    dbt's log file at debug (RAPPORT_DBT_LOG_LEVEL): the tests read lines only it has."""
    dbt_vars = json.dumps({"as_of": AS_OF.isoformat(), "run_id": run_id, "since": since, **VARS, **(extra_vars or {})})
    command = ["build", "--vars", dbt_vars, "--select", *select, "--exclude-resource-type", "unit_test",
               "--indirect-selection", "cautious"]  # fmt: skip
    # at debug, dbt's log has what the labels' materialization logs (_relabelled) and the statements it sends
    settings = replace(wh.settings, dbt_log_level="debug")
    raise_on_failures(settings, invoke(settings, command), "build")
    # the records, the fan-out and the edges were recomputed for what was touched only (not a full select)
    results = json.loads((dbt_dirs(wh.settings)[0] / "run_results.json").read_text())["results"]
    code = {r["unique_id"].split(".")[-1]: r.get("compiled_code") or "" for r in results}
    assert "touched_records" in code["int_identity_records_unioned"]
    assert "touched_values" in code["int_identity_fanout_measured"]
    assert "touched_values" in code["int_identity_edges_filtered"]
    if clusters_by_region and "int_identity_clusters_propagated" in code:  # by the labels' region
        assert "recomputed_nodes" in code["int_identity_clusters_propagated"]


def _relabelled(wh: Any) -> int:
    """Nodes the last incremental labelling relabelled (the materialization logs it)."""
    log = (dbt_dirs(wh.settings)[1] / "dbt.log").read_text()
    found = re.findall(r"int_identity_labels: incremental, relabelled (\d+) nodes", log)
    assert found, "the labels were not built incrementally"
    return int(found[-1])


def day_zero_build(wh: Any) -> None:
    """The first build of a history: the identity models (SELECT: all the tests here read), no data tests."""
    wh.build(run_id="d0", select=SELECT, extra_args=["--vars", json.dumps(VARS), *MODELS_ONLY])


def _full_rebuild_differences(
    wh: Any, run_id: str, root: Any, *, data_tests: bool = True
) -> dict[str, tuple[int, int]]:
    """Rows of each identity table only in `wh` or only in a --full-refresh rebuild of a copy of it. Without
    `data_tests` the rebuild runs the models only: its tables are compared with those of `wh`, whose own
    (incremental) build ran the tests."""
    copy = root / f"full-{run_id}"
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(copy)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    selection = ["--indirect-selection", "cautious"] if data_tests else MODELS_ONLY
    dbt_build(settings, run_id=run_id, as_of=AS_OF, select=SELECT, full_refresh=True,
              extra_args=["--vars", json.dumps(VARS), *selection])  # fmt: skip
    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{wh.path}' as a (read_only)")
        con.execute(f"attach '{settings.work_db}' as b (read_only)")
        for t in TABLES:
            cols = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_catalog = 'a' "
                    "and table_schema = 'intermediate' and table_name = ? order by ordinal_position",
                    [t],
                ).fetchall()
                if c not in BUILD_TIMES | COMPUTED_BY
            ]
            assert cols, t
            sel = ", ".join(f'"{c}"' for c in cols)
            only = [
                con.execute(f"select count(*) from (select {sel} from {x}.intermediate.{t} "
                            f"except all select {sel} from {y}.intermediate.{t})").fetchone()[0]
                for x, y in (("a", "b"), ("b", "a"))
            ]  # fmt: skip
            if any(only):
                out[t] = tuple(only)
    return out


def _last_computed(wh: Any) -> dict[str, str]:
    """Current record -> the run that last computed its id (last_assigned_run_id)."""
    sql = "select record_id, last_assigned_run_id from intermediate.int_customer_ids_assigned where is_current"
    return dict(wh.query(sql))


def _clusters(wh: Any) -> set[frozenset[str]]:
    """The partition of records into clusters (every record, singletons included)."""
    groups: dict[int, set[str]] = {}
    sql = "select record_id, component_key from intermediate.int_identity_clusters_propagated"
    for record_id, key in wh.query(sql):
        groups.setdefault(key, set()).add(record_id)
    return {frozenset(g) for g in groups.values()}


def _cluster_sets(*groups: str) -> set[frozenset[str]]:
    return {frozenset(g.split()) for g in groups}


@pytest.fixture(scope="module")
def days(make_warehouse, rows, tmp_path_factory) -> dict[str, Any]:
    wh = make_warehouse("identity-incremental")
    root = tmp_path_factory.mktemp("identity-incremental-full")
    sc, hu, ec = rows.shop_customer, rows.helpdesk_user, rows.esp_contact
    wh.insert("shop_customers", [
        sc(1, email="a@x.com"), sc(2, email="b@x.com"), sc(3, email="shared@x.com"),
        sc(4, email="shared@x.com", phone="07700 900444", country="GB"), sc(5, email="d@x.com"),
        sc(7, email="f@x.com"),
    ])  # fmt: skip
    wh.insert("helpdesk_users", [hu(10, email="a@x.com"), hu(14, email="h14@x.com", phone=PHONE_14)])
    wh.insert("esp_contacts", [ec("b1", email="b@x.com"), ec("e1", email="e@x.com"), ec("f1", email="f@x.com")])
    wh.insert("shop_orders", [rows.shop_order(100, email="d@x.com"), rows.shop_order(103, customer_id=9),
                              rows.shop_order(104, customer_id=11)])  # fmt: skip
    wh.insert("esp_campaigns", [rows.esp_campaign("k1"), rows.esp_campaign("k2")])
    wh.insert("esp_audiences", [{"campaign_id": "k1", "email": "k1@x.com", "group": "treatment"},
                                {"campaign_id": "k2", "email": "k2@x.com", "group": "treatment"}])  # fmt: skip
    day_zero_build(wh)
    out: dict[str, Any] = {"day0": _clusters(wh)}

    later = "2025-07-01 00:00:00"
    wh.insert("esp_contacts", [ec("b1", email="new@x.com", updated_at="2025-06-01 00:00:00")],
              run_id="d1", extracted_at=later)  # fmt: skip
    wh.insert("helpdesk_users", [hu(20, email="b@x.com", phone=PHONE_P)], run_id="d1", extracted_at=later)
    wh.insert("shop_orders", [rows.shop_order(101, email="d@x.com", phone=PHONE_P),
                              rows.shop_order(102, email=" A@x.com")], run_id="d1", extracted_at=later)  # fmt: skip
    wh.insert("shop_customers", [sc(6, email="shared@x.com")], run_id="d1", extracted_at=later)
    _incremental_build(wh, "d1", DAY0_LOADED)
    out["ids1"] = dict(wh.query("select record_id, customer_id from intermediate.int_customer_ids_assigned "
                                "where is_current"))  # fmt: skip
    out.update(day1=_clusters(wh), relabelled1=_relabelled(wh), computed1=_last_computed(wh),
               diff1=_full_rebuild_differences(wh, "d1", root, data_tests=False))  # fmt: skip

    latest = "2025-07-02 00:00:00"
    wh.insert("shop_customers", [sc(6, email="other@x.com", updated_at="2025-06-02 00:00:00")],
              run_id="d2", extracted_at=latest)  # fmt: skip
    with duckdb.connect(str(wh.path)) as con:  # scratch tables a build killed mid-way leaves behind
        for name in ("edges", "delta", "labels_2"):
            con.execute(f"create table intermediate.int_identity_labels__{name} as select 1 as leftover")
    _incremental_build(wh, "d2", later)
    out["scratch_left"] = wh.query(
        "select table_name from information_schema.tables where table_schema = 'intermediate' "
        "and table_name like 'int_identity_labels__%' order by 1"
    )
    out.update(day2=_clusters(wh), relabelled2=_relabelled(wh), computed2=_last_computed(wh),
               diff2=_full_rebuild_differences(wh, "d2", root, data_tests=False))  # fmt: skip

    day3, changed = "2025-07-03 00:00:00", {"updated_at": "2025-06-03 00:00:00"}
    wh.insert("shop_orders", [
        rows.shop_order(100, customer_id=5, email="d@x.com", **changed),
        rows.shop_order(104, email="f@x.com", **changed),
        rows.shop_order(105, customer_id=1, email="z@x.com", phone=PHONE_14, **changed),
    ], run_id="d3", extracted_at=day3)  # fmt: skip
    wh.insert("helpdesk_users", [hu(10, email="a@x.com", role="agent", **changed)], run_id="d3", extracted_at=day3)
    wh.insert("shop_customers", [sc(9, email="e@x.com")], run_id="d3", extracted_at=day3)
    # the daily campaign snapshots: k1 moved its send (its member's first_seen_at changes), k2 did not
    snapshots = [rows.esp_campaign("k1", send_at="2025-03-02 09:00:00", snapshot_date="2025-07-02"),
                 rows.esp_campaign("k2", snapshot_date="2025-07-02")]  # fmt: skip
    wh.insert("esp_campaigns", snapshots, run_id="d3", extracted_at=day3)
    _incremental_build(wh, "d3", latest)
    out.update(day3=_clusters(wh), relabelled3=_relabelled(wh), computed3=_last_computed(wh))
    out["run_times"] = dict(wh.query("select last_assigned_run_id, max(last_assigned_at) from "
                                     "intermediate.int_customer_ids_assigned where is_current group by 1"))  # fmt: skip
    out["history"] = {r["customer_id"]: r for r in wh.query_dicts("select * from marts.customer_id_history")}
    out["diff3"] = _full_rebuild_differences(wh, "d3", root, data_tests=False)
    everything = "select * from intermediate.int_customer_ids_assigned order by record_id, customer_id"
    before = wh.query(everything)
    _incremental_build(wh, "d3", latest)  # day 3 again: no cluster changed, so no assignment is written
    out["rerun_unchanged"] = wh.query(everything) == before
    return out


A = "orders.customer:1 helpdesk.user:10"
AUDIENCE = ("esp.audience_member:k1:k1@x.com", "esp.audience_member:k2:k2@x.com")
F = "orders.customer:7 esp.contact:f1"


def test_day0_components(days) -> None:
    assert days["day0"] == _cluster_sets(
        A, "orders.customer:2 esp.contact:b1", "orders.customer:3 orders.customer:4 helpdesk.user:14",
        "orders.customer:5 orders.guest_order:100", F, "esp.contact:e1", "orders.customer:9", "orders.customer:11",
        *AUDIENCE,
    )  # fmt: skip


def test_join_merge_split_by_fanout_and_email_change(days) -> None:
    assert days["day1"] == _cluster_sets(
        A + " orders.guest_order:102",
        "orders.customer:2 helpdesk.user:20 orders.guest_order:101 orders.customer:5 orders.guest_order:100",
        "orders.customer:4 helpdesk.user:14", F,
        "orders.customer:3", "orders.customer:6", "esp.contact:b1", "esp.contact:e1", "orders.customer:9",
        "orders.customer:11", *AUDIENCE,
    )  # fmt: skip
    # A (3), B+D (5), C's linked part (2): F's 2 nodes keep their rows
    assert days["relabelled1"] == 10
    assert days["diff1"] == {}


def test_a_value_back_under_the_fanout_rejoins(days) -> None:
    assert days["day2"] == (days["day1"] - _cluster_sets("orders.customer:4 helpdesk.user:14", "orders.customer:3")) | (
        _cluster_sets("orders.customer:3 orders.customer:4 helpdesk.user:14")
    )
    assert days["relabelled2"] == 3
    # leftovers of a killed build are dropped; no copy of the edges is kept beside the labels, only the
    # region handed to the clusters (consumed: empty)
    assert days["scratch_left"] == [("int_identity_labels__region",)]
    assert days["diff2"] == {}


def test_records_that_vanish_and_a_phone_rejected_by_an_order(days) -> None:
    assert days["day3"] == _cluster_sets(
        "orders.customer:1 orders.guest_order:102",
        "orders.customer:2 helpdesk.user:20 orders.guest_order:101 orders.customer:5",
        "orders.customer:3 orders.customer:4", "helpdesk.user:14", F + " orders.guest_order:104",
        "esp.contact:e1 orders.customer:9", "orders.customer:6", "esp.contact:b1", *AUDIENCE,
    )  # fmt: skip
    # A (2), B+D (4), C's linked part (2), F (3), e1 + customer 9 (2)
    assert days["relabelled3"] == 13
    assert days["diff3"] == {}


def _md5_id(text: str) -> str:
    """docs/identity.md: a new cluster's id is 'c' + 16 hex digits of md5 of its anchor record id."""
    return "c" + hashlib.md5(text.encode()).hexdigest()[:16]


def _runs(computed: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record, run in computed.items():
        out.setdefault(run, set()).add(record)
    return out


UNTOUCHED_SINCE_DAY0 = {"esp.contact:e1", "orders.customer:9", "orders.customer:11", *AUDIENCE, *F.split()}


def test_ids_are_recomputed_for_the_clusters_whose_id_can_change_only(days) -> None:
    # day 1: A joined by guest 102, B and D merged, b1 left B, C split (customer 3 alone gets a new id: its
    # anchor's md5 was C's id, already issued), customer 6 new; F, e1, the placeholders and the audience untouched
    assert _runs(days["computed1"]) == {
        "d0": UNTOUCHED_SINCE_DAY0,
        "d1": {*A.split(), "orders.guest_order:102", "orders.customer:2", "helpdesk.user:20", "orders.guest_order:101",
               "orders.customer:5", "orders.guest_order:100", "esp.contact:b1", "orders.customer:3",
               "orders.customer:4", "helpdesk.user:14", "orders.customer:6"},
    }  # fmt: skip
    # C's id (md5 of its anchor, customer 3) stays with the larger part; customer 3's md5 was already
    # issued, so its new id is salted with the run id
    ids1 = days["ids1"]
    assert ids1["orders.customer:4"] == ids1["helpdesk.user:14"] == _md5_id("orders.customer:3")
    assert ids1["orders.customer:3"] == _md5_id("orders.customer:3|d1")
    # day 2: only C (customer 3 rejoins); customer 6 changed its email but stays alone with its id
    computed2 = _runs(days["computed2"])
    assert computed2["d2"] == {"orders.customer:3", "orders.customer:4", "helpdesk.user:14"}
    assert computed2["d0"] == UNTOUCHED_SINCE_DAY0  # F's rows were not rewritten on days 1 and 2
    # day 3: records vanished from A, B+D and the placeholder 11; guest 104 joins F; helpdesk user 14 leaves C;
    # e1 and customer 9 (untouched since day 0) merge. Campaign k1's member changed first_seen_at, not cluster.
    assert _runs(days["computed3"]) == {
        "d0": set(AUDIENCE),
        "d1": {"orders.customer:6", "esp.contact:b1"},
        "d3": {"orders.customer:1", "orders.guest_order:102", "orders.customer:2", "helpdesk.user:20",
               "orders.guest_order:101", "orders.customer:5", "orders.customer:3", "orders.customer:4",
               "helpdesk.user:14", *F.split(), "orders.guest_order:104", "esp.contact:e1", "orders.customer:9"},
    }  # fmt: skip


def test_a_merge_of_clusters_untouched_the_day_before_retires_the_younger_id_on_its_day(days) -> None:
    """e1 (contact, 2024-03-01) and customer 9 (2024-01-01) kept their day-0 rows through days 1 and 2 and
    merge on day 3: customer 9's id survives, e1's is retired at day 3's build time, though its last
    assignment was computed on day 0 (customer_id_history's retired_at: the first current pair of its
    records assigned after its last assignment)."""
    history, times = days["history"], days["run_times"]
    e1, c9 = _md5_id("esp.contact:e1"), _md5_id("orders.customer:9")
    assert len(set(times.values())) == len(times) == 3  # d0, d1 and d3 still last-computed some pair
    retired = history[e1]
    assert (retired["is_retired"], retired["current_customer_id"]) == (True, c9)
    assert (retired["last_assigned_at"], retired["retired_at"]) == (times["d0"], times["d3"])
    # a current id shows the build's time, though no build since day 0 computed it before day 3
    assert (history[c9]["is_retired"], history[c9]["retired_at"]) == (False, None)
    assert history[c9]["last_assigned_at"] == times["d3"]
    k1 = _md5_id(AUDIENCE[0])
    assert (history[k1]["first_assigned_at"], history[k1]["last_assigned_at"]) == (times["d0"], times["d3"])


def test_a_rerun_writes_no_assignment(days) -> None:
    """Day 3 built again (same run id, same `since`): no cluster changed, so no row is written, not even its
    last_assigned_at."""
    assert days["rerun_unchanged"]


def test_an_order_phone_that_is_no_identifier_keeps_the_build_by_value(make_warehouse, rows, tmp_path_factory) -> None:
    """A landed order's phone that does not parse (national format: orders carry no country) is no identifier.
    Listing it as ('phone', null) once made the fan-out and edges read it as the marker of a full rebuild, so
    every day with such a phone rebuilt them in full (at 1M people, 20 s of the day). `_incremental_build`
    asserts that both built by value."""
    wh = make_warehouse("unparsed-phone")
    root = tmp_path_factory.mktemp("unparsed-phone-full")
    wh.insert("shop_customers", [rows.shop_customer(1, email="a@x.com"), rows.shop_customer(2, email="b@x.com")])
    wh.insert("shop_orders", [rows.shop_order(100, email="d@x.com")])
    day_zero_build(wh)
    wh.insert(
        "shop_orders",
        [rows.shop_order(101, email="a@x.com", phone="07700 900666")],
        run_id="d1",
        extracted_at="2025-07-01 00:00:00",
    )
    _incremental_build(wh, "d1", DAY0_LOADED)
    assert _full_rebuild_differences(wh, "d1", root, data_tests=False) == {}
