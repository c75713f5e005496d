"""`forget` inside the working DuckDB file: who the person is, their derived rows, mentions, compaction.

- `resolve`: the stitched customer(s) an address belongs to, from the identity models of the last build
  (intermediate.int_identity_*, int_customer_ids_assigned), with all their records and non-rejected
  identifiers.
- `delete_derived`: rows of every dbt-built table (staging, intermediate, marts, snapshots, incremental
  history) that belong to the person, recognised by column name (customer_id, record_id, order_id, ...).
- `sweep`: every remaining spelling of the person's emails and phones in any text column of any table is
  replaced by "[erased]" (a checkout email on someone else's order, a check's sample of offending rows).
- `compact`: rewrite the file, since DuckDB leaves deleted rows' bytes in freed blocks; the copy replaces
  the file only when it holds the same tables, row counts and views (`copy_differences`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import duckdb

from rapport.core.config import Settings
from rapport.core.warehouse import connect, writer_lock
from rapport.privacy.match import REDACTED, combined, email_pattern, phone_pattern
from rapport.privacy.purge import existing_tables
from rapport.privacy.store import TABLES as ERASURE_TABLES

log = logging.getLogger("rapport.orchestration.forget")

NON_DERIVED = ("raw", "quarantine", "ops", "information_schema", "pg_catalog")
# column name -> kind of clear id it holds (customer_id depends on its type: see _column_kind)
COLUMN_KINDS = {
    "current_customer_id": "customer",
    "shop_customer_id": "shop_customer",
    "record_id": "record",
    "anchor_record_id": "record",
    "order_id": "order",
    "user_id": "helpdesk_user",
    "requester_id": "helpdesk_user",
    "ticket_id": "ticket",
    "contact_id": "esp_contact",
    "sg_event_id": "event",
    "audience_member_id": "audience_member",
}
IDENTIFIER_TYPES = {"email": "email", "phone": "phone", "shop_customer_id": "shop_customer"}
# record_id prefix -> clear id kind of its source_id
RECORD_SOURCES = {
    "orders.customer": "shop_customer",
    "orders.guest_order": "order",
    "helpdesk.user": "helpdesk_user",
    "esp.contact": "esp_contact",
    "esp.audience_member": "audience_member",
}
IDENTITY_TABLES = {
    "int_identity_identifiers_unpivoted",
    "int_identity_fanout_measured",
    "int_customer_ids_assigned",
    "int_identity_records_unioned",
}
_TEXT_TYPES = ("VARCHAR", "JSON")


class SharedAddress(ValueError):
    """The address is a non-identifying value (shared by many records): it names nobody."""


@dataclass
class Person:
    """Clear values of the people being erased: in memory for the length of `forget`, never stored."""

    ids: dict[str, set[str]] = field(default_factory=dict)  # kind -> values (customer, record, email, ...)
    names: set[str] = field(default_factory=set)

    def add(self, kind: str, values: set[str] | list[str]) -> None:
        self.ids.setdefault(kind, set()).update(v for v in values if v is not None and v != "")

    def get(self, kind: str) -> set[str]:
        return self.ids.get(kind, set())


def _fetch_set(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> set[str]:
    return {str(r[0]) for r in con.execute(sql, params or []).fetchall() if r[0] is not None}


def matched_addresses(con: duckdb.DuckDBPyConnection, emails: list[str]) -> dict[str, bool]:
    """Whether each normalised address is on any identity record or any landed raw row."""
    found = dict.fromkeys(emails, False)
    inter = existing_tables(con, "intermediate")
    if "int_identity_identifiers_unpivoted" in inter:
        sql = (
            "select distinct identifier_value from intermediate.int_identity_identifiers_unpivoted "
            "where identifier_type = 'email' and list_contains(?, identifier_value)"
        )
        for e in _fetch_set(con, sql, [emails]):
            found[e] = True
    raw = existing_tables(con, "raw")
    for table in ("shop_customers", "shop_orders", "helpdesk_users", "esp_contacts", "esp_audiences", "esp_events"):
        if table in raw:
            for e in _fetch_set(
                con,
                f"select distinct erasure_norm_email(email) from raw.{table} "
                "where list_contains(?, erasure_norm_email(email))",
                [emails],
            ):
                found[e] = True
    return found


def resolve(con: duckdb.DuckDBPyConnection, emails: list[str]) -> Person:
    """The stitched customers carrying these normalised emails, as of the last dbt build."""
    person = Person()
    person.add("email", emails)
    if not existing_tables(con, "intermediate") >= IDENTITY_TABLES:
        return person  # never built: raw rows are found by the purge alone
    i = "intermediate"
    shared = con.execute(
        f"select identifier_value, account_records, distinct_emails from {i}.int_identity_fanout_measured "
        "where identifier_type = 'email' and is_rejected and list_contains(?, identifier_value)",
        [emails],
    ).fetchall()
    if shared:
        value, accounts, _ = shared[0]
        raise SharedAddress(
            f"{value} is carried by {accounts} account records (more than max_identifier_fanout): rapport treats "
            "it as a shared address that names nobody, so it cannot say whose it is. Erase the people behind it "
            "by their own addresses."
        )
    seed = _fetch_set(
        con,
        f"select distinct record_id from {i}.int_identity_identifiers_unpivoted "
        "where identifier_type = 'email' and list_contains(?, identifier_value)",
        [emails],
    )
    customers = _fetch_set(
        con,
        f"select distinct customer_id from {i}.int_customer_ids_assigned "
        "where is_current and list_contains(?, record_id)",
        [list(seed)],
    )
    records = seed | _fetch_set(
        con,
        f"select record_id from {i}.int_customer_ids_assigned where is_current and list_contains(?, customer_id)",
        [list(customers)],
    )
    # ids (current or retired) that only ever held the person's records
    owned = _fetch_set(
        con,
        f"select customer_id from {i}.int_customer_ids_assigned group by customer_id "
        "having bool_and(list_contains(?, record_id))",
        [list(records)],
    )
    person.add("customer", customers | owned)
    person.add("record", records)
    for record in records:
        source, _, source_id = record.partition(":")
        if source in RECORD_SOURCES:
            person.add(RECORD_SOURCES[source], [source_id])
    for kind, value in con.execute(
        f"""select u.identifier_type, u.identifier_value
            from {i}.int_identity_identifiers_unpivoted as u
            inner join {i}.int_identity_fanout_measured as f
                on u.identifier_type = f.identifier_type and u.identifier_value = f.identifier_value
            where not f.is_rejected and list_contains(?, u.record_id)""",
        [list(records)],
    ).fetchall():
        person.add(IDENTIFIER_TYPES.get(kind, kind), [value])
    person.names |= _fetch_set(
        con,
        f"select distinct full_name from {i}.int_identity_records_unioned "
        "where list_contains(?, record_id) and full_name is not null",
        [list(records)],
    )
    return person


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns where table_catalog = current_database() "
        "and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def _all_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [
        tuple(r)
        for r in con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
            "and table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
    ]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_kind(name: str, dtype: str) -> str | None:
    if name == "customer_id":  # the stitched id (text) in marts, the shop's customer id (integer) in staging
        return "customer" if dtype.upper().startswith("VARCHAR") else "shop_customer"
    return COLUMN_KINDS.get(name)


def delete_derived(con: duckdb.DuckDBPyConnection, person: Person) -> dict[str, int]:
    """Delete the person's rows from every table outside raw, quarantine and ops."""
    con.execute("create or replace temp table _p (kind varchar, v varchar)")
    pairs = [(k, v) for k, values in person.ids.items() for v in values]
    if pairs:
        con.executemany("insert into _p values (?, ?)", pairs)
    removed: dict[str, int] = {}
    for schema, table in _all_tables(con):
        if schema in NON_DERIVED or schema.startswith("temp"):
            continue
        cols = _columns(con, schema, table)
        tests = []
        for name, dtype in cols.items():
            kind = _column_kind(name, dtype)
            if kind:
                tests.append(f"cast({_q(name)} as varchar) in (select v from _p where kind = '{kind}')")
        if "source" in cols and "source_id" in cols:
            tests.append("source || ':' || source_id in (select v from _p where kind = 'record')")
        if "identifier_type" in cols and "identifier_value" in cols:
            for itype, kind in IDENTIFIER_TYPES.items():
                tests.append(
                    f"(identifier_type = '{itype}' and identifier_value in (select v from _p where kind = '{kind}'))"
                )
        if not tests:
            continue
        rel = f"{_q(schema)}.{_q(table)}"
        n = con.execute(f"delete from {rel} where {' or '.join(tests)}").fetchall()[0][0]
        if n:
            removed[f"{schema}.{table}"] = int(n)
    con.execute("drop table _p")
    return removed


def patterns(person: Person) -> list[str]:
    """RE2 patterns of every spelling of the person's emails and phones (one per kind)."""
    emails = [email_pattern(e) for e in sorted(person.get("email"))]
    phones = [p for p in (phone_pattern(x) for x in sorted(person.get("phone"))) if p]
    return [p for p in (combined(emails), combined(phones)) if p]


def sweep(con: duckdb.DuckDBPyConnection, pats: list[str], names: set[str]) -> dict[str, int]:
    """Replace remaining spellings in every text column of every table (names: in ops.* only, where they can
    only be copies of data, never a namesake's own record). Returns values redacted per table."""
    redacted: dict[str, int] = {}
    for schema, table in _all_tables(con):
        if schema == "ops" and table in ERASURE_TABLES:
            continue
        rel = f"{_q(schema)}.{_q(table)}"
        for name, dtype in _columns(con, schema, table).items():
            if dtype.upper() not in _TEXT_TYPES:
                continue
            col = _q(name)
            text = f"cast({col} as varchar)"
            back = "::json" if dtype.upper() == "JSON" else ""
            for pat in pats:
                for _ in range(6):  # repeated: adjacent spellings share the delimiter one replacement eats
                    n = con.execute(
                        f"update {rel} set {col} = regexp_replace({text}, ?, '\\1{REDACTED}\\2', 'gi'){back} "
                        f"where regexp_matches({text}, ?, 'i')",
                        [pat, pat],
                    ).fetchall()[0][0]
                    if not n:
                        break
                    redacted[f"{schema}.{table}"] = redacted.get(f"{schema}.{table}", 0) + int(n)
            if schema == "ops":
                for person_name in sorted(names, key=len, reverse=True):
                    n = con.execute(
                        f"update {rel} set {col} = replace({text}, ?, ?){back} where contains({text}, ?)",
                        [person_name, REDACTED, person_name],
                    ).fetchall()[0][0]
                    if n:
                        redacted[f"{schema}.{table}"] = redacted.get(f"{schema}.{table}", 0) + int(n)
    return redacted


def _inventory(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str, int]]:
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ? "
        "and table_type = 'BASE TABLE' order by 1, 2",
        [catalog],
    ).fetchall()
    return [
        (s, t, con.execute(f"select count(*) from {_q(catalog)}.{_q(s)}.{_q(t)}").fetchall()[0][0]) for s, t in tables
    ]


def _views(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[tuple[str, str], str]:
    """(schema, view) -> its definition. DuckDB stores a view's references to its own database without the
    database name, so a faithful copy holds the same text."""
    rows = con.execute(
        "select schema_name, view_name, sql from duckdb_views() where database_name = ? and not internal",
        [catalog],
    ).fetchall()
    return {(schema, name): sql for schema, name, sql in rows}


def copy_differences(con: duckdb.DuckDBPyConnection, original: str, copy: str) -> list[str]:
    """What the database `copy` lacks or holds otherwise than `original` (both attached to `con`): base
    tables and their row counts, views and their definitions (a lost view, such as marts.customer_identities,
    would leave the published marts without it). Empty when the copy is faithful."""
    tables, copied = _inventory(con, original), dict(((s, t), n) for s, t, n in _inventory(con, copy))
    found = [
        f"table {s}.{t}: {n} {'row' if n == 1 else 'rows'}, {copied[(s, t)]} in the copy"
        if (s, t) in copied
        else f"table {s}.{t} missing"
        for s, t, n in tables
        if copied.get((s, t)) != n
    ]
    found += [f"table {s}.{t} not in the original" for s, t in sorted(set(copied) - {(s, t) for s, t, _n in tables})]
    views, copied_views = _views(con, original), _views(con, copy)
    for key in sorted(set(views) | set(copied_views)):
        name = ".".join(key)
        if key not in copied_views:
            found.append(f"view {name} missing")
        elif key not in views:
            found.append(f"view {name} not in the original")
        elif views[key] != copied_views[key]:
            found.append(f"view {name} defined otherwise")
    return found


def _copy_database(con: duckdb.DuckDBPyConnection, original: str, copy: str) -> None:
    con.execute(f"copy from database {_q(original)} to {_q(copy)}")


def compact(settings: Settings) -> list[str]:
    """Rewrite the working file so the deleted rows' bytes are gone, not just unreferenced.

    The copy is checked (same tables with the same row counts, same views with the same definitions) before
    it replaces the file. Returns the differences (`copy_differences`) that kept it from replacing the file
    (also logged as a warning; the file is left as it was): empty when the file was rewritten.
    """
    work = settings.work_db
    tmp = work.with_name(f".{work.name}.compact")
    with writer_lock(settings):
        tmp.unlink(missing_ok=True)
        try:
            con = connect(work, settings)
            try:
                con.execute("checkpoint")
                db = con.execute("select current_database()").fetchall()[0][0]
                con.execute(f"attach '{tmp}' as erasure_compacted")
                try:
                    _copy_database(con, db, "erasure_compacted")
                    differences = copy_differences(con, db, "erasure_compacted")
                    con.execute("checkpoint erasure_compacted")
                finally:
                    con.execute("detach erasure_compacted")
            finally:
                con.close()
            if differences:
                log.warning(
                    "compacting %s: the copy differs from the original (%s); keeping the original",
                    work,
                    "; ".join(differences),
                )
                return differences
            os.replace(tmp, work)
        finally:
            tmp.unlink(missing_ok=True)  # a copy that failed or differed (after os.replace, nothing is there)
        fd = os.open(work.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return []
