"""The parse state a fresh warehouse starts from (rapport.transform.manifests): the profile's environment a
parse runs in, and the shared state's copy in and out. Fast: no dbt."""

from __future__ import annotations

from pathlib import Path

from rapport.transform import manifests

PROFILES = """
rapport:
  target: work
  outputs:
    work:
      path: "{{ env_var('RAPPORT_WORK_DB') }}"
      threads: "{{ env_var('RAPPORT_DBT_THREADS', '2') | int }}"
      settings:
        memory_limit: "{{ env_var(\\"RAPPORT_DUCKDB_MEMORY_LIMIT\\", '4GB') }}"
    spark:
      warehouse: "{{ env_var('RAPPORT_WAREHOUSE_DIR') }}/spark/warehouse"
"""


def _profiles(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.yml"
    path.write_text(PROFILES)
    return path


def test_two_warehouses_parse_in_the_same_environment(tmp_path):
    profiles = _profiles(tmp_path)
    first = {"RAPPORT_WORK_DB": "/a/work/rapport_work.duckdb", "RAPPORT_WAREHOUSE_DIR": "/a",
             "RAPPORT_DUCKDB_MEMORY_LIMIT": "2GB", "RAPPORT_ESP_ROOT": "/esp"}  # fmt: skip
    second = {"RAPPORT_WORK_DB": "/b/work/rapport_work.duckdb", "RAPPORT_WAREHOUSE_DIR": "/b",
              "RAPPORT_DBT_THREADS": "1"}  # fmt: skip
    expected = {
        "RAPPORT_WORK_DB": "/rapport-dbt-parse/rapport_work.duckdb",  # the file name: the database's name
        "RAPPORT_DBT_THREADS": None,  # unset: the profile's default
        "RAPPORT_DUCKDB_MEMORY_LIMIT": None,
        "RAPPORT_WAREHOUSE_DIR": "/rapport-dbt-parse/rapport_warehouse_dir",  # no default: a placeholder
    }
    assert manifests.parse_environment(first, profiles) == expected
    assert manifests.parse_environment(second, profiles) == expected
    other_name = {"RAPPORT_WORK_DB": "/c/other.duckdb"}
    assert manifests.parse_environment(other_name, profiles)["RAPPORT_WORK_DB"] == "/rapport-dbt-parse/other.duckdb"
    assert manifests.parse_environment(other_name, profiles)["RAPPORT_WAREHOUSE_DIR"] is None  # not set: left out


def test_the_shared_state_is_per_profile_target_and_vars(tmp_path):
    base = ["parse", "--project-dir", "p", "--profile", "rapport", "--target", "work"]
    state = manifests.shared_state(tmp_path, base)
    assert state.name == "partial_parse.msgpack" and state.parent.parent == tmp_path / "target" / "parse-state"
    assert manifests.shared_state(tmp_path, ["parse", "--target", "work", "--profile", "rapport"]) == state
    assert manifests.shared_state(tmp_path, [*base[:-1], "spark"]) != state
    assert manifests.shared_state(tmp_path, [*base, "--vars", '{"max_identifier_fanout": 3}']) != state


def test_the_shared_state_seeds_only_a_parse_without_its_own(tmp_path):
    shared = tmp_path / "shared" / "partial_parse.msgpack"
    target = tmp_path / "wh" / "target"
    assert not manifests.seed_state(shared, target)  # nothing shared yet
    shared.parent.mkdir()
    shared.write_bytes(b"shared")
    assert manifests.seed_state(shared, target)
    assert (target / "partial_parse.msgpack").read_bytes() == b"shared"
    (target / "partial_parse.msgpack").write_bytes(b"own")
    assert not manifests.seed_state(shared, target)  # the warehouse's own state is kept
    assert (target / "partial_parse.msgpack").read_bytes() == b"own"


def test_a_parse_shares_its_state_and_an_unwritable_place_is_no_error(tmp_path):
    target = tmp_path / "wh" / "target"
    target.mkdir(parents=True)
    shared = tmp_path / "shared" / "x" / "partial_parse.msgpack"
    manifests.share_state(target, shared)
    assert not shared.exists()  # the parse left no state: nothing to share
    (target / "partial_parse.msgpack").write_bytes(b"new")
    manifests.share_state(target, shared)
    assert shared.read_bytes() == b"new"
    assert [p.name for p in shared.parent.iterdir()] == ["partial_parse.msgpack"]  # no temporary file left
    blocked = tmp_path / "file"
    blocked.write_text("")
    manifests.share_state(target, blocked / "partial_parse.msgpack")  # its parent is a file: logged, not raised
