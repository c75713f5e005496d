"""Run configuration, read from the environment (see the README's configuration table).

Every setting has a default that points at the embedded demo, so `rapport demo` needs none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

DEMO_TOKEN = "rapport-demo-token"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("duckdb", "spark")  # RAPPORT_ENGINE: where dbt builds the models
# RAPPORT_DBT_LOG_LEVEL: the least severe events dbt writes to its own log file (dbt's --log-level-file)
DBT_LOG_LEVELS = ("debug", "info", "warn", "error", "none")
# Languages the report is written in; rapport.reports.i18n.LANGUAGES holds their locales and catalogs.
REPORT_LANGUAGES = ("en", "ko", "th")


def check_language(value: str | None, setting: str = "RAPPORT_REPORT_LANGUAGE") -> str:
    """The language code for a setting's value (blank: English); ValueError naming the setting if unknown."""
    code = (value or "").strip().lower() or REPORT_LANGUAGES[0]
    if code not in REPORT_LANGUAGES:
        raise ValueError(
            f"{setting}={value!r} is not a report language; use one of {', '.join(REPORT_LANGUAGES)} "
            f"(default {REPORT_LANGUAGES[0]})"
        )
    return code


@dataclass(frozen=True)
class Settings:
    warehouse_dir: Path
    orders_db_url: str = field(repr=False)  # may carry a password
    helpdesk_url: str | None  # None: serve the demo helpdesk from demo_dir for the length of the extract
    helpdesk_token: str = field(repr=False)
    esp_root: Path
    as_of: date | None
    reporting_currency: str = "USD"
    duckdb_threads: int = 2
    duckdb_memory_limit: str = "4GB"
    orders_lookback_minutes: int = 10
    # rows per Parquet part a check validates at once: Great Expectations holds a part in pandas (~400 bytes
    # a row for ESP events), so a first load of millions of rows is split to keep memory bounded
    check_chunk_rows: int = 2_000_000
    engine: str = "duckdb"
    spark_master: str = "local[2]"
    report_language: str = "en"  # RAPPORT_REPORT_LANGUAGE: en, ko or th (rapport.reports.i18n.LANGUAGES)
    # source checks at extraction (rapport.extractors.source_health; README "Reliability and data protection")
    clock_skew_minutes: int = 60  # a record dated further ahead of the extraction is quarantined
    orders_reconcile_days: int = 7  # late commits older than the look-back are searched this far back
    freshness_warn_hours: float = 72  # no new data from a source for longer: a warning (0: never)
    freshness_error_hours: float = 336  # ... the run stops (0: never)
    volume_drop_warn_pct: float = 10  # a source holding this much less than was landed from it: a warning
    volume_drop_error_pct: float = 100  # ... the run stops (100: only when it holds nothing)
    # per-run files (run logs, status markers, a failed run's saved dbt results) and the in-process Airflow
    # metadata of runs older than the newest this many are deleted (0: keep everything; docs/operations.md)
    keep_runs: int = 30
    # dbt's log file (dbt/logs/dbt.log): `info` has each node's start and end, warnings, errors and the models'
    # own messages; `debug` adds every statement dbt sends (19,521 lines against 546 in a 100k-person day build)
    dbt_log_level: str = "info"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def demo_dir(self) -> Path:
        return self.warehouse_dir / "demo"

    @property
    def work_db(self) -> Path:
        # Not named after a schema inside it (see pitfalls: "Ambiguous reference to catalog or schema").
        return self.warehouse_dir / "work" / "rapport_work.duckdb"

    @property
    def temp_dir(self) -> Path:
        return self.warehouse_dir / "work" / "tmp"

    @property
    def published_dir(self) -> Path:
        return self.warehouse_dir / "published"

    @property
    def published_db(self) -> Path:
        return self.published_dir / "rapport.duckdb"

    @property
    def reports_dir(self) -> Path:
        return self.warehouse_dir / "reports"

    @property
    def audiences_dir(self) -> Path:
        return self.warehouse_dir / "audiences"

    @property
    def logs_dir(self) -> Path:
        return self.warehouse_dir / "logs"

    @property
    def spark_dir(self) -> Path:
        """Spark's warehouse, metastore and the Parquet exchanged with DuckDB (RAPPORT_ENGINE=spark)."""
        return self.warehouse_dir / "spark"

    @property
    def dbt_target(self) -> str:
        """The profiles.yml target of the engine."""
        return "spark" if self.engine == "spark" else "work"

    def duckdb_config(self) -> dict[str, object]:
        """Explicit limits: DuckDB's defaults (all cores, 80% of RAM) are wrong for a shared 2-core box."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return {
            "threads": self.duckdb_threads,
            "memory_limit": self.duckdb_memory_limit,
            "temp_directory": str(self.temp_dir),
            "preserve_insertion_order": False,
        }


def dbt_log_level(value: str | None) -> str:
    """RAPPORT_DBT_LOG_LEVEL: `info` (default) or another of DBT_LOG_LEVELS; ValueError naming the variable."""
    level = (value or "").strip().lower() or "info"
    if level not in DBT_LOG_LEVELS:
        raise ValueError(f"RAPPORT_DBT_LOG_LEVEL={value!r}: use one of {', '.join(DBT_LOG_LEVELS)} (default info)")
    return level


def engine_from(env: dict[str, str] | None = None) -> str:
    """RAPPORT_ENGINE: `duckdb` (default) or `spark`; ValueError naming the variable otherwise."""
    value = (os.environ if env is None else env).get("RAPPORT_ENGINE", "").strip().lower() or "duckdb"
    if value not in ENGINES:
        raise ValueError(f"RAPPORT_ENGINE={value!r}: use one of {', '.join(ENGINES)} (default duckdb)")
    return value


def _number(env: dict[str, str], name: str, default: float, kind: type = int) -> float:
    """A numeric RAPPORT_* variable, or a configuration error naming it."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected {'a whole number' if kind is int else 'a number'}") from None
    if value < 0:
        raise ValueError(f"{name}={text!r}: must not be negative")
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    warehouse = Path(env.get("RAPPORT_WAREHOUSE_DIR", "./warehouse")).expanduser().resolve()
    demo = warehouse / "demo"
    as_of = env.get("RAPPORT_AS_OF")
    currency = env.get("RAPPORT_REPORTING_CURRENCY", "USD").upper()
    if currency != "USD":
        raise ValueError(f"RAPPORT_REPORTING_CURRENCY={currency!r}: only USD is supported for now")
    spark_master = env.get("RAPPORT_SPARK_MASTER", "").strip() or "local[2]"
    return Settings(
        warehouse_dir=warehouse,
        orders_db_url=env.get("RAPPORT_ORDERS_DB_URL") or f"sqlite:///{demo / 'shop.db'}",
        helpdesk_url=(env.get("RAPPORT_HELPDESK_URL") or None),
        helpdesk_token=env.get("RAPPORT_HELPDESK_TOKEN") or DEMO_TOKEN,
        esp_root=Path(env.get("RAPPORT_ESP_ROOT") or demo / "esp").expanduser().resolve(),
        as_of=date.fromisoformat(as_of) if as_of else None,
        reporting_currency=currency,
        duckdb_threads=int(_number(env, "RAPPORT_DUCKDB_THREADS", 2)),
        duckdb_memory_limit=env.get("RAPPORT_DUCKDB_MEMORY_LIMIT", "4GB"),
        orders_lookback_minutes=int(_number(env, "RAPPORT_ORDERS_LOOKBACK_MINUTES", 10)),
        check_chunk_rows=int(_number(env, "RAPPORT_CHECK_CHUNK_ROWS", 2_000_000)),
        clock_skew_minutes=int(_number(env, "RAPPORT_CLOCK_SKEW_MINUTES", 60)),
        orders_reconcile_days=int(_number(env, "RAPPORT_ORDERS_RECONCILE_DAYS", 7)),
        freshness_warn_hours=_number(env, "RAPPORT_FRESHNESS_WARN_HOURS", 72, float),
        freshness_error_hours=_number(env, "RAPPORT_FRESHNESS_ERROR_HOURS", 336, float),
        volume_drop_warn_pct=_number(env, "RAPPORT_VOLUME_DROP_WARN_PCT", 10, float),
        volume_drop_error_pct=_number(env, "RAPPORT_VOLUME_DROP_ERROR_PCT", 100, float),
        keep_runs=int(_number(env, "RAPPORT_KEEP_RUNS", 30)),
        dbt_log_level=dbt_log_level(env.get("RAPPORT_DBT_LOG_LEVEL")),
        report_language=check_language(env.get("RAPPORT_REPORT_LANGUAGE")),
        engine=engine_from(env),
        spark_master=spark_master,
    )
