"""The peer: the same three sources loaded into DuckDB with dlt (dlt[duckdb], its verified sources), configured
the way its documentation and pitfalls.md recommend for speed and idempotent loads:

- orders: `sql_database` with the pyarrow backend (Arrow batches; connectorx fails on this schema), merge on
  the primary keys (a rerun does not duplicate rows, like rapport's merge on natural keys);
- helpdesk: `rest_api` with a cursor paginator that stops on `end_of_stream` (dlt's stock cursor paginator
  never stops on a Zendesk-style export), merge on (id, updated_at) as rapport keeps versions;
- ESP: `filesystem` + a JSON-lines reader that skips malformed lines (the stock `read_jsonl` aborts on the
  first one), merge on sg_event_id (webhook retries); CSV snapshots and audiences with `read_csv` (pandas;
  `read_csv_duckdb` fails on DuckDB 2.0), contacts merged on (contact_id, updated_at).

All with `loader_file_format="parquet"` (the default insert_values is 15-130x slower) and nested fields kept
as JSON (`max_table_nesting=0`), as rapport keeps them. dlt types nothing beyond what the source gives (SQLite
text timestamps stay text) and quarantines nothing: it does less than rapport's extractors.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from rapport.core.config import Settings

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DLT_TELEMETRY", "false")


def _pipeline(name: str, base: Path):  # type: ignore[no-untyped-def]
    import dlt

    base.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"bench_{name}",
        pipelines_dir=str(base / "pipelines"),
        destination=dlt.destinations.duckdb(str(base / f"dlt_{name}.duckdb")),
        dataset_name=f"raw_{name}",
    )


def _orders(settings: Settings) -> Any:
    from dlt.sources.sql_database import sql_database

    src = sql_database(
        credentials=settings.orders_db_url,
        table_names=["customers", "orders", "order_items", "fx_rates"],
        backend="pyarrow",
        chunk_size=100_000,
    )
    for t in ("customers", "orders", "order_items"):
        src.resources[t].apply_hints(write_disposition="merge", primary_key="id")
    src.resources["fx_rates"].apply_hints(write_disposition="merge", primary_key=["rate_date", "currency"])
    return src


def _helpdesk(settings: Settings) -> Any:
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
    from dlt.sources.rest_api import rest_api_source

    class ExportCursor(JSONResponseCursorPaginator):
        """Zendesk cursor export: the next page is ?cursor=after_cursor, the last one says end_of_stream."""

        def update_state(self, response, data=None) -> None:  # type: ignore[no-untyped-def]
            super().update_state(response, data)
            if response.json().get("end_of_stream"):
                self._has_next_page = False

    def endpoint(kind: str) -> dict[str, Any]:
        return {
            "name": f"helpdesk_{kind}",
            "primary_key": ["id", "updated_at"],
            "write_disposition": "merge",
            "endpoint": {
                "path": f"api/v2/incremental/{kind}/cursor.json",
                "params": {"start_time": 0},
                "data_selector": kind,
                "paginator": ExportCursor(cursor_path="after_cursor", cursor_param="cursor"),
            },
        }

    return rest_api_source(
        {
            "client": {
                "base_url": (settings.helpdesk_url or "").rstrip("/") + "/",
                "auth": {"type": "bearer", "token": settings.helpdesk_token},
            },
            "resources": [endpoint("users"), endpoint("tickets")],
        },
        max_table_nesting=0,
    )


def _esp(settings: Settings) -> list[Any]:
    import dlt
    from dlt.sources.filesystem import filesystem, read_csv

    @dlt.transformer(name="esp_events", primary_key="sg_event_id", write_disposition="merge", max_table_nesting=0)
    def jsonl_skipping_bad_lines(items):  # type: ignore[no-untyped-def]
        for file_obj in items:
            rows = []
            for line in gzip.decompress(file_obj.read_bytes()).splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # rapport quarantines it; a dlt user would at least skip it
                if isinstance(row, dict):
                    rows.append(row)
            yield rows

    root = str(settings.esp_root)
    events = filesystem(bucket_url=root, file_glob="events/**/*.jsonl.gz") | jsonl_skipping_bad_lines
    csvs = []
    for kind, key in (("contacts", ["contact_id", "updated_at"]), ("campaigns", None), ("audiences", None)):
        res = (filesystem(bucket_url=root, file_glob=f"{kind}/*.csv") | read_csv()).with_name(f"esp_{kind}")
        if key:
            res.apply_hints(write_disposition="merge", primary_key=key)
        csvs.append(res)
    return [events, *csvs]


def load(source: str, settings: Settings, base: Path) -> dict[str, Any]:
    data = {"orders": _orders, "helpdesk": _helpdesk, "esp": _esp}[source](settings)
    pipe = _pipeline(source, base)
    info = pipe.run(data, loader_file_format="parquet")
    info.raise_on_failed_jobs()
    rows = {k: v for k, v in pipe.last_trace.last_normalize_info.row_counts.items() if not k.startswith("_dlt")}
    return {"rows": rows, "rows_total": sum(rows.values())}
