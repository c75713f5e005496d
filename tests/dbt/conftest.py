"""Shared helpers for dbt tests: a temporary warehouse with the raw layout, hand-made raw rows, dbt builds.

Raw tables come from `rapport.extractors.schemas.raw_ddl` (the extractors' landing layout); rows are
inserted by hand so each test's expected values can be computed from the rows it wrote. Helpers are
fixtures (tests/ is no package):

    @pytest.fixture(scope="module")
    def wh(make_warehouse, rows):
        wh = make_warehouse("mycase")          # fresh warehouse under a temporary directory
        wh.insert("shop_customers", [rows.shop_customer(1, email="a@x.com")])
        wh.build()                             # dbt build of staging + identity + customers models
        return wh

    def test_x(wh):
        assert wh.query("select count(*) from marts.customers") == [(1,)]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from rapport.core.config import Settings, load_settings
from rapport.extractors.schemas import RAW_TABLES, raw_ddl

AS_OF = date(2025, 6, 30)
EXTRACTED_AT = "2025-06-30 00:00:00"

# The models this developer owns and their tests: staging, identity, orders, customers (the segment and
# campaign models of other developers are left out so these tests don't depend on them).
IDENTITY_SELECT = [
    "path:models/staging",
    "path:models/intermediate/identity",
    "int_orders_enriched",
    "path:models/marts/identity",
    "path:models/marts/customers",
]

_JSON_COLUMNS = {"_extra", "via", "tags", "satisfaction_rating", "metric_set"}


def raw_columns(table: str) -> list[str]:
    """Column names of a raw table (data columns, then the load metadata)."""
    cols, _key = RAW_TABLES[table]
    names = []
    for part in cols.split(", "):
        name = part.split()[0].strip('"')
        names.append(name)
    return [*names, "_run_id", "_extracted_at", "_source", "_extra"]


@dataclass
class Warehouse:
    settings: Settings

    @classmethod
    def create(cls, directory: Path) -> Warehouse:
        settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
        settings.work_db.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(settings.work_db)) as con:
            for stmt in raw_ddl():
                con.execute(stmt)
        return cls(settings)

    @property
    def path(self) -> Path:
        return self.settings.work_db

    def insert(
        self, table: str, rows: Iterable[dict[str, Any]], *, run_id: str = "r1", extracted_at: str = EXTRACTED_AT
    ) -> None:
        """Land hand-made rows in raw.<table>; missing columns are null, metadata gets defaults."""
        columns = raw_columns(table)
        values = []
        for i, row in enumerate(rows):
            unknown = set(row) - set(columns)
            if unknown:
                raise KeyError(f"raw.{table} has no column(s) {sorted(unknown)}")
            full = {"_run_id": run_id, "_extracted_at": extracted_at, "_source": f"test:{i}", **row}
            values.append(
                [
                    json.dumps(full.get(c)) if c in _JSON_COLUMNS and full.get(c) is not None else full.get(c)
                    for c in columns
                ]
            )
        if not values:
            return
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        with duckdb.connect(str(self.path)) as con:
            con.executemany(f"insert into raw.{table} ({quoted}) values ({marks})", values)

    def build(
        self,
        *,
        run_id: str = "r1",
        as_of: date = AS_OF,
        select: Sequence[str] | None = tuple(IDENTITY_SELECT),
        extra_args: list[str] | None = None,
    ) -> None:
        from rapport.transform.runner import dbt_build

        if select and extra_args is None:
            # only tests whose parents are all selected (other developers' tests on these models need
            # their own models, which a selective build leaves out)
            extra_args = ["--indirect-selection", "cautious"]
        dbt_build(
            self.settings, run_id=run_id, as_of=as_of, select=list(select) if select else None, extra_args=extra_args
        )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def customer_of(self, source: str, source_id: str | int) -> str:
        rows = self.query(
            "select customer_id from marts.customer_identities where source = ? and source_id = ?",
            [source, str(source_id)],
        )
        assert len(rows) == 1, f"{source}:{source_id} appears {len(rows)} times in customer_identities"
        return rows[0][0]


# ---- row builders with sensible defaults (only what a test states matters) -------------------------


def shop_customer(id: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": "2024-01-01 00:00:00",
        "updated_at": "2024-01-01 00:00:00",
        "accepts_marketing": False,
        **kw,
    }


def shop_order(id: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "status": "paid",
        "currency": "USD",
        "subtotal": kw.get("total", 10),
        "discount_total": 0,
        "shipping_total": 0,
        "tax_total": 0,
        "total": 10,
        "refunded_total": 0,
        "created_at": "2025-01-10 12:00:00",
        "updated_at": "2025-01-10 12:00:00",
        **kw,
    }


def helpdesk_user(id: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "role": "end-user",
        "created_at": "2024-02-01 00:00:00",
        "updated_at": "2024-02-01 00:00:00",
        **kw,
    }


def helpdesk_ticket(id: int, requester_id: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": id,
        "requester_id": requester_id,
        "status": "open",
        "priority": "normal",
        "via": {"channel": "email"},
        "tags": [],
        "satisfaction_rating": {"score": "unoffered", "comment": None},
        "metric_set": {
            "reply_time_in_minutes": {"calendar": None},
            "full_resolution_time_in_minutes": {"calendar": None},
            "solved_at": None,
            "reopens": 0,
        },
        "created_at": "2025-02-01 00:00:00",
        "updated_at": "2025-02-01 00:00:00",
        **kw,
    }


def esp_contact(contact_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "status": "subscribed",
        "created_at": "2024-03-01 00:00:00",
        "updated_at": "2024-03-01 00:00:00",
        "snapshot_date": "2025-06-29",
        **kw,
    }


def esp_campaign(campaign_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "name": campaign_id,
        "send_at": "2025-03-01 09:00:00",
        "holdout_pct": 10,
        "cost": 100,
        "cost_currency": "USD",
        "snapshot_date": "2025-06-29",
        **kw,
    }


def esp_event(sg_event_id: str, email: str, event: str, **kw: Any) -> dict[str, Any]:
    return {"sg_event_id": sg_event_id, "email": email, "event": event, "timestamp": 1740819600, **kw}


@pytest.fixture(scope="session")
def make_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Warehouse]:
    """Factory: make_warehouse(name) -> a fresh Warehouse (raw layout created) in a new temp directory."""
    return lambda name="warehouse": Warehouse.create(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def rows() -> SimpleNamespace:
    """Raw-row builders with defaults: rows.shop_customer(1, email=...), rows.shop_order(10, ...), ..."""
    return SimpleNamespace(
        shop_customer=shop_customer,
        shop_order=shop_order,
        helpdesk_user=helpdesk_user,
        helpdesk_ticket=helpdesk_ticket,
        esp_contact=esp_contact,
        esp_campaign=esp_campaign,
        esp_event=esp_event,
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.create(tmp_path)
