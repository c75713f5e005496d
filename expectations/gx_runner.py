"""The module that imports Great Expectations (3-7 s, ~200 MB; with `gx_between`): the gate imports it lazily.

One ephemeral GX context per warehouse per process: the suites (from expectations/suites) and the frames'
data source live in memory; validation results are stored under `{warehouse}/gx/uncommitted/validations`
and Data Docs built from them under `{warehouse}/data_docs`. Each suite is validated against a Parquet
frame (a pandas Parquet asset whose path is a `file://` URL); Data Docs are rendered once per gate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rapport.expectations.catalog import SEVERITY, SuiteSpec, expectation_label, load_suites
from rapport.expectations.results import Outcome

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# GX logs at INFO while it imports and validates (docs decorators, metric resolution): silence it first.
logging.getLogger("great_expectations").setLevel(logging.ERROR)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.exceptions import DataContextError
    from great_expectations.execution_engine import pandas_execution_engine
    from great_expectations.validator.v1_validator import Validator

# GX fingerprints every frame under 1 GB it validates (md5 over pandas' hash of every row: 1-2 s per 100k
# customers' marts) only to store it in the result's batch markers, which nothing here reads; GX has no
# setting for it. The frames are identified by the run id and their Parquet path instead.
pandas_execution_engine.HASH_THRESHOLD = 0

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rapport.expectations import gx_between

gx_between.install()  # range checks on nullable number columns: one comparison per column, not per value

DATASOURCE = "rapport_frames"
SITE = "rapport"
BATCH = "whole_frame"
KEEP_RUNS = 30  # validation results (and their Data Docs pages) kept per suite
# SUMMARY results keep 20 offending values and their row indices. Unless told not to, GX's pandas engine also
# builds the query of the unexpected rows of each column expectation (filtering the whole frame once more),
# which SUMMARY then drops from the result: not asking for it leaves results and Data Docs as they were and
# saves seconds of a mart gate at 1M people (docs/quality.md).
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20, "return_unexpected_index_query": False}


_contexts: dict[Path, object] = {}

SUITE_PAGES = "suite_pages.json"  # under gx/: the fingerprint of each suite whose Data Docs page was rendered


def _stores(gx_root: Path) -> dict[str, dict]:
    """Only validation results are kept on disk (Data Docs' pages and index are built from them). Suites are
    made afresh in memory by each process from the suites' JSON; the validation definition and checkpoint
    stores GX requires stay empty (validations run without them: `_validate_part`)."""
    in_memory = {"class_name": "InMemoryStoreBackend"}
    return {
        "expectations_store": {"class_name": "ExpectationsStore", "store_backend": in_memory},
        "validation_results_store": {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(gx_root / "uncommitted" / "validations"),
            },
        },
        "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": in_memory},
        "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": in_memory},
    }


def _context(warehouse_dir: Path):
    """One ephemeral GX context per warehouse per process. A file-backed context read and rewrote
    great_expectations.yml and read every stored suite, definition and checkpoint back (as YAML), several
    times per gate for GX's freshness checks: ~0.2-0.3 s of CPU per gate at 100k people (docs/quality.md),
    more when frame paths changed. In memory, only validation results and Data Docs are written, and no
    config file can be left cut short by a killed process."""
    root = warehouse_dir.resolve()
    if root not in _contexts:
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(root / "data_docs"),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": 200,
            },
        }
        config = DataContextConfig(
            stores=_stores(root / "gx"),
            expectations_store_name="expectations_store",
            validation_results_store_name="validation_results_store",
            checkpoint_store_name="checkpoint_store",
            data_docs_sites={SITE: site},
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        ctx = gx.get_context(mode="ephemeral", project_config=config)
        ctx.data_sources.add_pandas(DATASOURCE)
        # every suite of both gates: Data Docs' index lists the suites of the expectations store
        for spec in load_suites().values():
            _suite(ctx, spec)
        _contexts[root] = ctx
    return _contexts[root]


def _rendered_suites(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / "gx" / SUITE_PAGES).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def _suite_page_due(root: Path, spec: SuiteSpec, rendered: dict[str, str]) -> bool:
    """A suite's page shows only its expectations: it is rendered when the suite changed since its page was
    rendered, or the page is missing, not on every run (a quarter of the Data Docs build at 100k people)."""
    page = root / "data_docs" / "expectations" / f"{spec.name}.html"
    return rendered.get(spec.name) != _fingerprint(spec) or not page.exists()


def _record_rendered(root: Path, rendered_now: list[SuiteSpec]) -> None:
    """After Data Docs were built: the suites whose pages now show their expectations."""
    if not rendered_now:
        return
    rendered = _rendered_suites(root) | {s.name: _fingerprint(s) for s in rendered_now}
    path = root / "gx" / SUITE_PAGES
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rendered, sort_keys=True, indent=1), encoding="utf-8")
    tmp.replace(path)  # whole or not at all: a cut-short file would only make pages render again


def _fingerprint(spec: SuiteSpec) -> str:
    return hashlib.sha256(json.dumps(spec.expectations, sort_keys=True).encode()).hexdigest()


def _suite(ctx, spec: SuiteSpec):
    """The context's suite, replaced only when its JSON changed (GX's add_or_update compares expectations
    pairwise, which costs seconds per gate)."""
    fingerprint = _fingerprint(spec)
    try:
        stored = ctx.suites.get(spec.name)
    except DataContextError:
        stored = None
    if stored is not None and stored.meta.get("rapport_fingerprint") == fingerprint:
        return stored
    if stored is not None:
        ctx.suites.delete(spec.name)
    suite = gx.ExpectationSuite(
        name=spec.name, expectations=[dict(e) for e in spec.expectations],
        meta={"rapport_fingerprint": fingerprint, "source": spec.path.name},
    )
    if len(suite.expectations) != len(spec.expectations):
        # GX logs and drops an invalid expectation; a silently shorter suite must not pass as a gate.
        raise ValueError(f"suite {spec.name} ({spec.path}): {len(spec.expectations) - len(suite.expectations)} "
                         "expectation(s) were rejected by Great Expectations")
    return ctx.suites.add(suite)


def _part_names(name: str, n: int) -> list[str]:
    """Asset names of a suite's frame parts (the suite's own name if one): they name the stored results."""
    return [name] if n == 1 else [f"{name}.part{i + 1}of{n}" for i in range(n)]


def _batch_definition(ds, part: str, path: Path):
    """The whole-frame batch definition of one frame file (kept per process; a new path, e.g. another
    layout of parts in a test, replaces the asset)."""
    url = path.resolve().as_uri()
    try:
        asset = ds.get_asset(part)
        if str(asset.path) != url:
            ds.delete_asset(part)
            raise LookupError
    except LookupError:
        asset = ds.add_parquet_asset(part, path=url, dtype_backend="numpy_nullable")
    try:
        return asset.get_batch_definition(BATCH)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH)


def _validate_part(ctx, batch_definition, suite, params: dict[str, object], run_id: RunIdentifier):
    """What GX's ValidationDefinition.run does, without its freshness checks: those compare each suite and
    definition with the stored copy (GX re-reads and re-builds them), and here the suites and batch
    definitions were made by this process from the suites' JSON. The result is stored under the key a
    checkpoint gives it (suite, run, batch), with the same meta but for the ids of the validation
    definition and checkpoint, which no longer exist."""
    validator = Validator(batch_definition=batch_definition, batch_parameters={}, result_format=RESULT_FORMAT)
    result = validator.validate_expectation_suite(suite, dict(params))
    result.meta.update({"validation_id": None, "checkpoint_id": None, "run_id": run_id,
                        "validation_time": run_id.run_time, "batch_parameters": None})
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
        run_id=run_id,
        batch_identifier=validator.active_batch_id,
    )
    ctx.validation_results_store.store_validation_results(
        suite_validation_result=result,
        suite_validation_result_identifier=key,
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
    )
    return key, result


@contextmanager
def _one_batch_in_memory() -> Iterator[None]:
    """GX's execution engine keeps every batch it has loaded (the whole pandas frame) for the life of the
    data source: over a gate, every frame at once (8.8 GB for a first load of 1M people). Validations run one
    after the other, so only the batch being validated is kept, and nothing once the gate is done."""
    from great_expectations.core.batch_manager import BatchManager

    original = BatchManager.save_batch_data
    managers: set[BatchManager] = set()

    def save_batch_data(self: BatchManager, batch_id: str, batch_data: object) -> None:
        self._batch_data_cache.clear()
        self._batch_cache.clear()
        managers.add(self)
        original(self, batch_id=batch_id, batch_data=batch_data)

    BatchManager.save_batch_data = save_batch_data  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchManager.save_batch_data = original  # type: ignore[method-assign]
        for m in managers:
            m._batch_data_cache.clear()
            m._batch_cache.clear()


def _prune_history(base: Path, keep: int) -> None:
    """Keep the newest `keep` run directories per suite: `base/<suite>/<run_name>/<run_time>/...`."""
    if not base.is_dir():
        return
    for suite_dir in (p for p in base.iterdir() if p.is_dir()):
        runs = sorted(
            (rt for rn in suite_dir.iterdir() if rn.is_dir() for rt in rn.iterdir() if rt.is_dir()),
            key=lambda p: p.name,
        )
        for old in runs[: max(len(runs) - keep, 0)]:
            shutil.rmtree(old, ignore_errors=True)
            if not any(old.parent.iterdir()):
                old.parent.rmdir()


def _plain(value: object) -> object:
    """numpy scalars and containers as plain Python values, for readable observed values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _observed(result: dict, exception: str | None) -> tuple[str, int | None, int | None]:
    if exception:
        return f"could not evaluate: {exception}", None, None
    mismatched = (result.get("details") or {}).get("mismatched") or {}
    if mismatched.get("missing"):
        return f"missing columns: {', '.join(map(str, mismatched['missing']))}", None, None
    if "observed_value" in result:
        observed = _plain(result["observed_value"])
        if isinstance(observed, list) and len(observed) > 10:
            observed = f"{len(observed)} values"
        return f"observed {observed}", result.get("element_count"), None
    n, bad = result.get("element_count"), result.get("unexpected_count")
    if bad is None:
        return "no result", n, None
    text = f"{bad} of {n} rows unexpected"
    examples = result.get("partial_unexpected_list") or []
    if bad and examples:
        text += ", e.g. " + ", ".join(str(_plain(v)) for v in examples[:5])
    return text, n, bad


def _exception_message(validation_result) -> str | None:
    info = validation_result.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            return (c.get("exception_message") or "exception").strip().splitlines()[0]
    return None


def _combined(parts: list[tuple[dict, str | None, bool]]) -> tuple[dict, str | None, bool]:
    """One expectation's (result, exception, success) over a frame from its results over the frame's parts:
    counts add up (the parts split the rows, `SuiteSpec.splittable`), examples are the first parts';
    an aggregate result (observed value) is the first failing part's."""
    if len(parts) == 1:
        return parts[0]
    exception = next((e for _, e, _ in parts if e), None)
    success = all(ok for _, _, ok in parts)
    results = [r for r, _, _ in parts]
    if all("unexpected_count" in r for r in results):
        examples = [v for r in results for v in (r.get("partial_unexpected_list") or [])]
        merged = {
            "element_count": sum(r.get("element_count") or 0 for r in results),
            "unexpected_count": sum(r.get("unexpected_count") or 0 for r in results),
            "partial_unexpected_list": examples[:20],
        }
        return merged, exception, success
    first = next((r for r, _, ok in parts if not ok), results[0])
    return first, exception, success


def validate(
    warehouse_dir: Path, gate: str, specs: list[SuiteSpec], frame_paths: dict[str, tuple[Path, ...]], *,
    run_id: str, params: dict[str, object], frame_rows: dict[str, int] | None = None,
) -> tuple[list[Outcome], Path]:
    """Run the gate's checkpoint; outcomes (without samples) in suite order, plus the Data Docs index path.

    `frame_paths` holds each suite's frame: one Parquet file, or the parts of a split frame, each validated
    on its own (pandas holds one part at a time) and the results combined per expectation.
    `frame_rows`: the whole frame's row count of the suites whose files hold only the rows their expectations
    could object to (candidate_rows.py); their row-wise results report it as the element count, as a
    validation of the whole frame would (GX counted the candidate rows).
    """
    gx_root = warehouse_dir.resolve() / "gx"
    _prune_history(gx_root / "uncommitted" / "validations", KEEP_RUNS - 1)
    _prune_history(warehouse_dir.resolve() / "data_docs" / "validations", KEEP_RUNS - 1)
    root = warehouse_dir.resolve()
    by_part: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = _context(warehouse_dir)
        ds = ctx.data_sources.get(DATASOURCE)
        rendered = _rendered_suites(root)
        pages_due = [s for s in specs if _suite_page_due(root, s, rendered)]
        gx_run_id = RunIdentifier(run_name=run_id, run_time=datetime.now(UTC))
        keys: list = []
        with _one_batch_in_memory():
            for spec in specs:
                suite = _suite(ctx, spec)
                paths = frame_paths[spec.name]
                for part, path in zip(_part_names(spec.name, len(paths)), paths, strict=True):
                    key, by_part[part] = _validate_part(ctx, _batch_definition(ds, part, path), suite, params,
                                                        gx_run_id)
                    keys.append(key)
        # Data Docs once per gate (GX's UpdateDataDocsAction rebuilds the whole site, index included, once per
        # validation result): every result's page, the pages of the suites that changed, and the index
        ctx.build_data_docs(site_names=[SITE], resource_identifiers=keys + [
            ExpectationSuiteIdentifier(name=s.name) for s in pages_due])
        _record_rendered(root, pages_due)
    outcomes: list[Outcome] = []
    for spec in specs:
        order = {expectation_label(e): i for i, e in enumerate(spec.expectations)}
        per_label: dict[str, list] = {}
        configs: dict[str, object] = {}
        for part in _part_names(spec.name, len(frame_paths[spec.name])):
            for r in by_part[part].results:
                cfg = r.expectation_config
                label = expectation_label({"type": cfg.type, "kwargs": cfg.kwargs, "meta": cfg.meta})
                configs.setdefault(label, cfg)
                per_label.setdefault(label, []).append((r.result or {}, _exception_message(r), bool(r.success)))
        suite_outcomes = []
        for label, parts in per_label.items():
            cfg = configs[label]
            severity = SEVERITY.get(getattr(cfg.severity, "value", str(cfg.severity)), "warn")
            result, exception, success = _combined(parts)
            whole = (frame_rows or {}).get(spec.name)
            if whole is not None and "unexpected_count" in result:
                result = {**result, "element_count": whole}
            observed, n, bad = _observed(result, exception)
            suite_outcomes.append(Outcome(spec.name, label, severity, success, observed, n, bad))
        outcomes += sorted(suite_outcomes, key=lambda o: order.get(o.expectation, len(order)))
    return outcomes, warehouse_dir.resolve() / "data_docs" / "index.html"
