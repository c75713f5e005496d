"""Airflow connections as an alternative to the RAPPORT_* environment variables.

Inside Airflow, a connection of the following id overrides the variable of the same meaning:

- `rapport_orders_db` -> RAPPORT_ORDERS_DB_URL: extra `sqlalchemy_url`, else built from
  conn_type (postgres, sqlite), host, port, login, password, schema;
- `rapport_helpdesk` -> RAPPORT_HELPDESK_URL (host, with its scheme or the one in `schema`, default https;
  port) and RAPPORT_HELPDESK_TOKEN (password); a connection with only a password keeps the URL from the
  environment (or the demo helpdesk);
- `rapport_esp` -> RAPPORT_ESP_ROOT: extra `root`, else host.

The mapping is a pure function of connection fields so it can be tested without Airflow.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit


class ConnectionLike(Protocol):
    conn_type: str | None
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "sqlite": "sqlite"}


def orders_url(conn: ConnectionLike) -> str:
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    driver = _DRIVERS.get((conn.conn_type or "").lower())
    if driver is None:
        raise ValueError(
            f"connection rapport_orders_db has type {conn.conn_type!r}; use postgres or sqlite, "
            "or set extra.sqlalchemy_url"
        )
    if driver == "sqlite":
        return f"sqlite:///{conn.host}"
    auth = ""
    if conn.login:
        auth = quote(conn.login, safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    return f"{driver}://{auth}{conn.host or 'localhost'}{port}/{conn.schema or ''}"


def helpdesk_url(conn: ConnectionLike) -> str | None:
    """Base URL from an HTTP-style connection: host with or without scheme (`schema` holds it otherwise)."""
    if not conn.host:
        return None
    host = conn.host.strip()
    if "://" not in host:
        host = f"{(conn.schema or 'https').strip()}://{host}"
    parts = urlsplit(host)
    netloc = parts.netloc if (not conn.port or parts.port) else f"{parts.netloc}:{conn.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def env_overrides(get: Any) -> dict[str, str]:
    """Environment overrides from the connections `get(conn_id)` returns (None when not defined)."""
    env: dict[str, str] = {}
    orders = get("rapport_orders_db")
    if orders is not None:
        env["RAPPORT_ORDERS_DB_URL"] = orders_url(orders)
    helpdesk = get("rapport_helpdesk")
    if helpdesk is not None:
        url = helpdesk_url(helpdesk)
        if url:
            env["RAPPORT_HELPDESK_URL"] = url
        if helpdesk.password:
            env["RAPPORT_HELPDESK_TOKEN"] = helpdesk.password
    esp = get("rapport_esp")
    if esp is not None:
        root = (esp.extra_dejson or {}).get("root") or esp.host
        if root:
            env["RAPPORT_ESP_ROOT"] = str(root)
    return env


def airflow_connection_getter():
    """`get(conn_id)` backed by Airflow's task SDK; a missing connection gives None."""
    from airflow.sdk import Connection

    def get(conn_id: str):
        try:
            return Connection.get(conn_id)
        except Exception:  # AirflowNotFoundException and friends: fall back to the environment
            return None

    return get
