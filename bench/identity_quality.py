"""Identity-stitching quality: score `marts.customer_identities` against a ground truth of who is who.

    score_identities(db_path, truth_parquet) -> IdentityScores

compares the stitched clusters (customer_id per source record) with the true person of each record
(`identities.parquet`: source, source_id, person_id, as the demo generator writes it) and, in the same
run, a `lower(email)`-only baseline (what public dbt packages do: records join on lower(email) as typed,
records without an email stay alone). Metrics:

- pairwise precision / recall / F1 over record pairs put in the same cluster;
- B-cubed precision / recall (per-record averages, less dominated by big clusters);
- cluster counts against the true number of people.

It also checks the stitching against a second implementation of marts.md's linking rules in Python
(`identity_reference.py`): `disagreeing_pairs` counts record pairs that one puts together and the other
does not (0: the same partition), and `ceiling` scores that reference with every link between two
different true people cut, the best recall any stitcher that follows the contract can reach on the data.

As a script it generates the demo sources, lands them with the extractors, builds the identity models
with dbt and prints the scores (or scores an existing warehouse with --db and --truth):

    .venv/bin/python bench/identity_quality.py                         # default demo: 3000 people, seed 7
    .venv/bin/python bench/identity_quality.py --db W.duckdb --truth ground_truth/identities.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import duckdb
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from identity_reference import ceiling_clusters, contract_graph, reference_clusters  # noqa: E402

DBT_PROJECT = BENCH.parent / "dbt_project" / "dbt_project.yml"
DEMO_END = date(2025, 6, 30)

# The stitched clusters and the baseline, as (source, source_id, cluster) relations over the work DB.
_STITCHED = "select source, source_id, customer_id as cluster from work.marts.customer_identities"
_BASELINE = """
    select source, source_id,
           coalesce('e:' || lower(email), 'r:' || source || ':' || source_id) as cluster
    from work.intermediate.int_identity_records_unioned
"""


@dataclass(frozen=True)
class Scores:
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    clusters: int
    people: int
    records: int


@dataclass(frozen=True)
class IdentityScores:
    stitched: Scores
    baseline_lower_email: Scores
    records_missing: int  # ground-truth records absent from customer_identities
    records_unknown: int  # customer_identities records absent from the ground truth
    ceiling: Scores  # the contract's rules with links between different true people cut
    disagreeing_pairs: int  # record pairs rapport and the Python reference of the contract cluster differently

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _scores(con: duckdb.DuckDBPyConnection, clusters_sql: str) -> Scores:
    # n_ij = records of cluster i and person j; pairs counted with n * (n - 1) / 2
    row = con.execute(
        f"""
        with labelled as (
            select t.person_id, c.cluster
            from truth as t inner join ({clusters_sql}) as c using (source, source_id)
        ),
        cells as (select cluster, person_id, count(*) as n from labelled group by all),
        by_cluster as (select cluster, sum(n) as n from cells group by all),
        by_person as (select person_id, sum(n) as n from cells group by all),
        bcubed as (
            select
                sum(c.n * c.n / bc.n) as precision_sum,
                sum(c.n * c.n / bp.n) as recall_sum
            from cells as c
            inner join by_cluster as bc using (cluster)
            inner join by_person as bp using (person_id)
        )
        select
            (select sum(n * (n - 1) / 2) from cells) as tp,
            (select sum(n * (n - 1) / 2) from by_cluster) as predicted_pairs,
            (select sum(n * (n - 1) / 2) from by_person) as true_pairs,
            (select precision_sum from bcubed),
            (select recall_sum from bcubed),
            (select count(*) from by_cluster),
            (select count(*) from by_person),
            (select sum(n) from cells)
        """
    ).fetchone()
    tp, predicted, true, p_sum, r_sum, clusters, people, records = (float(x or 0) for x in row)
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    b_precision = p_sum / records if records else 1.0
    b_recall = r_sum / records if records else 1.0
    return Scores(
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        clusters=int(clusters),
        people=int(people),
        records=int(records),
    )


def _contract_vars() -> tuple[frozenset[str], int]:
    variables = yaml.safe_load(DBT_PROJECT.read_text())["vars"]
    return frozenset(variables["plus_address_domains"]), int(variables["max_identifier_fanout"])


def _disagreeing_pairs(con: duckdb.DuckDBPyConnection) -> int:
    # pairs together in rapport + pairs together in the reference - 2 * pairs together in both
    row = con.execute(
        f"""
        with joined as (
            select c.cluster as ours, r.cluster as ref
            from ({_STITCHED}) as c inner join reference as r using (source, source_id)
        )
        select
            (select sum(n * (n - 1) / 2) from (select count(*) as n from joined group by ours))
            + (select sum(n * (n - 1) / 2) from (select count(*) as n from joined group by ref))
            - 2 * (select sum(n * (n - 1) / 2) from (select count(*) as n from joined group by ours, ref))
        """
    ).fetchone()
    return int(row[0] or 0)


def score_identities(db_path: Path | str, truth_parquet: Path | str) -> IdentityScores:
    """Score a built warehouse's stitched identities (and the lower(email) baseline) against ground truth."""
    plus_domains, fanout = _contract_vars()
    with duckdb.connect() as con:
        con.execute(f"attach '{Path(db_path)}' as work (read_only)")
        con.execute(
            "create temp table truth as select source, cast(source_id as varchar) as source_id, person_id "
            f"from read_parquet('{Path(truth_parquet)}')"
        )
        missing, unknown = con.execute(
            f"""
            select
                (select count(*) from truth as t
                 where not exists (select 1 from ({_STITCHED}) as c
                                   where c.source = t.source and c.source_id = t.source_id)),
                (select count(*) from ({_STITCHED}) as c
                 where not exists (select 1 from truth as t
                                   where c.source = t.source and c.source_id = t.source_id))
            """
        ).fetchone()
        graph = contract_graph(con, plus_domains=plus_domains, fanout=fanout)
        con.register("reference", reference_clusters(graph))
        con.register("ceiling", ceiling_clusters(graph, con.execute("select * from truth").df()))
        return IdentityScores(
            stitched=_scores(con, _STITCHED),
            baseline_lower_email=_scores(con, _BASELINE),
            records_missing=int(missing),
            records_unknown=int(unknown),
            ceiling=_scores(con, "select source, source_id, cluster from ceiling"),
            disagreeing_pairs=_disagreeing_pairs(con),
        )


def build_demo_warehouse(
    warehouse_dir: Path, *, people: int = 3000, seed: int = 7, end: date = DEMO_END, run_id: str = "bench"
) -> tuple[Path, Path, dict[str, float]]:
    """Generate the demo sources, land them with the extractors and build the identity models with dbt.

    Returns (work DB path, ground-truth identities parquet, seconds per step).
    """
    from rapport.core.config import load_settings
    from rapport.demo.generate import generate
    from rapport.demo.helpdesk_server import serve_helpdesk
    from rapport.extractors.esp import extract_esp
    from rapport.extractors.helpdesk import extract_helpdesk
    from rapport.extractors.orders import extract_orders
    from rapport.transform.runner import dbt_build

    timings: dict[str, float] = {}
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(warehouse_dir)})
    t = time.perf_counter()
    generate(settings.demo_dir, people=people, seed=seed, end=end)
    timings["generate"] = time.perf_counter() - t

    interval_end = datetime.combine(end + timedelta(days=1), dtime(), tzinfo=UTC)
    t = time.perf_counter()
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.work_db), config=settings.duckdb_config()) as con:
        extract_orders(con, settings, run_id=run_id, interval_end=interval_end)
        with serve_helpdesk(settings.demo_dir / "helpdesk", token=settings.helpdesk_token) as server:
            extract_helpdesk(con, settings, run_id=run_id, interval_end=interval_end, base_url=server.base_url)
        extract_esp(con, settings, run_id=run_id, interval_end=interval_end)
    timings["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    dbt_build(
        settings,
        run_id=run_id,
        as_of=end,
        select=[
            "path:models/staging",
            "path:models/intermediate/identity",
            "int_orders_enriched",
            "path:models/marts/identity",
            "path:models/marts/customers",
        ],
        extra_args=["--indirect-selection", "cautious"],
    )
    timings["dbt_build"] = time.perf_counter() - t
    return settings.work_db, settings.demo_dir / "ground_truth" / "identities.parquet", timings


def format_scores(result: IdentityScores) -> str:
    lines = [
        "| method | pairwise P | pairwise R | pairwise F1 | B³ P | B³ R | B³ F1 | clusters | people | records |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("rapport stitching", result.stitched),
        ("lower(email) only", result.baseline_lower_email),
        ("contract ceiling", result.ceiling),
    ]
    for name, s in rows:
        lines.append(
            f"| {name} | {s.pairwise_precision:.4f} | {s.pairwise_recall:.4f} | {s.pairwise_f1:.4f} "
            f"| {s.bcubed_precision:.4f} | {s.bcubed_recall:.4f} | {s.bcubed_f1:.4f} "
            f"| {s.clusters} | {s.people} | {s.records} |"
        )
    lines.append(
        f"\nrecords missing from customer_identities: {result.records_missing}; "
        f"records not in the ground truth: {result.records_unknown}; record pairs clustered differently "
        f"from the Python reference of the contract's rules: {result.disagreeing_pairs}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="score this built work DB (with --truth) instead of the demo")
    parser.add_argument("--truth", type=Path, help="ground-truth identities.parquet")
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/rapport-identity-bench"))
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=DEMO_END)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    if args.db:
        if not args.truth:
            parser.error("--db needs --truth")
        db, truth = args.db, args.truth
    else:
        db, truth, timings = build_demo_warehouse(args.warehouse, people=args.people, seed=args.seed, end=args.end)
    result = score_identities(db, truth)
    if args.json:
        print(json.dumps({**result.as_dict(), "seconds": timings}, indent=2))
    else:
        print(format_scores(result))
        if timings:
            print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
