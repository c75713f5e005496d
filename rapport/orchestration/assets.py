"""rapport's Airflow Assets: what the pipeline produces, for data-aware scheduling.

- `rapport://sources/orders`, `rapport://sources/helpdesk`, `rapport://sources/esp`: updated by the
  extract tasks of `rapport_daily` when a source's new rows are landed in the working warehouse. Each event
  carries the pipeline run it belongs to (`run_id`, `interval_start`, `interval_end`, `as_of`) in its extra.
- `rapport://marts/published`: updated by `publish` when a new published file replaced the old one; its
  extra names the run and the file. Schedule downstream DAGs (BI refresh, exports) on it.

`rapport_transform` is scheduled on all three source assets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset

# The URI is also the name the UI and the REST API show.
SOURCE_ASSETS: dict[str, Asset] = {
    name: Asset(f"rapport://sources/{name}", group="rapport") for name in ("orders", "helpdesk", "esp")
}
MARTS_ASSET = Asset("rapport://marts/published", group="rapport")

# Keys of a source event's extra that describe the pipeline run (RunContext.to_dict()).
RUN_KEYS = ("run_id", "interval_start", "interval_end", "as_of", "full_refresh")


def run_extra(ctx_dict: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    """The extra a source asset event carries: the run's identity and interval (JSON-safe)."""
    return {**{k: ctx_dict.get(k) for k in RUN_KEYS}, **more}


def run_from_events(events_by_asset: Mapping[Any, Iterable[Any]] | None) -> dict[str, Any] | None:
    """The pipeline run a transform should process, from the asset events that triggered it.

    Events from several extract runs can be collapsed into one triggered run (when a day's extract failed
    part-way, the next day's completes the set): the run with the latest `interval_end` wins, since its
    landed data includes the earlier runs'. None when no event names a run (a manual trigger).
    """
    best: dict[str, Any] | None = None
    for events in (events_by_asset or {}).values():
        for event in events or ():
            extra = getattr(event, "extra", None) or {}
            if not extra.get("run_id") or not extra.get("interval_end"):
                continue
            if best is None or str(extra["interval_end"]) > str(best["interval_end"]):
                best = {k: extra.get(k) for k in RUN_KEYS}
    return best
