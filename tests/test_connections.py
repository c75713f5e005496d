"""Airflow connections map onto the RAPPORT_* settings (pure mapping; no Airflow needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rapport.core.config import load_settings
from rapport.orchestration.connections import env_overrides, orders_url


@dataclass
class Conn:
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def test_postgres_connection_becomes_a_psycopg_url_with_quoted_password():
    conn = Conn("postgres", "db.internal", 5432, "reader", "p@ss/word", "shop")
    assert orders_url(conn) == "postgresql+psycopg://reader:p%40ss%2Fword@db.internal:5432/shop"


def test_explicit_sqlalchemy_url_wins():
    conn = Conn("postgres", "ignored", extra={"sqlalchemy_url": "sqlite:////data/shop.db"})
    assert orders_url(conn) == "sqlite:////data/shop.db"


def test_unknown_connection_type_is_a_clear_error():
    with pytest.raises(ValueError, match="rapport_orders_db"):
        orders_url(Conn("mysql", "db"))


def test_connections_override_environment_and_missing_ones_do_not():
    conns = {
        "rapport_helpdesk": Conn("http", "https://acme.zendesk.com/", password="s3cret"),
        "rapport_esp": Conn("fs", extra={"root": "/mnt/esp"}),
    }
    env = {"RAPPORT_ORDERS_DB_URL": "sqlite:///from-env.db", "RAPPORT_HELPDESK_URL": "http://env"}
    env.update(env_overrides(conns.get))
    settings = load_settings(env)
    assert settings.orders_db_url == "sqlite:///from-env.db"
    assert settings.helpdesk_url == "https://acme.zendesk.com"
    assert settings.helpdesk_token == "s3cret"
    assert str(settings.esp_root) == "/mnt/esp"


def test_bare_helpdesk_host_gets_https():
    env = env_overrides({"rapport_helpdesk": Conn("http", "acme.zendesk.com")}.get)
    assert env == {"RAPPORT_HELPDESK_URL": "https://acme.zendesk.com"}


def test_helpdesk_scheme_from_schema_and_port_go_into_the_url():
    env = env_overrides({"rapport_helpdesk": Conn("http", "helpdesk.internal", 8443, schema="http")}.get)
    assert env == {"RAPPORT_HELPDESK_URL": "http://helpdesk.internal:8443"}
    with_path = Conn("http", "https://acme.example/zendesk/", 8443)
    assert env_overrides({"rapport_helpdesk": with_path}.get)["RAPPORT_HELPDESK_URL"] == (
        "https://acme.example:8443/zendesk"
    )


def test_a_token_only_helpdesk_connection_keeps_the_url_from_the_environment():
    env = {"RAPPORT_HELPDESK_URL": "http://127.0.0.1:9000"}
    env.update(env_overrides({"rapport_helpdesk": Conn("http", password="t0ken")}.get))
    settings = load_settings(env)
    assert (settings.helpdesk_url, settings.helpdesk_token) == ("http://127.0.0.1:9000", "t0ken")


def test_sqlite_connection_path_and_esp_host():
    env = env_overrides({"rapport_orders_db": Conn("sqlite", "/data/shop.db"), "rapport_esp": Conn("fs", "/mnt/x")}.get)
    assert env == {"RAPPORT_ORDERS_DB_URL": "sqlite:////data/shop.db", "RAPPORT_ESP_ROOT": "/mnt/x"}


def test_settings_repr_never_shows_secrets():
    settings = load_settings(
        {"RAPPORT_ORDERS_DB_URL": "postgresql+psycopg://u:hunter2@db/shop", "RAPPORT_HELPDESK_TOKEN": "tok-s3cret"}
    )
    assert "hunter2" not in repr(settings) and "tok-s3cret" not in repr(settings)
